//! Hostile files at every edge where orgform reads or writes the disk: a state path that is a
//! link (two runs through the link and its target must share one lock), links planted beside the
//! state, a state left 0644; spec files that are links out of the specs folder, FIFOs, devices,
//! huge or not text; secret files that are FIFOs, devices or huge. Each through the real binary.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, Instant};

use orgform::sandbox::SandboxConfig;

use crate::e2e::{served, start};
use crate::harness::{Run, orgform};
use crate::heron_fixture::{ACME_SECRET, heron_list, heron_specs};

const HERON_ENV: &[(&str, &str)] = &[
    ("HERON_API_KEY", orgform::sandbox::HERON_API_KEY),
    ("ACME_SECRET", "x"),
];

/// Runs the binary in `dir`, killing it if it runs past `limit` (a FIFO read would hang it).
fn run_within(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut child = orgform(dir).args(args).envs(env).spawn();
    let started = Instant::now();
    while child.try_wait().is_none() {
        if started.elapsed() > limit {
            child.kill();
            let out = child.wait();
            panic!(
                "{args:?} still running after {limit:?}\nstderr:\n{}",
                out.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait()
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

// ---- State paths ----------------------------------------------------------------------------

/// The case: one apply through `link.json`, one through `real/state.json`, at once. The
/// link is resolved, so both lock the real file and take turns: every organization once.
#[tokio::test(flavor = "multi_thread")]
async fn two_applies_through_a_link_and_its_target_create_nothing_twice() {
    const ORGS: usize = 8;
    let sandbox = start(SandboxConfig {
        latency: Duration::from_millis(30),
        heron_rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    heron_specs(&root, &sandbox.base_url(), ORGS, Some(2), ACME_SECRET);
    std::fs::create_dir_all(root.join("real")).expect("mkdir");
    // Dangling until the first write: a link made before the state exists is the usual setup.
    symlink("real/state.json", root.join("link.json")).expect("symlink");

    let children: Vec<_> = ["link.json", "real/state.json"]
        .iter()
        .map(|state| {
            orgform(&root)
                .args([
                    "apply",
                    "--auto-approve",
                    "--lock-timeout",
                    "60s",
                    "--state",
                    state,
                ])
                .envs(HERON_ENV)
                .spawn()
        })
        .collect();
    for child in children {
        child.wait().expect(0);
    }

    let all = heron_list(&sandbox.base_url()).await;
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        (all.len(), unique.len()),
        (ORGS, ORGS),
        "each organization once: {all:?}"
    );
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        ORGS as u64
    );
    // The link is still a link; the lock, journal and backup are the real file's.
    assert!(is_link(&root.join("link.json")), "the link was replaced");
    for stray in ["link.json.lock", "link.json.journal", "link.json.backup"] {
        assert!(!root.join(stray).exists(), "{stray} made beside the link");
    }
    assert!(root.join("real/state.json.lock").exists());

    // A second apply through the link writes the real file and backs it up as a regular file.
    heron_specs(&root, &sandbox.base_url(), ORGS + 1, Some(2), ACME_SECRET);
    let run = |args: &[&str]| crate::harness::run(&root, args, HERON_ENV);
    run(&["apply", "--auto-approve", "--state", "link.json"]).expect(0);
    assert!(is_link(&root.join("link.json")), "the link was replaced");
    let backup = root.join("real/state.json.backup");
    assert!(
        std::fs::symlink_metadata(&backup).is_ok_and(|m| m.file_type().is_file()),
        "the backup is a regular file"
    );
    run(&["plan", "--detailed-exitcode", "--state", "real/state.json"]).expect(0);
    // Migrating from one name of the file to the other is refused at once, not a wait on its
    // own lock.
    let r = run(&[
        "state",
        "migrate",
        "--to",
        "link.json",
        "--state",
        "real/state.json",
        "--lock-timeout",
        "30s",
    ])
    .expect(1);
    assert!(r.stderr.contains("same state file"), "{}", r.stderr);
    sandbox.shutdown().await.expect("shutdown");
}

/// Links planted where the lock, journal and backup go are never written through; the run
/// says what is in the way and creates nothing.
#[tokio::test(flavor = "multi_thread")]
async fn links_beside_the_state_are_never_written_through() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    heron_specs(&root, &sandbox.base_url(), 1, Some(2), ACME_SECRET);
    let run = |args: &[&str]| crate::harness::run(&root, args, HERON_ENV);
    run(&["apply", "--auto-approve", "--state", "state.json"]).expect(0);
    heron_specs(&root, &sandbox.base_url(), 2, Some(2), ACME_SECRET);

    for suffix in ["journal", "lock"] {
        let victim = root.join(format!("victim-{suffix}.txt"));
        std::fs::write(&victim, "precious\n").expect("write victim");
        let planted = root.join(format!("state.json.{suffix}"));
        let _ = std::fs::remove_file(&planted);
        symlink(&victim, &planted).expect("symlink");
        let r = run(&["apply", "--auto-approve", "--state", "state.json"]).expect(1);
        assert!(
            r.stderr.contains(&format!("state.json.{suffix}"))
                && r.stderr.contains("symbolic link"),
            "{suffix}: {}",
            r.stderr
        );
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious\n",
            "written through the {suffix} link"
        );
        assert_eq!(
            served(&sandbox, "heron", "POST /api/crm_integrations").await,
            1,
            "no create with a {suffix} link in the way"
        );
        std::fs::remove_file(&planted).expect("remove link");
    }

    // A backup link is replaced, not written through.
    let victim = root.join("victim-backup.txt");
    std::fs::write(&victim, "precious\n").expect("write victim");
    let _ = std::fs::remove_file(root.join("state.json.backup"));
    symlink(&victim, root.join("state.json.backup")).expect("symlink");
    run(&["apply", "--auto-approve", "--state", "state.json"]).expect(0);
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    assert!(!is_link(&root.join("state.json.backup")));
    sandbox.shutdown().await.expect("shutdown");
}

/// A state file left 0644 (by hand, by a CI cache) is 0600 again after the next write, and so
/// is its backup.
#[tokio::test(flavor = "multi_thread")]
async fn state_and_backup_are_0600_after_every_write() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    heron_specs(&root, &sandbox.base_url(), 1, Some(2), ACME_SECRET);
    let run = |args: &[&str]| crate::harness::run(&root, args, HERON_ENV);
    run(&["apply", "--auto-approve", "--state", "state.json"]).expect(0);
    let state = root.join("state.json");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    heron_specs(&root, &sandbox.base_url(), 2, Some(2), ACME_SECRET);
    run(&["apply", "--auto-approve", "--state", "state.json"]).expect(0);
    assert_eq!(mode(&state), 0o600, "state");
    assert_eq!(mode(&root.join("state.json.backup")), 0o600, "backup");
    sandbox.shutdown().await.expect("shutdown");
}

// ---- Spec files ------------------------------------------------------------------------------

const CANARY: &str = "cnry-hostile-files-7Qz";

/// A spec link to a file outside the specs folder is refused, naming the link; nothing of what
/// it points at is shown: not `/proc/self/environ`, not a secret file that happens to be TOML.
#[test]
fn a_spec_link_out_of_the_specs_folder_is_refused_unquoted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs")).expect("mkdir");
    std::fs::write(root.join("key.toml"), format!("token = \"{CANARY}\"\n")).expect("write");
    for target in [Path::new("/proc/self/environ"), &root.join("key.toml")] {
        let link = root.join("specs/a.toml");
        let _ = std::fs::remove_file(&link);
        symlink(target, &link).expect("symlink");
        for args in [&["validate"][..], &["validate", "--format", "json"]] {
            let r = crate::harness::run(root, args, &[("LEAKY", CANARY)]).expect(1);
            let all = format!("{}{}", r.stdout, r.stderr);
            assert!(!all.contains(CANARY), "{args:?} via {target:?}:\n{all}");
            assert!(
                r.stderr.contains("a.toml") && r.stderr.contains("outside the specs folder"),
                "{}",
                r.stderr
            );
        }
    }
}

