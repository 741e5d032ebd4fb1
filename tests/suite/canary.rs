//! The canary test: a unique value for every secret the specs reference, sent through every
//! command, every output format, `RUST_LOG=trace` and JSON logs, failures (refused logins,
//! injected faults, a literal secret in a spec, spec files that are links to secret files and
//! to `/proc/self/environ`) and an apply killed with SIGKILL. The canaries,
//! raw, base64 or URL-encoded, must appear in no byte orgform printed and no file it wrote.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use orgform::sandbox::{Fault, SandboxConfig};

use crate::e2e::{copy_dir, start};
use crate::exactly_once::{FIVE_ENV, five_provider_sandbox, five_provider_specs};
use crate::harness::{Run, orgform};

/// A canary for the variable `name`: unique, and with characters that every encoding changes.
fn canary(name: &str) -> String {
    format!("cnry-{name}-Zq7+w/k=v x")
}

/// Every form in which a canary could leak.
pub fn forms(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = value.as_bytes();
    vec![
        value.to_string(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        url::form_urlencoded::byte_serialize(bytes).collect(),
        value
            .replace(' ', "%20")
            .replace('+', "%2B")
            .replace('/', "%2F"),
        serde_json::to_string(value).unwrap_or_default(),
    ]
}

/// The canaries and their forms, checked against everything a run left.
struct Watch {
    canaries: Vec<(String, String)>,
}

impl Watch {
    #[track_caller]
    fn check_text(&self, what: &str, text: &str) {
        for (name, value) in &self.canaries {
            for form in forms(value) {
                assert!(
                    !text.contains(&form),
                    "{what} shows the secret {name} (as {form:?}):\n{text}"
                );
            }
        }
    }

    #[track_caller]
    fn check_run(&self, what: &str, run: &Run) {
        self.check_text(&format!("{what}: stdout"), &run.stdout);
        self.check_text(&format!("{what}: stderr"), &run.stderr);
    }

    /// Every file under `dir`, but those the test itself wrote (`skip`).
    #[track_caller]
    fn check_files(&self, dir: &Path, skip: &[&str]) -> usize {
        let mut checked = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(folder) = stack.pop() {
            for entry in std::fs::read_dir(&folder).expect("read dir").flatten() {
                let path = entry.path();
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                if skip.iter().any(|s| relative.starts_with(s)) {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let bytes = std::fs::read(&path).expect("read file");
                    self.check_text(
                        &path.display().to_string(),
                        &String::from_utf8_lossy(&bytes),
                    );
                    checked += 1;
                }
            }
        }
        checked
    }
}

/// The names of every environment variable the specs under `dir` reference.
fn env_names(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("specs").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("read spec");
        for piece in text.split("env = \"").skip(1) {
            if let Some((name, _)) = piece.split_once('"') {
                names.insert(name.to_string());
            }
        }
    }
    names
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    orgform(dir)
        .args(args)
        .envs(env)
        .env("RUST_LOG", "trace")
        .run()
}

