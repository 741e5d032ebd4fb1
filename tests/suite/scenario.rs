//! One scenario, every provider (dnscontrol's integration suite): [`SCENARIO`] is one list of
//! steps, each provider type runs all of it against its sandbox emulator through the real
//! binary, and after every step `plan --detailed-exitcode` must exit 0 (nothing left to do) while
//! the sandbox has served exactly the creates the step expects and holds one organization per
//! declaration: a rerun, a forgotten record, a lost state file are never a second create.
//!
//! What differs between providers is data ([`Provider`]): the instance table, one declared
//! organization, the endpoint that creates. Tests of one provider's own behaviour stay in
//! `provider_*.rs`.

use std::path::Path;
use std::time::Duration;

use orgform::sandbox::{Sandbox, SandboxConfig};
use serde_json::Value;

use crate::e2e::{served, start, stats};
use crate::exactly_once::FIVE_ENV;
use crate::harness::Run;

/// One step of the scenario; the scenario runs them in order, in one folder.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Declare the first `n` organizations, then apply.
    DeclareThenApply(usize),
    /// Apply again with nothing changed: nothing to apply.
    ApplyAgain,
    /// Forget organization `i` (the plan then adopts it), and import it again by its id.
    ForgetThenImport(usize),
    /// Forget organization `i`, then apply: it is adopted, not created.
    ForgetThenApply(usize),
    /// Lose the state file, then apply: every organization is adopted from what exists. (A
    /// client that misreads a list answer finds nothing and creates everything again: NeonCRM's
    /// List Accounts example asks for `Account ID` and answers `Account Id`, and the emulator
    /// answers the same way.)
    LoseStateThenApply,
}

/// The steps, each with the creates the sandbox has served once it is done.
const SCENARIO: &[(Step, u64)] = &[
    (Step::DeclareThenApply(2), 2),
    (Step::ApplyAgain, 2),
    (Step::DeclareThenApply(3), 3),
    (Step::ForgetThenImport(0), 3),
    (Step::ForgetThenApply(1), 3),
    (Step::LoseStateThenApply, 3),
    (Step::ApplyAgain, 3),
];

/// What the scenario needs to know of one provider type.
struct Provider {
    /// The provider's name in `/_sandbox/stats`.
    stats_name: &'static str,
    /// The endpoint that creates one organization, as `/_sandbox/stats` counts it.
    create: &'static str,
    /// The `[provider.p]` table, given the sandbox's base URL.
    instance: fn(&str) -> String,
    /// The `i`th organization's table (its address is `o{i}`, its provider `p`).
    org: fn(usize) -> String,
}

const HERON: Provider = Provider {
    stats_name: "heron",
    create: "POST /api/crm_integrations",
    instance: |base| {
        format!(
            "[provider.p]\ntype = \"heron\"\nbase_url = \"{base}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n"
        )
    },
    org: |i| {
        format!(
            "provider = \"p\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://h{i}.example.com\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nconfig = {{}}\n"
        )
    },
};

const COMMVAULT: Provider = Provider {
    stats_name: "commvault_salesforce",
    create: "POST /commandcenter/api/Salesforce/Organization",
    instance: |base| {
        format!(
            "[provider.p]\ntype = \"commvault_salesforce\"\nbase_url = \"{base}/commandcenter/api\"\nusername = {{ env = \"CV_USERNAME\" }}\npassword = {{ env = \"CV_PASSWORD\" }}\n"
        )
    },
    org: |i| {
        format!(
            r#"provider = "p"
organization_name = "cv-{i}"
download_cache_path = "/opt/cache"
plan = {{ plan_name = "Gold", plan_id = 12, entity_info = {{ company_id = 0 }} }}
access_nodes = [{{ client = {{ client_id = 7, client_name = "node01" }} }}]
salesforce_account = {{ authentication_type = 2, user_credentials = {{ user_name = "b@acme.example", password = {{ env = "S" }} }}, consumer_id = "3MVG9", consumer_secret = {{ env = "S" }} }}
sync_database = {{ db_enabled = true, db_type = "3", db_host = "db", db_port = "5432", db_name = "sync", db_user_password = {{ user_name = "u", password = {{ env = "S" }} }} }}
"#
        )
    },
};

const SALESFORCE: Provider = Provider {
    stats_name: "salesforce",
    create: "POST /services/data/{version}/sobjects/SignupRequest/",
    instance: |base| {
        format!(
            "[provider.p]\ntype = \"salesforce_signup\"\nbase_url = \"{base}\"\nusername = {{ env = \"SF_USERNAME\" }}\npassword = {{ env = \"SF_PASSWORD\" }}\nclient_id = {{ env = \"SF_CLIENT_ID\" }}\nclient_secret = {{ env = \"SF_CLIENT_SECRET\" }}\n"
        )
    },
    org: |i| {
        format!(
            "provider = \"p\"\ncompany = \"Acme {i}\"\ncountry = \"US\"\nlast_name = \"Doe\"\nsignup_email = \"admin@acme.example\"\nusername = \"admin{i}@scenario.example\"\nedition = \"Enterprise\"\n"
        )
    },
};

const NEONCRM: Provider = Provider {
    stats_name: "neoncrm",
    create: "GET /neonws/services/api/account/createOrganizationAccount",
    instance: |base| {
        format!(
            "[provider.p]\ntype = \"neoncrm\"\nbase_url = \"{base}/neonws/services/api\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\n"
        )
    },
    org: |i| format!("provider = \"p\"\norganization_name = \"Organization {i}\"\n"),
};

