//! End to end: the real `orgform` binary against the sandbox emulators on loopback (the plan,
//! apply, plan cycle itself is `scenario.rs`, for every provider): approval, saved plans, locks,
//! bad input, injected faults, the README's main command and the CI examples. Creates are
//! counted on the sandbox side; whole outputs are snapshots in `snapshots/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use orgform::sandbox::{Fault, Sandbox, SandboxConfig};

/// Values of the secrets the tests export: none may appear in output or state.
const SECRETS: &[(&str, &str)] = &[
    ("HERON_API_KEY", orgform::sandbox::HERON_API_KEY),
    ("ACME_SECRET", "s3cret-acme-webhook-value"),
    ("ACME_CLIENT_SECRET", "s3cret-acme-client-value"),
    ("BETA_SECRET", "s3cret-beta-webhook-value"),
    ("GAMMA_SECRET", "s3cret-gamma-webhook-value"),
];

pub use crate::harness::Run;
use crate::harness::assert_run_snapshot;

/// Runs the binary in `dir` with the test secrets exported and stdin closed.
pub fn orgform(dir: &Path, args: &[&str]) -> Run {
    crate::harness::run(dir, args, SECRETS)
}

pub async fn start(config: SandboxConfig) -> Sandbox {
    // The tests' own HTTP client needs a TLS provider chosen, as orgform's does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Sandbox::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("sandbox starts")
}

pub async fn stats(sandbox: &Sandbox) -> serde_json::Value {
    reqwest::get(format!("{}/_sandbox/stats", sandbox.base_url()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json")
}

/// Requests the sandbox served for one provider endpoint, like `POST /api/crm_integrations`.
pub async fn served(sandbox: &Sandbox, provider: &str, endpoint: &str) -> u64 {
    stats(sandbox).await["requests"][provider][endpoint]
        .as_u64()
        .unwrap_or(0)
}

fn heron_specs(dir: &Path, base_url: &str, orgs: &[(&str, &str)]) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let mut text = format!(
        "[provider.heron]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\nmax_concurrency = 4\n"
    );
    for (address, secret_env) in orgs {
        text.push_str(&format!(
            "\n[org.{address}]\nprovider = \"heron\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://{address}.my.salesforce.com\"\nauth = {{ client_secret = {{ env = \"ACME_CLIENT_SECRET\" }} }}\nsecret = {{ env = \"{secret_env}\" }}\nconfig = {{ default_id = {{ external_name = \"Account\", alias = \"Company\" }} }}\n"
        ));
    }
    std::fs::write(specs.join("heron.toml"), text).expect("write specs");
}

const THREE: &[(&str, &str)] = &[
    ("acme", "ACME_SECRET"),
    ("beta", "BETA_SECRET"),
    ("gamma", "GAMMA_SECRET"),
];

fn assert_no_secrets(what: &str, text: &str) {
    for (name, value) in SECRETS {
        assert!(!text.contains(value), "{what} leaks the value of {name}");
    }
}

fn state_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("state/orgform.state.json")).expect("state written")
}

