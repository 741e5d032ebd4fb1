//! What NeonCRM's reads report is compared with what is declared, through the real binary
//! against the sandbox: an organization found by its name whose contact differs is `blocked`
//! with the diff (never adopted), one changed at NeonCRM after orgform created it is `blocked`
//! as drift (text and JSON), and `list_all` (what `discover` reads) lists every organization
//! account, past one page, with what `retrieveOrganizationAccount` holds, in a login, the
//! search's pages and one retrieve each; what `discover` writes from it is adopted as it is.

use std::collections::BTreeMap;
use std::path::Path;

use orgform::model::{InstanceReality, SecretRef};
use orgform::providers::{AnyProvider, ConnectOptions, Provider};
use orgform::sandbox::neoncrm::{API_KEY, ORG_ID, PATH_PREFIX};
use orgform::sandbox::{Sandbox, SandboxConfig};
use orgform::secrets::{SecretResolver, SecretString};
use orgform::spec::{SourceFile, Spec};
use serde_json::{Value, json};

use crate::e2e::{served, start};
use crate::harness::Run;

const ENV: &[(&str, &str)] = &[("NEON_ORG_ID", ORG_ID), ("NEON_API_KEY", API_KEY)];

const LIST: &str = "GET /neonws/services/api/account/listAccounts";
const RETRIEVE: &str = "GET /neonws/services/api/account/retrieveOrganizationAccount";
const LOGIN: &str = "GET /neonws/services/api/common/login";
const CREATE: &str = "GET /neonws/services/api/account/createOrganizationAccount";

/// Two organizations with what the plan's read reports (the contact's names and e-mail) and
/// what only a retrieve does (url, types, source, address, custom field).
const ORGS: &str = r#"
[org.grace]
provider = "neon"
organization_name = "Grace Community Church"
url = "https://grace.example.org"
no_solicitation = false
source = { name = "Website" }
organization_types = [{ name = "Church" }]
custom_field_data_list = [{ field_id = 22, field_value = "Sundays at 9" }]

[org.grace.primary_contact]
first_name = "Ruth"
last_name = "Okafor"
email1 = "office@grace.example.org"

[[org.grace.primary_contact.addresses]]
is_primary_address = true
city = "Tulsa"
state = { code = "OK" }
zip_code = "74103"

[org.harbour]
provider = "neon"
organization_name = "Harbour Bridge School"
organization_types = [{ name = "School" }]
primary_contact = { first_name = "Aroha", last_name = "Ngata", email1 = "principal@harbour.example.nz" }
"#;

fn neon_base(base_url: &str) -> String {
    format!("{base_url}{PATH_PREFIX}")
}

fn instance(base_url: &str) -> String {
    format!(
        "[provider.neon]\ntype = \"neoncrm\"\nbase_url = \"{}\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\nmax_concurrency = 4\n",
        neon_base(base_url)
    )
}

fn write_specs(dir: &Path, base_url: &str, orgs: &str) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    std::fs::write(
        specs.join("neon.toml"),
        format!("{}{orgs}", instance(base_url)),
    )
    .expect("write specs");
}

fn orgform(dir: &Path, args: &[&str]) -> Run {
    crate::harness::run_on(dir, args, ENV)
}

fn plan_json(dir: &Path) -> Value {
    serde_json::from_str(&orgform(dir, &["plan", "--format", "json"]).stdout).expect("JSON plan")
}

/// The one change of a JSON plan at `address`.
fn change<'a>(plan: &'a Value, address: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("no change for {address}: {plan}"))
}

/// NeonCRM API v1 called directly, as a person or another tool would: a session, then calls.
struct Neon {
    base: String,
    session: String,
    client: reqwest::Client,
}

impl Neon {
    async fn login(base_url: &str) -> Neon {
        let base = neon_base(base_url);
        let client = reqwest::Client::new();
        let session = crate::provider_neoncrm::session_directly(&client, &base).await;
        Neon {
            base,
            session,
            client,
        }
    }