const ORACLE: Provider = Provider {
    stats_name: "oracle_commerce",
    create: "POST /ccstore/v1/organizationRequests",
    instance: |base| {
        format!(
            "[provider.p]\ntype = \"oracle_commerce\"\nbase_url = \"{base}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\n"
        )
    },
    org: |i| {
        format!(
            "provider = \"p\"\nname = \"Registration {i}\"\nprofile = {{ email = \"buyer{i}@acme.example\", first_name = \"Dana\", last_name = \"Reyes\" }}\n"
        )
    },
};

/// A sandbox whose asynchronous creates settle quickly: Salesforce sign-ups within apply's
/// polling, Oracle's requests approved at once (no administrator stands behind the scenario,
/// as behind the embedded sandbox), so that apply's one look records them.
fn sandbox_config() -> SandboxConfig {
    SandboxConfig {
        heron_rate_limit: 0,
        salesforce: orgform::sandbox::salesforce::SalesforceConfig {
            in_progress_for: Duration::from_millis(100),
            ..Default::default()
        },
        oracle: orgform::sandbox::oracle::OracleConfig {
            new_for: Duration::ZERO,
            review_for: Some(Duration::ZERO),
            ..Default::default()
        },
        seed: Some(20_261_203),
        ..SandboxConfig::default()
    }
}

const APPLY: &[&str] = &[
    "apply",
    "--auto-approve",
    "--poll-interval",
    "20ms",
    "--settle-timeout",
    "10s",
];

fn run(dir: &Path, args: &[&str]) -> Run {
    crate::harness::run(dir, args, FIVE_ENV)
}

fn declare(dir: &Path, provider: &Provider, base: &str, n: usize) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let mut text = (provider.instance)(base);
    for i in 0..n {
        text.push_str(&format!("\n[org.o{i}]\n{}", (provider.org)(i)));
    }
    std::fs::write(specs.join("scenario.toml"), text).expect("write specs");
}

fn state(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("state/orgform.state.json")).expect("state");
    serde_json::from_str(&text).expect("state json")
}

async fn held(sandbox: &Sandbox, provider: &Provider) -> u64 {
    stats(sandbox).await["organizations"][provider.stats_name]
        .as_u64()
        .unwrap_or(0)
}

/// Runs every step of [`SCENARIO`] against `provider`, checking after each.
async fn run_scenario(provider: &Provider) {
    let sandbox = start(sandbox_config()).await;
    let base = sandbox.base_url();
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path();
    let mut declared = 0;
    for (number, (step, creates)) in SCENARIO.iter().enumerate() {
        let at = format!("{}: step {number} ({step:?})", provider.stats_name);
        match *step {
            Step::DeclareThenApply(n) => {
                declare(dir, provider, &base, n);
                declared = n;
                run(dir, &["plan", "--detailed-exitcode"]).expect(2);
                run(dir, APPLY).expect(0);
            }
            Step::ApplyAgain => {
                let again = run(dir, APPLY).expect(0);
                assert!(
                    again.stderr.contains("Nothing to apply"),
                    "{at}: {}",
                    again.stderr
                );
            }
            Step::ForgetThenImport(i) => {
                let address = format!("o{i}");
                let id = state(dir)["orgs"][&address]["remote_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{at}: no remote id for {address}"))
                    .to_string();
                run(dir, &["forget", &address]).expect(0);
                let plan = run(dir, &["plan", "--detailed-exitcode"]).expect(2);
                assert!(plan.stdout.contains("adopt"), "{at}: {}", plan.stdout);
                run(dir, &["import", &address, &id]).expect(0);
                assert_eq!(
                    state(dir)["orgs"][&address]["remote_id"],
                    id.as_str(),
                    "{at}"
                );
            }
            Step::ForgetThenApply(i) => {
                let address = format!("o{i}");
                let id = state(dir)["orgs"][&address]["remote_id"].clone();
                run(dir, &["forget", &address]).expect(0);
                run(dir, APPLY).expect(0);
                assert_eq!(state(dir)["orgs"][&address]["remote_id"], id, "{at}");
            }
            Step::LoseStateThenApply => {
                std::fs::remove_dir_all(dir.join("state")).expect("lose the state");
                let plan = run(dir, &["plan", "--detailed-exitcode"]).expect(2);
                assert!(
                    plan.stdout.contains(&format!("Plan: {declared} to adopt.")),
                    "{at}: {}",
                    plan.stdout
                );
                run(dir, APPLY).expect(0);
            }
        }
        run(dir, &["plan", "--detailed-exitcode"]).expect(0);
        assert_eq!(
            served(&sandbox, provider.stats_name, provider.create).await,
            *creates,
            "{at}: creates served"
        );
        assert_eq!(
            held(&sandbox, provider).await,
            declared as u64,
            "{at}: organizations held"
        );
    }
    // The most verbose logs of a run are scanned for secrets like every other output.
    run(dir, &["plan", "-vv"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn heron() {
    run_scenario(&HERON).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn commvault_salesforce() {
    run_scenario(&COMMVAULT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn salesforce_signup() {
    run_scenario(&SALESFORCE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn neoncrm() {
    run_scenario(&NEONCRM).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oracle_commerce() {
    run_scenario(&ORACLE).await;
}
