//! The one door to the real `orgform` binary: every test runs it through [`orgform`] (or the CI
//! example scripts through [`script`]), which starts it in a folder with stdin closed, no
//! `RUST_LOG`, `ORGFORM_ALLOWED_HOSTS` or `COLUMNS`, `NO_COLOR`, and the given environment, and which
//! scans everything each run printed for the secrets it knows of.
//!
//! Which values are secret (the rule the scanner applies):
//! - every environment variable a test exports whose name's last `_`-separated word is one of
//!   [`SECRET_WORDS`] (`HERON_API_KEY`, `SF_CLIENT_SECRET`, `DB_PASSWORD`, `SF_TOKEN`,
//!   `TMO_PRIVATE_KEY`, `SF_PW`...), plus any value a test names with [`Orgform::secret`];
//! - the sandbox's own credentials ([`SANDBOX_SECRETS`]), whether or not the test exports them:
//!   the embedded sandbox hands them to the providers itself. The one run meant to print them
//!   (`orgform sandbox --help`, which tells a user what to log in with) says so with
//!   [`Orgform::shows_sandbox_credentials`].
//!
//! A value shorter than [`MIN_SECRET_LEN`] is not looked for (a test's `ACME_SECRET=x` would be
//! found in every output). A value is looked for as written and base64-encoded (a basic auth
//! header or Commvault's password on the wire). A leak fails the test naming the variable and
//! the stream, never printing the value.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Output, Stdio};

use base64::Engine as _;

/// The last word of an environment variable's name that makes its value secret.
pub const SECRET_WORDS: &[&str] = &[
    "KEY",
    "SECRET",
    "PASSWORD",
    "PASSPHRASE",
    "PASS",
    "PW",
    "TOKEN",
    "CREDENTIAL",
    "CREDENTIALS",
];

/// Values shorter than this are not looked for: they would match by chance (a test's
/// `SF_SECRET=secret` is a word every JSON plan holds).
pub const MIN_SECRET_LEN: usize = 8;

/// The credentials the sandbox emulators accept, by the name of their constant.
pub const SANDBOX_SECRETS: &[(&str, &str)] = &[
    (
        "orgform::sandbox::HERON_API_KEY",
        orgform::sandbox::HERON_API_KEY,
    ),
    (
        "orgform::sandbox::commvault::PASSWORD",
        orgform::sandbox::commvault::PASSWORD,
    ),
    (
        "orgform::sandbox::salesforce::PASSWORD",
        orgform::sandbox::salesforce::PASSWORD,
    ),
    (
        "orgform::sandbox::salesforce::CLIENT_SECRET",
        orgform::sandbox::salesforce::CLIENT_SECRET,
    ),
    (
        "orgform::sandbox::neoncrm::API_KEY",
        orgform::sandbox::neoncrm::API_KEY,
    ),
    (
        "orgform::sandbox::oracle::APP_KEY",
        orgform::sandbox::oracle::APP_KEY,
    ),
];

/// Whether an environment variable's name says its value is secret.
pub fn is_secret_name(name: &str) -> bool {
    let last = name.rsplit('_').next().unwrap_or(name);
    SECRET_WORDS
        .iter()
        .any(|word| last.eq_ignore_ascii_case(word))
}

/// The secret values one run must never print, each with the name a leak is reported under.
#[derive(Clone, Default)]
pub struct Scanner {
    secrets: Vec<(String, String)>,
}

impl Scanner {
    /// The sandbox's credentials, and nothing else yet.
    pub fn new() -> Scanner {
        let mut scanner = Scanner::default();
        for (name, value) in SANDBOX_SECRETS {
            scanner.watch(name, value);
        }
        scanner
    }

    /// Looks for `value` too, reported as `name`, if it is long enough to be found only by a leak.
    pub fn watch(&mut self, name: &str, value: &str) {
        if value.len() >= MIN_SECRET_LEN {
            self.secrets.push((name.to_string(), value.to_string()));
        }
    }

    /// Looks for an exported variable's value if its name says it is secret.
    pub fn watch_env(&mut self, name: &str, value: &str) {
        if is_secret_name(name) {
            self.watch(name, value);
        }
    }

