//! NeonCRM: the client's wire encoding and answer parsing, the v1 emulator's logic, the real
//! client against the sandbox, and the real binary end to end: plan, apply, plan again; names
//! already taken; a session that lapses mid-run; create answers lost; injected faults.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use orgform::model::{NaturalKey, SecretRef};
use orgform::providers::neoncrm::{
    ListAnswer, Params, batches, describe_errors, encode_create, list_params,
};
use orgform::providers::{AnyProvider, ConnectOptions, CreateContext, Provider, ProviderError};
use orgform::sandbox::neoncrm::{self as neon_sandbox};
use orgform::sandbox::neoncrm::{self as emulator, Endpoint, NeonConfig, NeonData};
use orgform::sandbox::{Fault, Sandbox, SandboxConfig};
use orgform::secrets::{SecretResolver, SecretString};
use orgform::spec::{SourceFile, Spec};
use serde_json::{Value, json};

/// The emulator with its knobs and a seeded random source, as the sandbox holds it.
pub(crate) struct NeonEmulator {
    config: NeonConfig,
    data: NeonData,
    rng: fastrand::Rng,
}

impl NeonEmulator {
    pub(crate) fn new(config: NeonConfig, data: NeonData, seed: Option<u64>) -> NeonEmulator {
        NeonEmulator {
            config,
            data,
            rng: seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
        }
    }

    fn handle(
        &mut self,
        endpoint: Endpoint,
        params: &[(String, String)],
        now: Instant,
        wall: SystemTime,
    ) -> Value {
        let random = self.rng.u64(..);
        self.data
            .handle(&self.config, endpoint, params, now, wall, random)
    }

    fn data(&self) -> &NeonData {
        &self.data
    }
}

const LOGIN_PASSWORD: &str = "s3cret-neon-login-password";

fn spec(orgs: &str, base_url: &str) -> Spec {
    let text = format!(
        "[provider.neon]\ntype = \"neoncrm\"\nbase_url = \"{base_url}\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\n\n{orgs}"
    );
    Spec::load(&[SourceFile::new("neon.toml", text)]).unwrap_or_else(|e| panic!("{e:?}"))
}

fn secrets() -> SecretResolver {
    let mut overrides = BTreeMap::new();
    for (name, value) in [
        ("NEON_ORG_ID", emulator::ORG_ID),
        ("NEON_API_KEY", emulator::API_KEY),
        ("NEON_LOGIN_PASSWORD", LOGIN_PASSWORD),
    ] {
        overrides.insert(SecretRef::Env(name.into()), SecretString::new(value));
    }
    SecretResolver {
        overrides,
        ..SecretResolver::default()
    }
}

fn pairs(params: &Params) -> Vec<(&str, &str)> {
    params
        .0
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[test]
fn create_parameters_follow_the_seed_names_and_order() {
    let spec = spec(
        r#"
[org.acme]
provider = "neon"
organization_name = "Acme Corp"
origin_detail = "app-42"
send_acknowledge_email = false
login = { username = "acme", password = { env = "NEON_LOGIN_PASSWORD" } }
organization_types = [{ name = "Church" }, { id = 2 }]
consent_information = { email_consent_status = "GIVEN" }

[[org.acme.custom_field_data_list]]
field_id = 22
field_value = "EXAMPLETEXT"

[[org.acme.custom_field_data_list]]
field_id = 45
field_option_id = 47

[org.acme.primary_contact]
first_name = "Jane"
dob = 1985-10-13

[[org.acme.primary_contact.addresses]]
is_primary_address = true
city = "Tulsa"
state = { code = "OK" }

[[org.acme.primary_contact.addresses]]
address_line1 = "1 Main St"
country = { id = 1 }
"#,
        "https://api.neoncrm.com/neonws/services/api",
    );
    let schema = orgform::model::ProviderType::Neoncrm.schema();
    let params =
        encode_create(schema.org, &spec.orgs["acme"].attrs.unpack(), &secrets()).expect("encode");
    let a = "organizationAccount";
    let contact = "organizationAccount.primaryContact";
    let address = "organizationAccount.primaryContact.addresses.address";
    let custom = "organizationAccount.customFieldDataList.customFieldData";
    let types = "organizationAccount.organizationTypes.organizationType";
    let want: Vec<(String, &str)> = vec![
        (format!("{a}.organizationName"), "Acme Corp"),
        ("originDetail".into(), "app-42"),
        (format!("{contact}.firstName"), "Jane"),
        (format!("{contact}.dob"), "1985-10-13"),
        // Every address sends the parameters any address sets, blank where it has none, so
        // that NeonCRM pairs them by position.
        (format!("{address}.isPrimaryAddress"), "true"),
        (format!("{address}.addressLine1"), ""),
        (format!("{address}.city"), "Tulsa"),
        (format!("{address}.state.code"), "OK"),
        (format!("{address}.country.id"), ""),
        (format!("{address}.isPrimaryAddress"), ""),
        (format!("{address}.addressLine1"), "1 Main St"),
        (format!("{address}.city"), ""),
        (format!("{address}.state.code"), ""),
        (format!("{address}.country.id"), "1"),
        (format!("{a}.login.username"), "acme"),
        (format!("{a}.login.password"), LOGIN_PASSWORD),
        // The seed: the whole triplet, always, blanks allowed.
        (format!("{custom}.fieldId"), "22"),
        (format!("{custom}.fieldOptionId"), ""),
        (format!("{custom}.fieldValue"), "EXAMPLETEXT"),
        (format!("{custom}.fieldId"), "45"),
        (format!("{custom}.fieldOptionId"), "47"),
        (format!("{custom}.fieldValue"), ""),
        (format!("{types}.id"), ""),
        (format!("{types}.name"), "Church"),
        (format!("{types}.id"), "2"),
        (format!("{types}.name"), ""),
        ("sendAcknowledgeEmail".into(), "false"),
        ("consentInformation.emailConsentStatus".into(), "GIVEN"),
    ];
    let want: Vec<(&str, &str)> = want.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    assert_eq!(pairs(&params), want);
    // The parameters' Debug never shows a value: the password is among them.
    assert!(!format!("{params:?}").contains(LOGIN_PASSWORD));
}

#[test]
fn list_parameters_search_many_names_per_request() {
    let one = list_params(&["Acme Corp"], 1);
    assert_eq!(one.get("searches.search.searchOperator"), Some("EQUAL"));
    assert_eq!(one.get("searches.search.value"), Some("Acme Corp"));
    assert_eq!(one.get("page.pageSize"), Some("200"));
    assert_eq!(one.get("page.currentPage"), Some("1"));
    let many = list_params(&["Acme", "Beta, Inc."], 3);
    assert_eq!(many.get("searches.search.searchOperator"), Some("IN_RANGE"));
    assert_eq!(
        many.get("searches.search.value"),
        Some("(\"Acme\",\"Beta, Inc.\")")
    );
    assert_eq!(many.get("page.currentPage"), Some("3"));
    let columns: Vec<_> = many
        .0
        .iter()
        .filter(|(n, _)| n == "outputfields.idnamepair.name")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Account ID",
            "Organization Name",
            "Account Type",
            "First Name",
            "Last Name",
            "Email 1"
        ]
    );
    // Organizations only: a person's organization name is where they work.
    let keys: Vec<_> = many
        .0
        .iter()
        .filter(|(n, _)| n == "searches.search.key")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(keys, ["Organization Name", "Account Type"]);

    // A page's worth of names per search; a name with a double quote goes alone.
    let names: Vec<String> = (0..450).map(|i| format!("Org {i}")).collect();
    let mut refs: Vec<&str> = names.iter().map(String::as_str).collect();
    refs.push("The \"Quoted\" Club");
    let split = batches(&refs);
    assert_eq!(
        split.iter().map(Vec::len).collect::<Vec<_>>(),
        [200, 200, 1, 50]
    );
    assert_eq!(split[2], ["The \"Quoted\" Club"]);
    // Long names are cut by the request line's length instead.
    let long: Vec<String> = (0..40).map(|i| format!("{i:0>200}")).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    assert!(batches(&long).len() > 1);
}