/// The plan, apply, plan cycle itself is `scenario.rs`, for every provider; here, what apply
/// leaves on disk: state (and its backup) private to the user, with no secret in it.
#[tokio::test(flavor = "multi_thread")]
async fn applied_state_is_private_and_holds_no_secret() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), THREE);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    // Twice, as a team would: every file apply keeps beside the state is checked below.
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);

    let state = state_text(dir.path());
    assert_no_secrets("state", &state);
    use std::os::unix::fs::PermissionsExt as _;
    for entry in std::fs::read_dir(dir.path().join("state"))
        .expect("state dir")
        .flatten()
    {
        let mode = entry.metadata().expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{} mode", entry.path().display());
    }
    let state: serde_json::Value = serde_json::from_str(&state).expect("state json");
    assert_eq!(state["orgs"].as_object().map(|o| o.len()), Some(3));
    assert!(state["orgs"]["acme"]["remote_id"].is_string());
    assert_eq!(state["orgs"]["acme"]["status"], "created");
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_without_approval_creates_nothing() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), THREE);
    let run = orgform(dir.path(), &["apply"]).expect(1);
    assert_run_snapshot!("apply_without_approval", run, dir.path());
    // A "yes" piped in is not a terminal's answer: still refused, the same way.
    let piped = crate::harness::orgform(dir.path())
        .arg("apply")
        .envs(SECRETS)
        .stdin("yes\n")
        .run()
        .expect(1);
    assert_eq!(piped.stderr, run.stderr);
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        0
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_plan_is_applied_exactly_and_refused_when_stale() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), &THREE[..2]);

    let saved = orgform(dir.path(), &["plan", "--out", "plan.json"]).expect(0);
    let digest_line = saved
        .stderr
        .lines()
        .find(|l| l.contains("digest"))
        .expect("digest printed");
    let digest = digest_line
        .split("digest ")
        .nth(1)
        .expect("digest")
        .split(')')
        .next()
        .expect("digest");
    // The saved plan is the approval: no prompt, no --auto-approve (stdin is closed here).
    let apply = orgform(dir.path(), &["apply", "plan.json"]).expect(0);
    assert!(
        apply.stderr.contains(digest),
        "apply names the same digest: {}",
        apply.stderr
    );
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        2
    );

    // Applied once, the same plan is stale: state moved on.
    let again = orgform(dir.path(), &["apply", "plan.json", "--auto-approve"]).expect(1);
    assert_run_snapshot!("saved_plan_stale_state", again, dir.path());

    // A plan made before the specs changed is refused too.
    heron_specs(dir.path(), &sandbox.base_url(), &THREE[..2]);
    orgform(dir.path(), &["plan", "--out", "plan2.json"]).expect(0);
    heron_specs(dir.path(), &sandbox.base_url(), THREE);
    let stale = orgform(dir.path(), &["apply", "plan2.json", "--auto-approve"]).expect(1);
    assert_run_snapshot!("saved_plan_stale_specs", stale, dir.path());
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        2
    );

    // A plan file that is not a plan is refused with a clear message.
    std::fs::write(dir.path().join("junk.json"), "{\"format_version\": 99}").expect("write");
    let junk = orgform(dir.path(), &["apply", "junk.json", "--auto-approve"]).expect(1);
    assert_run_snapshot!("saved_plan_not_a_plan", junk, dir.path());
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_spec_changes_nothing() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), THREE);
    let specs = dir.path().join("specs/heron.toml");
    let text = std::fs::read_to_string(&specs).expect("read");
    std::fs::write(
        &specs,
        text.replace(
            "api_key = { env = \"HERON_API_KEY\" }",
            "api_key = \"literal\"",
        ),
    )
    .expect("write");
    // The same diagnostic (specs/heron.toml:4:11, "must not be written in the specs") whichever
    // command reads the specs.
    for args in [&["validate"][..], &["plan"], &["apply", "--auto-approve"]] {
        let run = orgform(dir.path(), args).expect(1);
        assert_run_snapshot!(format!("literal_secret_{}", args[0]), run, dir.path());
    }
    assert!(!dir.path().join("state").exists(), "nothing written");
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        0
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lock_makes_apply_wait_then_name_the_holder() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), THREE);
    std::fs::create_dir_all(dir.path().join("state")).expect("mkdir");
    let lock_path = dir.path().join("state/orgform.state.json.lock");
    let lock = std::fs::File::create(&lock_path).expect("lock file");
    lock.lock().expect("take the lock");
    std::fs::write(
        &lock_path,
        r#"{"id":"abc","host":"ci-runner-7","pid":4242,"command":"orgform apply --auto-approve","since":"2026-09-21T10:00:00Z"}"#,
    )
    .expect("holder");
    let run = orgform(
        dir.path(),
        &["apply", "--auto-approve", "--lock-timeout", "1s"],
    )
    .expect(1);
    // Locked by ci-runner-7, with its command and since when.
    assert_run_snapshot!("held_lock", run, dir.path());
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        0
    );
    drop(lock);
    orgform(
        dir.path(),
        &["apply", "--auto-approve", "--lock-timeout", "1s"],
    )
    .expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

