//! `orgform state list`, `state show ADDRESS` and `state mv OLD NEW` through the real binary,
//! on a state file and on PostgreSQL: what they print, that `mv` writes one new version under
//! the lock and asks no provider anything, and every refusal (an absent OLD, a taken NEW, a
//! NEW that is no address or that the specs declare as another organization, a state locked
//! by another run), each leaving the state as it was.

use std::path::Path;
use std::time::Duration;

use orgform::sandbox::{Sandbox, SandboxConfig};
use orgform::state::LockInfo;
use orgform::state::postgres::PostgresBackend;

use crate::e2e::{Run, served, start};
use crate::harness::assert_run_snapshot;
use crate::heron_fixture::{ACME_SECRET, heron_specs};
use crate::state_stores::pg_url;

/// Where the state of a test lives: the default file, or a fresh PostgreSQL workspace.
enum Backend {
    File,
    Postgres(String),
}

impl Backend {
    fn postgres() -> Backend {
        Backend::Postgres(format!("state-commands-{}", fastrand::u64(..)))
    }

    /// Runs the binary in `dir` on this backend's state, with the tests' secrets exported.
    fn run(&self, dir: &Path, args: &[&str]) -> Run {
        let mut all: Vec<String> = args.iter().map(ToString::to_string).collect();
        if let Backend::Postgres(workspace) = self {
            all.extend([
                "--state".into(),
                pg_url(),
                "--workspace".into(),
                workspace.clone(),
            ]);
        }
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        crate::e2e::orgform(dir, &all)
    }

    /// The state's serial, as `state list --format json` reports it.
    fn serial(&self, dir: &Path) -> u64 {
        self.list_json(dir)["serial"].as_u64().expect("serial")
    }

    fn list_json(&self, dir: &Path) -> serde_json::Value {
        let run = self
            .run(dir, &["state", "list", "--format", "json"])
            .expect(0);
        serde_json::from_str(&run.stdout).expect("state list --format json is JSON")
    }
}

/// Three Heron organizations (`o000`, `o001`, `o002`) applied to a sandbox, on `backend`.
async fn three_applied(backend: &Backend) -> (Sandbox, tempfile::TempDir) {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), 3, None, ACME_SECRET);
    backend
        .run(dir.path(), &["apply", "--auto-approve"])
        .expect(0);
    (sandbox, dir)
}

fn rename_in_specs(dir: &Path, old: &str, new: &str) {
    let path = dir.join("specs/orgs.toml");
    let text = std::fs::read_to_string(&path).expect("specs");
    let renamed = text.replace(&format!("[org.{old}]"), &format!("[org.{new}]"));
    assert_ne!(renamed, text, "`{old}` is declared");
    std::fs::write(&path, renamed).expect("write specs");
}

