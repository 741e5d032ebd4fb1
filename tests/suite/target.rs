//! `--target ADDRESS` through the real binary against the sandbox: only the matching addresses
//! are planned and applied, every format says the plan is partial, a pattern that matches
//! nothing is refused before any request, and a saved partial plan is applied exactly.

use std::path::Path;

use orgform::sandbox::{Sandbox, SandboxConfig};

use crate::e2e::{Run, orgform, served, start};

const CREATES: &str = "POST /api/crm_integrations";

fn heron_specs(dir: &Path, base_url: &str, addresses: &[&str]) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let mut text = format!(
        "[provider.heron]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n"
    );
    for address in addresses {
        text.push_str(&format!(
            "\n[org.{address}]\nprovider = \"heron\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://{address}.my.salesforce.com\"\nauth = {{ client_secret = {{ env = \"ACME_CLIENT_SECRET\" }} }}\nsecret = {{ env = \"ACME_SECRET\" }}\nconfig = {{}}\n"
        ));
    }
    std::fs::write(specs.join("heron.toml"), text).expect("write specs");
}

/// The addresses a text plan lists, in order.
fn listed(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect()
}

async fn sandbox_with(dir: &Path, addresses: &[&str]) -> Sandbox {
    let sandbox = start(SandboxConfig::default()).await;
    heron_specs(dir, &sandbox.base_url(), addresses);
    sandbox
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_lists_only_the_targets_and_says_it_is_partial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = sandbox_with(dir.path(), &["acme", "acme-eu", "beta"]).await;

    let run = orgform(dir.path(), &["plan", "--target", "acme*"]).expect(0);
    assert_eq!(listed(&run), ["acme", "acme-eu"], "{}", run.stdout);
    assert!(
        run.stdout
            .contains("Partial plan: only addresses matching --target acme*;"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Plan: 2 to create."), "{}", run.stdout);

    // Repeated, in every format.
    let args = ["plan", "--target", "beta", "--target", "acme-eu"];
    let json = orgform(dir.path(), &[&args[..], &["--format", "json"]].concat()).expect(0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("json plan");
    assert_eq!(value["targets"], serde_json::json!(["beta", "acme-eu"]));
    let addresses: Vec<&str> = value["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["address"].as_str())
        .collect();
    assert_eq!(addresses, ["acme-eu", "beta"]);
    let md = orgform(dir.path(), &[&args[..], &["--format", "markdown"]].concat()).expect(0);
    assert!(md.stdout.contains("**Partial plan:**"), "{}", md.stdout);

    // A whole plan says nothing of the kind, and its JSON has no `targets`.
    let whole = orgform(dir.path(), &["plan", "--format", "json"]).expect(0);
    assert!(!whole.stdout.contains("\"targets\""));
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_matches_nothing_is_refused_before_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = sandbox_with(dir.path(), &["acme", "beta"]).await;
    let targets = ["--target", "acme", "--target", "betta", "--target", "zz*"];
    for command in [&["plan"][..], &["apply", "--auto-approve"][..]] {
        let run = orgform(dir.path(), &[command, &targets[..]].concat()).expect(1);
        assert!(
            run.stderr.contains("--target `betta` (did you mean `beta`?), `zz*`: matches no declared address and nothing in state"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("`acme`"), "{}", run.stderr);
    }
    let stats = crate::e2e::stats(&sandbox).await;
    assert_eq!(
        stats["requests"]["heron"],
        serde_json::Value::Null,
        "{stats}"
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_creates_only_the_targets_and_the_exit_code_follows_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = sandbox_with(dir.path(), &["acme", "beta", "gamma"]).await;

    let run = orgform(dir.path(), &["apply", "--auto-approve", "--target", "acme"]).expect(0);
    assert!(run.stdout.contains("Partial plan"), "{}", run.stdout);
    assert_eq!(served(&sandbox, "heron", CREATES).await, 1);
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state/orgform.state.json")).expect("state"),
    )
    .expect("state json");
    let recorded: Vec<&String> = state["orgs"].as_object().expect("orgs").keys().collect();
    assert_eq!(recorded, ["acme"]);

    // `acme` has nothing left to do; the others do.
    let done = ["plan", "--detailed-exitcode", "--target", "acme"];
    let run = orgform(dir.path(), &done).expect(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    assert!(run.stdout.contains("Partial plan"), "{}", run.stdout);
    orgform(
        dir.path(),
        &["plan", "--detailed-exitcode", "--target", "b*"],
    )
    .expect(2);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);

    // An orphan outside the targets is neither shown nor counted; inside them it is.
    heron_specs(dir.path(), &sandbox.base_url(), &["beta", "gamma"]);
    let run = orgform(dir.path(), &["plan", "--target", "beta"]).expect(0);
    assert_eq!(listed(&run), ["beta"], "{}", run.stdout);
    assert!(run.stdout.contains("Plan: 1 to create."), "{}", run.stdout);
    let run = orgform(dir.path(), &["plan", "--target", "acme"]).expect(0);
    assert_eq!(listed(&run), ["acme"], "{}", run.stdout);
    assert!(run.stdout.contains("1 orphan"), "{}", run.stdout);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_partial_plan_is_applied_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = sandbox_with(dir.path(), &["acme", "beta", "gamma"]).await;

    let saved = [
        "plan", "--target", "gamma", "--target", "b*", "--out", "p.json",
    ];
    orgform(dir.path(), &saved).expect(0);
    // A saved plan carries its own targets: another --target beside it is refused.
    let run = orgform(dir.path(), &["apply", "p.json", "--target", "acme"]).expect(1);
    assert!(
        run.stderr
            .contains("--target can't be used with a saved plan"),
        "{}",
        run.stderr
    );
    let run = orgform(dir.path(), &["apply", "p.json"]).expect(0);
    assert!(
        run.stderr
            .contains("Partial plan: only addresses matching --target gamma, b*;"),
        "{}",
        run.stderr
    );
    assert_eq!(served(&sandbox, "heron", CREATES).await, 2);
    let run = orgform(dir.path(), &["plan"]).expect(0);
    assert_eq!(listed(&run), ["acme"], "{}", run.stdout);
    sandbox.shutdown().await.expect("shutdown");
}

/// A partial plan reads, logs in to and needs the credentials of only the instances its targets
/// use: another instance is not contacted, even with its credentials missing.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_instances_the_targets_use_are_contacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = sandbox_with(dir.path(), &["acme", "beta"]).await;
    std::fs::write(
        dir.path().join("specs/neon.toml"),
        format!(
            "[provider.neon]\ntype = \"neoncrm\"\nbase_url = \"{}/neonws/services/api\"\norg_id = {{ env = \"UNSET_NEON_ORG_ID\" }}\napi_key = {{ env = \"UNSET_NEON_API_KEY\" }}\n\n[org.grace]\nprovider = \"neon\"\norganization_name = \"Grace Community Church\"\n",
            sandbox.base_url()
        ),
    )
    .expect("write specs");
    // The whole plan needs Neon's credentials, and says so.
    let whole = orgform(dir.path(), &["plan"]).expect(1);
    assert!(
        whole.stderr.contains("UNSET_NEON_API_KEY"),
        "{}",
        whole.stderr
    );

    let run = orgform(dir.path(), &["plan", "--target", "acme"]).expect(0);
    assert_eq!(listed(&run), ["acme"], "{}", run.stdout);
    orgform(dir.path(), &["apply", "--auto-approve", "--target", "acme"]).expect(0);
    assert_eq!(served(&sandbox, "heron", CREATES).await, 1);
    let neon = crate::e2e::stats(&sandbox).await["requests"]["neoncrm"].clone();
    assert!(
        neon.as_object().is_none_or(serde_json::Map::is_empty),
        "nothing sent to NeonCRM: {neon}"
    );
}
