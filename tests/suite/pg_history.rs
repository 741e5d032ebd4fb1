//! `orgform state history --prune` on PostgreSQL, through the real binary: every version is
//! kept until a prune, which keeps the newest N under the workspace's lock, says what it freed,
//! and leaves the state itself as it was.

use orgform::state::postgres::PostgresBackend;
use orgform::state::{LockInfo, State, StateBackend};

use crate::state_stores::pg_url;

fn who() -> LockInfo {
    LockInfo {
        id: format!("writer-{}", fastrand::u64(..)),
        host: "test".into(),
        pid: 1,
        command: "test".into(),
        since: 0,
    }
}

async fn backend(workspace: &str) -> PostgresBackend {
    PostgresBackend::connect(&pg_url(), workspace, who())
        .await
        .expect("connect")
}

/// Writes `n` versions of one lineage's state to a new workspace; returns the last state.
async fn versions(workspace: &str, n: usize) -> State {
    let mut store = backend(workspace).await;
    store
        .lock(std::time::Duration::from_secs(10))
        .await
        .expect("lock");
    let mut state = State::new("prune-test-lineage".into());
    for _ in 0..n {
        store.write(&mut state).await.expect("write");
    }
    store.unlock().await.expect("unlock");
    state
}

fn orgform(args: &[&str]) -> crate::harness::Run {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::harness::run(dir.path(), args, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_keeps_the_newest_versions_and_says_what_it_freed() {
    let workspace = format!("prune-{}", fastrand::u64(..));
    let written = versions(&workspace, 7).await;
    assert_eq!(
        backend(&workspace)
            .await
            .history()
            .await
            .expect("history")
            .len(),
        7
    );
    let url = pg_url();
    let state = ["--state", url.as_str(), "--workspace", workspace.as_str()];

    let listed = orgform(&[&["state", "history"][..], &state[..]].concat()).expect(0);
    assert!(
        listed.stdout.starts_with("7 versions of"),
        "{}",
        listed.stdout
    );

    let pruned = orgform(
        &[
            &[
                "state", "history", "--prune", "--keep", "3", "--format", "json",
            ][..],
            &state[..],
        ]
        .concat(),
    )
    .expect(0);
    let pruned: serde_json::Value = serde_json::from_str(&pruned.stdout).expect("json");
    assert_eq!(pruned["deleted"], 4, "{pruned}");
    assert_eq!(pruned["kept"], 3, "{pruned}");
    assert!(pruned["bytes_freed"].as_u64().unwrap_or(0) > 0, "{pruned}");

    let left = backend(&workspace).await.history().await.expect("history");
    let serials: Vec<u64> = left.iter().map(|v| v.serial).collect();
    assert_eq!(serials, [5, 6, 7], "the newest three are kept");
    let loaded = backend(&workspace).await.load().await.expect("load");
    assert_eq!(
        loaded.map(|s| (s.serial, s.lineage)),
        Some((written.serial, written.lineage))
    );

    // Again: nothing more to delete.
    let again = orgform(
        &[
            &["state", "history", "--prune", "--keep", "3"][..],
            &state[..],
        ]
        .concat(),
    )
    .expect(0);
    assert!(
        again.stdout.starts_with("Pruned 0 versions of"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_never_deletes_the_state_itself_and_needs_postgres() {
    let workspace = format!("prune-keep-{}", fastrand::u64(..));
    versions(&workspace, 2).await;
    let url = pg_url();
    let state = ["--state", url.as_str(), "--workspace", workspace.as_str()];
    let refused = orgform(
        &[
            &["state", "history", "--prune", "--keep", "0"][..],
            &state[..],
        ]
        .concat(),
    );
    assert_ne!(refused.code, 0, "--keep 0 is refused");
    assert!(refused.stderr.contains("--keep"), "{}", refused.stderr);
    orgform(
        &[
            &["state", "history", "--prune", "--keep", "1"][..],
            &state[..],
        ]
        .concat(),
    )
    .expect(0);
    let left = backend(&workspace).await.history().await.expect("history");
    assert_eq!(left.iter().map(|v| v.serial).collect::<Vec<_>>(), [2]);

    let file = tempfile::tempdir().expect("tempdir");
    let path = file.path().join("orgform.state.json");
    let path = path.to_str().expect("utf-8");
    let run = orgform(&["state", "history", "--prune", "--state", path]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("no history to prune"), "{}", run.stderr);
}