/// `state list`, `state show` and a rename made in the specs and then in state by `state mv`:
/// the next plan has nothing to do, and no provider was asked anything by the move.
async fn list_show_and_move(backend: Backend) {
    let (sandbox, dir) = three_applied(&backend).await;
    let dir = dir.path();

    let list = backend.run(dir, &["state", "list"]).expect(0);
    assert_eq!(list.stdout, "o000\no001\no002\n");
    let some = backend
        .run(dir, &["state", "list", "*1", "o00*2"])
        .expect(0);
    assert_eq!(some.stdout, "o001\no002\n");
    let none = backend.run(dir, &["state", "list", "x*"]).expect(0);
    assert_eq!(none.stdout, "", "nothing matched, nothing printed");
    assert!(none.stderr.contains("matches `x*`"), "{}", none.stderr);

    let json = backend.list_json(dir);
    assert_eq!(json["format_version"], 1);
    let addresses = json["addresses"].as_array().expect("addresses");
    assert_eq!(addresses.len(), 3);
    assert_eq!(addresses[1]["address"], "o001");
    assert_eq!(addresses[1]["provider"], "heron");
    assert_eq!(addresses[1]["provider_type"], "heron");
    assert_eq!(addresses[1]["status"], "created");
    let remote_id = addresses[1]["remote_id"]
        .as_str()
        .expect("a remote id")
        .to_string();

    let show = backend.run(dir, &["state", "show", "o001"]).expect(0);
    for wanted in [
        "address        o001\n",
        "provider       heron\n",
        "natural key    salesforce | https://o001.example.com\n",
        "status         created\n",
        &format!("remote id      {remote_id}\n"),
        "\"instance_url\": \"https://o001.example.com\"",
    ] {
        assert!(
            show.stdout.contains(wanted),
            "{wanted:?} in\n{}",
            show.stdout
        );
    }
    let shown: serde_json::Value = serde_json::from_str(
        &backend
            .run(dir, &["state", "show", "o001", "--format", "json"])
            .expect(0)
            .stdout,
    )
    .expect("JSON");
    assert_eq!(shown["address"], "o001");
    assert_eq!(shown["remote_id"], remote_id.as_str());
    assert_eq!(
        shown["natural_key"],
        "salesforce | https://o001.example.com"
    );
    assert_eq!(shown["attributes"]["crm_provider"], "salesforce");
    assert!(shown["create_sent_at"].is_string(), "{shown}");
    let markdown = backend
        .run(dir, &["state", "show", "o001", "--format", "markdown"])
        .expect(0);
    assert!(
        markdown
            .stdout
            .contains("| status | <code>created</code> |"),
        "{}",
        markdown.stdout
    );

    let unknown = backend.run(dir, &["state", "show", "o0001"]).expect(1);
    assert!(
        unknown.stderr.contains("`o0001` is not in state"),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("did you mean `o00"),
        "{}",
        unknown.stderr
    );

    // Renamed in the specs only: the plan moves `o001` to `renamed` (`moves.rs` applies one);
    // here `state mv` does it by hand instead.
    rename_in_specs(dir, "o001", "renamed");
    let plan = backend.run(dir, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        plan.stdout.contains("Plan: 1 to move, 2 unchanged."),
        "{}",
        plan.stdout
    );
    let before = backend.serial(dir);
    let requests_before = stats_total(&sandbox).await;
    let moved = backend
        .run(dir, &["state", "mv", "o001", "renamed"])
        .expect(0);
    assert!(
        moved.stderr.contains("Moved `o001` to `renamed`")
            && moved
                .stderr
                .contains(&format!("serial {before} -> {}", before + 1)),
        "{}",
        moved.stderr
    );
    assert_eq!(stats_total(&sandbox).await, requests_before, "no request");
    assert_eq!(backend.serial(dir), before + 1, "one new version");
    let list = backend.run(dir, &["state", "list"]).expect(0);
    assert_eq!(list.stdout, "o000\no002\nrenamed\n");
    let shown = backend.run(dir, &["state", "show", "renamed"]).expect(0);
    assert!(shown.stdout.contains(&remote_id), "{}", shown.stdout);
    backend.run(dir, &["plan", "--detailed-exitcode"]).expect(0);
    match &backend {
        Backend::File => {
            let backup = std::fs::read_to_string(dir.join("state/orgform.state.json.backup"))
                .expect("a backup of the previous version");
            let backup: serde_json::Value = serde_json::from_str(&backup).expect("JSON");
            assert_eq!(backup["serial"], before);
            assert!(
                backup["orgs"]["o001"].is_object(),
                "the version before the move"
            );
        }
        Backend::Postgres(_) => {
            let history = backend
                .run(dir, &["state", "history", "--format", "json"])
                .expect(0);
            let versions: serde_json::Value = serde_json::from_str(&history.stdout).expect("JSON");
            let last = versions
                .as_array()
                .and_then(|v| v.last())
                .expect("versions");
            assert_eq!(last["serial"], before + 1);
            assert!(
                last["command"]
                    .as_str()
                    .is_some_and(|c| c.contains("state mv o001 renamed")),
                "{last}"
            );
        }
    }
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        3,
        "each created once"
    );
    sandbox.shutdown().await.expect("shutdown");
}