#[test]
fn answers_match_columns_whatever_their_case_and_only_organizations() {
    // The vendor's example answers `Account Id` to a request for `Account ID`.
    let answer = ListAnswer::parse(&json!({
        "searchResults": {"nameValuePairs": [
            {"nameValuePair": [
                {"name": "Account Id", "value": 7},
                {"name": " organization name ", "value": "Acme Corp"},
                {"name": "ACCOUNT TYPE", "value": "Organization"}
            ]},
            {"nameValuePair": [
                {"name": "Account Id", "value": 8},
                {"name": "Organization Name", "value": "Acme Corp"},
                {"name": "Account Type", "value": "Individual"}
            ]}
        ]}
    }))
    .expect("parse");
    assert_eq!(answer.accounts(), [("7".into(), "Acme Corp".into())]);
}

#[test]
fn answers_accept_one_element_lists_as_objects() {
    let one = json!({
        "operationResult": "SUCCESS",
        "page": {"currentPage": 1, "pageSize": 200, "totalPage": 1, "totalResults": 1},
        "searchResults": {"nameValuePairs": {"nameValuePair": [
            {"name": "Account ID", "value": 123937},
            {"name": "Organization Name", "value": "Acme Corp"}
        ]}}
    });
    let answer = ListAnswer::parse(&one).expect("parse");
    assert_eq!(answer.accounts(), [("123937".into(), "Acme Corp".into())]);
    assert_eq!(answer.total_pages(), 1);

    let many = json!({
        "page": {"totalPage": "3"},
        "searchResults": {"nameValuePairs": [
            {"nameValuePair": [{"name": "Account ID", "value": "1"}, {"name": "Company Name", "value": "A"}]},
            {"nameValuePair": [{"name": "Account ID", "value": 2}, {"name": "Organization Name", "value": "B"}]}
        ]}
    });
    let answer = ListAnswer::parse(&many).expect("parse");
    assert_eq!(
        answer.accounts(),
        [("1".into(), "A".into()), ("2".into(), "B".into())]
    );
    assert_eq!(answer.total_pages(), 3);

    for empty in [
        json!({"searchResults": ""}),
        json!({"searchResults": {}}),
        json!({"searchResults": {"nameValuePairs": []}}),
        json!({}),
    ] {
        let answer = ListAnswer::parse(&empty).expect("parse");
        assert!(answer.accounts().is_empty());
    }
}

#[test]
fn fail_codes_are_explained() {
    let errors: Vec<orgform::providers::neoncrm::ApiError> = serde_json::from_value(json!([
        {"errorCode": "10058", "errorMessage": "Organization type name is invalid."},
        {"errorCode": 10050}
    ]))
    .expect("errors");
    let text = describe_errors(&errors);
    assert_eq!(
        text,
        "10058 Organization type name is invalid. (check `organization_types[].name` against the List Organization Types request); \
         10050 Organization name is required. (set `organization_name`)"
    );
}

// The emulator's logic, without HTTP.

pub(crate) fn call<N: AsRef<str>, V: AsRef<str>>(
    emu: &mut NeonEmulator,
    endpoint: Endpoint,
    params: &[(N, V)],
) -> Value {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(n, v)| (n.as_ref().to_string(), v.as_ref().to_string()))
        .collect();
    let body = emu.handle(endpoint, &params, Instant::now(), SystemTime::now());
    body.as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .expect("wrapped answer")
}

pub(crate) fn session(emu: &mut NeonEmulator) -> String {
    let answer = call(
        emu,
        Endpoint::Login,
        &[
            ("login.apiKey", emulator::API_KEY),
            ("login.orgid", emulator::ORG_ID),
        ],
    );
    assert_eq!(answer["operationResult"], "SUCCESS", "{answer}");
    answer["userSessionId"]
        .as_str()
        .expect("session")
        .to_string()
}

