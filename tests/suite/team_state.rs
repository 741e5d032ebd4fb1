//! Team state on PostgreSQL, end to end with the real binary: many concurrent applies on one
//! workspace, a lock holder killed with SIGKILL, and a state migrated between backends.

use std::path::Path;
use std::time::{Duration, Instant};

use orgform::sandbox::SandboxConfig;
use orgform::state::LockInfo;
use orgform::state::postgres::PostgresBackend;

use crate::e2e::{orgform, served, start};
use crate::heron_fixture::{ACME_SECRET, heron_specs};
use crate::state_stores::pg_url;

fn spawn_apply(dir: &Path, workspace: &str) -> crate::harness::Spawned {
    crate::harness::orgform(dir)
        .args([
            "apply",
            "--auto-approve",
            "--lock-timeout",
            "120s",
            "--state",
            &pg_url(),
            "--workspace",
            workspace,
        ])
        .env("HERON_API_KEY", orgform::sandbox::HERON_API_KEY)
        .env("ACME_SECRET", "x")
        .spawn()
}

async fn history(workspace: &str) -> Vec<orgform::state::postgres::Version> {
    let who = LockInfo {
        id: "reader".into(),
        host: "test".into(),
        pid: 1,
        command: "test".into(),
        since: 0,
    };
    PostgresBackend::connect(&pg_url(), workspace, who)
        .await
        .expect("connect")
        .history()
        .await
        .expect("history")
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_applies_on_one_workspace_take_turns() {
    const ORGS: usize = 24;
    let sandbox = start(SandboxConfig {
        latency: Duration::from_millis(5),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), ORGS, None, ACME_SECRET);
    let workspace = format!("sixteen-{}", fastrand::u64(..));
    let children: Vec<_> = (0..16)
        .map(|_| spawn_apply(dir.path(), &workspace))
        .collect();
    for child in children {
        child.wait().expect(0);
    }
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        ORGS as u64,
        "each org created once"
    );
    let versions = history(&workspace).await;
    let serials: Vec<u64> = versions.iter().map(|v| v.serial).collect();
    assert!(
        serials.windows(2).all(|w| w[1] == w[0] + 1),
        "serials strictly increase: {serials:?}"
    );
    assert!(
        versions.iter().all(|v| v.command.contains("apply")),
        "history names each writer's command"
    );
    assert_eq!(versions.last().map(|v| v.organizations), Some(ORGS as u64));
    orgform(
        dir.path(),
        &[
            "plan",
            "--detailed-exitcode",
            "--state",
            &pg_url(),
            "--workspace",
            &workspace,
        ],
    )
    .expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_holder_killed_with_sigkill_frees_the_lock() {
    // Slow enough that the holder is still working when it is killed.
    let sandbox = start(SandboxConfig {
        latency: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), 40, None, ACME_SECRET);
    let workspace = format!("kill-{}", fastrand::u64(..));
    let mut holder = spawn_apply(dir.path(), &workspace);

    // Wait until it holds the lock.
    let who = LockInfo {
        id: "waiter".into(),
        host: "test".into(),
        pid: 2,
        command: "test".into(),
        since: 0,
    };
    let mut probe = PostgresBackend::connect(&pg_url(), &workspace, who.clone())
        .await
        .expect("connect");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe.lock(Duration::from_millis(10)).await {
            Err(_) => break, // held by the apply
            Ok(()) => {
                probe.unlock().await.expect("unlock");
                assert!(Instant::now() < deadline, "the apply never took the lock");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    holder.kill(); // SIGKILL
    let killed = Instant::now();
    holder.wait();
    probe
        .lock(Duration::from_secs(30))
        .await
        .expect("the lock is free again");
    let freed_after = killed.elapsed();
    println!(
        "lock freed {} ms after SIGKILL of its holder",
        freed_after.as_millis()
    );
    probe.unlock().await.expect("unlock");
    drop(probe);

    // And the next run converges: nothing lost, nothing twice.
    orgform(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--state",
            &pg_url(),
            "--workspace",
            &workspace,
        ],
    )
    .expect(0);
    let list: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/crm_integrations", sandbox.base_url()))
        .header("x-api-key", orgform::sandbox::HERON_API_KEY)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["crm_integrations"].as_array().map(Vec::len), Some(40));
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migrated_state_plans_no_changes_on_its_new_backend() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), 5, None, ACME_SECRET);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    let file_state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state/orgform.state.json")).expect("state"),
    )
    .expect("json");

    let workspace = format!("migrated-{}", fastrand::u64(..));
    let url = pg_url();
    orgform(
        dir.path(),
        &["state", "migrate", "--to", &url, "--workspace", &workspace],
    )
    .expect(0);
    orgform(
        dir.path(),
        &[
            "plan",
            "--detailed-exitcode",
            "--state",
            &url,
            "--workspace",
            &workspace,
        ],
    )
    .expect(0);
    let shown = orgform(
        dir.path(),
        &[
            "show",
            "--format",
            "json",
            "--state",
            &url,
            "--workspace",
            &workspace,
        ],
    )
    .expect(0);
    let pg_state: serde_json::Value = serde_json::from_str(&shown.stdout).expect("json");
    assert_eq!(pg_state["lineage"], file_state["lineage"], "lineage kept");
    assert_eq!(pg_state["orgs"], file_state["orgs"]);

    // And back to a file.
    orgform(
        dir.path(),
        &[
            "state",
            "migrate",
            "--state",
            &url,
            "--workspace",
            &workspace,
            "--to",
            "back/orgform.state.json",
        ],
    )
    .expect(0);
    orgform(
        dir.path(),
        &[
            "plan",
            "--detailed-exitcode",
            "--state",
            "back/orgform.state.json",
        ],
    )
    .expect(0);
    // A migration never overwrites a state that exists.
    orgform(
        dir.path(),
        &["state", "migrate", "--to", "back/orgform.state.json"],
    )
    .expect(1);
    sandbox.shutdown().await.expect("shutdown");
}

