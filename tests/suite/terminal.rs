//! What a person at a terminal sees, and what a CI log gets instead, through the real binary.
//!
//! On a terminal (a pseudo-terminal from `script`, which every Debian has, with Ctrl-C typed into
//! it): the apply bar ticks on a timer while a rate limit holds, counting down to when it ends,
//! and says what it waits for after Ctrl-C; plans are coloured unless `NO_COLOR`. Off a terminal:
//! the same waits as plain lines and no escape code anywhere, logs included. A held state lock
//! (file or PostgreSQL) is said after a second, with its holder. A certificate that is not
//! trusted is one line, exit 1, after one connection; a connection refused names the instance
//! and the URL.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orgform::sandbox::SandboxConfig;
use orgform::state::LockInfo;
use orgform::state::postgres::PostgresBackend;

use crate::e2e::start;
use crate::heron_fixture::{ACME_SECRET, heron_specs};
use crate::state_stores::pg_url;

/// The secrets the specs here reference.
const SECRETS: &[(&str, &str)] = &[
    ("HERON_API_KEY", orgform::sandbox::HERON_API_KEY),
    ("ACME_SECRET", "s3cret-acme-webhook-value"),
];

/// Runs `orgform ARGS` on a pseudo-terminal 160 columns wide, in `dir`. With `ctrl_c`, types
/// Ctrl-C into the terminal `delay` after the screen first shows `text`. Gives everything the
/// terminal showed (escape codes and all) and the exit code.
fn on_terminal(
    dir: &Path,
    args: &str,
    colour: bool,
    ctrl_c: Option<(&str, Duration)>,
) -> (String, i32) {
    let driver = dir.join("pty.sh");
    std::fs::write(
        &driver,
        r#"set -u
rm -f keys screen.log
mkfifo keys
export TERM=xterm-256color
script -qfec 'stty cols 160 rows 40; exec "$ORGFORM" '"$ARGS" /dev/null < keys > screen.log 2>&1 &
running=$!
exec 3> keys
if [ -n "$CTRL_C_AFTER" ]; then
  for _ in $(seq 1 1200); do
    if grep -qF -- "$CTRL_C_AFTER" screen.log; then break; fi
    sleep 0.1
  done
  sleep "$CTRL_C_DELAY"
  printf '\003' >&3
fi
code=0
wait "$running" || code=$?
exec 3>&-
cat screen.log
printf '\nexit: %s\n' "$code"
"#,
    )
    .unwrap();
    let (after, delay) = ctrl_c.map_or((String::new(), 0.0), |(text, delay)| {
        (text.to_string(), delay.as_secs_f64())
    });
    let mut run = crate::harness::script(dir, &driver)
        .envs(SECRETS)
        .env("ARGS", args)
        .env("CTRL_C_AFTER", &after)
        .env("CTRL_C_DELAY", &delay.to_string());
    if colour {
        run = run.env_remove("NO_COLOR");
    }
    let run = run.run().expect(0);
    let (screen, code) = run
        .stdout
        .trim_end()
        .rsplit_once("\nexit: ")
        .unwrap_or_else(|| panic!("no exit code in:\n{}", run.stdout));
    (screen.to_string(), code.trim().parse().unwrap())
}

/// Each state the bar was drawn in: the screen cut at carriage returns and line breaks, the
/// pieces that hold the bar.
fn bar_frames(screen: &str) -> Vec<&str> {
    screen
        .split(['\r', '\n'])
        .filter(|piece| piece.contains(" organizations ["))
        .collect()
}