fn codes(answer: &Value) -> Vec<String> {
    assert_eq!(answer["operationResult"], "FAIL", "{answer}");
    let error = &answer["errors"]["error"];
    let list = match error {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    list.iter()
        .map(|e| e["errorCode"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn emulator_checks_create_like_the_seed() {
    let mut emu = NeonEmulator::new(NeonConfig::default(), NeonData::default(), Some(7));
    let sid = session(&mut emu);
    let create = |emu: &mut NeonEmulator, extra: &[(&str, &str)]| {
        let mut params = vec![("userSessionId", sid.as_str())];
        params.extend_from_slice(extra);
        call(emu, Endpoint::CreateOrganizationAccount, &params)
    };
    let types = "organizationAccount.organizationTypes.organizationType";
    let custom = "organizationAccount.customFieldDataList.customFieldData";
    // Parameters of a create, and the error codes it must get (none: it succeeds).
    type Case<'a> = (Vec<(String, &'a str)>, &'a [&'a str]);
    let cases: Vec<Case<'_>> = vec![
        (vec![], &["10050"]),
        (
            vec![("organizationAccount.login.username".into(), "u")],
            &["10050", "10062"],
        ),
        (
            vec![
                ("organizationAccount.organizationName".into(), "X"),
                // Two types, paired by position: a bad name, then a bad id.
                (format!("{types}.name"), "Nope"),
                (format!("{types}.id"), ""),
                (format!("{types}.name"), ""),
                (format!("{types}.id"), "99"),
            ],
            &["10058", "10053"],
        ),
        (
            vec![
                ("organizationAccount.organizationName".into(), "X"),
                (format!("{types}.name"), "Church"),
                (format!("{types}.id"), "1"),
            ],
            // Pairs by position: one type, named by id and name at once, agreeing.
            &[],
        ),
        (
            vec![
                ("organizationAccount.organizationName".into(), "X"),
                (format!("{types}.id"), "1"),
                (format!("{types}.id"), "1"),
            ],
            &["10070"],
        ),
        (
            vec![
                ("organizationAccount.organizationName".into(), "X"),
                (format!("{custom}.fieldId"), "22"),
                (format!("{custom}.fieldValue"), "text"),
            ],
            &["10068"],
        ),
        (
            vec![
                ("organizationAccount.organizationName".into(), "X"),
                (format!("{custom}.fieldId"), ""),
                (format!("{custom}.fieldOptionId"), "x"),
                (format!("{custom}.fieldValue"), ""),
            ],
            &["10064", "10071"],
        ),
        (
            vec![
                ("organizationAccount.organizationName".into(), "X"),
                ("organizationAccount.source.name".into(), "Nowhere"),
                (
                    "organizationAccount.primaryContact.addresses.address.state.code".into(),
                    "ZZ",
                ),
                (
                    "organizationAccount.primaryContact.addresses.address.country.name".into(),
                    "Atlantis",
                ),
            ],
            &["10063", "10056", "10057"],
        ),
    ];
    for (params, want) in cases {
        let params: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        let answer = create(&mut emu, &params);
        if want.is_empty() {
            assert_eq!(answer["operationResult"], "SUCCESS", "{answer}");
        } else {
            assert_eq!(codes(&answer), want, "{params:?}");
        }
    }

    // Duplicates are allowed, as at the real API.
    let first = create(
        &mut emu,
        &[("organizationAccount.organizationName", "Twice")],
    );
    let second = create(
        &mut emu,
        &[("organizationAccount.organizationName", "Twice")],
    );
    assert_ne!(first["accountId"], second["accountId"]);

    // A login username can't be taken twice; the password is never kept or shown.
    let with_login = [
        ("organizationAccount.organizationName", "Logged"),
        ("organizationAccount.login.username", "logged"),
        ("organizationAccount.login.password", "pw-never-kept"),
    ];
    let created = create(&mut emu, &with_login);
    assert_eq!(created["operationResult"], "SUCCESS");
    assert_eq!(codes(&create(&mut emu, &with_login)), ["10061"]);
    let id = created["accountId"].to_string();
    let retrieved = call(
        &mut emu,
        Endpoint::RetrieveOrganizationAccount,
        &[("userSessionId", sid.as_str()), ("accountId", &id)],
    );
    assert_eq!(
        retrieved["organizationAccount"]["login"],
        json!({"username": "logged"})
    );
    assert!(
        !serde_json::to_string(emu.data())
            .expect("data")
            .contains("pw-never-kept")
    );
}

#[test]
fn emulator_renders_one_element_lists_as_objects() {
    let mut emu = NeonEmulator::new(NeonConfig::default(), NeonData::default(), Some(1));
    let sid = session(&mut emu);
    let address = "organizationAccount.primaryContact.addresses.address";
    let created = call(
        &mut emu,
        Endpoint::CreateOrganizationAccount,
        &[
            ("userSessionId", sid.as_str()),
            ("organizationAccount.organizationName", "Solo"),
            (format!("{address}.city").as_str(), "Tulsa"),
            (format!("{address}.isPrimaryAddress").as_str(), "true"),
            (
                "organizationAccount.organizationTypes.organizationType.name",
                "Church",
            ),
        ],
    );
    let id = created["accountId"].to_string();
    let retrieved = call(
        &mut emu,
        Endpoint::RetrieveOrganizationAccount,
        &[("userSessionId", sid.as_str()), ("accountId", &id)],
    );
    let account = &retrieved["organizationAccount"];
    assert_eq!(
        account["primaryContact"]["addresses"]["address"],
        json!({"city": "Tulsa", "isPrimaryAddress": true})
    );
    assert_eq!(
        account["organizationTypes"]["organizationType"],
        json!({"id": 1, "name": "Church"})
    );

    let listed = call(&mut emu, Endpoint::ListAccounts, &list(&sid, &["Solo"], 1));
    let row = &listed["searchResults"]["nameValuePairs"];
    assert!(row.is_object(), "{listed}");
    assert_eq!(row["nameValuePair"][0]["value"], created["accountId"]);
    // One error is an object too.
    let fail = call(
        &mut emu,
        Endpoint::CreateOrganizationAccount,
        &[("userSessionId", sid.as_str())],
    );
    assert!(fail["errors"]["error"].is_object(), "{fail}");
}

