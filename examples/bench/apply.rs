//! Apply at scale on one provider type: 100,000 creates on an empty sandbox (wall, peak
//! memory, journal bytes per create, requests against the floor, the sandbox's CPU share),
//! then 100 more on top of that state, against 100 on top of 1,000.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::measure::own_cpu;
use crate::workload::{self, child_env, lifted_sandbox, requests, since, stats_name};
use crate::{Ctx, Row, ms};

/// The arguments of every apply: no prompt, and sign-ups polled often enough not to wait.
pub(crate) const APPLY: &[&str] = &["apply", "--auto-approve", "--poll-interval", "100ms"];

/// Requests an apply of `n` creates on an empty sandbox needs at the least: the creates, one
/// login per instance, one page of the bulk read per instance (nothing exists yet), and the
/// one look at each asynchronous create whose outcome its answer leaves unknown, read in bulk
/// once the creates are sent: for Salesforce the count of the day's sign-ups its quota is
/// checked against and one query of sign-up statuses per 2,000 sign-ups (SOQL's page) to
/// settle them; for Oracle's request-mode instances (the create answers `{id, links}`, not
/// the status: a site may approve at once) one page of 250 requests per 250 made.
pub(crate) fn apply_floor(ctx: &Ctx, provider_type: &str, n: usize) -> (u64, String) {
    let instances = ctx
        .examples
        .instances
        .iter()
        .filter(|i| i.provider_type == provider_type)
        .count() as u64;
    let logins = if provider_type == "heron" {
        0
    } else {
        instances
    };
    let mut floor = n as u64 + logins + instances;
    let mut how = format!("{n} creates + {logins} login + {instances} read");
    if provider_type == "salesforce_signup" {
        let settle = (n as u64).div_ceil(2000);
        floor += 1 + settle;
        how.push_str(&format!(" + 1 quota count + {settle} settle"));
    }
    if provider_type == "oracle_commerce" {
        // `mode` defaults to "request".
        let requests: usize = ctx
            .examples
            .per_instance(provider_type, n)
            .into_iter()
            .filter(|(instance, _)| instance.setting("mode").unwrap_or("request") == "request")
            .map(|(_, count)| count)
            .sum();
        let looks = requests.div_ceil(250) as u64;
        floor += looks;
        how.push_str(&format!(" + {looks} look"));
    }
    (floor, how)
}

/// Applies `n` of one type on a fresh lifted sandbox, then 100 more, and the same 100 on 1,000.
pub(crate) async fn apply_one_type(ctx: &Ctx, rows: &mut Vec<Row>, provider_type: &str) {
    let name = workload::short(provider_type);
    let n = ctx.scaled(100_000, 100);
    eprintln!("apply-{name}: {n} creates ...");
    if let Err(e) = at_scale(ctx, rows, provider_type, n).await {
        rows.push(Row::failed(format!("apply {n} {name}"), &e));
    }
}

