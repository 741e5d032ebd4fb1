//! The benchmark of issue 17: orgform's speed, memory and requests at scale on every provider,
//! against the sandbox, with each figure beside its target. Run it with `./scripts/bench` (a
//! release build first); `./scripts/bench NAME...` runs only the workloads named (see
//! [`WORKLOADS`]), and `ORGFORM_BENCH_SCALE=0.05` shrinks every size for a trial run.
//!
//! Every workload is scaled from the project's own examples in `specs/` (read at run time, see
//! `workload.rs`), and every figure is measured on the real binary as a separate process:
//! wall time by the clock, peak memory from the kernel's high-water mark, CPU from the shell's
//! `times`, the journal's size by watching it, and requests exactly from the sandbox's own
//! counts. The sandbox runs in this process, so its CPU is this process's CPU.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark prints its figures and its progress"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "the benchmark reads its own knobs (ORGFORM_BIN, ORGFORM_BENCH_*) from the environment"
)]
#![expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "figures shown as f64 are far below 2^52, and sizes scaled by a factor are small"
)]

mod apply;
mod measure;
mod others;
mod peers;
mod reads;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use measure::{Measured, Run};
use workload::Examples;

/// One row of the result table.
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) measured: String,
    pub(crate) target: String,
    pub(crate) met: Option<bool>,
}

impl Row {
    pub(crate) fn new(name: impl Into<String>, measured: impl Into<String>) -> Row {
        Row {
            name: name.into(),
            measured: measured.into(),
            target: "(measured)".into(),
            met: None,
        }
    }

    pub(crate) fn target(mut self, target: impl Into<String>, met: bool) -> Row {
        self.target = target.into();
        self.met = Some(met);
        self
    }

    /// A workload that could not run: a miss, with why.
    pub(crate) fn failed(name: impl Into<String>, why: &str) -> Row {
        Row::new(name, format!("failed: {why}")).target("runs", false)
    }
}

/// What every workload shares.
pub(crate) struct Ctx {
    pub(crate) bin: PathBuf,
    pub(crate) examples: Examples,
    /// Every size is multiplied by this (`ORGFORM_BENCH_SCALE`, 1 by default).
    pub(crate) scale: f64,
    /// A run of orgform longer than this is killed (`ORGFORM_BENCH_TIMEOUT`, seconds).
    pub(crate) limit: Duration,
    /// Where work folders go (`ORGFORM_BENCH_KEEP` keeps them there).
    pub(crate) keep: Option<PathBuf>,
}

impl Ctx {
    /// `n` at the benchmark's scale (at least `min`).
    pub(crate) fn scaled(&self, n: usize, min: usize) -> usize {
        ((n as f64 * self.scale).round() as usize).max(min)
    }

    /// A fresh work folder, kept under `ORGFORM_BENCH_KEEP/NAME` when that is set.
    pub(crate) fn work_dir(&self, name: &str) -> Result<WorkDir, String> {
        match &self.keep {
            Some(root) => {
                let path = root.join(name);
                let _ = std::fs::remove_dir_all(&path);
                std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
                Ok(WorkDir::Kept(path))
            }
            None => tempfile::tempdir()
                .map(WorkDir::Temp)
                .map_err(|e| e.to_string()),
        }
    }

    /// Runs orgform in `dir` with `env`, measuring it; the journal's size watched.
    pub(crate) fn orgform(
        &self,
        dir: &Path,
        args: &[&str],
        env: &[(String, String)],
    ) -> Result<Measured, String> {
        measure::measure(&Run {
            program: &self.bin,
            args,
            dir,
            env,
            watch: Some(dir.join("state/orgform.state.json.journal")),
            limit: self.limit,
        })
    }
}

/// A work folder: removed at the end unless kept.
pub(crate) enum WorkDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl WorkDir {
    pub(crate) fn path(&self) -> &Path {
        match self {
            WorkDir::Temp(t) => t.path(),
            WorkDir::Kept(p) => p,
        }
    }
}

pub(crate) fn ms(d: Duration) -> String {
    if d.as_secs_f64() >= 10.0 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    }
}