    /// The first leak in `text`, as "`name` (as written|base64)", if any.
    pub fn find(&self, text: &str) -> Option<String> {
        let engine = base64::engine::general_purpose::STANDARD;
        self.secrets.iter().find_map(|(name, value)| {
            if text.contains(value.as_str()) {
                Some(format!("{name} (as written)"))
            } else if text.contains(&engine.encode(value)) {
                Some(format!("{name} (base64)"))
            } else {
                None
            }
        })
    }

    /// Fails the test if `text` (what `stream` of `what` printed) holds a secret.
    #[track_caller]
    pub fn check(&self, what: &str, stream: &str, text: &str) {
        if let Some(leak) = self.find(text) {
            // The command line may carry the value too: it is shown without it.
            let what = self.redact(what);
            panic!("`{what}` leaked the value of {leak} on {stream}");
        }
    }

    fn check_run(&self, what: &str, run: &Run) {
        self.check(what, "stdout", &run.stdout);
        self.check(what, "stderr", &run.stderr);
    }

    /// `text` with every watched value replaced by `***`.
    fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |text, (_, value)| {
                text.replace(value, "***")
            })
    }
}

/// What one run of the binary printed, and how it exited.
pub struct Run {
    /// The command line, as `orgform ARGS` (a secret value in it shown as `***`).
    pub command: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(command: String, output: &Output) -> Run {
        Run {
            command,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Checks the exit code, showing everything the run printed if it is not `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// The command, its exit code, stdout then stderr: a whole run to snapshot.
    pub fn transcript(&self) -> String {
        format!(
            "$ {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// One run of the binary (or of a script that runs it), being set up.
pub struct Orgform {
    cmd: Command,
    what: String,
    stdin: Option<Vec<u8>>,
    scanner: Scanner,
    /// `ORGFORM_CACHE_DIR` for this run (see [`spec_cache_for`]).
    cache: std::ffi::OsString,
}

/// The spec cache of runs in `dir`: the test's own, inside its temporary folder (so every run
/// of one test after the first reads its unchanged spec files back, as a user's would, and no
/// test sees another's); off for a folder that is not temporary (the repository's own).
pub fn spec_cache_for(dir: &Path) -> std::ffi::OsString {
    let temporary = std::fs::canonicalize(std::env::temp_dir()).ok();
    match (std::fs::canonicalize(dir), temporary) {
        (Ok(dir), Some(temporary)) if dir.starts_with(&temporary) && dir != temporary => {
            dir.join(".orgform-cache").into_os_string()
        }
        _ => "off".into(),
    }
}

/// The binary, to run in `dir`.
pub fn orgform(dir: &Path) -> Orgform {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orgform"));
    let cache = spec_cache_for(dir);
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        // A developer's or CI's own list would change what the specs may name.
        .env_remove("ORGFORM_ALLOWED_HOSTS")
        // A terminal's width would change where help and messages wrap.
        .env_remove("COLUMNS")
        .env("ORGFORM_CACHE_DIR", &cache)
        .env("NO_COLOR", "1");
    Orgform {
        cmd,
        what: "orgform".into(),
        stdin: None,
        scanner: Scanner::new(),
        cache,
    }
}

/// A bash script run in `dir` with `ORGFORM` naming the binary, as the CI examples expect.
pub fn script(dir: &Path, script: &Path) -> Orgform {
    let mut cmd = Command::new("bash");
    let cache = spec_cache_for(dir);
    cmd.arg(script)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ORGFORM_ALLOWED_HOSTS")
        .env("ORGFORM", env!("CARGO_BIN_EXE_orgform"))
        .env("ORGFORM_CACHE_DIR", &cache)
        .env("NO_COLOR", "1");
    Orgform {
        cmd,
        what: format!("bash {}", script.display()),
        stdin: None,
        scanner: Scanner::new(),
        cache,
    }
}

impl Orgform {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Orgform {
        self.what.push(' ');
        self.what.push_str(&arg.as_ref().to_string_lossy());
        self.cmd.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Orgform {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    /// Exports `name`; its value is looked for in the output if the name says it is secret.
    pub fn env(mut self, name: &str, value: &str) -> Orgform {
        self.scanner.watch_env(name, value);
        self.cmd.env(name, value);
        self
    }

    pub fn envs(mut self, env: &[(&str, &str)]) -> Orgform {
        for (name, value) in env {
            self = self.env(name, value);
        }
        self
    }

    pub fn env_remove(mut self, name: &str) -> Orgform {
        self.cmd.env_remove(name);
        self
    }

    /// Starts from an empty environment, as a new user's shell might (`NO_COLOR` and the test's
    /// own spec cache kept).
    pub fn env_clear(mut self) -> Orgform {
        self.cmd
            .env_clear()
            .env("NO_COLOR", "1")
            .env("ORGFORM_CACHE_DIR", &self.cache);
        self
    }

    /// Lets this run print the sandbox's own credentials, as `orgform sandbox --help` documents
    /// them; every other secret is still looked for.
    pub fn shows_sandbox_credentials(mut self) -> Orgform {
        self.scanner
            .secrets
            .retain(|(name, _)| !SANDBOX_SECRETS.iter().any(|(known, _)| known == name));
        self
    }

    /// Looks for `value` in the output too, though it is not exported (a secret in a file).
    pub fn secret(mut self, name: &str, value: &str) -> Orgform {
        self.scanner.watch(name, value);
        self
    }

    /// Writes `bytes` to stdin, then closes it (stdin is closed at once otherwise).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Orgform {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs to the end; fails the test if the output holds a secret.
    #[track_caller]
    pub fn run(self) -> Run {
        let mut spawned = self.spawn();
        if let Some(child) = spawned.child.as_mut()
            && let Some(mut stdin) = child.stdin.take()
        {
            let bytes = spawned.stdin.take().unwrap_or_default();
            // Written from a thread: a child that prints a lot before reading would block both.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        spawned.wait()
    }

    /// Starts the run with stdout and stderr piped; [`Spawned::wait`] collects and scans them.
    #[track_caller]
    pub fn spawn(mut self) -> Spawned {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.what));
        Spawned {
            child: Some(child),
            what: self.what,
            stdin: self.stdin,
            scanner: self.scanner,
        }
    }
}

/// A run started in the background: killed and reaped when dropped, unless waited for.
pub struct Spawned {
    child: Option<Child>,
    what: String,
    stdin: Option<Vec<u8>>,
    scanner: Scanner,
}

impl Spawned {
    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("not waited for yet")
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child().kill();
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child().try_wait().expect("wait")
    }

    /// Takes stderr to read as it comes; the caller hands what it read to [`Spawned::check`].
    pub fn take_stderr(&mut self) -> ChildStderr {
        self.child().stderr.take().expect("stderr piped")
    }

    /// Takes stdout to read as it comes; the caller hands what it read to [`Spawned::check`].
    pub fn take_stdout(&mut self) -> ChildStdout {
        self.child().stdout.take().expect("stdout piped")
    }

    /// Fails the test if `text`, read from the run's `stream`, holds a secret.
    #[track_caller]
    pub fn check(&self, stream: &str, text: &str) {
        self.scanner.check(&self.what, stream, text);
    }

    /// Waits for the end; gives what it printed, after failing the test if that holds a secret.
    #[track_caller]
    pub fn wait(mut self) -> Run {
        let child = self.child.take().expect("waited for once");
        let output = child.wait_with_output().expect("wait for orgform");
        let run = Run::from_output(self.scanner.redact(&self.what), &output);
        self.scanner.check_run(&self.what, &run);
        run
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Snapshot settings that make a run's text the same on every machine and every run: the
/// folders named replaced by `[DIR]` (the repository by `[REPO]`), picked ports by `[PORT]`,
/// digests by `[DIGEST]`, ids made at random by `[UUID]`, instants by `[TIME]`, process ids by
/// `[PID]`.
pub fn snapshot_settings(dirs: &[&Path]) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(true);
    settings.set_omit_expression(true);
    let mut folders: Vec<(String, &str)> = Vec::new();
    for dir in dirs {
        folders.push((dir.display().to_string(), "[DIR]"));
        if let Ok(real) = dir.canonicalize() {
            folders.push((real.display().to_string(), "[DIR]"));
        }
    }
    folders.push((env!("CARGO_MANIFEST_DIR").to_string(), "[REPO]"));
    // Longest first, so that a folder inside another is replaced whole.
    folders.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    for (path, name) in folders {
        settings.add_filter(&regex_literal(&path), name);
    }
    // A port the system picked (its ephemeral range is five digits); `:0` and `:8787` stay.
    settings.add_filter(r"(127\.0\.0\.1|localhost):[1-6]\d{4}\b", "$1:[PORT]");
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[DIGEST]");
    // A digest shortened for people (a plan comment's footer): the plan's lineage is random.
    settings.add_filter(r"(digest\W{0,3})[0-9a-f]{16}\b", "$1[DIGEST]");
    settings.add_filter(
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        "[UUID]",
    );
    settings.add_filter(
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?",
        "[TIME]",
    );
    settings.add_filter(r"\bpid \d+", "pid [PID]");
    settings
}

/// `text` as a regular expression that matches it literally.
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Compares a whole run (command, exit code, stdout, stderr) with its committed snapshot in
/// `tests/suite/snapshots/`, normalised by [`snapshot_settings`] for the folders given.
macro_rules! assert_run_snapshot {
    ($name:expr, $run:expr, $($dir:expr),+ $(,)?) => {
        $crate::harness::snapshot_settings(&[$($dir),+])
            .bind(|| insta::assert_snapshot!($name, $run.transcript()))
    };
}
pub(crate) use assert_run_snapshot;

/// Runs the binary in `dir` with `env` exported, on the specs and state found there by default.
#[track_caller]
pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    orgform(dir).args(args).envs(env).run()
}

/// Runs the binary on `DIR/specs` and `DIR/state.json`, named on its command line.
#[track_caller]
pub fn run_on(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    orgform(dir)
        .args(args)
        .arg("--specs")
        .arg(dir.join("specs"))
        .arg("--state")
        .arg(dir.join("state.json"))
        .envs(env)
        .run()
}

#[test]
fn secret_names_follow_the_rule() {
    for name in [
        "HERON_API_KEY",
        "SF_CLIENT_SECRET",
        "DB_PASSWORD",
        "SF_TOKEN",
        "TMO_PRIVATE_KEY",
        "SF_PW",
        "TOKEN",
    ] {
        assert!(is_secret_name(name), "{name}");
    }
    for name in [
        "SF_USERNAME",
        "NEON_ORG_ID",
        "PATH",
        "PWD",
        "KEYRING_DIR",
        "NO_COLOR",
    ] {
        assert!(!is_secret_name(name), "{name}");
    }
}

#[test]
fn the_scanner_finds_a_secret_as_written_or_base64_and_ignores_short_values() {
    let mut scanner = Scanner::new();
    scanner.watch_env("ACME_SECRET", "x");
    scanner.watch_env("SF_USERNAME", "someone@example.com");
    scanner.watch_env("DB_PASSWORD", "hunter2-long");
    assert_eq!(scanner.find("nothing here x someone@example.com"), None);
    assert_eq!(
        scanner.find("password=hunter2-long"),
        Some("DB_PASSWORD (as written)".into())
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode("hunter2-long");
    assert_eq!(
        scanner.find(&format!("Basic {encoded}")),
        Some("DB_PASSWORD (base64)".into())
    );
    assert_eq!(
        scanner.find(orgform::sandbox::oracle::APP_KEY),
        Some("orgform::sandbox::oracle::APP_KEY (as written)".into())
    );
}

/// The door can fail: a secret echoed back by a refusal (a specs folder named by the secret's
/// value) fails the run, and the failure names the variable, never the value.
#[test]
fn a_run_that_prints_a_secret_fails_naming_the_variable_only() {
    const VALUE: &str = "s3cret-echoed-by-an-error";
    let dir = tempfile::tempdir().expect("tempdir");
    let leak = std::panic::catch_unwind(|| {
        orgform(dir.path())
            .args(["validate", "--specs", VALUE])
            .env("LEAKY_TOKEN", VALUE)
            .run()
    });
    let message = leak
        .err()
        .and_then(|panic| panic.downcast_ref::<String>().cloned())
        .expect("the echoed secret fails the run");
    assert!(message.contains("LEAKY_TOKEN"), "{message}");
    assert!(!message.contains(VALUE), "{message}");
}

/// Serves `app` on a free loopback port, for as long as the test's runtime lives: a provider of
/// the test's own (one that answers the way a hostile or unusual server would). Its base URL.
pub async fn serve_app(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