/// Forget then import by id is a step of `scenario.rs`; here, an id that does not exist is
/// refused, and `show` lists the imported one.
#[tokio::test(flavor = "multi_thread")]
async fn import_refuses_an_unknown_id_and_show_lists_the_imported_one() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), &THREE[..1]);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    let state: serde_json::Value = serde_json::from_str(&state_text(dir.path())).expect("json");
    let id = state["orgs"]["acme"]["remote_id"]
        .as_str()
        .expect("id")
        .to_string();

    orgform(dir.path(), &["forget", "acme"]).expect(0);
    orgform(dir.path(), &["import", "acme", "crm_does_not_exist"]).expect(1);
    orgform(dir.path(), &["import", "acme", &id]).expect(0);
    let show = orgform(dir.path(), &["show"]).expect(0);
    assert!(show.stdout.contains(&id), "{}", show.stdout);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_faults_never_duplicate() {
    let sandbox = start(SandboxConfig {
        fault_rate: 0.4,
        faults: vec![
            Fault::TooManyRequestsRetryAfter,
            Fault::InternalError,
            Fault::Unavailable,
            Fault::Reset,
            Fault::TimeoutAfterCommit,
        ],
        timeout_hang: Duration::from_secs(3),
        seed: Some(7),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let orgs: Vec<(String, &str)> = (0..12)
        .map(|i| (format!("org{i}"), "ACME_SECRET"))
        .collect();
    let refs: Vec<(&str, &str)> = orgs.iter().map(|(a, s)| (a.as_str(), *s)).collect();
    heron_specs(dir.path(), &sandbox.base_url(), &refs);

    let mut converged = false;
    for _ in 0..3 {
        let run = orgform(
            dir.path(),
            &["apply", "--auto-approve", "--http-timeout", "1s"],
        );
        if run.code == 0 && run.stderr.contains("Nothing to apply") {
            converged = true;
            break;
        }
    }
    if !converged {
        converged = orgform(
            dir.path(),
            &["plan", "--detailed-exitcode", "--http-timeout", "1s"],
        )
        .code
            == 0;
    }
    assert!(converged, "apply converges within three runs");

    // Exactly one integration per natural key at the provider.
    let client = reqwest::Client::new();
    let mut list = None;
    for _ in 0..20 {
        let response = client
            .get(format!("{}/api/crm_integrations", sandbox.base_url()))
            .header("x-api-key", orgform::sandbox::HERON_API_KEY)
            .send()
            .await;
        if let Ok(r) = response
            && r.status().is_success()
            && let Ok(json) = r.json::<serde_json::Value>().await
        {
            list = Some(json);
            break;
        }
    }
    let list = list.expect("the list eventually answers");
    let mut urls: Vec<String> = list["crm_integrations"]
        .as_array()
        .expect("list")
        .iter()
        .map(|i| i["instance_url"].as_str().unwrap_or("").to_string())
        .collect();
    urls.sort();
    let total = urls.len();
    urls.dedup();
    assert_eq!(total, urls.len(), "duplicates at the provider: {urls:?}");
    assert_eq!(total, 12, "every organization created");
    assert_eq!(
        stats(&sandbox).await["early_retries"]["heron"]
            .as_u64()
            .unwrap_or(0),
        0,
        "no request sent again before its Retry-After"
    );
    sandbox.shutdown().await.expect("shutdown");
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read").flatten() {
        let path = entry.path();
        let target: PathBuf = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

/// README's main command, as a new user runs it: twice, then a plan with nothing to do.
#[test]
fn readme_main_command_creates_then_finds_nothing_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("specs"),
        &dir.path().join("specs"),
    );
    // A new user has none of the specs' environment variables set.
    let run = |args: &[&str]| {
        crate::harness::orgform(dir.path())
            .env_clear()
            .env("PATH", &std::env::var("PATH").unwrap_or_default())
            .args(args)
            .run()
    };
    let first = run(&["apply", "--sandbox", "--auto-approve"]).expect(0);
    // Creates finish in any order, under ids the sandbox makes up: each line once, without its id.
    let mut progress: Vec<&str> = first
        .stderr
        .lines()
        .map(|line| line.split(" (").next().unwrap_or(line))
        .collect();
    progress.sort_unstable();
    let first = Run {
        stderr: progress.join("\n") + "\n",
        ..first
    };
    assert_run_snapshot!("readme_first_apply", first, dir.path());
    let second = run(&["apply", "--sandbox", "--auto-approve"]).expect(0);
    assert_run_snapshot!("readme_second_apply", second, dir.path());
    run(&["plan", "--sandbox", "--detailed-exitcode"]).expect(0);
    assert!(dir.path().join("state/sandbox/orgform.state.json").exists());
    assert!(
        !dir.path().join("state/orgform.state.json").exists(),
        "sandbox runs keep out of real state"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_creates_refuses_a_bigger_plan() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), THREE);
    let run = orgform(
        dir.path(),
        &["apply", "--auto-approve", "--max-creates", "2"],
    )
    .expect(1);
    assert_run_snapshot!("max_creates_flag_apply", run, dir.path());
    let plan = orgform(dir.path(), &["plan", "--max-creates", "2"]).expect(0);
    assert_run_snapshot!("max_creates_flag_plan", plan, dir.path());

    // The same rail per provider instance, in the specs.
    let specs = dir.path().join("specs/heron.toml");
    let text = std::fs::read_to_string(&specs).expect("read");
    std::fs::write(
        &specs,
        text.replace(
            "max_concurrency = 4",
            "max_concurrency = 4\nmax_creates = 1",
        ),
    )
    .expect("write");
    // Refused by the rail, not as an unknown key (which it once was, while the quoted source
    // line made a substring check pass).
    let run = orgform(dir.path(), &["apply", "--auto-approve"]).expect(1);
    assert!(
        run.stderr.contains("more than its max_creates = 1"),
        "{}",
        run.stderr
    );
    assert_run_snapshot!("max_creates_spec_apply", run, dir.path());
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        0
    );
    sandbox.shutdown().await.expect("shutdown");
}