async fn at_scale(
    ctx: &Ctx,
    rows: &mut Vec<Row>,
    provider_type: &str,
    n: usize,
) -> Result<(), String> {
    let name = workload::short(provider_type);
    let emulator = stats_name(provider_type);
    let sandbox = lifted_sandbox(Duration::ZERO).await?;
    let dir = ctx.work_dir(&format!("apply-{name}"))?;
    let dir = dir.path();
    ctx.examples
        .write(dir, &sandbox.base_url(), &[(provider_type, n)], 0)?;
    let env = child_env(&ctx.bin, dir)?;
    let before = requests(&sandbox, emulator);
    let cpu_before = own_cpu();
    let m = ctx.orgform(dir, APPLY, &env)?;
    let sandbox_cpu = own_cpu().saturating_sub(cpu_before);
    let sent = since(&requests(&sandbox, emulator), &before);
    let held = sandbox
        .stats()
        .organizations
        .get(emulator)
        .copied()
        .unwrap_or(0);
    let total: u64 = sent.values().sum();
    let ok = m.code == 0 && !m.killed;
    let outcome = if m.killed {
        format!("killed at {}, {held} of {n} made", ms(m.wall))
    } else if m.code != 0 {
        format!("exit {}: {}", m.code, m.tail())
    } else {
        ms(m.wall)
    };
    rows.push(
        Row::new(format!("apply {n} {name}, no latency: wall"), outcome)
            .target("< 30 s", ok && m.wall < Duration::from_secs(30)),
    );
    rows.push(
        Row::new(
            format!("apply {n} {name}: peak memory"),
            format!("{} MiB", m.peak_mib()),
        )
        .target("< 300 MiB", m.peak_mib() < 300),
    );
    // A killed run made fewer than planned: per create made, then.
    let made = if m.killed { held.max(1) } else { n as u64 };
    let per_create = m.watched_peak as f64 / made as f64;
    rows.push(
        Row::new(
            format!("apply {n} {name}: journal bytes per create"),
            format!(
                "{per_create:.0} B ({:.1} MB at its peak)",
                m.watched_peak as f64 / 1e6
            ),
        )
        .target("< 300 B", ok && m.watched_peak > 0 && per_create < 300.0),
    );
    let (floor, how) = apply_floor(ctx, provider_type, n);
    rows.push(
        Row::new(
            format!("apply {n} {name}: requests"),
            format!("{total} (floor {floor})"),
        )
        .target(format!("= floor: {how}"), ok && total == floor),
    );
    if total != floor {
        eprintln!("  {name} requests by endpoint: {}", endpoints(&sent));
    }
    let own = m.cpu.as_secs_f64();
    let share = sandbox_cpu.as_secs_f64() / (sandbox_cpu.as_secs_f64() + own).max(1e-9);
    rows.push(Row::new(
        format!("apply {n} {name}: sandbox CPU (share of all CPU)"),
        format!(
            "{:.1} s of {:.1} s ({:.0}%), {:.2} cores",
            sandbox_cpu.as_secs_f64(),
            sandbox_cpu.as_secs_f64() + own,
            share * 100.0,
            sandbox_cpu.as_secs_f64() / m.wall.as_secs_f64().max(1e-9)
        ),
    ));
    if !ok {
        let _ = sandbox.shutdown().await;
        return Ok(());
    }
    // 100 more on top of this state, then 100 on top of 1,000 on a sandbox of their own.
    let big = hundred_more(ctx, dir, &sandbox, provider_type, n, &env)?;
    let _ = sandbox.shutdown().await;
    let small_n = ctx.scaled(1000, 10).min(n);
    let sandbox = lifted_sandbox(Duration::ZERO).await?;
    let small_dir = ctx.work_dir(&format!("apply-{name}-small"))?;
    let small_dir = small_dir.path();
    ctx.examples.write(
        small_dir,
        &sandbox.base_url(),
        &[(provider_type, small_n)],
        0,
    )?;
    let base = ctx.orgform(small_dir, APPLY, &env)?;
    if base.code != 0 {
        rows.push(Row::failed(
            format!("apply {small_n} {name} (incremental base)"),
            &base.tail(),
        ));
        return Ok(());
    }
    let small = hundred_more(ctx, small_dir, &sandbox, provider_type, small_n, &env)?;
    let _ = sandbox.shutdown().await;
    let ratio = big.as_secs_f64() / small.as_secs_f64().max(1e-9);
    rows.push(
        Row::new(
            format!("100 {name} creates on {n} vs on {small_n}"),
            format!("{} vs {} = {ratio:.2}x", ms(big), ms(small)),
        )
        .target(
            "< 3x, and < 1.5 s",
            ratio < 3.0 && big < Duration::from_millis(1500),
        ),
    );
    Ok(())
}

/// Adds 100 organizations (numbered from `from`) to the specs in `dir` and applies them: the
/// wall time of that apply.
fn hundred_more(
    ctx: &Ctx,
    dir: &Path,
    sandbox: &orgform::sandbox::Sandbox,
    provider_type: &str,
    from: usize,
    env: &[(String, String)],
) -> Result<Duration, String> {
    ctx.examples
        .write(dir, &sandbox.base_url(), &[(provider_type, 100)], from)?;
    let m = ctx.orgform(dir, APPLY, env)?;
    if m.code != 0 {
        return Err(format!("100 more: exit {}: {}", m.code, m.tail()));
    }
    Ok(m.wall)
}

/// `endpoint: count` pairs, for the log.
pub(crate) fn endpoints(sent: &BTreeMap<String, u64>) -> String {
    sent.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
