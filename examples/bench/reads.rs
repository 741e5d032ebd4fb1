//! 100,000 organizations over the five provider types (20,000 each), made through orgform on a
//! sandbox with no latency, then: a refreshed plan at 20 ms a request, an offline plan, and
//! `discover` once specs and state are forgotten, with its requests against the read floor.

use std::time::Duration;

use crate::apply::{APPLY, endpoints};
use crate::measure::Measured;
use crate::workload::{TYPES, child_env, lifted_sandbox, requests, since, stats_name};
use crate::{Ctx, Row, ms};

/// Records per page when each API lists everything (`None`: one call lists everything), and
/// whether `discover` reads each organization once more because the list leaves declarable
/// fields out.
fn list_page(provider_type: &str) -> (Option<u64>, bool) {
    match provider_type {
        "salesforce_signup" => (Some(2000), false),
        "neoncrm" => (Some(200), true),
        "oracle_commerce" => (Some(250), true),
        _ => (None, false),
    }
}

pub(crate) async fn over_five(ctx: &Ctx, rows: &mut Vec<Row>, plan: bool, discover: bool) {
    let each = ctx.scaled(20_000, 20);
    let total = each * TYPES.len();
    eprintln!("plan/discover: {total} over the five providers ...");
    if let Err(e) = run(ctx, rows, each, plan, discover).await {
        rows.push(Row::failed(format!("{total} over five"), &e));
    }
}

/// The best (shortest) of `runs` runs.
fn best(
    ctx: &Ctx,
    dir: &std::path::Path,
    args: &[&str],
    env: &[(String, String)],
    runs: usize,
) -> Result<Measured, String> {
    let mut best: Option<Measured> = None;
    for _ in 0..runs {
        let m = ctx.orgform(dir, args, env)?;
        if best.as_ref().is_none_or(|b| m.wall < b.wall) {
            best = Some(m);
        }
    }
    best.ok_or_else(|| "no run".into())
}

async fn run(
    ctx: &Ctx,
    rows: &mut Vec<Row>,
    each: usize,
    plan: bool,
    discover: bool,
) -> Result<(), String> {
    let total = each * TYPES.len();
    let sandbox = lifted_sandbox(Duration::ZERO).await?;
    let dir = ctx.work_dir("over-five")?;
    let dir = dir.path();
    let counts: Vec<(&str, usize)> = TYPES.iter().map(|t| (*t, each)).collect();
    ctx.examples.write(dir, &sandbox.base_url(), &counts, 0)?;
    let env = child_env(&ctx.bin, dir)?;
    // The setup is no target: it may take longer than a measured run
    // (`ORGFORM_BENCH_SETUP_TIMEOUT`, seconds, 600).
    let setup_limit = crate::env_var("ORGFORM_BENCH_SETUP_TIMEOUT")
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(600), Duration::from_secs);
    let m = crate::measure::measure(&crate::measure::Run {
        program: &ctx.bin,
        args: APPLY,
        dir,
        env: &env,
        watch: None,
        limit: ctx.limit.max(setup_limit),
    })?;
    if m.code != 0 {
        return Err(format!(
            "the apply that makes them: exit {} after {}: {}",
            m.code,
            ms(m.wall),
            m.tail()
        ));
    }
    rows.push(Row::new(
        format!("setup: apply {total} over five, no latency (wall, peak)"),
        format!("{}, {} MiB", ms(m.wall), m.peak_mib()),
    ));
    if plan {
        sandbox.set_latency(Duration::from_millis(20));
        let m = best(ctx, dir, &["plan", "--detailed-exitcode"], &env, 2)?;
        sandbox.set_latency(Duration::ZERO);
        let ok = m.code == 0;
        rows.push(
            Row::new(
                format!("refreshed plan of {total} over five, 20 ms latency: wall"),
                m.wall_or_failure(ok),
            )
            .target("< 3 s", ok && m.wall < Duration::from_secs(3)),
        );
        rows.push(
            Row::new(
                format!("refreshed plan of {total}: peak memory"),
                format!("{} MiB", m.peak_mib()),
            )
            .target("< 500 MiB", m.peak_mib() < 500),
        );
        let m = best(
            ctx,
            dir,
            &["plan", "--refresh=false", "--detailed-exitcode"],
            &env,
            3,
        )?;
        let ok = m.code == 0;
        rows.push(
            Row::new(
                format!("offline plan (--refresh=false) of {total} unchanged: wall"),
                m.wall_or_failure(ok),
            )
            .target("< 1 s", ok && m.wall < Duration::from_secs(1)),
        );
        rows.push(
            Row::new(
                format!("offline plan of {total}: peak memory"),
                format!("{} MiB", m.peak_mib()),
            )
            .target("< 400 MiB", m.peak_mib() < 400),
        );
    }
    if discover {
        discover_all(ctx, rows, &sandbox, dir, &env, each)?;
    }
    let _ = sandbox.shutdown().await;
    Ok(())
}

/// Forgets the organizations (specs and state go, the providers stay), then discovers them.
fn discover_all(
    ctx: &Ctx,
    rows: &mut Vec<Row>,
    sandbox: &orgform::sandbox::Sandbox,
    dir: &std::path::Path,
    env: &[(String, String)],
    each: usize,
) -> Result<(), String> {
    let total = each * TYPES.len();
    for entry in std::fs::read_dir(dir.join("specs")).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.file_name().is_some_and(|n| n != "providers.toml") {
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
        }
    }
    let _ = std::fs::remove_dir_all(dir.join("state"));
    let before: Vec<_> = TYPES
        .iter()
        .map(|t| requests(sandbox, stats_name(t)))
        .collect();
    let held = sandbox.stats().organizations;
    let m = ctx.orgform(dir, &["discover", "--out", "specs/found"], env)?;
    let ok = m.code == 0;
    for (provider_type, before) in TYPES.iter().zip(before) {
        let emulator = stats_name(provider_type);
        let sent = since(&requests(sandbox, emulator), &before);
        let total_sent: u64 = sent.values().sum();
        let instances = ctx
            .examples
            .instances
            .iter()
            .filter(|i| i.provider_type == *provider_type)
            .count() as u64;
        // What each instance lists: everything the emulator holds (an Oracle request-mode
        // instance lists its requests, the direct-mode one every organization; both are at
        // most what the emulator holds, so this floor is generous there).
        let items = held.get(emulator).copied().unwrap_or(0);
        let logins = if *provider_type == "heron" {
            0
        } else {
            instances
        };
        let (page, reads_each) = list_page(provider_type);
        let pages = instances * page.map_or(1, |p| items.div_ceil(p).max(1));
        let floor = logins + pages + if reads_each { items } else { 0 };
        rows.push(
            Row::new(
                format!(
                    "discover, {} x {items} held: requests",
                    crate::workload::short(provider_type)
                ),
                format!("{total_sent} (floor {floor})"),
            )
            .target(
                format!(
                    "<= {logins} login + {pages} pages{}",
                    if reads_each { " + one read each" } else { "" }
                ),
                ok && total_sent <= floor,
            ),
        );
        if total_sent > floor {
            eprintln!("  discover {emulator} by endpoint: {}", endpoints(&sent));
        }
    }
    rows.push(
        Row::new(
            format!("discover of {total} over five: wall"),
            m.wall_or_failure(ok),
        )
        .target("< 5 s", ok && m.wall < Duration::from_secs(5)),
    );
    rows.push(Row::new(
        format!("discover of {total}: peak memory"),
        format!("{} MiB", m.peak_mib()),
    ));
    Ok(())
}
