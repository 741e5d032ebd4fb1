//! A plan is a promise: every secret the run needs (provider logins, and the organizations it
//! proposes to create) is resolved before the first request, and every missing one is listed
//! in one error. Through the real binary, creates counted at the sandbox.

use std::path::Path;

use orgform::sandbox::{Sandbox, SandboxConfig};

use crate::canary::forms;
use crate::e2e::{start, stats};
use crate::harness::{Run, assert_run_snapshot, run};

/// Values of the secrets that are set: none may appear in anything orgform prints.
const SET: &[(&str, &str)] = &[
    ("SC_HERON_API_KEY", orgform::sandbox::HERON_API_KEY),
    ("SC_CLIENT_SECRET", "cnry-SC_CLIENT_SECRET-Zq7+w/k=v x"),
    ("SC_PRESENT_SECRET", "cnry-SC_PRESENT_SECRET-Zq7+w/k=v x"),
];

/// How many organizations declare an unset variable.
const UNSET: usize = 10;

/// All requests the sandbox served for `provider`, whatever the endpoint.
async fn served_all(sandbox: &Sandbox, provider: &str) -> u64 {
    stats(sandbox).await["requests"][provider]
        .as_object()
        .map(|endpoints| endpoints.values().filter_map(|n| n.as_u64()).sum())
        .unwrap_or(0)
}

fn org(address: &str, instance: &str, secret: &str) -> String {
    format!(
        "\n[org.{address}]\nprovider = \"{instance}\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://{address}.my.salesforce.com\"\nauth = {{ client_secret = {{ env = \"SC_CLIENT_SECRET\" }} }}\nsecret = {secret}\nconfig = {{ default_id = {{ external_name = \"Account\", alias = \"Company\" }} }}\n"
    )
}

fn heron(name: &str, base_url: &str, key_env: &str) -> String {
    format!(
        "[provider.{name}]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"{key_env}\" }}\n"
    )
}

/// One Heron instance whose key is set; ten organizations with an unset variable each, one
/// with a secret file that is not there, one whose secret is set.
fn many_missing(dir: &Path, base_url: &str) {
    let mut text = heron("heron", base_url, "SC_HERON_API_KEY");
    for i in 0..UNSET {
        text.push_str(&org(
            &format!("org{i}"),
            "heron",
            &format!("{{ env = \"SC_UNSET_{i}\" }}"),
        ));
    }
    text.push_str(&org("filed", "heron", "{ file = \"secrets/not-there\" }"));
    text.push_str(&org("present", "heron", "{ env = \"SC_PRESENT_SECRET\" }"));
    std::fs::create_dir_all(dir.join("specs")).expect("mkdir");
    std::fs::write(dir.join("specs/heron.toml"), text).expect("write specs");
}