/// The distinct texts between `open` and `close` in `frames`.
fn distinct_between(
    frames: &[&str],
    open: &str,
    close: char,
) -> std::collections::BTreeSet<String> {
    frames
        .iter()
        .filter_map(|frame| {
            let rest = &frame[frame.find(open)? + open.len()..];
            Some(rest[..rest.find(close)?].to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bar_ticks_through_a_rate_limit_and_ctrl_c_ends_the_wait() {
    // One request a minute: the plan's read takes it, so the create waits out the rest of the
    // minute, the sandbox answering 429 with Retry-After.
    let sandbox = start(SandboxConfig {
        heron_rate_limit: 1,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    heron_specs(dir.path(), &sandbox.base_url(), 1, None, ACME_SECRET);
    let started = Instant::now();
    let (screen, code) = on_terminal(
        dir.path(),
        "apply --auto-approve",
        true,
        Some(("the rate limit of `heron`", Duration::from_secs(4))),
    );
    assert_eq!(code, 1, "{screen}");
    // The plan is coloured on a terminal: its action in green.
    assert!(screen.contains("\x1b[32m+ create\x1b[0m"), "{screen:?}");
    let frames = bar_frames(&screen);
    let waiting: Vec<&str> = frames
        .iter()
        .copied()
        .filter(|f| {
            f.contains("waiting for the rate limit of `heron` until ") && f.contains(" UTC (in ")
        })
        .collect();
    // Nothing finished in those seconds, yet the bar moved: its clock and the countdown.
    let clocks = distinct_between(&waiting, "organizations [", ']');
    assert!(
        clocks.len() >= 3,
        "the bar's clock stood still: {clocks:?}\n{screen:?}"
    );
    let countdown = distinct_between(&waiting, " UTC (in ", ')');
    assert!(
        countdown.len() >= 2,
        "no countdown: {countdown:?}\n{screen:?}"
    );
    assert!(
        waiting.iter().all(|f| f.contains("0/1 organizations")),
        "{waiting:?}"
    );
    // Ctrl-C ends the wait at once: the create was never sent, and the run says so.
    assert!(
        screen.contains("Interrupted: no new creates will start"),
        "{screen}"
    );
    assert!(
        screen.contains("o000: not started: interrupted before its create was sent"),
        "{screen}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "Ctrl-C did not end the rate-limit wait: {:?}",
        started.elapsed()
    );
    assert_eq!(
        crate::e2e::served(&sandbox, "heron", "POST /api/crm_integrations").await,
        1,
        "only the create that met the rate limit"
    );
    sandbox.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn after_ctrl_c_the_bar_says_which_creates_it_waits_for() {
    // Every request takes two seconds: Ctrl-C lands while the create is in flight.
    let sandbox = start(SandboxConfig {
        latency: Duration::from_secs(2),
        heron_rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    heron_specs(dir.path(), &sandbox.base_url(), 1, None, ACME_SECRET);
    let (screen, code) = on_terminal(
        dir.path(),
        "apply --auto-approve",
        false,
        Some(("Plan digest", Duration::from_millis(600))),
    );
    // Stopped early, with what was in flight finished and recorded.
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("o000: created ("), "{screen}");
    assert!(
        bar_frames(&screen)
            .iter()
            .any(|f| f.contains("interrupted, waiting for 1 create in flight to finish")),
        "{screen:?}"
    );
    // NO_COLOR: nothing but the bar's own cursor work; the plan has no colour.
    assert!(!screen.contains("\x1b[32m"), "{screen:?}");
    sandbox.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn off_a_terminal_waits_are_plain_lines_without_escape_codes() {
    let sandbox = start(SandboxConfig {
        heron_rate_limit: 1,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    heron_specs(dir.path(), &sandbox.base_url(), 1, None, ACME_SECRET);
    // Colour allowed, but stdout and stderr are pipes: no escape code may appear.
    let mut spawned = crate::harness::orgform(dir.path())
        .envs(SECRETS)
        .env_remove("NO_COLOR")
        .args(["apply", "--auto-approve", "-vv"])
        .spawn();
    let mut stderr = BufReader::new(spawned.take_stderr()).lines();
    let mut lines = Vec::new();
    for line in stderr.by_ref() {
        let line = line.unwrap();
        let waiting = line.starts_with("Waiting for the rate limit of `heron` until ");
        lines.push(line);
        if waiting {
            break;
        }
    }
    let said = lines.join("\n");
    assert!(
        said.contains("Waiting for the rate limit of `heron` until ") && said.contains(" UTC (in "),
        "{said}"
    );
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &spawned.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let rest: Vec<String> = stderr.map(Result::unwrap).collect();
    let rest = rest.join("\n");
    spawned.check("stderr", &format!("{said}\n{rest}"));
    let run = spawned.wait().expect(1);
    let all = format!("{said}\n{rest}\n{}", run.stdout);
    assert!(
        !all.contains('\x1b'),
        "an escape code off a terminal: {all:?}"
    );
    assert!(run.stdout.contains("+ create"), "{}", run.stdout);
    assert!(
        rest.contains("o000: not started: interrupted before its create was sent"),
        "{rest}"
    );
    sandbox.shutdown().await.unwrap();
}

/// Takes the lock of the state file in `dir` as another run would, recording its holder.
fn hold_file_lock(dir: &Path) -> std::fs::File {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let lock_path = dir.join("state/orgform.state.json.lock");
    let lock = std::fs::File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    std::fs::write(
        &lock_path,
        r#"{"id":"abc","host":"ci-runner-7","pid":4242,"command":"orgform apply --auto-approve","since":"2026-09-21T10:00:00Z"}"#,
    )
    .unwrap();
    lock
}

const LOCK_SAID: &str = "Acquiring state lock... (held by `orgform apply --auto-approve` (pid 4242 on ci-runner-7, since 2026-09-21T10:00:00Z, lock id abc)); waiting up to";

#[tokio::test(flavor = "multi_thread")]
async fn a_held_file_lock_is_said_after_a_second_and_waited_for() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    heron_specs(dir.path(), &sandbox.base_url(), 1, None, ACME_SECRET);
    let lock = hold_file_lock(dir.path());
    let started = Instant::now();
    let mut spawned = crate::harness::orgform(dir.path())
        .envs(SECRETS)
        .args(["apply", "--auto-approve", "--lock-timeout", "30s"])
        .spawn();
    let mut stderr = BufReader::new(spawned.take_stderr());
    let mut first = String::new();
    while !first.starts_with("Acquiring") {
        first.clear();
        assert!(stderr.read_line(&mut first).unwrap() > 0, "ended unsaid");
    }
    let said_after = started.elapsed();
    assert!(first.starts_with(LOCK_SAID), "{first}");
    assert!(
        first.contains("waiting up to 30s (--lock-timeout)"),
        "{first}"
    );
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(10)).contains(&said_after),
        "said after {said_after:?}"
    );
    // Still waiting: the lock, freed, is taken and the apply goes on.
    std::thread::sleep(Duration::from_millis(500));
    assert!(spawned.try_wait().is_none(), "gave up before the timeout");
    drop(lock);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    spawned.check("stderr", &rest);
    let run = spawned.wait().expect(0);
    assert!(!rest.contains("Acquiring state lock"), "said twice: {rest}");
    assert!(rest.contains("o000: created ("), "{rest}\n{}", run.stdout);
    sandbox.shutdown().await.unwrap();
}

#[test]
fn a_lock_timeout_of_a_second_says_only_the_error() {
    let dir = tempfile::tempdir().unwrap();
    heron_specs(dir.path(), "http://127.0.0.1:9", 1, None, ACME_SECRET);
    let _lock = hold_file_lock(dir.path());
    let run = crate::harness::orgform(dir.path())
        .envs(SECRETS)
        .args(["apply", "--auto-approve", "--lock-timeout", "1s"])
        .run()
        .expect(1);
    assert!(
        !run.stderr.contains("Acquiring state lock"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("state is locked by"), "{}", run.stderr);
}

#[test]
fn a_held_file_lock_is_said_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    heron_specs(dir.path(), "http://127.0.0.1:9", 1, None, ACME_SECRET);
    let _lock = hold_file_lock(dir.path());
    let (screen, code) = on_terminal(
        dir.path(),
        "apply --auto-approve --lock-timeout 3s",
        false,
        None,
    );
    assert_eq!(code, 1, "{screen}");
    assert_eq!(
        screen.matches("Acquiring state lock...").count(),
        1,
        "{screen}"
    );
    assert!(screen.contains(LOCK_SAID), "{screen}");
    assert!(screen.contains("state is locked by"), "{screen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_postgres_lock_is_said_after_a_second() {
    let workspace = format!("terminal-{}", fastrand::u64(..));
    let holder = LockInfo {
        id: "other-run".into(),
        host: "ci-runner-7".into(),
        pid: 4242,
        command: "orgform apply --auto-approve".into(),
        since: 1_790_000_000,
    };
    let mut other = PostgresBackend::connect(&pg_url(), &workspace, holder)
        .await
        .unwrap();
    other.lock(Duration::from_secs(5)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    heron_specs(dir.path(), "http://127.0.0.1:9", 1, None, ACME_SECRET);
    let url = pg_url();
    let dir_path = dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        crate::harness::orgform(&dir_path)
            .envs(SECRETS)
            .args([
                "apply",
                "--auto-approve",
                "--state",
                &url,
                "--workspace",
                &workspace,
                "--lock-timeout",
                "3s",
            ])
            .run()
    })
    .await
    .unwrap()
    .expect(1);
    assert_eq!(
        run.stderr.matches("Acquiring state lock...").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Acquiring state lock... (held by `orgform apply --auto-approve` (pid 4242 on ci-runner-7")
            && run.stderr.contains("lock id other-run)); waiting up to 3s (--lock-timeout)."),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("state is locked by"), "{}", run.stderr);
    other.unlock().await.unwrap();
}

/// A certificate for 127.0.0.1 that no authority signed (made once with openssl for these
/// tests; it expires in 2126).
const UNTRUSTED_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBuDCCAV2gAwIBAgIULEc2pDAH9g23Prfes5JhQGztro4wCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMb3JnZm9ybSB0ZXN0MCAXDTI2MTIwMzEyNTcxM1oYDzIxMjYx
MTA5MTI1NzEzWjAXMRUwEwYDVQQDDAxvcmdmb3JtIHRlc3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAQ6cXmdYyXdwNKOLwwAaq0VGnw1WUPva2xbUYob6KftI3lO
lPQVf3j3QQKURTV1/r+CTq+i3oyE1tlot/kG6ECMo4GEMIGBMB0GA1UdDgQWBBTN
uoiuFLZh2GAhPq58QyKfLa6iTjAfBgNVHSMEGDAWgBTNuoiuFLZh2GAhPq58QyKf
La6iTjAPBgNVHREECDAGhwR/AAABMAwGA1UdEwEB/wQCMAAwCwYDVR0PBAQDAgeA
MBMGA1UdJQQMMAoGCCsGAQUFBwMBMAoGCCqGSM49BAMCA0kAMEYCIQCmMBfuNXSs
Y8j4zQN0Hhl2tzXYTrAM5zJbw2VcS3mIJAIhAPBz/AMefWOvHQ7xYIRQ4sKV4CDi
lXZDQqGzp5MgCy2O
-----END CERTIFICATE-----
";

/// Its key: a throwaway for a loopback test server, protecting nothing.
const UNTRUSTED_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgYmkolu9H1jVZkm80
8ruEwSdyDgToNotr/siVG1paOTKhRANCAAQ6cXmdYyXdwNKOLwwAaq0VGnw1WUPv
a2xbUYob6KftI3lOlPQVf3j3QQKURTV1/r+CTq+i3oyE1tlot/kG6ECM
-----END PRIVATE KEY-----
";

/// An HTTPS server on loopback with [`UNTRUSTED_CERT`]: its port, and the connections it
/// accepted so far.
fn serve_untrusted_tls() -> (u16, Arc<AtomicUsize>) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = CertificateDer::from_pem_slice(UNTRUSTED_CERT.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(UNTRUSTED_KEY.as_bytes()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(mut tls) = rustls::ServerConnection::new(config) else {
                    return;
                };
                // Until the client gives up on the certificate and hangs up.
                while tls.complete_io(&mut stream).is_ok() && tls.is_handshaking() {}
            });
        }
    });
    (port, accepted)
}

/// Specs with one Heron instance, `heron_prod`, at `base_url`.
fn heron_prod_specs(dir: &Path, base_url: &str) {
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(
        dir.join("specs/heron.toml"),
        format!(
            "[provider.heron_prod]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n\n[org.acme]\nprovider = \"heron_prod\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://acme.example.com\"\nauth = {{}}\nsecret = {ACME_SECRET}\nconfig = {{}}\n"
        ),
    )
    .unwrap();
}

#[test]
fn an_untrusted_certificate_is_one_line_exit_1_and_not_retried() {
    let (port, accepted) = serve_untrusted_tls();
    let dir = tempfile::tempdir().unwrap();
    heron_prod_specs(dir.path(), &format!("https://127.0.0.1:{port}/"));
    let started = Instant::now();
    let run = crate::harness::orgform(dir.path())
        .envs(SECRETS)
        .env_remove("NO_COLOR")
        .arg("plan")
        .run()
        .expect(1);
    // One connection: the handshake failed, and nothing was sent again.
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // No log lines from the TLS library, no colour off a terminal: the error alone, its cause
    // on one line.
    assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("certificate"))
        .collect();
    assert_eq!(said.len(), 1, "{}", run.stderr);
    assert!(
        said[0].contains(&format!(
            "could not connect to provider `heron_prod` at https://127.0.0.1:{port}/api/crm_integrations: its TLS certificate is not valid (invalid peer certificate: "
        )) && said[0].ends_with("; not retried"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_refused_connection_names_the_instance_and_url_and_logs_stay_plain_when_piped() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    heron_prod_specs(dir.path(), &format!("http://127.0.0.1:{port}/"));
    let run = crate::harness::orgform(dir.path())
        .envs(SECRETS)
        .env_remove("NO_COLOR")
        .args(["plan", "-vv"])
        .run()
        .expect(1);
    assert!(
        run.stderr.contains(&format!(
            "could not connect to provider `heron_prod` at http://127.0.0.1:{port}/api/crm_integrations: "
        )),
        "{}",
        run.stderr
    );
    // The retries are logged (debug), and a pipe gets them without colour.
    assert!(run.stderr.contains("retrying"), "{}", run.stderr);
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
}
