//! Oracle Commerce's client reads every documented variation of OCC's answers (providers.md
//! §3): numbers as strings (the schema types the counts so while the examples show numbers,
//! and ids come both ways), the larger item object some versions list (approvalRequired,
//! billingAddress, ...), a request's organization and profile expanded, the storefront's
//! message in place of a new request's id, and fields it has never seen. Both modes run through the variation
//! proxy in one spec: organization requests, which wait for an administrator who approves them
//! on the sandbox directly, and organizations created directly; the requests are enough that
//! the look-up pages. Requests and organizations are then counted with OCC's own list APIs.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use orgform::providers::oracle::{ORGANIZATIONS_PATH, REQUESTS_PATH, STORE_REQUESTS_PATH};
use orgform::sandbox::SandboxConfig;
use orgform::sandbox::oracle::{APP_KEY, OracleConfig};
use serde_json::{Value, json};

use crate::e2e::{served, start};
use crate::harness::Run;
use crate::variation_proxy::{
    Exchange, VariationProxy, adopt_from_fresh_state, digits_as_number, extra_fields,
    numbers_as_strings, walk_objects,
};

const ENV: &[(&str, &str)] = &[("OCC_APP_KEY", APP_KEY)];

const CREATE_REQUEST: &str = "POST /ccstore/v1/organizationRequests";
const CREATE_ORGANIZATION: &str = "POST /ccadmin/v1/organizations";

/// Counts of the variations met where they matter, so the test can show each was.
struct Met {
    /// First pages whose counts came as strings.
    counts_as_strings: AtomicU64,
    /// Later pages whose counts came as numbers.
    counts_as_numbers: AtomicU64,
    /// Listed items whose numbers (a request's id) came as strings.
    item_numbers_as_strings: AtomicU64,
    /// Listed items whose ids of digits came as numbers.
    item_ids_as_numbers: AtomicU64,
    /// Token answers with `expires_in` as a string.
    lifetime_as_string: AtomicU64,
    /// The storefront's create answers with the request's id as a number.
    created_id_as_number: AtomicU64,
    /// The storefront's create answers with a message in place of the id.
    created_without_id: AtomicU64,
    /// Organizations answered as the larger object.
    larger_organizations: AtomicU64,
    /// Requests answered with their organization and profile expanded.
    larger_requests: AtomicU64,
}

static MET: Met = Met {
    counts_as_strings: AtomicU64::new(0),
    counts_as_numbers: AtomicU64::new(0),
    item_numbers_as_strings: AtomicU64::new(0),
    item_ids_as_numbers: AtomicU64::new(0),
    lifetime_as_string: AtomicU64::new(0),
    created_id_as_number: AtomicU64::new(0),
    created_without_id: AtomicU64::new(0),
    larger_organizations: AtomicU64::new(0),
    larger_requests: AtomicU64::new(0),
};

/// Token answers so far, so that they alternate.
static TOKENS: AtomicU64 = AtomicU64::new(0);

/// Adds one to `counter`.
fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::SeqCst);
}

/// The list counts, which OCC's schema types as strings and its examples show as numbers
/// (§3.5).
const COUNTS: &[&str] = &["total", "totalResults", "offset", "limit"];

/// OCC's documented variations (providers.md §3), chosen from what each answer holds so that
/// every form meets the answers that matter: each page, each listed item, each create answer,
/// each token.
fn oracle_variations(exchange: &Exchange<'_>, answer: &mut Value) {
    let ok = exchange.status == 200;
    let organizations = exchange.path == ORGANIZATIONS_PATH;
    let requests = exchange.path == REQUESTS_PATH;
    if ok && exchange.method == "GET" && (organizations || requests) {
        vary_page(answer, organizations);
    } else if ok && exchange.method == "POST" && organizations {
        // §3.2: the create answers the organization object, or only its id with
        // `expand=none`.
        if !exchange.query.contains("expand=none") {
            larger_organization(answer);
        }
    } else if ok && exchange.path == STORE_REQUESTS_PATH {
        vary_created_request(answer);
    } else if ok && answer.get("access_token").is_some() {
        // §3.1: "Some versions also return `expires_in`": any numeric field may be text.
        if TOKENS.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            numbers_as_strings(answer, &["expires_in"]);
            count(&MET.lifetime_as_string);
        }
    }
    // §3.7: optional fields (`devMessage`, `moreInfo`, `o:errorPath`, `type`) and §3.4's
    // `___etag___`: answers carry fields the client never reads.
    extra_fields(answer);
}