async fn stats_total(sandbox: &Sandbox) -> u64 {
    let stats = crate::e2e::stats(sandbox).await;
    stats["requests"]
        .as_object()
        .into_iter()
        .flat_map(|providers| providers.values())
        .filter_map(serde_json::Value::as_object)
        .flat_map(|endpoints| endpoints.values())
        .filter_map(serde_json::Value::as_u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_show_and_move_on_a_state_file() {
    list_show_and_move(Backend::File).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_show_and_move_on_postgres() {
    list_show_and_move(Backend::postgres()).await;
}

/// Every refused move exits 1, names what is wrong, and leaves the state as it was.
async fn refused_moves(backend: Backend) {
    let (sandbox, dir) = three_applied(&backend).await;
    let dir = dir.path();
    // Forgotten, but still declared in the specs for its own natural key.
    backend.run(dir, &["forget", "o002"]).expect(0);
    let before = backend.list_json(dir);

    let long = format!("a{}", "b".repeat(64));
    let refusals: &[(&[&str], &str)] = &[
        (&["o009", "x"], "`o009` is not in state"),
        (&["o000", "o001"], "`o001` is already in state"),
        (&["o000", "9lives"], "`9lives` is not a valid address"),
        (&["o000", "two words"], "`two words` is not a valid address"),
        (&["o000", &long], "is not a valid address"),
        (&["o000", "o000"], "the same address"),
        // The specs say `o002` is https://o002.example.com: recorded under it, `o000` would
        // make state claim an organization the specs say `o002` is not.
        (&["o000", "o002"], "the specs declare `o002`"),
    ];
    for (args, wanted) in refusals {
        let run = backend
            .run(dir, &[&["state", "mv"][..], args].concat())
            .expect(1);
        assert!(run.stderr.contains(wanted), "{wanted:?} in\n{}", run.stderr);
        assert_eq!(
            backend.list_json(dir),
            before,
            "`state mv {args:?}` wrote nothing"
        );
    }

    // Specs that don't load can't be checked against: refused too.
    let specs = dir.join("specs/orgs.toml");
    let good = std::fs::read_to_string(&specs).expect("specs");
    std::fs::write(
        &specs,
        format!("{good}\n[org.broken]\nprovider = \"nowhere\"\n"),
    )
    .expect("write");
    let run = backend
        .run(dir, &["state", "mv", "o000", "elsewhere"])
        .expect(1);
    assert!(
        run.stderr.contains("don't load; nothing was moved"),
        "{}",
        run.stderr
    );
    assert_eq!(backend.list_json(dir), before);
    std::fs::write(&specs, good).expect("write");

    // A move to an address the specs don't declare is allowed, and says what plans will show.
    let run = backend.run(dir, &["state", "mv", "o000", "kept"]).expect(0);
    assert!(
        run.stderr
            .contains("still declare this organization as `o000`"),
        "{}",
        run.stderr
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_moves_leave_a_state_file_as_it_was() {
    refused_moves(Backend::File).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_moves_leave_postgres_as_it_was() {
    refused_moves(Backend::postgres()).await;
}

/// The refusal of a NEW the specs declare as another organization, whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_address_declared_as_another_organization_is_refused() {
    let (sandbox, dir) = three_applied(&Backend::File).await;
    Backend::File.run(dir.path(), &["forget", "o002"]).expect(0);
    let run = Backend::File
        .run(dir.path(), &["state", "mv", "o000", "o002"])
        .expect(1);
    assert_run_snapshot!("declared_as_another", run, dir.path());
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_file_locked_by_another_run_is_read_but_not_moved() {
    let (sandbox, dir) = three_applied(&Backend::File).await;
    let dir = dir.path();
    let lock_path = dir.join("state/orgform.state.json.lock");
    let lock = std::fs::File::create(&lock_path).expect("lock file");
    lock.lock().expect("take the lock");
    std::fs::write(
        &lock_path,
        r#"{"id":"abc","host":"ci-runner-7","pid":4242,"command":"orgform apply --auto-approve","since":"2026-09-21T10:00:00Z"}"#,
    )
    .expect("holder");
    let before = Backend::File.list_json(dir);
    let run = Backend::File
        .run(
            dir,
            &["state", "mv", "o000", "renamed", "--lock-timeout", "1s"],
        )
        .expect(1);
    assert!(
        run.stderr.contains("state is locked by") && run.stderr.contains("ci-runner-7"),
        "{}",
        run.stderr
    );
    // Read without the lock: list and show still answer.
    assert_eq!(Backend::File.list_json(dir), before);
    Backend::File.run(dir, &["state", "show", "o000"]).expect(0);
    drop(lock);
    Backend::File
        .run(
            dir,
            &["state", "mv", "o000", "renamed", "--lock-timeout", "1s"],
        )
        .expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_state_locked_by_another_run_is_read_but_not_moved() {
    let workspace = format!("state-commands-{}", fastrand::u64(..));
    let backend = Backend::Postgres(workspace.clone());
    let (sandbox, dir) = three_applied(&backend).await;
    let dir = dir.path();
    let holder = LockInfo {
        id: "other-run".into(),
        host: "ci-runner-7".into(),
        pid: 4242,
        command: "orgform apply --auto-approve".into(),
        since: 1_790_000_000,
    };
    let mut other = PostgresBackend::connect(&pg_url(), &workspace, holder)
        .await
        .expect("connect");
    other.lock(Duration::from_secs(5)).await.expect("lock");
    let before = backend.list_json(dir);
    let run = backend
        .run(
            dir,
            &["state", "mv", "o000", "renamed", "--lock-timeout", "1s"],
        )
        .expect(1);
    assert!(
        run.stderr.contains("state is locked by") && run.stderr.contains("ci-runner-7"),
        "{}",
        run.stderr
    );
    assert_eq!(backend.list_json(dir), before);
    backend.run(dir, &["state", "show", "o000"]).expect(0);
    other.unlock().await.expect("unlock");
    backend
        .run(
            dir,
            &["state", "mv", "o000", "renamed", "--lock-timeout", "5s"],
        )
        .expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

/// The help of each new command up to the global options (`refusals.rs` holds those whole):
/// what `list` and `show` print as JSON, and what `mv` refuses and why, are documented there.
#[test]
fn help_texts() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["list", "show", "mv"] {
        let mut run = crate::e2e::orgform(dir.path(), &["state", name, "--help"]).expect(0);
        let own = run
            .stdout
            .find("\nOptions:\n")
            .expect("global options listed");
        run.stdout.truncate(own + 1);
        assert_run_snapshot!(format!("help_state_{name}"), run, dir.path());
    }
}

/// A state asked for by path that is not there is an error, never an empty state shown as if it
/// were the real one; a workspace with a file state is refused, not ignored; and the commands
/// that show state take `--sandbox`, for the embedded sandbox's own state.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_state_by_path_a_file_workspace_and_sandbox_state_are_told_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    crate::e2e::copy_dir(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("specs")
            .as_path(),
        &dir.join("specs"),
    );
    for args in [
        &["show", "--state", "nowhere/x.json"][..],
        &["state", "list", "--state", "nowhere/x.json"],
        &["state", "show", "o000", "--state", "nowhere/x.json"],
    ] {
        let run = crate::e2e::orgform(dir, args).expect(1);
        assert!(
            run.stderr
                .contains("there is no state file at nowhere/x.json"),
            "{args:?}: {}",
            run.stderr
        );
    }
    for args in [
        &["show", "--workspace", "team"][..],
        &["plan", "--workspace", "team"],
    ] {
        let run = crate::e2e::orgform(dir, args).expect(1);
        assert!(
            run.stderr
                .contains("--workspace `team` names a workspace, but this run's state is the file"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // The default state, not there yet: empty, as before any apply.
    let empty = crate::e2e::orgform(dir, &["show"]).expect(0);
    assert!(
        empty.stdout.starts_with("State is empty"),
        "{}",
        empty.stdout
    );

    crate::harness::orgform(dir)
        .args(["apply", "--sandbox", "--auto-approve"])
        .shows_sandbox_credentials()
        .run()
        .expect(0);
    let shown = crate::e2e::orgform(dir, &["show", "--sandbox"]).expect(0);
    assert!(shown.stdout.contains("acme_trial"), "{}", shown.stdout);
    let listed = crate::e2e::orgform(dir, &["state", "list", "--sandbox"]).expect(0);
    assert_eq!(listed.stdout.lines().count(), 15, "{}", listed.stdout);
    crate::e2e::orgform(dir, &["state", "show", "acme_trial", "--sandbox"]).expect(0);
    // The real state is still empty: sandbox runs never mix with it.
    let real = crate::e2e::orgform(dir, &["state", "list"]).expect(0);
    assert_eq!(real.stdout, "");
}

/// The serial grows with every write, and never wraps: a state at the largest serial is refused
/// a write (it became 0), and is left as it was.
#[test]
fn a_state_at_the_largest_serial_is_refused_a_write_not_wrapped() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    let state = serde_json::json!({
        "version": 1,
        "lineage": "6f1c2a3b-0000-4000-8000-00000000abcd",
        "serial": u64::MAX,
        "orgs": {
            "a": {
                "provider": "neon",
                "provider_type": "neoncrm",
                "remote_id": "10001",
                "natural_key": "Acme",
                "digest": "5555555555555555555555555555555555555555555555555555555555555555",
                "status": "created",
                "attributes": {"organization_name": "Acme"},
                "attempted_at": "2026-09-21T10:00:00Z",
                "updated_at": "2026-09-21T10:00:05Z"
            }
        }
    })
    .to_string();
    let path = dir.path().join("state.json");
    std::fs::write(&path, &state).expect("write");
    let out = crate::harness::run(
        dir.path(),
        &["state", "mv", "--state", "state.json", "a", "b"],
        &[],
    )
    .expect(1);
    assert!(
        out.stderr.contains("the largest a serial can be"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), state);
}

/// A mistyped address in a folder where no apply has run yet is refused and leaves nothing
/// behind: `forget` and `state mv` made `state/` and a lock file there before finding the
/// address was not in state.
#[test]
fn forget_and_move_in_a_fresh_folder_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    for args in [&["forget", "nope"][..], &["state", "mv", "nope", "other"]] {
        let out = crate::harness::orgform(dir.path())
            .args(args)
            .run()
            .expect(1);
        assert!(
            out.stderr.contains("not in state"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !dir.path().join("state").exists(),
            "{args:?} made a state folder"
        );
    }
}