pub(crate) fn list(sid: &str, names: &[&str], page: u32) -> Vec<(String, String)> {
    let mut params = vec![("userSessionId".to_string(), sid.to_string())];
    params.extend(list_params(names, page).0);
    params
}

#[test]
fn emulator_names_columns_as_documented_and_searches_both_kinds_of_account() {
    let mut emu = NeonEmulator::new(NeonConfig::default(), NeonData::default(), Some(5));
    let sid = session(&mut emu);
    let org = call(
        &mut emu,
        Endpoint::CreateOrganizationAccount,
        &[
            ("userSessionId", sid.as_str()),
            ("organizationAccount.organizationName", "Acme Corp"),
        ],
    );
    assert_eq!(org["operationResult"], "SUCCESS", "{org}");
    let person = call(
        &mut emu,
        Endpoint::CreateIndividualAccount,
        &[
            ("userSessionId", sid.as_str()),
            ("individualAccount.primaryContact.lastName", "Doe"),
            ("individualAccount.organizationName", "Acme Corp"),
        ],
    );
    assert_eq!(person["operationResult"], "SUCCESS", "{person}");
    assert_eq!(emu.data().organizations(), 1);

    // Asked in any casing, answered in the documented one: never an echo of the request.
    let answer = call(
        &mut emu,
        Endpoint::ListAccounts,
        &[
            ("userSessionId", sid.as_str()),
            ("outputfields.idnamepair.name", "Account ID"),
            ("outputfields.idnamepair.name", "organization name"),
            ("outputfields.idnamepair.name", "ACCOUNT TYPE"),
            ("searches.search.key", "Organization Name"),
            ("searches.search.searchOperator", "EQUAL"),
            ("searches.search.value", "Acme Corp"),
            ("page.sortColumn", "account id"),
        ],
    );
    assert_eq!(answer["operationResult"], "SUCCESS", "{answer}");
    let rows = answer["searchResults"]["nameValuePairs"]
        .as_array()
        .expect("two rows");
    let names: Vec<_> = rows[0]["nameValuePair"]
        .as_array()
        .expect("pairs")
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, ["Account Id", "Organization Name", "Account Type"]);
    let kinds: Vec<_> = rows
        .iter()
        .map(|r| r["nameValuePair"][2]["value"].clone())
        .collect();
    assert_eq!(kinds, ["Organization", "Individual"]);

    // The documented search on the account's kind leaves the person out.
    let mut only_orgs = list(&sid, &["Acme Corp"], 1);
    only_orgs.retain(|(n, _)| n != "outputfields.idnamepair.name" && n != "page.sortColumn");
    only_orgs.push(("outputfields.idnamepair.name".into(), "Account ID".into()));
    let answer = call(&mut emu, Endpoint::ListAccounts, &only_orgs);
    assert_eq!(answer["page"]["totalResults"], 1, "{answer}");
    // Retrieve is for organization accounts only.
    let retrieve = call(
        &mut emu,
        Endpoint::RetrieveOrganizationAccount,
        &[
            ("userSessionId", sid.as_str()),
            ("accountId", &person["accountId"].to_string()),
        ],
    );
    assert_eq!(retrieve["operationResult"], "FAIL", "{retrieve}");
}

#[test]
fn emulator_searches_and_pages_from_one() {
    let mut emu = NeonEmulator::new(NeonConfig::default(), NeonData::default(), Some(3));
    let sid = session(&mut emu);
    for i in 0..250 {
        let name = if i % 2 == 0 { "Even" } else { "Odd" };
        call(
            &mut emu,
            Endpoint::CreateOrganizationAccount,
            &[
                ("userSessionId", sid.as_str()),
                ("organizationAccount.organizationName", name),
            ],
        );
    }
    call(
        &mut emu,
        Endpoint::CreateOrganizationAccount,
        &[
            ("userSessionId", sid.as_str()),
            ("organizationAccount.organizationName", "Acme, \"the\" Corp"),
        ],
    );
    let page1 = call(
        &mut emu,
        Endpoint::ListAccounts,
        &list(&sid, &["Even", "odd"], 1),
    );
    assert_eq!(page1["page"]["totalResults"], 250);
    assert_eq!(page1["page"]["totalPage"], 2);
    assert_eq!(
        page1["searchResults"]["nameValuePairs"]
            .as_array()
            .map(Vec::len),
        Some(200)
    );
    let page2 = call(
        &mut emu,
        Endpoint::ListAccounts,
        &list(&sid, &["Even", "odd"], 2),
    );
    assert_eq!(
        page2["searchResults"]["nameValuePairs"]
            .as_array()
            .map(Vec::len),
        Some(50)
    );
    let quoted = call(
        &mut emu,
        Endpoint::ListAccounts,
        &list(&sid, &["Acme, \"the\" Corp"], 1),
    );
    assert_eq!(quoted["page"]["totalResults"], 1);
    let none = call(
        &mut emu,
        Endpoint::ListAccounts,
        &list(&sid, &["Nobody"], 1),
    );
    assert_eq!(none["page"]["totalResults"], 0);
    assert_eq!(none["searchResults"], json!({}));
    // 1-based: page 0 is a mistake, not the first page.
    let mut zero = list(&sid, &["Even"], 1);
    for (n, v) in &mut zero {
        if *n == "page.currentPage" {
            *v = "0".into();
        }
    }
    assert_eq!(
        codes(&call(&mut emu, Endpoint::ListAccounts, &zero)),
        ["29"]
    );
}