/// The storefront's answer to a new request (§3.3): `{"id": "100001", "links": [...]}`.
fn vary_created_request(answer: &mut Value) {
    let Some(id) = answer
        .get("id")
        .and_then(Value::as_str)
        .and_then(|i| i.parse::<u64>().ok())
    else {
        return;
    };
    if id % 3 == 0 {
        // §3.3: "With the site setting `enableProfileRegistrationEmailCheck` enabled, `id` is
        // removed and a `message` is returned instead".
        if let Some(object) = answer.as_object_mut() {
            object.remove("id");
            object.insert(
                "message".to_string(),
                json!("Once registration has successfully completed, you'll receive account activation details in your registration email's inbox."),
            );
            count(&MET.created_without_id);
        }
    } else if id % 2 == 0 {
        // §3.3 shows the storefront's id as a string, §3.4 the admin API's as a number.
        answer["id"] = json!(id);
        count(&MET.created_id_as_number);
    }
}

/// One page of a list: its counts, and each item.
fn vary_page(page: &mut Value, organizations: bool) {
    // §3.5: "The schema types `total/totalResults/offset/limit` as strings while the examples
    // use numbers": the first page's counts (which tell the client how many more pages to ask
    // for) come as strings, the others' as the emulator gives them (numbers).
    let first = page
        .get("offset")
        .is_some_and(|o| o.as_u64() == Some(0) || o == "0");
    if first {
        numbers_as_strings(page, COUNTS);
        count(&MET.counts_as_strings);
    } else if page.get("total").is_some_and(Value::is_number) {
        count(&MET.counts_as_numbers);
    }
    let Some(Value::Array(items)) = page.get_mut("items") else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        // "Oracle sends numbers as strings" (the quirks, §0), any numeric field: a request's
        // `id` is `100001` in §3.4's examples and `"100001"` in §3.3's; organization ids come
        // as `"or-100001"` or `"100001"` (§3.2).
        if i % 2 == 0 {
            if every_number_as_string(item) {
                count(&MET.item_numbers_as_strings);
            }
        } else if digits_as_numbers(item, &["id"]) {
            count(&MET.item_ids_as_numbers);
        }
        if organizations {
            // §3.5: "Some versions return a larger item object (approvalRequired,
            // billingAddress, ...)" [S: Cloud.10-17 listOrganizations].
            larger_organization(item);
        } else {
            // §3.0 and §3.4: newer versions expand a request's organization and profile
            // (`organization{id,name,customerType,...}`, `profile{id,firstName,...}`).
            larger_request(item);
        }
    }
}

/// Every number anywhere in `value` made its decimal string; whether there was one.
fn every_number_as_string(value: &mut Value) -> bool {
    let mut any = false;
    walk_objects(value, &mut |object| {
        for field in object.values_mut() {
            if field.is_number() {
                *field = Value::String(field.to_string());
                any = true;
            }
        }
    });
    any
}

/// Every string of digits under one of `keys`, anywhere in `value`, made that number when it
/// reads back the same; whether there was one.
fn digits_as_numbers(value: &mut Value, keys: &[&str]) -> bool {
    let mut any = false;
    walk_objects(value, &mut |object| {
        for (key, field) in object.iter_mut() {
            if keys.contains(&key.as_str()) && digits_as_number(field) {
                any = true;
            }
        }
    });
    any
}

