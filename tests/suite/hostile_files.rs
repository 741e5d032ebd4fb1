//! Hostile files at every edge where orgform reads or writes the disk: a state path that is a
//! link (two runs through the link and its target must share one lock), links planted beside the
//! state, a state left 0644; spec files that are links out of the specs folder, FIFOs, devices,
//! huge or not text; secret files that are FIFOs, devices or huge. Each through the real binary.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use orgform::sandbox::SandboxConfig;

use crate::e2e::{served, start};
use crate::harness::{Run, command};

const HERON_ENV: &[(&str, &str)] = &[
    ("HERON_API_KEY", orgform::sandbox::HERON_API_KEY),
    ("ACME_SECRET", "x"),
];

/// Specs for `n` Heron organizations at `base_url`, their secret read from `secret`.
fn heron_specs(dir: &Path, base_url: &str, n: usize, secret: &str) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let mut text = format!(
        "[provider.heron]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\nmax_concurrency = 2\n"
    );
    for i in 0..n {
        text.push_str(&format!(
            "\n[org.o{i:03}]\nprovider = \"heron\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://o{i:03}.example.com\"\nauth = {{}}\nsecret = {secret}\nconfig = {{}}\n"
        ));
    }
    std::fs::write(specs.join("orgs.toml"), text).expect("write specs");
}

/// Runs the binary in `dir`, killing it if it runs past `limit` (a FIFO read would hang it).
fn run_within(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut child = command(dir, args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn orgform");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "{args:?} still running after {limit:?}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run::from(child.wait_with_output().expect("wait"))
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
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
    heron_specs(
        root,
        "https://api.heron.example",
        1,
        "{ env = \"ACME_SECRET\" }",
    );
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
        "{ file = \"secrets/webhook\" }",
    );
    std::fs::create_dir_all(root.join("secrets")).expect("mkdir");
    let secret = root.join("secrets/webhook");
    let setups: [(&str, &dyn Fn(&Path)); 3] = [
        ("FIFO", &|p| mkfifo(p)),
        ("character device", &|p| {
            symlink("/dev/zero", p).expect("symlink");
        }),
        ("64 KiB", &|p| {
            let f = std::fs::File::create(p).expect("create");
            f.set_len(1 << 30).expect("set_len");
        }),
    ];
    for (expected, setup) in setups {
        let _ = std::fs::remove_file(&secret);
        setup(&secret);
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
        let shown = crate::harness::run(
            &root,
            &["show", "--format", "json", "--state", "state.json"],
            &[],
        )
        .expect(0);
        assert!(!shown.stdout.contains("pending"), "{}", shown.stdout);
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