#[test]
fn emulator_sessions_lapse() {
    let config = NeonConfig {
        session_idle: Duration::from_secs(60),
        ..NeonConfig::default()
    };
    let mut emu = NeonEmulator::new(config, NeonData::default(), Some(5));
    let sid = session(&mut emu);
    let params = vec![
        ("userSessionId".to_string(), sid.clone()),
        ("accountId".to_string(), "1".to_string()),
    ];
    let start = Instant::now();
    let within = emu.handle(
        Endpoint::RetrieveOrganizationAccount,
        &params,
        start + Duration::from_secs(30),
        SystemTime::now(),
    );
    // Unknown account, but the session was fine.
    assert_ne!(
        within["retrieveOrganizationAccountResponse"]["errors"]["error"]["errorCode"],
        "4"
    );
    let lapsed = emu.handle(
        Endpoint::RetrieveOrganizationAccount,
        &params,
        start + Duration::from_secs(200),
        SystemTime::now(),
    );
    assert_eq!(
        lapsed["retrieveOrganizationAccountResponse"]["errors"]["error"]["errorCode"],
        "4"
    );
    let missing = call::<&str, &str>(&mut emu, Endpoint::ListAccounts, &[]);
    assert_eq!(codes(&missing), ["3"]);
    let bad_login = call(
        &mut emu,
        Endpoint::Login,
        &[("login.apiKey", "wrong"), ("login.orgid", emulator::ORG_ID)],
    );
    assert_eq!(bad_login["operationResult"], "FAIL");
}

// The real client against the sandbox on loopback.

/// A sandbox whose NeonCRM emulator has these knobs and starts from this data.
async fn sandbox_with(config: NeonConfig, data: Option<&NeonData>) -> (Sandbox, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_file = dir.path().join("sandbox-data.json");
    if let Some(data) = data {
        let text = json!({ "neoncrm": data }).to_string();
        std::fs::write(&data_file, text).expect("write sandbox data");
    }
    let sandbox = Sandbox::start(
        "127.0.0.1:0".parse().expect("addr"),
        SandboxConfig {
            neoncrm: config,
            data_file: Some(data_file),
            seed: Some(42),
            ..SandboxConfig::default()
        },
    )
    .await
    .expect("sandbox starts");
    (sandbox, dir)
}

fn neon_url(sandbox: &Sandbox) -> String {
    format!("{}/neonws/services/api", sandbox.base_url())
}

fn connect(spec: &Spec) -> AnyProvider {
    let options = ConnectOptions {
        secrets: secrets(),
        ..ConnectOptions::default()
    };
    AnyProvider::connect(&spec.providers["neon"], &options).expect("connect")
}