/// The CI examples pasted into a repository that holds only `specs/`, as their headers say
/// (`ci/plan.sh`, `ci/apply.sh`, `specs/state.toml`), and their steps run as the jobs run them:
/// against the sandbox emulators as real endpoints (no `--sandbox`, so a secret the workflow
/// does not set fails the plan), with the state in PostgreSQL by reference, every secret the
/// workflow names set. The pull request's plan comment carries the digest the apply on main is
/// held to: a spec edited after the review is refused, the reviewed plan is applied.
#[tokio::test(flavor = "multi_thread")]
async fn ci_example_steps_plan_then_apply_the_reviewed_plan() {
    /// The login credentials the example specs reference, as the emulators accept them; every
    /// other secret is any value.
    const LOGINS: &[(&str, &str)] = &[
        ("HERON_API_KEY", orgform::sandbox::HERON_API_KEY),
        ("COMMVAULT_USERNAME", orgform::sandbox::commvault::USERNAME),
        ("COMMVAULT_PASSWORD", orgform::sandbox::commvault::PASSWORD),
        ("SF_TMO_USERNAME", orgform::sandbox::salesforce::USERNAME),
        ("SF_TMO_PASSWORD", orgform::sandbox::salesforce::PASSWORD),
        ("SF_CLIENT_ID", orgform::sandbox::salesforce::CLIENT_ID),
        (
            "SF_CLIENT_SECRET",
            orgform::sandbox::salesforce::CLIENT_SECRET,
        ),
        ("NEON_ORG_ID", orgform::sandbox::neoncrm::ORG_ID),
        ("NEON_API_KEY", orgform::sandbox::neoncrm::API_KEY),
        ("OCC_APP_KEY", orgform::sandbox::oracle::APP_KEY),
    ];

    /// Every provider URL in the specs moved to the sandbox at `base`: the host swapped, the
    /// path kept, and the vendor's default `base_url` written out where a spec implies it.
    fn point_at(specs: &Path, base: &str) {
        for entry in std::fs::read_dir(specs).expect("specs").flatten() {
            let text = std::fs::read_to_string(entry.path()).expect("spec");
            let mut moved = String::new();
            for line in text.lines() {
                let url = ["base_url = \"https://", "store_url = \"https://"]
                    .iter()
                    .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
                if let Some((prefix, rest)) = url {
                    let key = prefix.split(' ').next().unwrap_or_default();
                    let path = rest.find('/').map_or("", |at| &rest[at..]);
                    moved.push_str(&format!(
                        "{key} = \"{base}{}\"\n",
                        path.trim_end_matches('"')
                    ));
                    continue;
                }
                moved.push_str(line);
                moved.push('\n');
                let implied = match line {
                    "type = \"heron\"" | "type = \"salesforce_signup\"" => Some(""),
                    "type = \"neoncrm\"" => Some("/neonws/services/api"),
                    _ => None,
                };
                if let Some(path) = implied {
                    moved.push_str(&format!("base_url = \"{base}{path}\"\n"));
                }
            }
            std::fs::write(entry.path(), moved).expect("write spec");
        }
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let examples = root.join("examples/ci");
    let example = |name: &str| std::fs::read_to_string(examples.join(name)).expect("example");
    let (github, gitlab) = (example("github-actions.yml"), example("gitlab-ci.yml"));

    // The repository, as pasted.
    let repo = tempfile::tempdir().expect("tempdir");
    let repo = repo.path();
    copy_dir(&root.join("specs"), &repo.join("specs"));
    std::fs::copy(examples.join("state.toml"), repo.join("specs/state.toml")).expect("copy");
    std::fs::create_dir_all(repo.join("ci")).expect("mkdir");
    for script in ["plan.sh", "apply.sh"] {
        std::fs::copy(examples.join(script), repo.join("ci").join(script)).expect("copy");
    }

    // Every secret the specs reference, as `orgform secrets` lists them for setting up CI.
    let listed = crate::harness::run(repo, &["secrets", "--format", "json"], &[]).expect(0);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json");
    let listed = listed["secrets"].as_array().expect("secrets").clone();
    let named = |kind: &str| -> std::collections::BTreeSet<String> {
        listed
            .iter()
            .filter(|s| s["kind"] == kind)
            .filter_map(|s| s["name"].as_str().map(str::to_string))
            .collect()
    };
    let (env_names, files) = (named("env"), named("file"));
    assert!(env_names.contains("ORGFORM_STATE_URL"), "{env_names:?}");
    assert!(
        env_names.len() > 25,
        "the example specs' secrets: {env_names:?}"
    );

    // The GitHub workflow's env block names every one, each from the secret of its name; GitLab's
    // variables are set in its settings, which its header lists. Each writes every secret file.
    let github_env: std::collections::BTreeSet<String> = github
        .lines()
        .filter_map(|line| {
            let (name, value) = line.strip_prefix("  ")?.split_once(": ")?;
            (value == format!("${{{{ secrets.{name} }}}}")).then(|| name.to_string())
        })
        .collect();
    assert_eq!(github_env, env_names, "github-actions.yml's env block");
    for name in &env_names {
        assert!(gitlab.contains(name.as_str()), "gitlab-ci.yml lists {name}");
    }
    for file in &files {
        assert!(
            github.contains(&format!("> {file}")),
            "github writes {file}"
        );
        assert!(
            gitlab.contains(&format!(" {file})")),
            "gitlab writes {file}"
        );
    }
    // Each installs orgform by name and version, this version, and runs the tested steps.
    for (workflow, text) in [("github-actions.yml", &github), ("gitlab-ci.yml", &gitlab)] {
        assert!(
            text.contains(&format!(
                "ORGFORM_VERSION: \"{}\"",
                env!("CARGO_PKG_VERSION")
            )) && text.contains("cargo install --locked orgform --version \"$ORGFORM_VERSION\"")
                && !text.contains("--path"),
            "{workflow} installs orgform {} from crates.io",
            env!("CARGO_PKG_VERSION")
        );
        assert!(
            text.contains("ci/plan.sh") && text.contains("ci/apply.sh"),
            "{workflow} runs the tested steps"
        );
    }

    // The workflows guard where credentials go: their list admits the example specs' hosts, and
    // refuses a pull request that points one elsewhere.
    let allowed_in = |text: &str| -> String {
        text.lines()
            .find_map(|l| l.trim().strip_prefix("ORGFORM_ALLOWED_HOSTS: "))
            .expect("ORGFORM_ALLOWED_HOSTS set")
            .trim_matches('"')
            .to_string()
    };
    let allowed = allowed_in(&github);
    assert_eq!(allowed, allowed_in(&gitlab), "one list in both workflows");
    crate::harness::run(repo, &["validate"], &[("ORGFORM_ALLOWED_HOSTS", &allowed)]).expect(0);
    let moved = tempfile::tempdir().expect("tempdir");
    copy_dir(&root.join("specs"), &moved.path().join("specs"));
    let neon = moved.path().join("specs/neoncrm.toml");
    let text = std::fs::read_to_string(&neon).expect("neoncrm.toml");
    let text = text.replacen(
        "type = \"neoncrm\"\n",
        "type = \"neoncrm\"\nbase_url = \"https://collector.attacker.example\"\n",
        1,
    );
    std::fs::write(&neon, text).expect("write");
    let refused = crate::harness::run(
        moved.path(),
        &["validate"],
        &[("ORGFORM_ALLOWED_HOSTS", &allowed)],
    )
    .expect(1);
    assert!(
        refused.stderr.contains("collector.attacker.example"),
        "{}",
        refused.stderr
    );
    // Without specs/state.toml the steps refuse to run on a state that vanishes with the runner.
    let bare = crate::harness::script(moved.path(), &examples.join("plan.sh")).run();
    assert!(
        bare.code == 1 && bare.stderr.contains("copy examples/ci/state.toml"),
        "{}",
        bare.stderr
    );

    // The sandbox stands in for the providers (it approves Oracle requests at once, as an
    // administrator would); the CI secrets are set, the state URL to the test's PostgreSQL in a
    // workspace of its own.
    let sandbox = start(SandboxConfig {
        oracle: orgform::sandbox::oracle::OracleConfig {
            new_for: Duration::ZERO,
            review_for: Some(Duration::ZERO),
            ..orgform::sandbox::oracle::OracleConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    point_at(&repo.join("specs"), &sandbox.base_url());
    let state_toml = repo.join("specs/state.toml");
    let workspace = format!("ci-example-{}", fastrand::u64(..));
    let text = std::fs::read_to_string(&state_toml).expect("state.toml");
    assert!(text.contains("workspace = \"production\""), "{text}");
    std::fs::write(
        &state_toml,
        text.replace("\"production\"", &format!("\"{workspace}\"")),
    )
    .expect("write");
    let mut env: Vec<(String, String)> = env_names
        .iter()
        .map(|name| {
            let login = LOGINS.iter().find(|(login, _)| login == name);
            let value = match (name.as_str(), login) {
                ("ORGFORM_STATE_URL", _) => crate::state_stores::pg_url(),
                (_, Some((_, value))) => (*value).to_string(),
                (_, None) => format!("ci-example-{}", name.to_lowercase()),
            };
            (name.clone(), value)
        })
        .collect();
    // The sandbox listens on loopback, which the list must name (the specs point there now).
    env.push((
        "ORGFORM_ALLOWED_HOSTS".into(),
        format!("{allowed},127.0.0.1"),
    ));
    for file in &files {
        let path = repo.join(file);
        std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
        std::fs::write(&path, "ci-example-file-secret").expect("write secret file");
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let step = |script: &str, extra: &[(&str, &str)]| {
        crate::harness::script(repo, &repo.join("ci").join(script))
            .envs(&env)
            .envs(extra)
            .secret("the secret file", "ci-example-file-secret")
            .arg("--poll-interval")
            .arg("50ms")
    };
    let plan_step = || {
        crate::harness::script(repo, &repo.join("ci/plan.sh"))
            .envs(&env)
            .secret("the secret file", "ci-example-file-secret")
            .run()
    };
    let held = async || -> u64 {
        stats(&sandbox).await["organizations"]
            .as_object()
            .expect("organizations")
            .values()
            .filter_map(serde_json::Value::as_u64)
            .sum()
    };

    // The pull request: the plan, its comment with the digest.
    let plan = plan_step().expect(0);
    assert!(plan.stdout.contains("Changes present"), "{}", plan.stdout);
    let digest = plan
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("plan digest: "))
        .expect("digest")
        .to_string();
    assert_eq!(digest.len(), 64, "{}", plan.stdout);
    assert!(
        plan.stderr.contains(&format!("digest {digest}")),
        "{}",
        plan.stderr
    );
    let comment = std::fs::read_to_string(repo.join("plan.md")).expect("plan.md");
    assert!(
        comment.starts_with("### orgform plan"),
        "the marker the jobs look for"
    );
    assert!(
        comment.contains(&format!("Plan digest: `{digest}`")),
        "{comment}"
    );
    crate::harness::snapshot_settings(&[repo])
        .bind(|| insta::assert_snapshot!("ci_example_plan_comment", comment));
    // The jobs fetch the comment back; the apply step reads the digest from it.
    std::fs::write(repo.join("reviewed.md"), &comment).expect("write");
    let reviewed = [("ORGFORM_REVIEWED_COMMENT", "reviewed.md")];

    // A comment without a digest (the plan failed on the last push): nothing reviewed, nothing
    // applied.
    std::fs::write(
        repo.join("failed.md"),
        "### orgform plan\n\n**The plan failed**: see the job. Nothing here can be applied.\n",
    )
    .expect("write");
    let unreviewed = step("apply.sh", &[("ORGFORM_REVIEWED_COMMENT", "failed.md")])
        .run()
        .expect(1);
    assert!(
        unreviewed.stderr.contains("no reviewed plan"),
        "{}",
        unreviewed.stderr
    );

    // A spec edited after the review (here: on main before the apply job runs): main's plan is
    // not the reviewed one, and the apply refuses it, naming both digests, creating nothing.
    let neon = repo.join("specs/neoncrm.toml");
    let reviewed_specs = std::fs::read_to_string(&neon).expect("neoncrm.toml");
    std::fs::write(
        &neon,
        format!(
            "{reviewed_specs}\n[org.late_addition]\nprovider = \"neon_prod\"\norganization_name = \"Added After Review\"\n"
        ),
    )
    .expect("write");
    let refused = step("apply.sh", &reviewed).run().expect(1);
    assert!(
        refused
            .stdout
            .contains(&format!("reviewed digest: {digest}"))
            && refused
                .stderr
                .contains("refusing to apply: this plan's digest is")
            && refused
                .stderr
                .contains(&format!("the reviewed one {digest}")),
        "{}\n{}",
        refused.stdout,
        refused.stderr
    );
    assert!(
        refused.stdout.contains("late_addition"),
        "the refused plan is printed for review: {}",
        refused.stdout
    );
    assert_eq!(held().await, 0, "nothing created");

    // The specs as reviewed: main plans exactly the reviewed plan, and applies it.
    std::fs::write(&neon, &reviewed_specs).expect("write");
    let applied = step("apply.sh", &reviewed).run().expect(0);
    assert!(
        applied
            .stderr
            .contains(&format!("The plan's digest is the reviewed one ({digest})")),
        "{}",
        applied.stderr
    );
    assert!(held().await > 0, "created");
    let again = plan_step().expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);

    // Recorded in PostgreSQL, where the next runner finds it; no file state was written.
    let recorded = crate::harness::run(repo, &["state", "list"], &env).expect(0);
    assert_eq!(recorded.stdout.lines().count(), 15, "{}", recorded.stdout);
    assert!(!repo.join("state").exists(), "no file state");
    sandbox.shutdown().await.expect("shutdown");
}

/// The issue's fault test: 30% of requests get 429 (with and without Retry-After), 500/503,
/// resets, or timeouts after the create was committed. Every apply converges within three
/// runs, with no duplicate and no request sent again before its Retry-After.
#[tokio::test(flavor = "multi_thread")]
async fn thirty_percent_faults_converge_within_three_applies() {
    for seed in [1, 2, 3] {
        let sandbox = start(SandboxConfig {
            fault_rate: 0.3,
            faults: Fault::ALL.to_vec(),
            timeout_hang: Duration::from_secs(2),
            heron_rate_limit: 0,
            seed: Some(seed),
            ..SandboxConfig::default()
        })
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let orgs: Vec<(String, &str)> = (0..15).map(|i| (format!("f{i}"), "ACME_SECRET")).collect();
        let refs: Vec<(&str, &str)> = orgs.iter().map(|(a, s)| (a.as_str(), *s)).collect();
        heron_specs(dir.path(), &sandbox.base_url(), &refs);
        let mut runs = 0;
        let converged = loop {
            runs += 1;
            let run = orgform(
                dir.path(),
                &["apply", "--auto-approve", "--http-timeout", "1s"],
            );
            if run.code == 0 && !run.stderr.contains("pending") && !run.stderr.contains("error") {
                break true;
            }
            if runs == 3 {
                break false;
            }
        };
        assert!(converged, "seed {seed}: not converged in three applies");
        let held = stats(&sandbox).await;
        assert_eq!(
            held["organizations"]["heron"].as_u64(),
            Some(15),
            "seed {seed}: {held}"
        );
        assert_eq!(
            held["early_retries"]["heron"].as_u64().unwrap_or(0),
            0,
            "seed {seed}: {held}"
        );
        sandbox.shutdown().await.expect("shutdown");
    }
}

/// The sandbox's early-retry count can fail: a client that ignores Retry-After is counted.
#[tokio::test(flavor = "multi_thread")]
async fn an_impatient_client_is_counted_as_retrying_early() {
    let sandbox = start(SandboxConfig {
        fault_rate: 1.0,
        faults: vec![Fault::TooManyRequestsRetryAfter],
        ..SandboxConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let answer = client
            .get(format!("{}/api/crm_integrations", sandbox.base_url()))
            .header("x-api-key", orgform::sandbox::HERON_API_KEY)
            .send()
            .await
            .expect("send");
        assert_eq!(answer.status(), 429);
    }
    assert_eq!(
        stats(&sandbox).await["early_retries"]["heron"].as_u64(),
        Some(2)
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_change_says_what_to_do_with_address_and_remote_id() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), &THREE[..1]);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    let state: serde_json::Value = serde_json::from_str(&state_text(dir.path())).expect("json");
    let id = state["orgs"]["acme"]["remote_id"]
        .as_str()
        .expect("id")
        .to_string();

    // Heron has no update call: a changed attribute is blocked.
    let path = dir.path().join("specs/heron.toml");
    let specs = std::fs::read_to_string(&path).expect("read specs");
    std::fs::write(
        &path,
        specs.replace("alias = \"Company\"", "alias = \"Firm\""),
    )
    .expect("write");

    let forget = "`orgform forget acme`";
    let import = format!("`orgform import acme {id}`");
    let text = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    // The id is the sandbox's: the snapshot holds it as [ID].
    let text = Run {
        stdout: text.stdout.replace(&id, "[ID]"),
        ..text
    };
    assert_run_snapshot!("blocked_change_plan", text, dir.path());
    let markdown = orgform(dir.path(), &["plan", "--format", "markdown"]).expect(0);
    let markdown = Run {
        stdout: markdown.stdout.replace(&id.replace('_', "&#95;"), "[ID]"),
        ..markdown
    };
    assert_run_snapshot!("blocked_change_plan_markdown", markdown, dir.path());

    let json = orgform(dir.path(), &["plan", "--format", "json"]).expect(0);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan json");
    let change = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == "acme")
        .expect("acme planned");
    assert_eq!(change["action"], "blocked");
    assert_eq!(change["remote_id"], id.as_str());
    let reason = change["reason"].as_str().expect("reason");
    for needle in ["revert", forget, &import] {
        assert!(reason.contains(needle), "no {needle}: {reason}");
    }
    sandbox.shutdown().await.expect("shutdown");
}