/// A link that stays inside the specs folder is followed: specs may share a file that way.
#[test]
fn a_spec_link_inside_the_specs_folder_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    heron_specs(root, "https://api.heron.example", 1, Some(2), ACME_SECRET);
    std::fs::create_dir_all(root.join("specs/shared")).expect("mkdir");
    std::fs::rename(
        root.join("specs/orgs.toml"),
        root.join("specs/shared/orgs.toml.in"),
    )
    .expect("move");
    symlink("shared/orgs.toml.in", root.join("specs/orgs.toml")).expect("symlink");
    let r = crate::harness::run(root, &["validate"], &[]).expect(0);
    assert!(r.stdout.contains("1 organization"), "{}", r.stdout);
}

/// Text that is not UTF-8, or holds control characters TOML never allows (a NUL-separated
/// environment), is reported with its place and without a snippet.
#[test]
fn a_spec_that_is_not_text_is_reported_unquoted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs")).expect("mkdir");
    let cases: [(Vec<u8>, &str); 2] = [
        (
            format!("A=1\0SECRET={CANARY}\0B=2\0").into_bytes(),
            "a.toml:1:4: ",
        ),
        (
            [
                b"[org.a]\nname = \"".as_slice(),
                CANARY.as_bytes(),
                b"\xff\"\n",
            ]
            .concat(),
            "a.toml:2:",
        ),
    ];
    for (bytes, place) in cases {
        std::fs::write(root.join("specs/a.toml"), &bytes).expect("write");
        for args in [&["validate"][..], &["validate", "--format", "json"]] {
            let r = crate::harness::run(root, args, &[]).expect(1);
            let all = format!("{}{}", r.stdout, r.stderr);
            assert!(!all.contains(CANARY), "{args:?}:\n{all}");
            assert!(all.contains(place), "{place}:\n{all}");
        }
    }
}

