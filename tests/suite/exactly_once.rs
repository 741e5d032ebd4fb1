//! Exactly-once apply, proven against the sandbox with creates counted on its side: an apply
//! killed with SIGKILL at random instants converges with no duplicate and no lost organization;
//! concurrent applies on one state wait for the lock; a state that can't be written stops apply
//! before any create.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use orgform::sandbox::SandboxConfig;

use crate::e2e::{orgform, served, start};
use crate::heron_fixture::{ACME_SECRET, heron_list, heron_specs};

fn trials() -> usize {
    std::env::var("ORGFORM_KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// The credentials of every emulator, as the environment variables `five_provider_specs` uses.
pub const FIVE_ENV: &[(&str, &str)] = &[
    ("HERON_API_KEY", orgform::sandbox::HERON_API_KEY),
    ("CV_USERNAME", orgform::sandbox::commvault::USERNAME),
    ("CV_PASSWORD", orgform::sandbox::commvault::PASSWORD),
    ("SF_USERNAME", orgform::sandbox::salesforce::USERNAME),
    ("SF_PASSWORD", orgform::sandbox::salesforce::PASSWORD),
    ("SF_CLIENT_ID", orgform::sandbox::salesforce::CLIENT_ID),
    (
        "SF_CLIENT_SECRET",
        orgform::sandbox::salesforce::CLIENT_SECRET,
    ),
    ("NEON_ORG_ID", orgform::sandbox::neoncrm::ORG_ID),
    ("NEON_API_KEY", orgform::sandbox::neoncrm::API_KEY),
    ("OCC_APP_KEY", orgform::sandbox::oracle::APP_KEY),
    ("S", "x"),
];

/// The provider names in `/_sandbox/stats`.
const FIVE: [&str; 5] = [
    "heron",
    "commvault_salesforce",
    "salesforce",
    "neoncrm",
    "oracle_commerce",
];

/// The five instance tables, one of each type, at `base`, credentials by the names of
/// `FIVE_ENV`. The Oracle one is last, so that a caller may add a key to it.
pub fn five_providers(base: &str) -> String {
    format!(
        r#"[provider.heron]
type = "heron"
base_url = "{base}"
api_key = {{ env = "HERON_API_KEY" }}

[provider.commvault]
type = "commvault_salesforce"
base_url = "{base}/commandcenter/api"
username = {{ env = "CV_USERNAME" }}
password = {{ env = "CV_PASSWORD" }}

[provider.salesforce]
type = "salesforce_signup"
base_url = "{base}"
username = {{ env = "SF_USERNAME" }}
password = {{ env = "SF_PASSWORD" }}
client_id = {{ env = "SF_CLIENT_ID" }}
client_secret = {{ env = "SF_CLIENT_SECRET" }}

[provider.neoncrm]
type = "neoncrm"
base_url = "{base}/neonws/services/api"
org_id = {{ env = "NEON_ORG_ID" }}
api_key = {{ env = "NEON_API_KEY" }}

[provider.oracle]
type = "oracle_commerce"
base_url = "{base}"
app_key = {{ env = "OCC_APP_KEY" }}
"#
    )
}

/// `per_provider` organizations on each of the five providers at `base`.
pub fn five_provider_specs(dir: &Path, base: &str, per_provider: usize) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let mut text = five_providers(base);
    for i in 0..per_provider {
        text.push_str(&format!(
            r#"
[org.heron_{i}]
provider = "heron"
crm_provider = "salesforce"
instance_url = "https://h{i}.example.com"
auth = {{}}
secret = {{ env = "S" }}
config = {{}}

[org.commvault_{i}]
provider = "commvault"
organization_name = "cv-{i}"
download_cache_path = "/opt/cache"
plan = {{ plan_name = "Gold", plan_id = 12, entity_info = {{ company_id = 0 }} }}
access_nodes = [{{ client = {{ client_id = 7, client_name = "node01" }} }}]
salesforce_account = {{ authentication_type = 2, user_credentials = {{ user_name = "b@acme.example", password = {{ env = "S" }} }}, consumer_id = "3MVG9", consumer_secret = {{ env = "S" }} }}
sync_database = {{ db_enabled = true, db_type = "3", db_host = "db", db_port = "5432", db_name = "sync", db_user_password = {{ user_name = "u", password = {{ env = "S" }} }} }}

[org.salesforce_{i}]
provider = "salesforce"
company = "Acme {i}"
country = "US"
last_name = "Doe"
signup_email = "admin@acme.example"
username = "admin{i}@kill.example"
edition = "Enterprise"

[org.neoncrm_{i}]
provider = "neoncrm"
organization_name = "Organization {i}"

[org.oracle_{i}]
provider = "oracle"
name = "Registration {i}"
profile = {{ email = "buyer{i}@acme.example", first_name = "Dana", last_name = "Reyes" }}
"#
        ));
    }
    std::fs::write(specs.join("orgs.toml"), text).expect("write specs");
}

pub fn five_provider_sandbox() -> SandboxConfig {
    SandboxConfig {
        heron_rate_limit: 0,
        salesforce: orgform::sandbox::salesforce::SalesforceConfig {
            in_progress_for: Duration::from_millis(100),
            ..Default::default()
        },
        oracle: orgform::sandbox::oracle::OracleConfig {
            new_for: Duration::from_millis(50),
            review_for: Some(Duration::from_millis(100)),
            ..Default::default()
        },
        ..SandboxConfig::default()
    }
}

fn run_five(dir: &Path, args: &[&str]) -> crate::harness::Run {
    crate::harness::run(dir, args, FIVE_ENV)
}

/// The issue's kill test: an apply of 50 organizations across the five providers, killed with
/// SIGKILL at a random instant, rerun until it converges, `ORGFORM_KILL_TRIALS` times (100 by
/// default): no duplicate and no lost organization at any provider, and state always loads.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_any_instant_never_duplicates_or_loses() {
    const PER_PROVIDER: usize = 10;
    let mut rng = fastrand::Rng::with_seed(
        std::env::var("ORGFORM_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20_261_123),
    );
    let apply = [
        "apply",
        "--auto-approve",
        "--poll-interval",
        "20ms",
        "--settle-timeout",
        "10s",
    ];
    for trial in 0..trials() {
        let sandbox = start(five_provider_sandbox()).await;
        let dir = tempfile::tempdir().expect("tempdir");
        five_provider_specs(dir.path(), &sandbox.base_url(), PER_PROVIDER);

        let mut child = crate::harness::orgform(dir.path())
            .args(apply)
            .envs(FIVE_ENV)
            .spawn();
        tokio::time::sleep(Duration::from_millis(rng.u64(0..400))).await;
        child.kill(); // SIGKILL
        child.wait(); // what it printed before, scanned for secrets

        // Rerun until it converges; state must load every time.
        let mut converged = false;
        for _ in 0..5 {
            run_five(dir.path(), &["show"]).expect(0);
            let run = run_five(dir.path(), &apply);
            if run.code == 0 && run.stderr.contains("Nothing to apply") {
                converged = true;
                break;
            }
        }
        assert!(converged, "trial {trial}: apply did not converge");
        let held = crate::e2e::stats(&sandbox).await;
        for provider in FIVE {
            assert_eq!(
                held["organizations"][provider].as_u64(),
                Some(PER_PROVIDER as u64),
                "trial {trial}: {provider} holds a duplicate or lost one: {}",
                held["organizations"]
            );
        }
        sandbox.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_applies_take_turns_on_the_lock() {
    const ORGS: usize = 20;
    let sandbox = start(SandboxConfig {
        latency: Duration::from_millis(5),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), ORGS, Some(8), ACME_SECRET);
    let children: Vec<_> = (0..8)
        .map(|_| {
            crate::harness::orgform(dir.path())
                .args(["apply", "--auto-approve", "--lock-timeout", "60s"])
                .env("HERON_API_KEY", orgform::sandbox::HERON_API_KEY)
                .env("ACME_SECRET", "x")
                .spawn()
        })
        .collect();
    for child in children {
        child.wait().expect(0);
    }
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        ORGS as u64
    );
    assert_eq!(heron_list(&sandbox.base_url()).await.len(), ORGS);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn unwritable_state_stops_apply_before_any_create() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), 1, Some(8), ACME_SECRET);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    let before =
        std::fs::read_to_string(dir.path().join("state/orgform.state.json")).expect("state");

    // The journal where apply records each create can't be opened: a link to /dev/full sits in
    // its place, which orgform refuses rather than write through (even as root).
    let journal = dir.path().join("state/orgform.state.json.journal");
    std::os::unix::fs::symlink("/dev/full", &journal).expect("symlink");
    heron_specs(dir.path(), &sandbox.base_url(), 5, Some(8), ACME_SECRET);
    let run = orgform(dir.path(), &["apply", "--auto-approve"]).expect(1);
    assert!(run.stderr.contains("cannot write state"), "{}", run.stderr);
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        1,
        "no create sent"
    );
    let after =
        std::fs::read_to_string(dir.path().join("state/orgform.state.json")).expect("state");
    assert_eq!(before, after, "state intact");

    std::fs::remove_file(&journal).expect("remove the link");
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        5
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[test]
fn a_journal_left_by_a_killed_run_is_replayed_and_a_torn_line_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("state")).expect("mkdir");
    let record = |id: &str, status: &str| {
        format!(
            r#"{{"provider":"heron","provider_type":"heron","remote_id":"{id}","natural_key":"salesforce | https://{id}.example.com","digest":"00","status":"{status}","attributes":{{}},"updated_at":"2026-09-21T10:00:00Z"}}"#
        )
    };
    let header =
        r#"{"journal":1,"lineage":"11111111-2222-4333-8444-555555555555","base_serial":0}"#;
    let pending = format!(
        r#"{{"put":{{"address":"a","record":{}}}}}"#,
        record("a", "pending")
    );
    let created = format!(
        r#"{{"put":{{"address":"a","record":{}}}}}"#,
        record("a", "created")
    );
    // Killed in the middle of the last line: never acknowledged, never counted.
    let torn = r#"{"put":{"address":"b","record":{"provider":"he"#;
    let journal = format!("{header}\n{pending}\n{created}\n{torn}");
    std::fs::write(dir.path().join("state/orgform.state.json.journal"), journal).expect("write");
    let show = orgform(dir.path(), &["show", "--format", "json"]).expect(0);
    let state: serde_json::Value = serde_json::from_str(&show.stdout).expect("json");
    assert_eq!(state["lineage"], "11111111-2222-4333-8444-555555555555");
    assert_eq!(state["orgs"]["a"]["status"], "created");
    assert!(state["orgs"].get("b").is_none(), "torn line ignored");
}