/// Requests the sandbox served for one NeonCRM method, like `account/listAccounts`.
fn hits(sandbox: &Sandbox, method: &str) -> u64 {
    served(sandbox, &format!("GET /neonws/services/api/{method}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn client_creates_once_and_refuses_a_duplicate() {
    let (sandbox, files) = sandbox_with(NeonConfig::default(), None).await;
    let spec = spec(
        r#"
[org.acme]
provider = "neon"
organization_name = "Acme Corp"
login = { username = "acme", password = { env = "NEON_LOGIN_PASSWORD" } }
organization_types = [{ name = "Church" }]
custom_field_data_list = [{ field_id = 22, field_value = "hello" }]

[org.beta]
provider = "neon"
organization_name = "Beta"

[org.bad]
provider = "neon"
organization_name = "Bad Types"
organization_types = [{ name = "Church" }, { name = "Guild" }]
"#,
        &neon_url(&sandbox),
    );
    let neon = connect(&spec);
    neon.login().await.expect("login");
    let keys: Vec<NaturalKey> = spec.orgs.values().map(|o| o.natural_key.clone()).collect();
    assert!(neon.read(&keys).await.expect("read").is_empty());
    // Three names, one search.
    assert_eq!(hits(&sandbox, "account/listAccounts"), 1);

    let created = neon
        .create(&spec.orgs["acme"], CreateContext::default())
        .await
        .expect("create");
    assert_eq!(created.natural_key.0, "Acme Corp");
    assert_eq!(hits(&sandbox, "account/createOrganizationAccount"), 1);
    // The create looked the name up first.
    assert_eq!(hits(&sandbox, "account/listAccounts"), 2);

    match neon
        .create(&spec.orgs["acme"], CreateContext::default())
        .await
    {
        Err(ProviderError::AlreadyExists { message }) => {
            assert!(message.contains(&created.remote_id), "{message}");
        }
        other => panic!("wanted AlreadyExists, got {other:?}"),
    }
    assert_eq!(hits(&sandbox, "account/createOrganizationAccount"), 1);

    match neon
        .create(&spec.orgs["bad"], CreateContext::default())
        .await
    {
        Err(ProviderError::Rejected { message, .. }) => {
            assert!(
                message.starts_with("10058 Organization type name is invalid."),
                "{message}"
            );
        }
        other => panic!("wanted Rejected, got {other:?}"),
    }

    neon.create(&spec.orgs["beta"], CreateContext::default())
        .await
        .expect("create beta");
    let reality = neon.read(&keys).await.expect("read");
    assert_eq!(reality.len(), 2);
    let found = neon
        .settle(&spec.orgs["acme"], Some(&created.remote_id))
        .await
        .expect("settle")
        .expect("found");
    assert_eq!(found.remote_id, created.remote_id);

    // The password was sent (the emulator kept its username) and never stored.
    let data = std::fs::read_to_string(files.path().join("sandbox-data.json")).expect("data");
    assert!(data.contains("\"loginUsername\": \"acme\""), "{data}");
    assert!(!data.contains(LOGIN_PASSWORD));
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_renews_a_lapsed_session_and_pages_through_duplicates() {
    // 201 accounts share one name, as NeonCRM allows.
    let mut data = NeonData::default();
    data.accounts = (0..201)
        .map(|i| emulator::Account {
            account_id: 500 + i,
            organization_name: "Many".into(),
            user_type: emulator::UserType::Organization,
            login_username: None,
            organization_account: json!({"accountId": 500 + i, "organizationName": "Many"}),
            blank_parameters: Vec::new(),
        })
        .collect();
    let config = NeonConfig {
        session_max_uses: Some(2),
        ..NeonConfig::default()
    };
    let (sandbox, _files) = sandbox_with(config, Some(&data)).await;
    let spec = spec(
        "[org.many]\nprovider = \"neon\"\norganization_name = \"Many\"\n\n[org.other]\nprovider = \"neon\"\norganization_name = \"Other\"\n",
        &neon_url(&sandbox),
    );
    let neon = connect(&spec);
    neon.login().await.expect("login");
    let keys: Vec<NaturalKey> = spec.orgs.values().map(|o| o.natural_key.clone()).collect();
    let reality = neon.read(&keys).await.expect("read");
    // 201 accounts share the name: two pages, every one reported.
    assert_eq!(reality.find(&keys[0]).len(), 201);
    assert_eq!(hits(&sandbox, "account/listAccounts"), 2);
    // The third call lapses the session (two uses each): the client logs in again, once.
    let logins = hits(&sandbox, "common/login");
    let created = neon
        .create(&spec.orgs["other"], CreateContext::default())
        .await
        .expect("create");
    assert!(!created.remote_id.is_empty());
    assert_eq!(hits(&sandbox, "common/login"), logins + 1);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_reports_a_refused_login_without_secrets() {
    let (sandbox, _files) = sandbox_with(NeonConfig::default(), None).await;
    let spec = spec(
        "[org.a]\nprovider = \"neon\"\norganization_name = \"A\"\n",
        &neon_url(&sandbox),
    );
    let mut overrides = BTreeMap::new();
    overrides.insert(
        SecretRef::Env("NEON_ORG_ID".into()),
        SecretString::new(emulator::ORG_ID),
    );
    overrides.insert(
        SecretRef::Env("NEON_API_KEY".into()),
        SecretString::new("s3cret-wrong-api-key"),
    );
    let options = ConnectOptions {
        secrets: SecretResolver {
            overrides,
            ..SecretResolver::default()
        },
        ..ConnectOptions::default()
    };
    let neon = AnyProvider::connect(&spec.providers["neon"], &options).expect("connect");
    let error = neon.login().await.expect_err("refused");
    let text = error.to_string();
    assert!(
        matches!(error, ProviderError::Unauthorized { .. }),
        "{text}"
    );
    assert!(!text.contains("s3cret-wrong-api-key"), "{text}");
    assert!(!text.contains(emulator::ORG_ID), "{text}");
    sandbox.shutdown().await.expect("shutdown");
}

// End to end: the real binary against the sandbox on loopback.

/// Values of the secrets these runs export: none may appear in output, logs or state.
const E2E_SECRETS: &[(&str, &str)] = &[
    ("NEON_ORG_ID", neon_sandbox::ORG_ID),
    ("NEON_API_KEY", neon_sandbox::API_KEY),
    ("NEON_LOGIN_PASSWORD", LOGIN_PASSWORD),
];

const CREATE: &str = "GET /neonws/services/api/account/createOrganizationAccount";
const LIST: &str = "GET /neonws/services/api/account/listAccounts";
const LOGIN: &str = "GET /neonws/services/api/common/login";

use crate::harness::Run;

/// Runs the binary on `dir`'s specs and state, with the test secrets exported; nothing secret
/// may show in what it prints.
fn orgform(dir: &Path, args: &[&str]) -> Run {
    let run = crate::harness::run_on(dir, args, E2E_SECRETS);
    assert_clean("stdout", &run.stdout);
    assert_clean("stderr", &run.stderr);
    run
}

/// No secret value, and nothing shaped like a NeonCRM session id (`T` and 13 digits).
fn assert_clean(what: &str, text: &str) {
    for (name, value) in E2E_SECRETS {
        assert!(
            !text.contains(value),
            "{what} leaks the value of {name}:\n{text}"
        );
    }
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('T') {
        let digits = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        assert!(digits != 13, "{what} shows a session id:\n{text}");
    }
}

async fn start(neoncrm: NeonConfig, tweak: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    // The tests' own reqwest clients need rustls' provider, which only the client under test
    // installs otherwise: a test run alone would panic in its first direct request.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = SandboxConfig {
        neoncrm,
        seed: Some(20_261_123),
        ..SandboxConfig::default()
    };
    tweak(&mut config);
    Sandbox::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("sandbox starts")
}

fn served(sandbox: &Sandbox, endpoint: &str) -> u64 {
    sandbox
        .stats()
        .requests
        .get("neoncrm")
        .and_then(|e| e.get(endpoint))
        .copied()
        .unwrap_or(0)
}

fn held(sandbox: &Sandbox) -> u64 {
    sandbox
        .stats()
        .organizations
        .get("neoncrm")
        .copied()
        .unwrap_or(0)
}

/// The stats as `GET /_sandbox/stats` serves them, to check the route too.
async fn stats_json(sandbox: &Sandbox) -> Value {
    reqwest::get(format!("{}/_sandbox/stats", sandbox.base_url()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json")
}

const THREE_ORGS: &str = r#"
[org.grace]
provider = "neon"
organization_name = "Grace Community Church"
organization_types = [{ name = "Church" }]
primary_contact = { first_name = "Ruth", last_name = "Okafor", email1 = "office@grace.example.org" }
custom_field_data_list = [{ field_id = 22, field_value = "Sundays" }]

[org.riverside]
provider = "neon"
organization_name = "Riverside Arts Foundation"
login = { username = "riverside", password = { env = "NEON_LOGIN_PASSWORD" } }

[[org.riverside.primary_contact.addresses]]
is_primary_address = true
city = "Tulsa"
state = { code = "OK" }
country = { id = 1 }

[org.harbour]
provider = "neon"
organization_name = "Harbour Bridge School"
organization_types = [{ name = "School" }]
"#;

fn write_specs(dir: &Path, sandbox: &Sandbox, orgs: &str) {
    write_specs_with(dir, sandbox, orgs, 3);
}

fn write_specs_with(dir: &Path, sandbox: &Sandbox, orgs: &str, max_concurrency: u32) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let text = format!(
        "[provider.neon]\ntype = \"neoncrm\"\nbase_url = \"{}/neonws/services/api\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\nmax_concurrency = {max_concurrency}\n{orgs}",
        sandbox.base_url()
    );
    std::fs::write(specs.join("neon.toml"), text).expect("write specs");
}

fn state_of(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("state.json")).expect("state written");
    assert_clean("state", &text);
    serde_json::from_str(&text).expect("state json")
}

/// The plan, apply, plan cycle is `scenario.rs`; here, the requests each run makes.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_one_login_per_run_and_no_look_up_the_apply_read_answered() {
    let sandbox = start(NeonConfig::default(), |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, THREE_ORGS);

    let plan = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    crate::harness::assert_run_snapshot!("plan_three", plan, dir.path());
    // One login, one search for the three names, nothing created.
    assert_eq!(served(&sandbox, LOGIN), 1);
    assert_eq!(served(&sandbox, LIST), 1);
    assert_eq!(served(&sandbox, CREATE), 0);

    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(served(&sandbox, CREATE), 3);
    // Apply's own read, which found the three names absent: no look-up before each create.
    assert_eq!(served(&sandbox, LIST), 1 + 1);
    assert_eq!(served(&sandbox, LOGIN), 2);
    assert_eq!(held(&sandbox), 3);
    let stats = stats_json(&sandbox).await;
    assert_eq!(stats["requests"]["neoncrm"][CREATE], 3);
    assert_eq!(stats["organizations"]["neoncrm"], 3);

    let state = state_of(dir.path());
    for address in ["grace", "riverside", "harbour"] {
        assert_eq!(state["orgs"][address]["status"], "created", "{state}");
        assert!(state["orgs"][address]["remote_id"].is_string(), "{state}");
    }
    // Debug logs carry no secret either (checked by `orgform` itself).
    orgform(dir.path(), &["plan", "-vv"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

/// Logs in and creates an account straight through the API, as someone else would have (NeonCRM
/// allows several under one name); returns its account id.
pub async fn create_directly(sandbox: &Sandbox, name: &str) -> String {
    let base = neon_url(sandbox);
    let client = reqwest::Client::new();
    let session = session_directly(&client, &base).await;
    let created: Value = client
        .get(format!("{base}/account/createOrganizationAccount"))
        .query(&[
            ("userSessionId", session.as_str()),
            ("organizationAccount.organizationName", name),
        ])
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("create json");
    match &created["createOrganizationAccountResponse"]["accountId"] {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_an_existing_name_is_adopted_never_duplicated() {
    let sandbox = start(NeonConfig::default(), |_| {}).await;
    let id = create_directly(&sandbox, "Grace Community Church").await;
    // NeonCRM allows duplicates; only orgform's look-up stands between a rerun and a second one.
    create_directly(&sandbox, "Riverside Arts Foundation").await;
    create_directly(&sandbox, "Riverside Arts Foundation").await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, THREE_ORGS);

    // Two accounts share Riverside's name: orgform won't choose one (it is `blocked`, ids
    // listed), and creates no third.
    let plan = orgform(dir.path(), &["plan"]).expect(0);
    crate::harness::assert_run_snapshot!("plan_adopts_and_blocks", plan, dir.path());
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(served(&sandbox, CREATE), 3 + 1);
    assert_eq!(held(&sandbox), 4);
    let state = state_of(dir.path());
    assert_eq!(state["orgs"]["grace"]["remote_id"], id);
    assert!(state["orgs"]["riverside"].is_null(), "{state}");
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert_eq!(served(&sandbox, CREATE), 3 + 1);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_lapsed_session_is_renewed_mid_run() {
    // Each session serves one call. One create at a time: apply's read uses the first
    // session, so every create finds its session lapsed (FAIL, code 4), logs in again and is
    // sent again on the new one (the read answered for the names: no look-up between).
    let config = NeonConfig {
        session_max_uses: Some(1),
        ..NeonConfig::default()
    };
    let sandbox = start(config, |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs_with(dir.path(), &sandbox, THREE_ORGS, 1);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(held(&sandbox), 3);
    // Three refused (nothing created), three accepted.
    assert_eq!(served(&sandbox, CREATE), 6);
    assert_eq!(served(&sandbox, LOGIN), 4);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_lost_create_answers_are_settled_by_look_up() {
    // Every create is committed, then its answer is lost (HTTP 502): orgform must look each
    // name up and record what it finds, never send the create again.
    let config = NeonConfig {
        lose_create_answers: 3,
        ..NeonConfig::default()
    };
    let sandbox = start(config, |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, THREE_ORGS);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(served(&sandbox, CREATE), 3);
    assert_eq!(held(&sandbox), 3);
    let state = state_of(dir.path());
    for address in ["grace", "riverside", "harbour"] {
        assert_eq!(state["orgs"][address]["status"], "created", "{state}");
    }
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_injected_faults_never_duplicate() {
    let sandbox = start(NeonConfig::default(), |c| {
        c.fault_rate = 0.3;
        c.faults = vec![
            Fault::TooManyRequests,
            Fault::TooManyRequestsRetryAfter,
            Fault::InternalError,
            Fault::Unavailable,
            Fault::Reset,
        ];
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, THREE_ORGS);
    // A run may leave a create pending when its look-ups keep failing; the next run settles it.
    let mut runs = 0;
    loop {
        runs += 1;
        let run = orgform(dir.path(), &["apply", "--auto-approve"]);
        if run.code == 0 || runs == 4 {
            run.expect(0);
            break;
        }
    }
    assert_eq!(held(&sandbox), 3, "{:?}", sandbox.stats());
    let faults: u64 = sandbox
        .stats()
        .faults
        .get("neoncrm")
        .map_or(0, |f| f.values().sum());
    assert!(faults > 0, "faults were injected");
    // Still under fire, the next plan finds everything in place.
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    assert_eq!(held(&sandbox), 3);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_refused_create_is_explained_and_not_recorded() {
    let sandbox = start(NeonConfig::default(), |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(
        dir.path(),
        &sandbox,
        "[org.guild]\nprovider = \"neon\"\norganization_name = \"Weavers Guild\"\norganization_types = [{ name = \"Guild\" }]\n",
    );
    let run = orgform(dir.path(), &["apply", "--auto-approve"]).expect(1);
    assert!(run.stderr.contains("10058"), "{}", run.stderr);
    assert!(
        run.stderr.contains("List Organization Types"),
        "{}",
        run.stderr
    );
    assert_eq!(held(&sandbox), 0);
    let state = state_of(dir.path());
    assert!(state["orgs"].get("guild").is_none(), "{state}");
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_embedded_sandbox_needs_no_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = dir.path().join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    std::fs::write(
        specs.join("neon.toml"),
        format!(
            "[provider.neon]\ntype = \"neoncrm\"\norg_id = {{ env = \"NEON_ORG_ID_UNSET\" }}\napi_key = {{ env = \"NEON_API_KEY_UNSET\" }}\n{THREE_ORGS}"
        ),
    )
    .expect("write");
    orgform(dir.path(), &["apply", "--sandbox", "--auto-approve"]).expect(0);
    orgform(dir.path(), &["plan", "--sandbox", "--detailed-exitcode"]).expect(0);
}

/// Logs in straight through the API, as a script of the user's would.
pub(crate) async fn session_directly(client: &reqwest::Client, base: &str) -> String {
    let login: Value = client
        .get(format!("{base}/common/login"))
        .query(&[
            ("login.apiKey", neon_sandbox::API_KEY),
            ("login.orgid", neon_sandbox::ORG_ID),
        ])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    login["loginResponse"]["userSessionId"]
        .as_str()
        .expect("session")
        .to_string()
}

/// How many accounts NeonCRM's own `listAccounts` finds under `searches` (key, operator,
/// value), counted from its `totalResults`: what a user would see, not the emulator's insides.
async fn count_accounts(sandbox: &Sandbox, searches: &[(&str, &str, &str)]) -> u64 {
    let base = neon_url(sandbox);
    let client = reqwest::Client::new();
    let session = session_directly(&client, &base).await;
    let mut query: Vec<(&str, &str)> = vec![
        ("responseType", "json"),
        ("userSessionId", &session),
        ("outputfields.idnamepair.id", ""),
        ("outputfields.idnamepair.name", "Account ID"),
    ];
    for (key, operator, value) in searches {
        query.push(("searches.search.key", key));
        query.push(("searches.search.searchOperator", operator));
        query.push(("searches.search.value", value));
    }
    let answer: Value = client
        .get(format!("{base}/account/listAccounts"))
        .query(&query)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("list json");
    let inner = &answer["listAccountsResponse"];
    assert_eq!(inner["operationResult"], "SUCCESS", "{answer}");
    inner["page"]["totalResults"]
        .as_u64()
        .expect("totalResults")
}

/// Creates an individual account whose organization name is `company`, through the API.
async fn create_individual_directly(sandbox: &Sandbox, company: &str) -> String {
    let base = neon_url(sandbox);
    let client = reqwest::Client::new();
    let session = session_directly(&client, &base).await;
    let created: Value = client
        .get(format!("{base}/account/createIndividualAccount"))
        .query(&[
            ("responseType", "json"),
            ("userSessionId", session.as_str()),
            ("individualAccount.primaryContact.firstName", "Ruth"),
            ("individualAccount.primaryContact.lastName", "Okafor"),
            ("individualAccount.organizationName", company),
        ])
        .send()
        .await
        .expect("create individual")
        .json()
        .await
        .expect("create individual json");
    let inner = &created["createIndividualAccountResponse"];
    assert_eq!(inner["operationResult"], "SUCCESS", "{created}");
    inner["accountId"].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_an_individual_with_the_organization_name_is_never_adopted() {
    // A person who works at Grace carries its name as their organization name (as the
    // vendor's keyword-search example shows an individual result with `organizationName`).
    // That person is not the organization: orgform creates the organization account and
    // leaves the individual alone.
    let sandbox = start(NeonConfig::default(), |_| {}).await;
    let person = create_individual_directly(&sandbox, "Grace Community Church").await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, THREE_ORGS);

    let plan = orgform(dir.path(), &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("Plan: 3 to create."),
        "{}",
        plan.stdout
    );
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(served(&sandbox, CREATE), 3);
    let state = state_of(dir.path());
    assert_eq!(state["orgs"]["grace"]["status"], "created", "{state}");
    assert_ne!(
        state["orgs"]["grace"]["remote_id"],
        json!(person),
        "{state}"
    );
    let grace = [("Organization Name", "EQUAL", "Grace Community Church")];
    // The person and the organization, both under the name; one of them an organization.
    assert_eq!(count_accounts(&sandbox, &grace).await, 2);
    let grace_orgs = [grace[0], ("Account Type", "EQUAL", "Organization")];
    assert_eq!(count_accounts(&sandbox, &grace_orgs).await, 1);

    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_create_sends_no_blank_parameter_for_an_unset_field() {
    // TOML has no null: `""` is how a spec leaves a text field empty. NeonCRM would read a
    // blank parameter as a value (its update documents that a blank clears a field), so the
    // only blanks a create may carry are the custom field triplet's, which the seed requires.
    let (sandbox, files) = sandbox_with(NeonConfig::default(), None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(
        dir.path(),
        &sandbox,
        r#"
[org.grace]
provider = "neon"
organization_name = "Grace Community Church"
url = ""
organization_types = [{ name = "Church" }]
primary_contact = { first_name = "Ruth", middle_name = "", last_name = "Okafor", title = " " }
custom_field_data_list = [{ field_id = 22, field_value = "Sundays" }]
"#,
    );
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(served(&sandbox, CREATE), 1);
    sandbox.shutdown().await.expect("shutdown");

    // What the emulator received, as its data file keeps it.
    let text = std::fs::read_to_string(files.path().join("sandbox-data.json")).expect("data");
    let data: Value = serde_json::from_str(&text).expect("data json");
    let account = &data["neoncrm"]["accounts"][0];
    assert_eq!(
        account["organizationName"], "Grace Community Church",
        "{data}"
    );
    let blanks = account["blankParameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        blanks,
        [json!(
            "organizationAccount.customFieldDataList.customFieldData.fieldOptionId"
        )],
        "{data}"
    );
}
