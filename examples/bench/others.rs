//! Two workloads with one provider each: PostgreSQL state against the file state (and what its
//! history costs), and Heron at its own rate limit.

use std::time::Duration;

use orgform::sandbox::SandboxConfig;

use crate::apply::APPLY;
use crate::workload::{child_env, lifted_sandbox, start};
use crate::{Ctx, Row, env_var, ms};

/// Runs after the first that each add 100 organizations, to see the history grow.
const HISTORY_RUNS: usize = 5;

/// The versions the retention keeps in the benchmark's second half of the history runs.
const HISTORY_KEEP: u64 = 3;

/// Apply of 10,000 Heron organizations with PostgreSQL state against the same with file state;
/// then the workspace's history after further applies of 100 each.
pub(crate) async fn postgres(ctx: &Ctx, rows: &mut Vec<Row>) {
    let Some(url) = env_var("ORGFORM_BENCH_PG_URL").or_else(|| env_var("ORGFORM_TEST_PG_URL"))
    else {
        eprintln!("pg: skipped, neither ORGFORM_BENCH_PG_URL nor ORGFORM_TEST_PG_URL is set");
        rows.push(Row::new(
            "PostgreSQL state",
            "skipped: set ORGFORM_BENCH_PG_URL",
        ));
        return;
    };
    let n = ctx.scaled(10_000, 100);
    eprintln!("pg: apply {n} with file state, then with PostgreSQL state ...");
    if let Err(e) = postgres_at(ctx, rows, &url, n).await {
        rows.push(Row::failed(
            format!("apply {n} heron, PostgreSQL state"),
            &e,
        ));
    }
}