/// The example specs on the embedded sandbox: every command and format, with a kill.
#[test]
fn canaries_never_leave_through_commands_formats_logs_or_kills() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("specs"),
        &root.join("specs"),
    );
    // The one secret the examples read from a file.
    std::fs::create_dir_all(root.join("secrets")).expect("mkdir");
    let file_canary = canary("FILE");
    std::fs::write(
        root.join("secrets/initech-webhook-secret"),
        format!("{file_canary}\n"),
    )
    .expect("write secret file");
    let names = env_names(&root.join("specs"));
    assert!(names.len() >= 20, "the examples reference {names:?}");
    let mut canaries: Vec<(String, String)> =
        names.iter().map(|n| (n.clone(), canary(n))).collect();
    canaries.push(("secrets/initech-webhook-secret".into(), file_canary));
    let env: Vec<(&str, &str)> = canaries
        .iter()
        .filter(|(n, _)| !n.contains('/'))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let watch = Watch {
        canaries: canaries.clone(),
    };
    let state = "state/sandbox/orgform.state.json";
    let runs: std::cell::RefCell<Vec<(String, Run)>> = std::cell::RefCell::default();
    let step = |args: &[&str], code: Option<i32>| {
        let r = run(root, args, &env);
        if let Some(code) = code {
            assert_eq!(
                r.code, code,
                "{args:?}\nstdout:\n{}\nstderr:\n{}",
                r.stdout, r.stderr
            );
        }
        runs.borrow_mut().push((args.join(" "), r));
    };

    step(&["validate"], Some(0));
    step(&["validate", "--format", "json"], Some(0));
    for format in ["text", "json", "markdown"] {
        step(&["plan", "--sandbox", "--format", format], Some(0));
    }
    step(
        &["-vv", "--log-format", "json", "plan", "--sandbox"],
        Some(0),
    );

    // An apply killed with SIGKILL mid-flight, its partial output kept too.
    let mut child = orgform(root)
        .args(["apply", "--sandbox", "--auto-approve"])
        .envs(&env)
        .env("RUST_LOG", "trace")
        .spawn();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(150 + u64::from(pid % 200)));
    child.kill();
    let killed = child.wait();
    runs.borrow_mut().push(("apply (killed)".into(), killed));

    step(&["plan", "--sandbox", "--out", "plan.json"], Some(0));
    step(&["apply", "plan.json", "--sandbox", "--auto-approve"], None);
    step(
        &[
            "--log-format",
            "json",
            "apply",
            "--sandbox",
            "--auto-approve",
            "--format",
            "json",
        ],
        Some(0),
    );
    for format in ["text", "json", "markdown"] {
        step(&["show", "--state", state, "--format", format], Some(0));
    }
    step(&["state", "history", "--state", state], Some(1));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join(state)).expect("state")).expect("json");
    let id = saved["orgs"]["acme_salesforce"]["remote_id"]
        .as_str()
        .expect("acme_salesforce was created")
        .to_string();
    step(&["forget", "acme_salesforce", "--sandbox"], Some(0));
    step(
        &[
            "import",
            "acme_salesforce",
            &id,
            "--sandbox",
            "--format",
            "json",
        ],
        Some(0),
    );
    step(&["refresh", "--sandbox"], Some(0));
    step(
        &[
            "plan",
            "--sandbox",
            "--detailed-exitcode",
            "--format",
            "markdown",
        ],
        None,
    );
    step(&["fmt", "--check"], Some(0));
    step(&["schema"], Some(0));

    for (what, r) in runs.borrow().iter() {
        watch.check_run(what, r);
    }
    let files = watch.check_files(root, &["specs", "secrets"]);
    assert!(
        files >= 4,
        "state, its backup, the sandbox data and the plan file were all checked ({files})"
    );
}

