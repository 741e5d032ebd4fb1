//! What orgform refuses, through the real binary: a command line it can't parse (exit 1, never
//! the 2 that `--detailed-exitcode` gives to "changes present"), and a saved plan made before a
//! killed apply changed the state through its journal (the serial had not moved).

use std::time::{Duration, Instant};

use orgform::sandbox::SandboxConfig;

use crate::e2e::{orgform, start};
use crate::harness;
use crate::heron_fixture::{ACME_SECRET, heron_list, heron_specs};

#[test]
fn usage_errors_exit_1_never_the_changes_present_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Each says how to use it; the snapshots hold the whole text.
    for (name, args) in [
        (
            "bogus_flag",
            &["plan", "--detailed-exitcode", "--bogus-flag"][..],
        ),
        (
            "bad_bool",
            &["plan", "--detailed-exitcode", "--refresh=maybe"],
        ),
        ("no_such_command", &["no-such-command"]),
        ("bad_duration", &["apply", "--lock-timeout", "soon"]),
        ("no_command", &[]),
    ] {
        let run = harness::run(dir.path(), args, &[]).expect(1);
        harness::assert_run_snapshot!(format!("usage_error_{name}"), run, dir.path());
    }
}

/// Help is not an error, and its whole text is pinned; nor is the version (not pinned: it moves
/// with every release).
#[test]
fn help_texts() {
    let dir = tempfile::tempdir().expect("tempdir");
    harness::run(dir.path(), &["--version"], &[]).expect(0);
    for args in [
        &["--help"][..],
        &["plan", "--help"],
        &["apply", "--help"],
        &["validate", "--help"],
        &["import", "--help"],
        &["forget", "--help"],
        &["show", "--help"],
        &["refresh", "--help"],
        &["sandbox", "--help"],
        &["schema", "--help"],
        &["fmt", "--help"],
        &["force-unlock", "--help"],
        &["state", "--help"],
    ] {
        // `sandbox --help` lists the emulators' credentials: it is meant to.
        let run = harness::orgform(dir.path())
            .args(args)
            .shows_sandbox_credentials()
            .run()
            .expect(0);
        let name = match args {
            [flag] => format!("orgform_{}", flag.trim_start_matches('-')),
            [command, ..] => command.replace('-', "_"),
            [] => unreachable!(),
        };
        harness::assert_run_snapshot!(format!("help_{name}"), run, dir.path());
    }
}

/// The case: a plan saved, then an apply killed after its journal recorded creates
/// (the serial does not move until the journal is folded in). Applying the saved plan must be
/// refused: it was made against a state that no longer is.
#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_refused_after_a_killed_apply_changed_the_journal() {
    const ORGS: usize = 20;
    let sandbox = start(SandboxConfig {
        latency: Duration::from_millis(150),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), ORGS, Some(2), ACME_SECRET);
    orgform(dir.path(), &["plan", "--out", "plan.json"]).expect(0);

    let mut child = harness::orgform(dir.path())
        .args(["apply", "--auto-approve"])
        .env("HERON_API_KEY", orgform::sandbox::HERON_API_KEY)
        .env("ACME_SECRET", "x")
        .spawn();
    // Kill it once its journal holds a change (a header line, then the compressed changes).
    let journal = dir.path().join("state/orgform.state.json.journal");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let changes = std::fs::read(&journal).map_or(0, |bytes| {
            bytes
                .iter()
                .position(|b| *b == b'\n')
                .map_or(0, |end| bytes.len() - end - 1)
        });
        if changes > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the apply never wrote its journal"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill(); // SIGKILL: the journal is never folded into a new serial
    child.wait();

    let stale = orgform(dir.path(), &["apply", "--auto-approve", "plan.json"]).expect(1);
    assert!(
        stale.stderr.contains("stale") && stale.stderr.contains("state changed"),
        "{}",
        stale.stderr
    );

    // A new plan is accepted, and the run converges with every organization once.
    orgform(dir.path(), &["plan", "--out", "plan.json"]).expect(0);
    orgform(dir.path(), &["apply", "--auto-approve", "plan.json"]).expect(0);
    let mut urls = heron_list(&sandbox.base_url()).await;
    urls.sort_unstable();
    let all = urls.len();
    urls.dedup();
    assert_eq!((all, urls.len()), (ORGS, ORGS), "a duplicate or a loss");
    sandbox.shutdown().await.expect("shutdown");
}
