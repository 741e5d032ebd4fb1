//! NeonCRM's client reads every documented variation of NeonCRM API v1's answers (providers.md
//! §5.1): a one-element list as the object itself or as an array of one, numbers as strings and
//! strings of digits as numbers, column names in another case (and an organization's name under
//! "Company Name"), and fields it has never seen. Apply and plan run through the variation
//! proxy, with enough organizations that the look-up pages; the organizations are then counted
//! with NeonCRM's own `listAccounts`, called on the sandbox directly.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use orgform::sandbox::SandboxConfig;
use orgform::sandbox::neoncrm::{API_KEY, NeonConfig, ORG_ID, PATH_PREFIX};
use serde_json::{Map, Value, json};

use crate::e2e::{served, start};
use crate::harness::Run;
use crate::variation_proxy::{
    Exchange, VariationProxy, adopt_from_fresh_state, digits_as_number, extra_fields,
    singletons_as_objects, walk_objects,
};

const ENV: &[(&str, &str)] = &[("NEON_ORG_ID", ORG_ID), ("NEON_API_KEY", API_KEY)];

const CREATE: &str = "GET /neonws/services/api/account/createOrganizationAccount";

/// The keys under which v1 answers hold a list (XML's `list.item` wrapping, providers.md §5.1):
/// the errors of a FAIL, the rows of a search and each row's columns, and the lists of an
/// account (Retrieve Organization Account's example).
const LISTS: &[&str] = &[
    "error",
    "nameValuePairs",
    "nameValuePair",
    "accountSearchResult",
    "address",
    "customFieldData",
    "organizationType",
];

/// Counts of the variations met where they matter, so the test can show each was.
struct Met {
    /// Search answers holding one row.
    one_row: AtomicU64,
    /// FAIL answers.
    fails: AtomicU64,
    /// Creates answered FAIL.
    creates_refused: AtomicU64,
    /// A one-row search answered with the row as the object itself.
    row_as_object: AtomicU64,
    /// A one-row search answered with an array of one.
    row_as_array: AtomicU64,
    /// A FAIL whose one error came as the object itself.
    error_as_object: AtomicU64,
    /// A FAIL whose one error came as an array of one.
    error_as_array: AtomicU64,
    /// Rows read with their account id as a string.
    id_as_string: AtomicU64,
    /// Page counts sent as strings.
    pages_as_strings: AtomicU64,
    /// An organization's name of digits sent as a number.
    name_as_number: AtomicU64,
    /// Create answers with `accountId` as a string.
    created_id_as_string: AtomicU64,
    /// Error codes sent as numbers.
    code_as_number: AtomicU64,
}

static MET: Met = Met {
    one_row: AtomicU64::new(0),
    fails: AtomicU64::new(0),
    creates_refused: AtomicU64::new(0),
    row_as_object: AtomicU64::new(0),
    row_as_array: AtomicU64::new(0),
    error_as_object: AtomicU64::new(0),
    error_as_array: AtomicU64::new(0),
    id_as_string: AtomicU64::new(0),
    pages_as_strings: AtomicU64::new(0),
    name_as_number: AtomicU64::new(0),
    created_id_as_string: AtomicU64::new(0),
    code_as_number: AtomicU64::new(0),
};

/// Adds one to `counter`, giving what it held.
fn count(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::SeqCst)
}

/// NeonCRM's documented variations (providers.md §5.1), chosen from what each answer holds so
/// that every form meets the answers that matter: each row of a search, each page, each create
/// answer, each FAIL.
fn neon_variations(exchange: &Exchange<'_>, answer: &mut Value) {
    if exchange
        .path
        .ends_with("/account/createOrganizationAccount")
        && answer.pointer("/createOrganizationAccountResponse/operationResult")
            == Some(&json!("FAIL"))
    {
        // A create refused (its session lapsed): nothing was created, and it is sent again.
        count(&MET.creates_refused);
    }
    // §5.1: "v1 renders a one-element list as an object, not an array", everywhere a list
    // appears (the emulator does already; this keeps the form whatever it does).
    singletons_as_objects(answer, LISTS);
    walk_objects(answer, &mut |object| {
        if object.contains_key("nameValuePairs") {
            vary_rows(object);
        }
        if object.contains_key("totalPage") {
            vary_page(object);
        }
        if object.contains_key("accountId") && !object.contains_key("organizationName") {
            vary_created(object);
        }
        if object.contains_key("error") {
            vary_errors(object);
        }
    });
    // §5.1's examples carry fields the client never reads (`responseDateTime`, `createdBy`,
    // `source`, ...); an answer may carry more, in any object.
    extra_fields(answer);
}