#[track_caller]
fn assert_no_values(run: &Run) {
    for (name, value) in SET {
        // Raw, base64 or URL-encoded, as the canary test looks for them.
        for form in forms(value) {
            for text in [&run.stdout, &run.stderr] {
                assert!(
                    !text.contains(&form),
                    "the value of {name} is shown:\n{text}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_and_apply_list_every_missing_secret_before_any_create() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    many_missing(dir.path(), &sandbox.base_url());

    // Each snapshot lists every unset variable (`env SC_UNSET_0 (org org0, secret)`...), the
    // missing file with the path tried and what it is relative to, and no secret that is set;
    // no plan that can't be applied is shown.
    let plan = run(dir.path(), &["plan"], SET).expect(1);
    assert_run_snapshot!("missing_plan", plan, dir.path());
    assert_no_values(&plan);

    // Without refresh the plan contacts nothing, and still promises nothing it can't keep.
    let offline = run(dir.path(), &["plan", "--refresh=false"], SET).expect(1);
    assert_run_snapshot!("missing_plan_offline", offline, dir.path());
    assert_no_values(&offline);

    let apply = run(dir.path(), &["apply", "--auto-approve"], SET).expect(1);
    assert_run_snapshot!("missing_apply", apply, dir.path());
    assert_no_values(&apply);
    assert_eq!(
        stats(&sandbox).await["requests"]["heron"]["POST /api/crm_integrations"].as_u64(),
        None,
        "a create left before the secrets were checked"
    );

    // Every secret set: the same specs plan and apply.
    let mut all: Vec<(String, String)> = SET
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for i in 0..UNSET {
        all.push((
            format!("SC_UNSET_{i}"),
            format!("cnry-SC_UNSET_{i}-Zq7+w/k=v x"),
        ));
    }
    std::fs::create_dir_all(dir.path().join("secrets")).expect("mkdir");
    std::fs::write(
        dir.path().join("secrets/not-there"),
        "cnry-file-Zq7+w/k=v x\n",
    )
    .expect("write secret");
    let env: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let applied = run(dir.path(), &["apply", "--auto-approve"], &env).expect(0);
    for (name, value) in &all {
        for form in forms(value) {
            assert!(
                !applied.stdout.contains(&form) && !applied.stderr.contains(&form),
                "the value of {name} is shown"
            );
        }
    }
    assert_eq!(
        stats(&sandbox).await["requests"]["heron"]["POST /api/crm_integrations"].as_u64(),
        Some(UNSET as u64 + 2)
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_credentials_of_two_instances_are_listed_in_one_run() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let base = sandbox.base_url();
    let mut text = heron("heron_a", &base, "SC_KEY_A");
    text.push_str(&heron("heron_b", &base, "SC_KEY_B"));
    text.push_str(&org("a1", "heron_a", "{ env = \"SC_PRESENT_SECRET\" }"));
    text.push_str(&org("b1", "heron_b", "{ env = \"SC_UNSET_B1\" }"));
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::write(dir.path().join("specs/heron.toml"), text).expect("write specs");

    // Both logins (SC_KEY_A, SC_KEY_B), and what the creates need, known from state alone
    // (SC_UNSET_B1), listed in the same run.
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let out = run(dir.path(), args, SET).expect(1);
        assert_run_snapshot!(format!("two_instances_{}", args[0]), out, dir.path());
        assert_no_values(&out);
    }
    // Refresh creates nothing: it needs the logins only, and names both (not SC_UNSET_B1).
    let refresh = run(dir.path(), &["refresh"], SET).expect(1);
    assert_run_snapshot!("two_instances_refresh", refresh, dir.path());
    assert_eq!(served_all(&sandbox, "heron").await, 0, "a request left");
    sandbox.shutdown().await.expect("shutdown");
}

#[test]
fn sandbox_runs_need_nothing_exported() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Points nowhere real: `--sandbox` sends everything to the embedded sandbox.
    many_missing(dir.path(), "https://app.herondata.io");
    let plan = run(
        dir.path(),
        &["plan", "--sandbox", "--detailed-exitcode"],
        &[],
    )
    .expect(2);
    assert_run_snapshot!("sandbox_plan", plan, dir.path());
    run(dir.path(), &["apply", "--sandbox", "--auto-approve"], &[]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_to_adopt_needs_none_of_its_secrets() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = heron("heron", &sandbox.base_url(), "SC_HERON_API_KEY");
    text.push_str(&org("kept", "heron", "{ env = \"SC_ONCE_SET\" }"));
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::write(dir.path().join("specs/heron.toml"), text).expect("write specs");
    let mut env = SET.to_vec();
    env.push(("SC_ONCE_SET", "cnry-SC_ONCE_SET-Zq7+w/k=v x"));
    run(dir.path(), &["apply", "--auto-approve"], &env).expect(0);

    // State lost, the organization still at the provider: the plan adopts it, and an adopt
    // sends nothing that needs the secret, so its absence is no error.
    std::fs::remove_dir_all(dir.path().join("state")).expect("remove state");
    let plan = run(dir.path(), &["plan", "--detailed-exitcode"], SET).expect(2);
    assert!(plan.stdout.contains("1 to adopt"), "{}", plan.stdout);
    run(dir.path(), &["apply", "--auto-approve"], SET).expect(0);
    assert_eq!(
        stats(&sandbox).await["requests"]["heron"]["POST /api/crm_integrations"].as_u64(),
        Some(1)
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// `import` logs in to one instance: every credential it lacks is named in one run, before any
/// request leaves.
#[tokio::test(flavor = "multi_thread")]
async fn import_lists_every_missing_credential_at_once() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[provider.neon]\ntype = \"neoncrm\"\nbase_url = \"{}/neonws/services/api\"\norg_id = {{ env = \"SC_NEON_ORG_ID\" }}\napi_key = {{ env = \"SC_NEON_API_KEY\" }}\n\n[org.acme]\nprovider = \"neon\"\norganization_name = \"Acme\"\n",
        sandbox.base_url()
    );
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::write(dir.path().join("specs/neon.toml"), text).expect("write specs");
    let out = run(dir.path(), &["import", "acme", "1"], SET).expect(1);
    for name in ["SC_NEON_ORG_ID", "SC_NEON_API_KEY"] {
        assert!(
            out.stderr.contains(name),
            "{name} not named:\n{}",
            out.stderr
        );
    }
    assert_eq!(served_all(&sandbox, "neoncrm").await, 0, "a request left");
    sandbox.shutdown().await.expect("shutdown");
}

/// With team state in PostgreSQL, a `[state] url` that can't be read is named together with
/// the provider logins that can't, in one run.
#[test]
fn an_unreadable_state_url_is_listed_with_the_missing_logins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text =
        "[state]\nbackend = \"postgres\"\nurl = { env = \"SC_STATE_URL\" }\n\n".to_string();
    text.push_str(&heron("heron", "https://app.herondata.io", "SC_KEY_UNSET"));
    text.push_str(&org("a1", "heron", "{ env = \"SC_PRESENT_SECRET\" }"));
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::write(dir.path().join("specs/heron.toml"), text).expect("write specs");
    for args in [&["plan"][..], &["apply", "--auto-approve"]] {
        let out = run(dir.path(), args, SET).expect(1);
        for name in ["SC_STATE_URL", "SC_KEY_UNSET"] {
            assert!(
                out.stderr.contains(name),
                "{name} not named:\n{}",
                out.stderr
            );
        }
        assert_no_values(&out);
    }
}

/// `orgform secrets` lists every reference the specs make once (the variable names and file
/// paths a CI job must provide), with where each is used and whether this machine can read
/// it, and never a value; JSON gives every use.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_lists_every_reference_with_its_uses_and_no_value() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    many_missing(dir.path(), &sandbox.base_url());
    let listed = run(dir.path(), &["secrets"], SET).expect(0);
    assert_run_snapshot!("secrets_listed", listed, dir.path());
    assert_no_values(&listed);

    let json = run(dir.path(), &["secrets", "--format", "json"], SET).expect(0);
    assert_no_values(&json);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(doc["format_version"], 1);
    let secrets = doc["secrets"].as_array().expect("secrets");
    let present = secrets
        .iter()
        .find(|s| s["name"] == "SC_PRESENT_SECRET")
        .expect("SC_PRESENT_SECRET is listed");
    assert_eq!(present["kind"], "env");
    assert_eq!(present["readable"], true);
    assert!(
        secrets.iter().filter(|s| s["readable"] == false).count() >= UNSET,
        "{doc}"
    );
    // Secrets are listed without any provider being asked anything.
    assert_eq!(served_all(&sandbox, "heron").await, 0);
}

/// A `[state] url` is a secret: a pull request can point its reference at any variable or file
/// the CI job can read. Whatever it holds, no error shows it: not a value that is no
/// PostgreSQL URL (a webhook, a token), and not a password in a PostgreSQL URL's query.
#[test]
fn a_state_url_is_never_shown_whatever_it_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::write(
        dir.path().join("specs/state.toml"),
        "[state]\nbackend = \"postgres\"\nurl = { env = \"SC_ANY_VAR\" }\n",
    )
    .expect("write specs");
    for value in [
        "https://hooks.slack.com/services/T0001/B0002/TOPSECRETxyz",
        "deploy:TOPSECRET",
        "https://TOPSECRET@github.com",
        "TOPSECRET plain text",
        // A closed port on loopback: the connection fails, and its error names the store.
        "postgres://orgform@127.0.0.1:9/orgform?password=TOPSECRET&sslpassword=TOPSECRET",
        "postgresql://orgform@127.0.0.1:9/orgform?options=TOPSECRET#TOPSECRET",
    ] {
        for args in [&["show"][..], &["plan", "--refresh=false"]] {
            let out = run(dir.path(), args, &[("SC_ANY_VAR", value)]).expect(1);
            assert!(
                !out.stderr.contains("TOPSECRET") && !out.stdout.contains("TOPSECRET"),
                "{value}: {args:?} showed it:\n{}{}",
                out.stdout,
                out.stderr
            );
        }
    }
    // The command line's refusal of a password covers the query's too.
    let out = run(
        dir.path(),
        &[
            "show",
            "--state",
            "postgres://orgform@127.0.0.1:9/orgform?password=TOPSECRET",
        ],
        &[],
    )
    .expect(1);
    assert!(
        out.stderr.contains("password on the command line"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("TOPSECRET"), "{}", out.stderr);
}

/// With an allowed list, a `[state] url` from the specs must name hosts on it, as a provider's
/// `base_url` must: its reference may be a file the pull request wrote, and the run would send
/// the CI job's `PGPASSWORD` there.
#[test]
fn a_state_url_host_off_the_allowed_list_is_refused_before_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::write(
        dir.path().join("specs/state.toml"),
        "[state]\nbackend = \"postgres\"\nurl = { file = \"state-url\" }\n",
    )
    .expect("write specs");
    let allowed = [("ORGFORM_ALLOWED_HOSTS", "127.0.0.1")];
    for url in [
        "postgres://ci@evil.example:5432/db",
        "postgres://ci@127.0.0.1:9,evil.example:5432/db",
        "postgres://ci@127.0.0.1:9/db?host=evil.example",
        "postgresql://ci@[::2]:5432/db",
    ] {
        std::fs::write(dir.path().join("state-url"), url).expect("write");
        let out = run(dir.path(), &["show"], &allowed).expect(1);
        assert!(
            out.stderr.contains("not on the allowed hosts list"),
            "{url}:\n{}",
            out.stderr
        );
    }
    // A host on it is connected to (here a closed port: the connection's own error).
    std::fs::write(dir.path().join("state-url"), "postgres://ci@127.0.0.1:9/db").expect("write");
    let out = run(dir.path(), &["show"], &allowed).expect(1);
    assert!(!out.stderr.contains("allowed hosts"), "{}", out.stderr);
}

/// `apply --format json` prints its one document however the run ends: refused for missing
/// secrets before the lock, or for a stale saved plan, stdout still holds one JSON document
/// saying why (it held nothing).
#[test]
fn apply_json_prints_one_document_when_refused_before_anything_was_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    let mut text = heron("heron", "https://app.herondata.io", "SC_JSON_KEY_UNSET");
    text.push_str(&org("a1", "heron", "{ env = \"SC_JSON_SECRET_UNSET\" }"));
    std::fs::write(dir.path().join("specs/heron.toml"), text).expect("write specs");
    let out = run(
        dir.path(),
        &["apply", "--auto-approve", "--format", "json"],
        &[],
    )
    .expect(1);
    let document: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", out.stdout));
    assert_eq!(document["format_version"], 1);
    assert_eq!(document["outcomes"], serde_json::json!({}));
    assert!(
        document["stopped"]
            .as_str()
            .is_some_and(|why| why.contains("secret")),
        "{document}"
    );
}