/// The workloads, by the names `./scripts/bench NAME...` takes.
const WORKLOADS: &[(&str, &str)] = &[
    (
        "apply-heron",
        "apply 100,000 Heron creates, then 100 more; 100 on 1,000",
    ),
    ("apply-salesforce", "the same for Salesforce sign-ups"),
    ("apply-neoncrm", "the same for NeonCRM"),
    ("apply-commvault", "the same for Commvault"),
    ("apply-oracle", "the same for Oracle Commerce"),
    (
        "plan",
        "100,000 over the five: refreshed plan at 20 ms, offline plan",
    ),
    ("discover", "discover of 100,000 over the five"),
    (
        "pg",
        "apply 10,000 with PostgreSQL state against file state; history",
    ),
    (
        "heron-limit",
        "1,200 Heron creates at the default 600 a minute",
    ),
    (
        "peers",
        "Terraform 1.0.3 against orgform, 300 Heron organizations",
    ),
];

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn orgform_bin() -> Option<PathBuf> {
    if let Some(path) = env_var("ORGFORM_BIN") {
        return Some(PathBuf::from(path));
    }
    // target/release/examples/bench -> target/release/orgform
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("orgform"))
}

fn print(rows: &[Row]) -> bool {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    println!("| {:width$} | measured | target | met |", "workload");
    println!("|{}|---|---|---|", "-".repeat(width + 2));
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!(
            "| {:width$} | {} | {} | {} |",
            r.name, r.measured, r.target, met
        );
    }
    rows.iter().all(|r| r.met != Some(false))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("usage: bench [WORKLOAD...]   (all when none)\n");
        for (name, what) in WORKLOADS {
            eprintln!("  {name:18} {what}");
        }
        eprintln!(
            "\nORGFORM_BENCH_SCALE (1), ORGFORM_BENCH_TIMEOUT (seconds a run may take, 150),\n\
             ORGFORM_BENCH_SETUP_TIMEOUT (seconds the apply that fills the plan and discover\n\
             workloads may take, 600),\n\
             ORGFORM_BENCH_KEEP (a folder to keep the workloads in), ORGFORM_BENCH_PG_URL\n\
             (else ORGFORM_TEST_PG_URL), ORGFORM_BENCH_TERRAFORM and ORGFORM_BENCH_TF_PLUGINS\n\
             (Terraform 1.0.3 and a plugin folder holding the null provider), ORGFORM_BIN"
        );
        return ExitCode::SUCCESS;
    }
    let only: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Some(unknown) = only
        .iter()
        .find(|a| !WORKLOADS.iter().any(|(n, _)| n == *a) && **a != "apply")
    {
        let names: Vec<&str> = WORKLOADS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "unknown workload {unknown}: the workloads are {} (and apply, for all five apply-*)",
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    let runs = |name: &str| {
        only.is_empty()
            || only.contains(&name)
            || (name.starts_with("apply-") && only.contains(&"apply"))
    };
    let Some(bin) = orgform_bin().filter(|b| b.exists()) else {
        eprintln!(
            "target/release/orgform is missing: build it with `cargo build --release` (./scripts/bench does)"
        );
        return ExitCode::from(2);
    };
    let examples = match Examples::read(Path::new("specs")) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("the examples in specs/ (run from the repository's root): {e}");
            return ExitCode::from(2);
        }
    };
    let scale = env_var("ORGFORM_BENCH_SCALE")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let limit = Duration::from_secs(
        env_var("ORGFORM_BENCH_TIMEOUT")
            .and_then(|s| s.parse().ok())
            .unwrap_or(150),
    );
    let ctx = Ctx {
        bin,
        examples,
        scale,
        limit,
        keep: env_var("ORGFORM_BENCH_KEEP").map(PathBuf::from),
    };
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        eprintln!("no tokio runtime");
        return ExitCode::from(2);
    };
    let mut rows = Vec::new();
    eprintln!("scale {scale}, a run killed after {} s", limit.as_secs());
    for provider_type in workload::TYPES {
        if runs(&format!("apply-{}", workload::short(provider_type))) {
            runtime.block_on(apply::apply_one_type(&ctx, &mut rows, provider_type));
        }
    }
    if runs("plan") || runs("discover") {
        runtime.block_on(reads::over_five(
            &ctx,
            &mut rows,
            runs("plan"),
            runs("discover"),
        ));
    }
    if runs("pg") {
        runtime.block_on(others::postgres(&ctx, &mut rows));
    }
    if runs("heron-limit") {
        runtime.block_on(others::heron_limit(&ctx, &mut rows));
    }
    if runs("peers") {
        runtime.block_on(peers::terraform(&ctx, &mut rows));
    }
    if print(&rows) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
