//! Running the real `orgform` binary from the tests: one way to start it (in a folder, stdin
//! closed, no `RUST_LOG` or `ORGFORM_ALLOWED_HOSTS`, `NO_COLOR`, the given environment) and what a run left behind.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// What one run of the binary printed, and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
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
}

/// The binary, to run in `dir` with `env` exported.
pub fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orgform"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        // A developer's or CI's own list would change what the specs may name.
        .env_remove("ORGFORM_ALLOWED_HOSTS")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    cmd
}

/// Runs the binary in `dir` with `env` exported, on the specs and state found there by default.
pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    Run::from(command(dir, args, env).output().expect("run orgform"))
}

/// Runs the binary on `DIR/specs` and `DIR/state.json`, named on its command line.
pub fn run_on(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = command(dir, args, env);
    cmd.arg("--specs")
        .arg(dir.join("specs"))
        .arg("--state")
        .arg(dir.join("state.json"));
    Run::from(cmd.output().expect("run orgform"))
}