async fn postgres_at(ctx: &Ctx, rows: &mut Vec<Row>, url: &str, n: usize) -> Result<(), String> {
    let workspace = format!(
        "bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    );
    // Each state twice, alternated, the best of each kept: one run of each moved the ratio from
    // 1.13x to 1.54x with what ran before it, more than the difference it measures.
    let (mut file_best, mut pg_best) = (Duration::MAX, Duration::MAX);
    let workspaces: Vec<String> = (0..PG_ROUNDS).map(|r| format!("{workspace}-{r}")).collect();
    for (round, workspace) in workspaces.iter().enumerate() {
        for pg in [false, true] {
            let sandbox = lifted_sandbox(Duration::ZERO).await?;
            let dir = ctx.work_dir(&format!("{}-{round}", if pg { "pg" } else { "pg-file" }))?;
            let dir = dir.path();
            ctx.examples
                .write(dir, &sandbox.base_url(), &[("heron", n)], 0)?;
            let env = child_env(&ctx.bin, dir)?;
            let mut args = APPLY.to_vec();
            if pg {
                args.extend(["--state", url, "--workspace", workspace]);
            }
            let m = ctx.orgform(dir, &args, &env)?;
            if m.code != 0 {
                return Err(format!("exit {}: {}", m.code, m.tail()));
            }
            let best = if pg { &mut pg_best } else { &mut file_best };
            *best = (*best).min(m.wall);
            if pg && round + 1 == PG_ROUNDS {
                history(ctx, rows, url, workspace, dir, &sandbox, &env, n).await?;
            }
            let _ = sandbox.shutdown().await;
        }
    }
    let ratio = pg_best.as_secs_f64() / file_best.as_secs_f64().max(1e-9);
    rows.push(
        Row::new(
            format!("apply {n} heron: PostgreSQL state vs file state"),
            format!(
                "{} vs {} = {ratio:.2}x (best of {PG_ROUNDS} each)",
                ms(pg_best),
                ms(file_best)
            ),
        )
        .target("<= 1.5x", ratio <= 1.5),
    );
    for workspace in &workspaces {
        let _ = forget(url, workspace).await;
    }
    Ok(())
}

/// How many times each of the two applies runs.
const PG_ROUNDS: usize = 2;

/// Applies 100 more `HISTORY_RUNS` times and measures what the workspace holds after each:
/// first as PostgreSQL keeps it (every version), then with the documented retention, `state
/// history --prune --keep HISTORY_KEEP` after each apply as a team's CI job would run it.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site, every argument a different thing"
)]
async fn history(
    ctx: &Ctx,
    rows: &mut Vec<Row>,
    url: &str,
    workspace: &str,
    dir: &std::path::Path,
    sandbox: &orgform::sandbox::Sandbox,
    env: &[(String, String)],
    n: usize,
) -> Result<(), String> {
    let mut args = APPLY.to_vec();
    args.extend(["--state", url, "--workspace", workspace]);
    let keep = HISTORY_KEEP.to_string();
    let prune = [
        "state",
        "history",
        "--prune",
        "--keep",
        &keep,
        "--state",
        url,
        "--workspace",
        workspace,
    ];
    let mut next = n;
    let mut more = |run: usize| -> Result<(), String> {
        ctx.examples
            .write(dir, &sandbox.base_url(), &[("heron", 100)], next)?;
        next += 100;
        let m = ctx.orgform(dir, &args, env)?;
        if m.code != 0 {
            return Err(format!("history run {run}: exit {}: {}", m.code, m.tail()));
        }
        Ok(())
    };
    let first = held_bytes(url, workspace).await?;
    for run in 0..HISTORY_RUNS {
        more(run)?;
    }
    let last = held_bytes(url, workspace).await?;
    let per_run = (last.saturating_sub(first)) / HISTORY_RUNS as u64;
    let state = latest_state_bytes(url, workspace).await?;
    rows.push(Row::new(
        format!("PostgreSQL history of {n}, every version kept: growth per apply of 100"),
        format!(
            "{:.2} MB a run ({:.1} MB after {} runs; the state {:.2} MB)",
            per_run as f64 / 1e6,
            last as f64 / 1e6,
            HISTORY_RUNS + 1,
            state as f64 / 1e6
        ),
    ));
    // The retention: each apply followed by the prune, the prune's own wall measured.
    let mut prune_walls = Vec::new();
    let mut held = Vec::new();
    for run in 0..HISTORY_RUNS {
        more(HISTORY_RUNS + run)?;
        let m = ctx.orgform(dir, &prune, env)?;
        if m.code != 0 {
            return Err(format!("prune {run}: exit {}: {}", m.code, m.tail()));
        }
        prune_walls.push(m.wall);
        held.push(held_bytes(url, workspace).await?);
    }
    let state = latest_state_bytes(url, workspace).await?;
    let most = held.iter().copied().max().unwrap_or(0);
    let slowest = prune_walls.iter().copied().max().unwrap_or_default();
    // Bounded: never more than the kept versions (each about a state) plus the one being
    // written, whatever the number of runs.
    let bound = state * (HISTORY_KEEP + 1);
    rows.push(
        Row::new(
            format!("PostgreSQL history of {n}, `state history --prune --keep {HISTORY_KEEP}` after each apply"),
            format!(
                "at most {:.1} MB held over {HISTORY_RUNS} runs (last {:.1} MB; the state {:.2} MB); prune {} at most",
                most as f64 / 1e6,
                held.last().copied().unwrap_or(0) as f64 / 1e6,
                state as f64 / 1e6,
                ms(slowest)
            ),
        )
        .target(
            format!("bounded: <= {} copies of the state", HISTORY_KEEP + 1),
            most <= bound,
        ),
    );
    Ok(())
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("PostgreSQL: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Bytes of every row the workspace holds in orgform's tables (whatever their schema: each
/// table of orgform's with a `workspace` column).
async fn held_bytes(url: &str, workspace: &str) -> Result<u64, String> {
    let client = connect(url).await?;
    let tables = workspace_tables(&client).await?;
    let mut total = 0;
    for name in tables {
        let row = client
            .query_one(
                &format!(
                    "SELECT coalesce(sum(pg_column_size(t.*)), 0)::bigint FROM \"{name}\" t WHERE workspace = $1"
                ),
                &[&workspace],
            )
            .await
            .map_err(|e| e.to_string())?;
        let bytes: i64 = row.get(0);
        total += u64::try_from(bytes).unwrap_or(0);
    }
    Ok(total)
}

/// The size of the workspace's newest state as it is stored.
async fn latest_state_bytes(url: &str, workspace: &str) -> Result<u64, String> {
    let client = connect(url).await?;
    let row = client
        .query_one(
            "SELECT coalesce(max(pg_column_size(state)), 0)::bigint FROM orgform_states WHERE workspace = $1",
            &[&workspace],
        )
        .await
        .map_err(|e| e.to_string())?;
    let bytes: i64 = row.get(0);
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// orgform's tables with a `workspace` column, whatever their schema.
async fn workspace_tables(client: &tokio_postgres::Client) -> Result<Vec<String>, String> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.columns \
             WHERE column_name = 'workspace' AND table_name LIKE 'orgform\\_%'",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Removes the benchmark's workspace from every table of orgform's.
async fn forget(url: &str, workspace: &str) -> Result<(), String> {
    let client = connect(url).await?;
    let tables = workspace_tables(&client).await?;
    for name in tables {
        let _ = client
            .execute(
                &format!("DELETE FROM \"{name}\" WHERE workspace = $1"),
                &[&workspace],
            )
            .await;
    }
    Ok(())
}

/// 1,200 Heron creates against the default 600 requests a minute: about two minutes, and the
/// progress on stderr (not a terminal) says it waits for the rate limit.
pub(crate) async fn heron_limit(ctx: &Ctx, rows: &mut Vec<Row>) {
    let n = ctx.scaled(1200, 20);
    eprintln!("heron-limit: {n} creates at 600 a minute (about 2 minutes at full size) ...");
    if let Err(e) = heron_limit_at(ctx, rows, n).await {
        rows.push(Row::failed(format!("{n} heron creates at 600/min"), &e));
    }
}

async fn heron_limit_at(ctx: &Ctx, rows: &mut Vec<Row>, n: usize) -> Result<(), String> {
    let sandbox = start(SandboxConfig::default()).await?;
    let dir = ctx.work_dir("heron-limit")?;
    let dir = dir.path();
    ctx.examples
        .write(dir, &sandbox.base_url(), &[("heron", n)], 0)?;
    let env = child_env(&ctx.bin, dir)?;
    let m = crate::measure::measure(&crate::measure::Run {
        program: &ctx.bin,
        args: APPLY,
        dir,
        env: &env,
        watch: None,
        // Two minutes by design: the usual limit would kill it.
        limit: ctx.limit.max(Duration::from_secs(300)),
    })?;
    let _ = sandbox.shutdown().await;
    let ok = m.code == 0 && !m.killed;
    // One fixed window of 60 s holds 600 requests: the read and the creates fill
    // ceil((n + 1) / 600) windows, the last one started, not waited out.
    let windows = (n as u64 + 1).div_ceil(600);
    let expected = Duration::from_secs(60 * (windows - 1));
    let full = n == 1200;
    rows.push(
        Row::new(
            format!("{n} heron creates at 600/min: wall"),
            m.wall_or_failure(ok),
        )
        .target(
            format!(
                "<= {} s (windows of 60 s: {windows})",
                expected.as_secs() + 10
            ),
            ok && (m.wall <= expected + Duration::from_secs(10) || !full),
        ),
    );
    let says = m.stderr.to_lowercase().contains("rate limit");
    let line = m
        .stderr
        .lines()
        .find(|l| l.to_lowercase().contains("rate limit"))
        .unwrap_or("nothing about it")
        .trim()
        .chars()
        .take(70)
        .collect::<String>();
    rows.push(
        Row::new(
            format!("{n} heron creates at 600/min: progress"),
            line.replace('|', "/"),
        )
        .target("says it waits for the rate limit", says),
    );
    Ok(())
}