/// The rows of a `listAccounts` answer (`searchResults.nameValuePairs`).
fn vary_rows(results: &mut Map<String, Value>) {
    let Some(rows) = results.get_mut("nameValuePairs") else {
        return;
    };
    match rows {
        Value::Array(rows) => {
            for (i, row) in rows.iter_mut().enumerate() {
                vary_row(row, i);
            }
        }
        Value::Object(_) => {
            vary_row(rows, 0);
            // §5.1: "v1 renders a one-element list as an object, not an array", yet the List
            // Accounts example shows one row as an array of one
            // (`"nameValuePairs": [{...}]`): "The client must accept object-or-array
            // everywhere." One-row answers alternate between the two.
            if count(&MET.one_row).is_multiple_of(2) {
                count(&MET.row_as_object);
            } else {
                count(&MET.row_as_array);
                let only = rows.take();
                *rows = Value::Array(vec![only]);
            }
        }
        _ => {}
    }
}

/// One row's columns (`nameValuePair`): row `i` gets its own mix.
fn vary_row(row: &mut Value, i: usize) {
    let pairs = match row.get_mut("nameValuePair") {
        Some(Value::Array(pairs)) => pairs.iter_mut().collect::<Vec<_>>(),
        Some(pair) => vec![pair],
        None => return,
    };
    for pair in pairs {
        let Some(pair) = pair.as_object_mut() else {
            continue;
        };
        let Some(Value::String(name)) = pair.get("name").cloned() else {
            continue;
        };
        // §5.1 (issue 13): the List Accounts example asks for `Account ID` and answers
        // `Account Id`, so a column's name comes in the server's case, not the request's; which
        // name an organization's name has is [U] ("Organization Name" or "Company Name").
        let renamed = match i % 3 {
            0 => name.to_uppercase(),
            1 => name.to_lowercase(),
            _ if name.eq_ignore_ascii_case("Organization Name") => "company name".to_string(),
            _ => name.clone(),
        };
        pair.insert("name".to_string(), Value::String(renamed));
        let Some(value) = pair.get_mut("value") else {
            continue;
        };
        // §5.1: an account id is a number in the examples (`"value": 123937`) and text in
        // XML-born answers (seed 004's SOAP `<accountid>5789</accountid>`); a name of digits
        // may come as a number the same way.
        if name.eq_ignore_ascii_case("Account Id") {
            if (i / 3).is_multiple_of(2) && value.is_number() {
                count(&MET.id_as_string);
                *value = Value::String(value.to_string());
            }
        } else if digits_as_number(value) {
            count(&MET.name_as_number);
        }
    }
}

/// `page`: §5.1's example gives numbers (`"totalPage": 1`); text comes as well. The first
/// page's counts (which tell the client how many more to ask for) come as strings.
fn vary_page(page: &mut Map<String, Value>) {
    let first = page
        .get("currentPage")
        .is_some_and(|p| p.as_u64() == Some(1) || p.as_str() == Some("1"));
    if !first {
        return;
    }
    count(&MET.pages_as_strings);
    for key in ["currentPage", "pageSize", "totalPage", "totalResults"] {
        if let Some(n) = page.get_mut(key).filter(|n| n.is_number()) {
            *n = Value::String(n.to_string());
        }
    }
}

/// A create answer's `accountId` (seed 004: `"accountId": 123937`), as text for every even id.
fn vary_created(answer: &mut Map<String, Value>) {
    if let Some(id) = answer.get_mut("accountId")
        && id.as_u64().is_some_and(|n| n % 2 == 0)
    {
        count(&MET.created_id_as_string);
        *id = Value::String(id.to_string());
    }
}

/// A FAIL's `errors.error`: one error as the object itself or an array of one, and its code
/// as a number or as text (the "Common Parameters and Errors" codes are numbers written as
/// text in the FAIL envelope).
fn vary_errors(errors: &mut Map<String, Value>) {
    let Some(error) = errors.get_mut("error") else {
        return;
    };
    let turn = count(&MET.fails);
    for one in match &mut *error {
        Value::Array(items) => items.iter_mut().collect::<Vec<_>>(),
        other => vec![other],
    } {
        if let Some(code) = one.get_mut("errorCode")
            && turn.is_multiple_of(2)
            && digits_as_number(code)
        {
            count(&MET.code_as_number);
        }
    }
    if !error.is_object() {
        return;
    }
    if turn.is_multiple_of(2) {
        count(&MET.error_as_object);
    } else {
        count(&MET.error_as_array);
        let only = error.take();
        *error = Value::Array(vec![only]);
    }
}

fn orgform(dir: &Path, args: &[&str]) -> Run {
    crate::harness::run_on(dir, args, ENV)
}

/// Organizations enough that one search for all their names takes more request lines than
/// reading every organization in pages of 200, so the read pages; the last page holds one row
/// (a one-element list). One name is all digits, which v1 may send as a number.
fn names() -> Vec<String> {
    let mut names: Vec<String> = (0..200)
        .map(|i| format!("Tolerant Reader Community Foundation Number {i:03}"))
        .collect();
    names.push("1905".to_string());
    names
}