    /// One call; the inside of its answer, which must be a SUCCESS.
    async fn call(&self, method: &str, params: &[(&str, &str)]) -> Value {
        let answer: Value = self
            .client
            .get(format!("{}/{method}", self.base))
            .query(&[
                ("responseType", "json"),
                ("userSessionId", self.session.as_str()),
            ])
            .query(params)
            .send()
            .await
            .expect(method)
            .json()
            .await
            .expect("json");
        let inner = answer
            .as_object()
            .and_then(|o| o.values().next())
            .cloned()
            .expect("wrapped answer");
        assert_eq!(inner["operationResult"], "SUCCESS", "{method}: {answer}");
        inner
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_whose_contact_differs_is_blocked_not_adopted() {
    let sandbox = start(SandboxConfig::default()).await;
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    write_specs(dir, &sandbox.base_url(), ORGS);
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    orgform(dir, &["plan", "--detailed-exitcode"]).expect(0);

    // Without state, what the search reports is what was declared: both adopted.
    std::fs::remove_file(dir.join("state.json")).expect("forget state");
    let adopt = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        adopt.stdout.contains("Plan: 2 to adopt."),
        "{}",
        adopt.stdout
    );

    // Declared otherwise than NeonCRM holds: blocked with provider -> declared.
    write_specs(
        dir,
        &sandbox.base_url(),
        &ORGS.replace("first_name = \"Ruth\"", "first_name = \"Rhoda\""),
    );
    let blocked = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        blocked.stdout.contains("x blocked   grace"),
        "{}",
        blocked.stdout
    );
    assert!(
        blocked
            .stdout
            .contains("~ primary_contact.first_name: \"Ruth\" -> \"Rhoda\""),
        "{}",
        blocked.stdout
    );
    assert!(
        blocked.stdout.contains("Plan: 1 to adopt, 1 blocked."),
        "{}",
        blocked.stdout
    );
    let plan = plan_json(dir);
    let grace = change(&plan, "grace");
    assert_eq!(grace["action"], "blocked", "{grace}");
    assert_eq!(
        grace["diff"],
        json!([{"path": "primary_contact.first_name", "before": "Ruth", "after": "Rhoda"}])
    );
    // Nothing adopted, so nothing recorded for it: an apply leaves it out.
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).expect("state"))
            .expect("state json");
    assert!(state["orgs"]["grace"].is_null(), "{state}");
    assert!(state["orgs"]["harbour"].is_object(), "{state}");
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contact_changed_at_neoncrm_is_drift() {
    let sandbox = start(SandboxConfig::default()).await;
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    write_specs(dir, &sandbox.base_url(), ORGS);
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).expect("state"))
            .expect("state json");
    let id = state["orgs"]["harbour"]["remote_id"]
        .as_str()
        .expect("harbour's account id")
        .to_string();

    // Someone changes the contact's e-mail at NeonCRM: v1's update replaces the whole account.
    let neon = Neon::login(&sandbox.base_url()).await;
    neon.call(
        "account/updateOrganizationAccount",
        &[
            ("organizationAccount.accountId", id.as_str()),
            (
                "organizationAccount.organizationName",
                "Harbour Bridge School",
            ),
            (
                "organizationAccount.organizationTypes.organizationType.name",
                "School",
            ),
            ("organizationAccount.primaryContact.firstName", "Aroha"),
            ("organizationAccount.primaryContact.lastName", "Ngata"),
            (
                "organizationAccount.primaryContact.email1",
                "office@harbour.example.nz",
            ),
        ],
    )
    .await;

    let plan = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        plan.stdout.contains("x blocked   harbour"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("(drift)"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains(
            "~ primary_contact.email1: \"office@harbour.example.nz\" -> \"principal@harbour.example.nz\""
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("Plan: 1 blocked, 1 unchanged."),
        "{}",
        plan.stdout
    );
    let json = plan_json(dir);
    let harbour = change(&json, "harbour");
    assert_eq!(harbour["action"], "blocked", "{harbour}");
    assert_eq!(harbour["remote_id"], id.as_str());
    assert_eq!(
        harbour["diff"],
        json!([{
            "path": "primary_contact.email1",
            "before": "office@harbour.example.nz",
            "after": "principal@harbour.example.nz",
        }])
    );
    assert_eq!(change(&json, "grace")["action"], "unchanged");

    // As the reason says: declare what NeonCRM now holds, forget the address, and it is
    // adopted as it is.
    write_specs(
        dir,
        &sandbox.base_url(),
        &ORGS.replace("principal@harbour", "office@harbour"),
    );
    orgform(dir, &["forget", "harbour"]).expect(0);
    let adopt = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        adopt.stdout.contains("Plan: 1 to adopt, 1 unchanged."),
        "{}",
        adopt.stdout
    );
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    orgform(dir, &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

fn connect(base_url: &str) -> AnyProvider {
    let spec = Spec::load(&[SourceFile::new("neon.toml", instance(base_url))])
        .unwrap_or_else(|e| panic!("{e:?}"));
    let mut overrides = BTreeMap::new();
    for (name, value) in ENV {
        overrides.insert(SecretRef::Env((*name).into()), SecretString::new(*value));
    }
    let options = ConnectOptions {
        secrets: SecretResolver {
            overrides,
            ..SecretResolver::default()
        },
        ..ConnectOptions::default()
    };
    AnyProvider::connect(&spec.providers["neon"], &options).expect("connect")
}

async fn hits(sandbox: &Sandbox, endpoint: &str) -> u64 {
    served(sandbox, "neoncrm", endpoint).await
}

/// The one organization `reality` holds under `name`, as JSON attributes.
fn attributes(reality: &InstanceReality, name: &str) -> (String, Value) {
    let found: Vec<_> = reality
        .orgs
        .iter()
        .filter(|(key, _)| key.0 == name)
        .flat_map(|(_, orgs)| orgs)
        .collect();
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    (
        found[0].remote_id.clone(),
        Value::Object(found[0].attributes.to_json()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn list_all_reports_every_organization_past_one_page_with_what_retrieve_holds() {
    let sandbox = start(SandboxConfig::default()).await;
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    // Two created by orgform, with every kind of field; their reads must give back what was
    // declared (and lookups whole, as the vendor's example shows them), or every plan after a
    // discover would show drift.
    write_specs(dir, &sandbox.base_url(), ORGS);
    orgform(dir, &["apply", "--auto-approve"]).expect(0);

    // 200 more made directly (a page and a bit in all), and a person who works at one of
    // them, whom no organization listing may take for it.
    let neon = Neon::login(&sandbox.base_url()).await;
    for i in 0..200 {
        let name = format!("Direct Organization {i:03}");
        let email = format!("contact{i}@direct.example.org");
        neon.call(
            "account/createOrganizationAccount",
            &[
                ("organizationAccount.organizationName", name.as_str()),
                ("organizationAccount.primaryContact.lastName", "Direct"),
                ("organizationAccount.primaryContact.email1", email.as_str()),
                ("organizationAccount.url", "https://direct.example.org"),
            ],
        )
        .await;
    }
    neon.call(
        "account/createIndividualAccount",
        &[
            ("individualAccount.primaryContact.lastName", "Worker"),
            (
                "individualAccount.organizationName",
                "Direct Organization 007",
            ),
        ],
    )
    .await;

    let (logins, lists, retrieves) = (
        hits(&sandbox, LOGIN).await,
        hits(&sandbox, LIST).await,
        hits(&sandbox, RETRIEVE).await,
    );
    let reality = connect(&sandbox.base_url())
        .list_all()
        .await
        .expect("list_all");
    assert_eq!(reality.len(), 202);
    // A login, two pages of 200, and one retrieve per organization.
    assert_eq!(hits(&sandbox, LOGIN).await - logins, 1);
    assert_eq!(hits(&sandbox, LIST).await - lists, 2);
    assert_eq!(hits(&sandbox, RETRIEVE).await - retrieves, 202);

    let (_, grace) = attributes(&reality, "Grace Community Church");
    assert_eq!(
        grace,
        json!({
            "organization_name": "Grace Community Church",
            "url": "https://grace.example.org",
            "no_solicitation": false,
            "source": {"id": 1, "name": "Website"},
            "organization_types": [{"id": 1, "name": "Church"}],
            "custom_field_data_list": [{"field_id": 22, "field_value": "Sundays at 9"}],
            "primary_contact": {
                "first_name": "Ruth",
                "last_name": "Okafor",
                "email1": "office@grace.example.org",
                "addresses": [{
                    "is_primary_address": true,
                    "city": "Tulsa",
                    "state": {"code": "OK", "name": "OKLAHOMA"},
                    "zip_code": "74103",
                }],
            },
        })
    );
    let (_, harbour) = attributes(&reality, "Harbour Bridge School");
    assert_eq!(
        harbour,
        json!({
            "organization_name": "Harbour Bridge School",
            "organization_types": [{"id": 6, "name": "School"}],
            "primary_contact": {
                "first_name": "Aroha",
                "last_name": "Ngata",
                "email1": "principal@harbour.example.nz",
            },
        })
    );
    let (_, direct) = attributes(&reality, "Direct Organization 007");
    assert_eq!(
        direct,
        json!({
            "organization_name": "Direct Organization 007",
            "url": "https://direct.example.org",
            "primary_contact": {"last_name": "Direct", "email1": "contact7@direct.example.org"},
        })
    );

    // The plan's own read reports the same, for the fields its columns hold.
    let read = connect(&sandbox.base_url())
        .read(&[orgform::model::NaturalKey("Direct Organization 007".into())])
        .await
        .expect("read");
    assert_eq!(
        attributes(&read, "Direct Organization 007").1,
        json!({
            "organization_name": "Direct Organization 007",
            "primary_contact": {"last_name": "Direct", "email1": "contact7@direct.example.org"},
        })
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_writes_what_neoncrm_reports_and_the_next_plan_adopts_it() {
    let sandbox = start(SandboxConfig::default()).await;
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    // Made by orgform, then forgotten with the specs that declared them; and one made
    // directly, with a login (whose password no read returns), a phone and a zip code of
    // digits with a leading zero.
    write_specs(dir, &sandbox.base_url(), ORGS);
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    std::fs::remove_file(dir.join("state.json")).expect("forget state");
    let neon = Neon::login(&sandbox.base_url()).await;
    neon.call(
        "account/createOrganizationAccount",
        &[
            ("organizationAccount.organizationName", "Direct Account"),
            ("organizationAccount.login.username", "direct"),
            (
                "organizationAccount.login.password",
                "s3cret-direct-password",
            ),
            ("organizationAccount.primaryContact.phone1", "0918555"),
            (
                "organizationAccount.primaryContact.addresses.address.zipCode",
                "01234",
            ),
        ],
    )
    .await;
    write_specs(dir, &sandbox.base_url(), "");

    let (lists, retrieves) = (hits(&sandbox, LIST).await, hits(&sandbox, RETRIEVE).await);
    orgform(dir, &["discover", "--out", "specs/discovered"]).expect(0);
    assert_eq!(hits(&sandbox, LIST).await - lists, 1, "one page");
    assert_eq!(
        hits(&sandbox, RETRIEVE).await - retrieves,
        3,
        "one retrieve each"
    );
    let written =
        std::fs::read_to_string(dir.join("specs/discovered/neon.toml")).expect("neon.toml");
    for line in [
        "organization_name = \"Grace Community Church\"",
        "url = \"https://grace.example.org\"",
        "field_value = \"Sundays at 9\"",
        "email1 = \"principal@harbour.example.nz\"",
        "phone1 = \"0918555\"",
        "zip_code = \"01234\"",
    ] {
        assert!(written.contains(line), "no `{line}` in:\n{written}");
    }
    assert!(!written.contains("username"), "{written}");
    assert!(!written.contains("s3cret"), "{written}");

    orgform(dir, &["validate"]).expect(0);
    let plan = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(plan.stdout.contains("Plan: 3 to adopt."), "{}", plan.stdout);
    let creates = hits(&sandbox, CREATE).await;
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    assert_eq!(
        hits(&sandbox, CREATE).await,
        creates,
        "adopted, not created"
    );
    orgform(dir, &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}
