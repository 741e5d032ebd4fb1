//! Running the real binary as a separate process and measuring it: wall time by the clock,
//! peak memory from the kernel's high-water mark (`VmHWM`, polled every 2 ms), CPU from the
//! shell's `times` once the child has been waited for, and the largest size a watched file
//! (the state's journal) reached while it ran. A run past its time limit is killed.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of a program cost.
pub(crate) struct Measured {
    pub(crate) wall: Duration,
    pub(crate) peak_kib: u64,
    pub(crate) cpu: Duration,
    pub(crate) code: i32,
    pub(crate) stderr: String,
    /// The largest size of the watched file while the program ran, in bytes.
    pub(crate) watched_peak: u64,
    /// Killed at the time limit.
    pub(crate) killed: bool,
}

impl Measured {
    pub(crate) fn peak_mib(&self) -> u64 {
        self.peak_kib / 1024
    }

    /// The wall time if the run went as `ok` says, else its exit code and last lines: what a
    /// row shows.
    pub(crate) fn wall_or_failure(&self, ok: bool) -> String {
        if ok {
            crate::ms(self.wall)
        } else {
            format!("exit {}: {}", self.code, self.tail())
        }
    }

    /// The last lines of stderr, for a row that failed.
    pub(crate) fn tail(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        lines[lines.len().saturating_sub(4)..].join(" / ")
    }
}

/// How a program is run.
pub(crate) struct Run<'a> {
    pub(crate) program: &'a Path,
    pub(crate) args: &'a [&'a str],
    pub(crate) dir: &'a Path,
    pub(crate) env: &'a [(String, String)],
    /// A file whose size is watched (the journal).
    pub(crate) watch: Option<PathBuf>,
    pub(crate) limit: Duration,
}

/// Runs the program to its end or its time limit, measuring it.
pub(crate) fn measure(run: &Run<'_>) -> Result<Measured, String> {
    // The shell's `times` reports the CPU its child used, once the child has been waited for.
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(r#""$0" "$@"; rc=$?; times >&2; exit $rc"#)
        .arg(run.program)
        .args(run.args)
        .current_dir(run.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in run.env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let shell = child.id();
    let mut pipe = child.stderr.take().ok_or("no stderr pipe")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let mut peak_kib = 0;
    let mut watched_peak = 0;
    let mut killed = false;
    loop {
        let program = child_of(shell);
        if let Some(kib) = program.and_then(peak_of) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(path) = &run.watch
            && let Ok(meta) = std::fs::metadata(path)
        {
            watched_peak = watched_peak.max(meta.len());
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if !killed && started.elapsed() > run.limit {
            // Only the processes this run started: the program, then its shell.
            if let Some(pid) = program {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = started.elapsed();
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    let stderr = reader.join().unwrap_or_default();
    let cpu = children_cpu(&stderr);
    Ok(Measured {
        wall,
        peak_kib,
        cpu,
        code: status.code().unwrap_or(-1),
        stderr,
        watched_peak,
        killed,
    })
}

fn child_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn peak_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The second line of `times`: the user and system CPU of the shell's children.
fn children_cpu(stderr: &str) -> Duration {
    let line = stderr.lines().next_back().unwrap_or("");
    line.split_whitespace()
        .filter_map(|t| {
            let (m, s) = t.trim_end_matches('s').split_once('m')?;
            Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
        })
        .map(Duration::from_secs_f64)
        .sum()
}

/// The CPU this process (the benchmark, and the sandbox in it) has used so far: user + system
/// from `/proc/self/stat`, in clock ticks of 10 ms.
pub(crate) fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime, fields 14 and 15 of the line: 11 and 12 counting from 0 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