fn write_specs(dir: &Path, base_url: &str, names: &[String]) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let mut text = format!(
        "[provider.neon]\ntype = \"neoncrm\"\nbase_url = \"{base_url}{PATH_PREFIX}\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\nmax_concurrency = 4\n"
    );
    for (i, name) in names.iter().enumerate() {
        text.push_str(&format!(
            "\n[org.n{i:03}]\nprovider = \"neon\"\norganization_name = \"{name}\"\n"
        ));
    }
    std::fs::write(specs.join("neon.toml"), text).expect("write specs");
}

/// A v1 list in either shape, as its elements.
fn elements(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        Value::Object(map) if map.is_empty() => Vec::new(),
        other => vec![other],
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every organization account (account id, name) by NeonCRM's own `listAccounts`, called on
/// the sandbox directly and followed through all of its pages.
async fn neon_organizations(sandbox_url: &str) -> Vec<(String, String)> {
    let base = format!("{sandbox_url}{PATH_PREFIX}");
    let client = reqwest::Client::new();
    let session = crate::provider_neoncrm::session_directly(&client, &base).await;
    let mut accounts = Vec::new();
    let mut page = 1;
    loop {
        let page_text = page.to_string();
        let answer: Value = client
            .get(format!("{base}/account/listAccounts"))
            .query(&[
                ("responseType", "json"),
                ("userSessionId", session.as_str()),
                ("outputfields.idnamepair.id", ""),
                ("outputfields.idnamepair.name", "Account ID"),
                ("outputfields.idnamepair.id", ""),
                ("outputfields.idnamepair.name", "Organization Name"),
                ("searches.search.key", "Organization Name"),
                ("searches.search.searchOperator", "NOT_BLANK"),
                ("searches.search.value", ""),
                ("searches.search.key", "Account Type"),
                ("searches.search.searchOperator", "EQUAL"),
                ("searches.search.value", "Organization"),
                ("page.currentPage", page_text.as_str()),
                ("page.pageSize", "200"),
            ])
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("list json");
        let inner = &answer["listAccountsResponse"];
        assert_eq!(inner["operationResult"], "SUCCESS", "{answer}");
        for row in elements(&inner["searchResults"]["nameValuePairs"]) {
            let pairs = elements(&row["nameValuePair"]);
            let column = |name: &str| {
                pairs
                    .iter()
                    .find(|p| {
                        p["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                    })
                    .map(|p| text(&p["value"]))
                    .expect("column")
            };
            accounts.push((column("Account ID"), column("Organization Name")));
        }
        let pages: u64 = text(&inner["page"]["totalPage"]).parse().expect("pages");
        if page >= pages {
            return accounts;
        }
        page += 1;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn neoncrm_apply_and_plan_read_every_documented_variation() {
    // Sessions lapse every so often, so that FAIL answers (code 4, one error) meet the
    // variations too and the client renews through them.
    let sandbox = start(SandboxConfig {
        neoncrm: NeonConfig {
            session_max_uses: Some(50),
            ..NeonConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let proxy = VariationProxy::start(&sandbox.base_url(), neon_variations).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let names = names();
    let n = names.len();
    write_specs(dir.path(), &proxy.base_url(), &names);

    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    // A fresh state finds every one through the varied, paged answers and adopts it.
    adopt_from_fresh_state(
        &|args| orgform(dir.path(), args),
        &dir.path().join("state.json"),
        n,
        &["apply", "--auto-approve"],
    );

    assert!(proxy.rewritten() > 0, "the proxy varied no answer");
    let met = [
        ("one row as the object", &MET.row_as_object),
        ("one row as an array of one", &MET.row_as_array),
        ("one error as the object", &MET.error_as_object),
        ("one error as an array of one", &MET.error_as_array),
        ("an account id as text", &MET.id_as_string),
        ("page counts as text", &MET.pages_as_strings),
        ("a name of digits as a number", &MET.name_as_number),
        ("a created account id as text", &MET.created_id_as_string),
        ("an error code as a number", &MET.code_as_number),
    ];
    for (what, counter) in met {
        assert!(counter.load(Ordering::SeqCst) > 0, "no answer had {what}");
    }
    // Every create the sandbox served made one account, but those refused for a lapsed session.
    let refused = MET.creates_refused.load(Ordering::SeqCst);
    assert_eq!(
        served(&sandbox, "neoncrm", CREATE).await,
        n as u64 + refused
    );
    let accounts = neon_organizations(&sandbox.base_url()).await;
    assert_eq!(accounts.len(), n, "{accounts:?}");
    let mut listed: Vec<&str> = accounts.iter().map(|(_, name)| name.as_str()).collect();
    listed.sort_unstable();
    listed.dedup();
    let mut wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    assert_eq!(listed, wanted);
    sandbox.shutdown().await.expect("shutdown");
}