/// An organization with the fields Cloud.10-17's listOrganizations shows beside the basic ones.
fn larger_organization(item: &mut Value) {
    let Some(object) = item.as_object_mut() else {
        return;
    };
    let address = json!({
        "address1": "600 Dexter Avenue", "city": "Montgomery", "state": "AL",
        "postalCode": "36130", "country": "US", "companyName": object.get("name").cloned(),
        "repositoryId": "100005", "phoneNumber": "973-974-1234",
    });
    let extra = json!({
        "approvalRequired": false,
        "orderPriceLimit": null,
        "description": null,
        "derivedDescription": null,
        "type": "company",
        "customerType": "Standard",
        "dunsNumber": null,
        "parentOrganization": null,
        "ancestorOrganizations": [],
        "billingAddress": address,
        "shippingAddress": address,
        "derivedBillingAddress": address,
        "derivedShippingAddress": address,
        "secondaryAddresses": {"Office Address": address},
        "shippingMethods": [],
        "derivedShippingMethods": [],
        "paymentMethods": ["card", "invoice"],
        "derivedPaymentMethods": ["card", "invoice"],
        "contract": {"displayName": "Default", "repositoryId": "contract100001"},
        "siteOrganizationProperties": [],
    });
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            object.entry(key).or_insert(value);
        }
    }
    count(&MET.larger_organizations);
}

/// A request with its organization and profile expanded, when it names them.
fn larger_request(item: &mut Value) {
    if let Some(Value::Object(organization)) = item.get_mut("organization") {
        organization
            .entry("customerType")
            .or_insert(json!("Standard"));
        organization.entry("type").or_insert(json!("company"));
        organization
            .entry("secondaryAddresses")
            .or_insert(json!([]));
    }
    if let Some(Value::Object(profile)) = item.get_mut("profile") {
        profile.entry("firstName").or_insert(json!("Buyer"));
        profile.entry("customerContactId").or_insert(Value::Null);
    }
    if let Some(object) = item.as_object_mut() {
        object.entry("requesterOrganization").or_insert(Value::Null);
        object
            .entry("parentOrgName")
            .or_insert(json!("Oracle Global"));
    }
    count(&MET.larger_requests);
}

fn orgform(dir: &Path, args: &[&str]) -> Run {
    crate::harness::run_on(dir, args, ENV)
}

/// Requests enough that a look-up of all their names takes more filters than listing every
/// request in pages of 250, so the read pages; the last page holds one.
fn request_names() -> Vec<String> {
    (0..251)
        .map(|i| format!("Tolerant Reader Wholesale Partner Number {i:03}"))
        .collect()
}

const DIRECT_NAMES: &[&str] = &["Direct Acme Corp", "Direct Globex", "Direct Initech"];

fn write_specs(dir: &Path, base_url: &str, requests: &[String]) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let mut text = format!(
        "[provider.occ_request]\ntype = \"oracle_commerce\"\nbase_url = \"{base_url}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\nmax_concurrency = 4\n\n[provider.occ_direct]\ntype = \"oracle_commerce\"\nbase_url = \"{base_url}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\nmode = \"direct\"\n"
    );
    for (i, name) in requests.iter().enumerate() {
        text.push_str(&format!(
            "\n[org.r{i:03}]\nprovider = \"occ_request\"\nname = \"{name}\"\norganization = {{ name = \"{name} Ltd\", customer_type = \"Standard\" }}\nprofile = {{ email = \"buyer{i}@example.com\", first_name = \"Buyer\", last_name = \"No{i}\" }}\n"
        ));
    }
    for (i, name) in DIRECT_NAMES.iter().enumerate() {
        text.push_str(&format!(
            "\n[org.d{i}]\nprovider = \"occ_direct\"\norganization = {{ name = \"{name}\", type = \"company\" }}\n"
        ));
    }
    std::fs::write(specs.join("occ.toml"), text).expect("write specs");
}