/// A FIFO is refused at once (not waited on), a device or folder is refused, a file past the
/// cap is refused without being read.
#[test]
fn a_spec_fifo_device_folder_or_huge_file_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs/inner")).expect("mkdir");
    let spec = root.join("specs/a.toml");
    let limit = Duration::from_secs(20);

    mkfifo(&spec);
    let r = run_within(root, &["validate"], &[], limit).expect(1);
    assert!(
        r.stderr.contains("a.toml") && r.stderr.contains("FIFO"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(&spec).expect("rm");

    // A folder by a link inside the specs folder.
    symlink("inner", &spec).expect("symlink");
    let r = run_within(root, &["validate"], &[], limit).expect(1);
    assert!(
        r.stderr.contains("a.toml") && r.stderr.contains("folder"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(&spec).expect("rm");

    // `/dev/zero` through a link (outside the folder, and a device too).
    symlink("/dev/zero", &spec).expect("symlink");
    let r = run_within(root, &["validate"], &[], limit).expect(1);
    assert!(r.stderr.contains("a.toml"), "{}", r.stderr);
    std::fs::remove_file(&spec).expect("rm");

    // 40 MiB, sparse: refused by its size, never read.
    let file = std::fs::File::create(&spec).expect("create");
    file.set_len(40 << 20).expect("set_len");
    let r = run_within(root, &["validate"], &[], limit).expect(1);
    assert!(
        r.stderr.contains("a.toml") && r.stderr.contains("32 MiB"),
        "{}",
        r.stderr
    );
}

// ---- Secret files ----------------------------------------------------------------------------

/// A secret file that is a FIFO, a link to `/dev/zero` or a 1 GiB file: apply stops at once
/// with a clear error, creates nothing, leaves no `pending` intent, and frees the lock.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_fifo_device_or_huge_file_stops_apply_at_once() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    heron_specs(
        &root,
        &sandbox.base_url(),
        1,
        Some(2),
        "{ file = \"secrets/webhook\" }",
    );
    std::fs::create_dir_all(root.join("secrets")).expect("mkdir");
    let secret = root.join("secrets/webhook");
    for expected in ["FIFO", "character device", "64 KiB"] {
        let _ = std::fs::remove_file(&secret);
        match expected {
            "FIFO" => mkfifo(&secret),
            "character device" => symlink("/dev/zero", &secret).expect("symlink"),
            _ => {
                // 1 GiB, sparse: refused by its size, never read.
                let f = std::fs::File::create(&secret).expect("create");
                f.set_len(1 << 30).expect("set_len");
            }
        }
        let r = run_within(
            &root,
            &["apply", "--auto-approve", "--state", "state.json"],
            HERON_ENV,
            Duration::from_secs(20),
        )
        .expect(1);
        assert!(
            r.stderr.contains("secrets/webhook") && r.stderr.contains(expected),
            "{expected}: {}",
            r.stderr
        );
        // Nothing was recorded: no state at all, or one with nothing pending.
        if root.join("state.json").exists() {
            let shown = crate::harness::run(
                &root,
                &["show", "--format", "json", "--state", "state.json"],
                &[],
            )
            .expect(0);
            assert!(!shown.stdout.contains("pending"), "{}", shown.stdout);
        }
    }
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        0
    );
    // A secret file reached through a link is read.
    std::fs::remove_file(&secret).expect("rm");
    std::fs::write(root.join("secrets/real"), "webhook-secret\n").expect("write");
    symlink("real", &secret).expect("symlink");
    crate::harness::run(
        &root,
        &["apply", "--auto-approve", "--state", "state.json"],
        HERON_ENV,
    )
    .expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

/// A saved plan that is a FIFO or a device is refused at once, before the state is locked,
/// never waited on; a plan file is read like the other files a user names.
#[test]
fn a_saved_plan_that_is_a_fifo_or_device_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("specs")).expect("mkdir");
    let limit = Duration::from_secs(20);
    mkfifo(&root.join("plan.json"));
    let r = run_within(root, &["apply", "plan.json"], &[], limit).expect(1);
    assert!(
        r.stderr.contains("plan.json") && r.stderr.contains("FIFO"),
        "{}",
        r.stderr
    );
    symlink("/dev/zero", root.join("zero.json")).expect("symlink");
    let r = run_within(root, &["apply", "zero.json"], &[], limit).expect(1);
    assert!(
        r.stderr.contains("zero.json") && r.stderr.contains("device"),
        "{}",
        r.stderr
    );
    assert!(
        !root.join("state/orgform.state.json.lock").exists(),
        "the state was locked before the plan file was read"
    );
}

/// A state path that is a FIFO or a folder is refused before anything is made beside it: a
/// lock file was created next to it first (`--state /dev/zero` made `/dev/zero.lock`).
#[test]
fn a_state_path_that_is_no_regular_file_gets_nothing_made_beside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    mkfifo(&dir.path().join("fifo.json"));
    std::fs::create_dir_all(dir.path().join("folder.json")).expect("mkdir");
    for state in ["fifo.json", "folder.json"] {
        for args in [
            &["apply", "--sandbox", "--auto-approve", "--state", state][..],
            &["forget", "--state", state, "x"],
        ] {
            let out = run_within(dir.path(), args, &[], Duration::from_secs(60)).expect(1);
            assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
            assert!(
                !dir.path().join(format!("{state}.lock")).exists(),
                "{args:?} made a lock beside {state}"
            );
        }
    }
}