/// `force-unlock` is for a holder that is gone. Against a live holder it refuses, naming it, as
/// the file backend does, and the holder finishes its run untouched; once the holder is gone and
/// only its record is left, the same command clears that record.
#[tokio::test(flavor = "multi_thread")]
async fn force_unlock_refuses_a_live_holder() {
    const ORGS: usize = 20;
    let sandbox = start(SandboxConfig {
        latency: Duration::from_millis(150),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &sandbox.base_url(), ORGS, None, ACME_SECRET);
    let workspace = format!("live-{}", fastrand::u64(..));
    let holder = spawn_apply(dir.path(), &workspace);

    // The lock id the holder recorded, once it holds the lock.
    let (client, connection) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let deadline = Instant::now() + Duration::from_secs(30);
    let lock_id: String = loop {
        let row = client
            .query_opt(
                "SELECT lock_id FROM orgform_locks WHERE workspace = $1",
                &[&workspace],
            )
            .await
            .ok()
            .flatten();
        if let Some(row) = row {
            break row.get(0);
        }
        assert!(Instant::now() < deadline, "the apply never took the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let refused = orgform(
        dir.path(),
        &[
            "force-unlock",
            &lock_id,
            "--state",
            &pg_url(),
            "--workspace",
            &workspace,
        ],
    )
    .expect(1);
    assert!(
        refused.stderr.contains("live") && refused.stderr.contains("apply"),
        "the refusal names neither the live holder nor its command:\n{}",
        refused.stderr
    );

    // The holder was not disturbed: it finishes, and everything exists once.
    let finished = holder.wait();
    assert_eq!(
        finished.code, 0,
        "the holder failed after force-unlock:\n{}",
        finished.stderr
    );
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        ORGS as u64
    );

    // A holder that is gone leaves only its record: that is what force-unlock clears.
    let stale_id = "0b5e55ed-0000-4000-8000-000000000000";
    let gone = serde_json::json!({
        "id": stale_id, "host": "gone-runner", "pid": 1, "command": "orgform apply", "since": "2026-01-01T00:00:00Z"
    });
    client
        .execute(
            "INSERT INTO orgform_locks (workspace, lock_id, holder, backend_pid) VALUES ($1, $2, $3, 0)
             ON CONFLICT (workspace) DO UPDATE SET lock_id = $2, holder = $3, backend_pid = 0",
            &[&workspace, &stale_id, &gone],
        )
        .await
        .expect("record a gone holder");
    let cleared = orgform(
        dir.path(),
        &[
            "force-unlock",
            stale_id,
            "--state",
            &pg_url(),
            "--workspace",
            &workspace,
        ],
    )
    .expect(0);
    assert!(cleared.stderr.contains("Released"), "{}", cleared.stderr);
    let left = client
        .query_opt(
            "SELECT lock_id FROM orgform_locks WHERE workspace = $1",
            &[&workspace],
        )
        .await
        .expect("query");
    assert!(left.is_none(), "the gone holder's record is still there");
    sandbox.shutdown().await.expect("shutdown");
}