/// An admin token, straight from the sandbox's login.
pub(crate) async fn admin_token(http: &reqwest::Client, sandbox_url: &str) -> String {
    let login: Value = http
        .post(format!("{sandbox_url}/ccadmin/v1/login"))
        .bearer_auth(APP_KEY)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("token");
    login["access_token"].as_str().expect("token").to_string()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every item of an admin list (`REQUESTS_PATH` or `ORGANIZATIONS_PATH`) by OCC's own API,
/// called on the sandbox directly, page by page.
async fn occ_list(sandbox_url: &str, path: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let token = admin_token(&http, sandbox_url).await;
    let mut items = Vec::new();
    loop {
        let offset = items.len().to_string();
        let page: Value = http
            .get(format!("{sandbox_url}{path}"))
            .bearer_auth(&token)
            .query(&[("offset", offset.as_str()), ("limit", "250")])
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("list json");
        let got = page["items"].as_array().expect("items").clone();
        let total: usize = text(&page["totalResults"]).parse().expect("totalResults");
        let empty = got.is_empty();
        items.extend(got);
        if empty || items.len() >= total {
            return items;
        }
    }
}

/// Approves every request still waiting, as an administrator would, on the sandbox directly.
async fn approve_all(sandbox_url: &str) -> usize {
    let http = reqwest::Client::new();
    let token = admin_token(&http, sandbox_url).await;
    let mut approved = 0;
    for request in occ_list(sandbox_url, REQUESTS_PATH).await {
        if matches!(request["status"].as_str(), Some("approved" | "rejected")) {
            continue;
        }
        let id = text(&request["id"]);
        let answer = http
            .post(format!("{sandbox_url}{REQUESTS_PATH}/{id}/approve"))
            .bearer_auth(&token)
            .json(&json!({"approverComments": "welcome"}))
            .send()
            .await
            .expect("approve");
        assert_eq!(answer.status(), 200);
        approved += 1;
    }
    approved
}

/// The names of `items`, sorted.
fn sorted_names(items: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = items.iter().map(|i| text(&i["name"])).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn oracle_apply_and_plan_read_every_documented_variation() {
    let sandbox = start(SandboxConfig {
        // The examples' numbers from the emulator; the proxy turns every other answer's into
        // strings, as OCC's schema types them.
        oracle: OracleConfig {
            counts_as_strings: false,
            ..OracleConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let proxy = VariationProxy::start(&sandbox.base_url(), oracle_variations).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let requests = request_names();
    let all = requests.len() + DIRECT_NAMES.len();
    write_specs(dir.path(), &proxy.base_url(), &requests);

    // Requests wait for an administrator: apply records them pending and returns.
    let apply = orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert!(
        apply
            .stderr
            .contains(&format!("{} pending", requests.len())),
        "{}",
        apply.stderr
    );
    assert_eq!(approve_all(&sandbox.base_url()).await, requests.len());
    orgform(dir.path(), &["refresh"]).expect(0);
    // A fresh state finds every request and organization through the varied, paged answers
    // and adopts it.
    adopt_from_fresh_state(
        &|args| orgform(dir.path(), args),
        &dir.path().join("state.json"),
        all,
        &["apply", "--auto-approve"],
    );

    assert!(proxy.rewritten() > 0, "the proxy varied no answer");
    let met = [
        ("a first page's counts as strings", &MET.counts_as_strings),
        ("a later page's counts as numbers", &MET.counts_as_numbers),
        ("an item's numbers as strings", &MET.item_numbers_as_strings),
        (
            "an item's id of digits as a number",
            &MET.item_ids_as_numbers,
        ),
        ("a token's lifetime as a string", &MET.lifetime_as_string),
        (
            "a created request's id as a number",
            &MET.created_id_as_number,
        ),
        (
            "an organization as the larger object",
            &MET.larger_organizations,
        ),
        ("a request expanded", &MET.larger_requests),
    ];
    for (what, counter) in met {
        assert!(counter.load(Ordering::SeqCst) > 0, "no answer had {what}");
    }
    assert_eq!(
        served(&sandbox, "oracle_commerce", CREATE_REQUEST).await,
        requests.len() as u64
    );
    assert_eq!(
        served(&sandbox, "oracle_commerce", CREATE_ORGANIZATION).await,
        DIRECT_NAMES.len() as u64
    );
    let listed = occ_list(&sandbox.base_url(), REQUESTS_PATH).await;
    assert!(
        listed.iter().all(|r| r["status"] == "approved"),
        "{listed:?}"
    );
    let mut wanted = requests.clone();
    wanted.sort();
    assert_eq!(sorted_names(&listed), wanted);
    // Each approval made an organization (`<name> Ltd`); the direct ones were made as such.
    let organizations = occ_list(&sandbox.base_url(), ORGANIZATIONS_PATH).await;
    let mut wanted: Vec<String> = requests
        .iter()
        .map(|n| format!("{n} Ltd"))
        .chain(DIRECT_NAMES.iter().map(|n| n.to_string()))
        .collect();
    wanted.sort();
    assert_eq!(sorted_names(&organizations), wanted);
    sandbox.shutdown().await.expect("shutdown");
}
