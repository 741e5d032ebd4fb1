//! A rename in the specs is a `move`: through the real binary against the sandbox, the plan
//! shows it (text and JSON) and nothing else, a saved plan applies exactly that with no write
//! to the provider, the next plan is clean, and state holds one entry for the organization.

use std::collections::BTreeMap;

use orgform::sandbox::{Sandbox, SandboxConfig};

use crate::e2e::{orgform, served, start, stats};
use crate::heron_fixture::{ACME_SECRET, heron_specs};

/// Every request the sandbox served that is not a read (`GET`), by provider and endpoint.
async fn writes(sandbox: &Sandbox) -> BTreeMap<String, u64> {
    let stats = stats(sandbox).await;
    let mut writes = BTreeMap::new();
    for (provider, endpoints) in stats["requests"].as_object().into_iter().flatten() {
        for (endpoint, n) in endpoints.as_object().into_iter().flatten() {
            if !endpoint.starts_with("GET ") {
                writes.insert(format!("{provider} {endpoint}"), n.as_u64().unwrap_or(0));
            }
        }
    }
    writes
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rename_in_the_specs_is_moved_in_state_without_a_request() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    heron_specs(dir, &sandbox.base_url(), 3, None, ACME_SECRET);
    orgform(dir, &["apply", "--auto-approve"]).expect(0);
    let listed: serde_json::Value = serde_json::from_str(
        &orgform(dir, &["state", "list", "--format", "json"])
            .expect(0)
            .stdout,
    )
    .expect("JSON");
    let remote_id = listed["addresses"][1]["remote_id"]
        .as_str()
        .expect("o001's remote id")
        .to_string();

    let path = dir.join("specs/orgs.toml");
    let text = std::fs::read_to_string(&path).expect("specs");
    std::fs::write(&path, text.replace("[org.o001]", "[org.renamed]")).expect("rename");

    let plan = orgform(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        plan.stdout.contains("~ move      o001 -> renamed"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("\nPlan: 1 to move, 2 unchanged.\nPlan digest: "),
        "nothing but the move: {}",
        plan.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&orgform(dir, &["plan", "--format", "json"]).expect(0).stdout)
            .expect("JSON");
    let moves: Vec<&serde_json::Value> = json["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["action"] != "unchanged")
        .collect();
    assert_eq!(moves.len(), 1, "{json}");
    assert_eq!(moves[0]["action"], "move");
    assert_eq!(moves[0]["address"], "renamed");
    assert_eq!(moves[0]["from"], "o001");
    assert_eq!(moves[0]["remote_id"], remote_id.as_str());
    assert_eq!(json["summary"]["move"], 1);

    orgform(dir, &["plan", "--out", "plan.json"]).expect(0);
    let before = writes(&sandbox).await;
    let apply = orgform(dir, &["apply", "plan.json"]).expect(0);
    assert!(apply.stderr.contains("1 moved"), "{}", apply.stderr);
    assert_eq!(writes(&sandbox).await, before, "a move sends no request");
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        3,
        "each created once"
    );

    orgform(dir, &["plan", "--detailed-exitcode"]).expect(0);
    let list = orgform(dir, &["state", "list"]).expect(0);
    assert_eq!(list.stdout, "o000\no002\nrenamed\n", "one entry, renamed");
    let shown = orgform(dir, &["state", "show", "renamed"]).expect(0);
    assert!(shown.stdout.contains(&remote_id), "{}", shown.stdout);
    sandbox.shutdown().await.expect("shutdown");
}