/// Refused logins, injected faults and a literal secret: failures print no canary either.
#[tokio::test(flavor = "multi_thread")]
async fn canaries_never_leave_through_failures() {
    let sandbox = start(SandboxConfig {
        fault_rate: 0.3,
        faults: Fault::ALL.to_vec(),
        timeout_hang: Duration::from_secs(2),
        seed: Some(11),
        ..five_provider_sandbox()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    five_provider_specs(&root, &sandbox.base_url(), 2);

    // Every credential wrong, each a canary: every provider refuses the login.
    let wrong: Vec<(String, String)> = FIVE_ENV
        .iter()
        .map(|(n, _)| (n.to_string(), canary(n)))
        .collect();
    let watch = Watch {
        canaries: wrong.clone(),
    };
    let root_for = root.clone();
    let refused = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = wrong
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        run(&root_for, &["plan", "--http-timeout", "3s"], &env)
    })
    .await
    .expect("join");
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    watch.check_run("plan with refused logins", &refused);

    // The right credentials, the organizations' own secret a canary, 30% faults.
    let org_secret = canary("S");
    let watch = Watch {
        canaries: vec![("S".into(), org_secret.clone())],
    };
    let env: Vec<(String, String)> = FIVE_ENV
        .iter()
        .map(|(n, v)| {
            let v = if *n == "S" { org_secret.as_str() } else { v };
            (n.to_string(), v.to_string())
        })
        .collect();
    for attempt in 0..3 {
        let root_for = root.clone();
        let env = env.clone();
        let r = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            run(
                &root_for,
                &[
                    "--log-format",
                    "json",
                    "apply",
                    "--auto-approve",
                    "--http-timeout",
                    "1s",
                    "--poll-interval",
                    "50ms",
                ],
                &env,
            )
        })
        .await
        .expect("join");
        watch.check_run(&format!("apply {attempt} under faults"), &r);
    }
    watch.check_files(&root, &["specs"]);

    // A literal secret is refused, and the refusal does not repeat it.
    let literal = canary("LITERAL");
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(bad.path().join("specs")).expect("mkdir");
    std::fs::write(
        bad.path().join("specs/heron.toml"),
        format!(
            "[provider.heron]\ntype = \"heron\"\napi_key = \"{literal}\"\n\n[org.acme]\nprovider = \"heron\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://acme.my.salesforce.com\"\nauth = {{}}\nsecret = \"{literal}\"\nconfig = {{}}\n"
        ),
    )
    .expect("write");
    let watch = Watch {
        canaries: vec![("a literal".into(), literal)],
    };
    for format in ["text", "json"] {
        let r = run(bad.path(), &["validate", "--format", format], &[]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("heron.toml") || r.stdout.contains("heron.toml"));
        watch.check_run(&format!("validate --format {format} of a literal"), &r);
    }
    watch.check_files(bad.path(), &["specs"]);
    sandbox.shutdown().await.expect("shutdown");
}

/// Spec files that are links to secrets: one to a secret file (plain, and one that is TOML), one
/// to `/proc/self/environ` with every canary exported. `validate`, `plan` in every format and
/// `apply` refuse them, and no byte they print holds a canary.
#[test]
fn canaries_never_leave_through_spec_links_to_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("specs"),
        &root.join("specs"),
    );
    std::fs::create_dir_all(root.join("secrets")).expect("mkdir");
    let file_canary = canary("FILE");
    let toml_canary = canary("TOML");
    std::fs::write(
        root.join("secrets/initech-webhook-secret"),
        format!("{file_canary}\n"),
    )
    .expect("write secret file");
    std::fs::write(
        root.join("secrets/token.toml"),
        format!("api_key = \"{toml_canary}\"\n"),
    )
    .expect("write secret file");
    let links = [
        (
            "specs/zz-file.toml",
            root.join("secrets/initech-webhook-secret"),
        ),
        ("specs/zz-token.toml", root.join("secrets/token.toml")),
        ("specs/zz-environ.toml", "/proc/self/environ".into()),
    ];
    for (link, target) in &links {
        std::os::unix::fs::symlink(target, root.join(link)).expect("symlink");
    }
    let env_canaries: Vec<(String, String)> = env_names(&root.join("specs"))
        .iter()
        .map(|n| (n.clone(), canary(n)))
        .collect();
    let env: Vec<(&str, &str)> = env_canaries
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut canaries = env_canaries.clone();
    canaries.push(("secrets/initech-webhook-secret".into(), file_canary));
    canaries.push(("secrets/token.toml".into(), toml_canary));
    let watch = Watch { canaries };

    let mut runs: Vec<Vec<&str>> = vec![vec!["validate"], vec!["validate", "--format", "json"]];
    for format in ["text", "json", "markdown"] {
        runs.push(vec!["plan", "--sandbox", "--format", format]);
    }
    runs.push(vec!["apply", "--sandbox", "--auto-approve"]);
    runs.push(vec![
        "apply",
        "--sandbox",
        "--auto-approve",
        "--format",
        "json",
    ]);
    for args in runs {
        let r = run(root, &args, &env);
        assert_eq!(
            r.code, 1,
            "{args:?}\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        for (link, _) in &links {
            let name = link.trim_start_matches("specs/");
            assert!(
                r.stderr.contains(name),
                "{args:?} names {name}:\n{}",
                r.stderr
            );
        }
        watch.check_run(&args.join(" "), &r);
    }
    watch.check_files(root, &["specs", "secrets"]);
}