#[test]
fn hostile_state_files_are_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("state")).expect("mkdir");
    let state = dir.path().join("state/orgform.state.json");
    let cases: &[(&str, &str)] = &[
        ("{\"version\": 1, \"lineage\": \"x\", \"ser", "not valid"),
        ("", "not valid"),
        ("[1, 2, 3]", "not a JSON object"),
        (
            "{\"version\": 9, \"lineage\": \"x\", \"serial\": 1}",
            "newer orgform",
        ),
        (
            "{\"version\": 1, \"lineage\": \"x\", \"serial\": 1, \"orgs\": {\"a\": {\"status\": \"weird\"}}}",
            "not valid",
        ),
        ("\u{0}\u{1}binary", "not valid"),
    ];
    for (text, expected) in cases {
        std::fs::write(&state, text).expect("write");
        for args in [
            &["show"][..],
            &["plan", "--refresh=false"],
            &["apply", "--auto-approve"],
        ] {
            let run = orgform(dir.path(), args).expect(1);
            assert!(
                run.stderr.contains(expected),
                "{args:?} on {text:?}: {}",
                run.stderr
            );
        }
        assert_eq!(
            std::fs::read_to_string(&state).expect("read"),
            *text,
            "state untouched"
        );
    }
}

/// Records in a state file, by status.
fn statuses(dir: &Path) -> std::collections::BTreeMap<String, usize> {
    let shown = orgform(dir, &["show", "--format", "json"]).expect(0);
    let state: serde_json::Value = serde_json::from_str(&shown.stdout).expect("state json");
    let mut counts = std::collections::BTreeMap::new();
    for record in state["orgs"].as_object().expect("orgs").values() {
        *counts
            .entry(record["status"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    counts
}

fn spawn_slow_apply(dir: &Path) -> crate::harness::Spawned {
    crate::harness::orgform(dir)
        .args(["apply", "--auto-approve"])
        .env("HERON_API_KEY", orgform::sandbox::HERON_API_KEY)
        .env("ACME_SECRET", "x")
        .spawn()
}

/// Waits until the apply in `dir` has recorded its first intent: by then it handles signals
/// (a fixed sleep was too short when the machine was busy, and a signal before the handler is
/// installed kills the process instead).
async fn until_creating(dir: &Path) {
    let journal = dir.join("state/orgform.state.json.journal");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // A header line, then the (compressed) changes: anything past the header is an intent.
    let changes = |bytes: Vec<u8>| {
        bytes
            .iter()
            .position(|b| *b == b'\n')
            .map_or(0, |end| bytes.len() - end - 1)
    };
    while std::fs::read(&journal).map_or(0, changes) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the apply never started creating"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn signal(child: &crate::harness::Spawned, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// SIGTERM in the middle of an apply: no new create starts, those in flight finish and are
/// recorded, the lock is released, and the run exits 1 saying so; the next apply converges.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_new_creates_and_records_those_in_flight() {
    const ORGS: usize = 30;
    let sandbox = start(SandboxConfig {
        latency: Duration::from_millis(150),
        heron_rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), ORGS, Some(8), ACME_SECRET);
    let text = std::fs::read_to_string(dir.path().join("specs/orgs.toml")).expect("read");
    std::fs::write(
        dir.path().join("specs/orgs.toml"),
        text.replace("max_concurrency = 8", "max_concurrency = 2"),
    )
    .expect("write");

    let child = spawn_slow_apply(dir.path());
    until_creating(dir.path()).await;
    signal(&child, "TERM");
    let out = child.wait().expect(1);
    let stderr = out.stderr;
    assert!(stderr.contains("Interrupted"), "{stderr}");
    assert!(
        stderr.contains("not started"),
        "the rest was not started: {stderr}"
    );

    // Nothing was sent without a record: every create the sandbox saw is in state.
    let sent = served(&sandbox, "heron", "POST /api/crm_integrations").await;
    let recorded: usize = statuses(dir.path()).values().sum();
    assert!(
        sent > 0 && (sent as usize) < ORGS,
        "stopped part-way: {sent} sent"
    );
    assert_eq!(sent as usize, recorded, "every create sent is recorded");

    // The lock was released, and the next apply finishes the job without a duplicate.
    orgform(
        dir.path(),
        &["apply", "--auto-approve", "--lock-timeout", "1s"],
    )
    .expect(0);
    let mut urls = heron_list(&sandbox.base_url()).await;
    urls.sort();
    urls.dedup();
    assert_eq!(urls.len(), ORGS);
    assert_eq!(
        heron_list(&sandbox.base_url()).await.len(),
        ORGS,
        "no duplicates"
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// A second signal exits at once; state still loads and the next apply converges.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigterm_exits_at_once_and_stays_safe() {
    const ORGS: usize = 30;
    let sandbox = start(SandboxConfig {
        latency: Duration::from_millis(300),
        heron_rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), ORGS, Some(8), ACME_SECRET);
    let child = spawn_slow_apply(dir.path());
    until_creating(dir.path()).await;
    signal(&child, "TERM");
    tokio::time::sleep(Duration::from_millis(50)).await;
    signal(&child, "TERM");
    child.wait().expect(130);
    statuses(dir.path()); // state loads
    orgform(
        dir.path(),
        &["apply", "--auto-approve", "--lock-timeout", "1s"],
    )
    .expect(0);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    let all = heron_list(&sandbox.base_url()).await;
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        (all.len(), unique.len()),
        (ORGS, ORGS),
        "no duplicate, none lost"
    );
    sandbox.shutdown().await.expect("shutdown");
}
