//! The state store conformance suite: the same scenarios against the file store and against a
//! real PostgreSQL server (the test command starts one; without it these tests fail, loudly).

use std::time::Duration;

use orgform::model::{NaturalKey, ProviderType};
use orgform::state::file::{FileBackend, LockRequest};
use orgform::state::postgres::PostgresBackend;
use orgform::state::{
    Detail, LockInfo, Record, State, StateBackend, StateError, StateOp, Status, Store,
};

/// The server the test command started.
pub fn pg_url() -> String {
    std::env::var("ORGFORM_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "ORGFORM_TEST_PG_URL is not set: run the tests with ./scripts/test, which installs and starts PostgreSQL"
        )
    })
}

fn who(id: &str) -> LockInfo {
    LockInfo {
        id: id.into(),
        host: "test-host".into(),
        pid: 4242,
        command: format!("orgform test {id}"),
        since: 1_790_000_000,
    }
}

fn record(n: u32) -> Record {
    Record {
        provider: "h".into(),
        provider_type: ProviderType::Heron,
        remote_id: Some(format!("crm_{n}")),
        natural_key: NaturalKey(format!("salesforce | https://o{n}.example.com")),
        digest: "ab".repeat(32),
        status: Status::Created,
        attributes: orgform::state::Attributes::from_value(&serde_json::json!({"n": n})),
        attempted_at: Some(1_790_000_000),
        updated_at: 1_790_000_001,
        error: None,
        detail: Detail::default(),
    }
}

/// Where a scenario's state lives, and how to open it (locked) there.
enum Place {
    File(tempfile::TempDir),
    Postgres(String),
}

impl Place {
    fn file() -> Place {
        Place::File(tempfile::tempdir().expect("tempdir"))
    }

    fn postgres() -> Place {
        Place::Postgres(format!("conformance-{}", fastrand::u64(..)))
    }

    async fn open(&self, id: &str, timeout: Duration) -> Result<Store, StateError> {
        match self {
            Place::File(dir) => {
                let path = dir.path().join("orgform.state.json");
                let request = LockRequest {
                    info: who(id),
                    timeout,
                };
                tokio::task::spawn_blocking(move || FileBackend::open_locked(&path, &request))
                    .await
                    .expect("join")
                    .map(Store::File)
            }
            Place::Postgres(workspace) => {
                let mut backend = PostgresBackend::connect(&pg_url(), workspace, who(id)).await?;
                backend.lock(timeout).await?;
                Ok(Store::Postgres(Box::new(backend)))
            }
        }
    }
}

async fn conformance(place: Place) {
    let short = Duration::from_millis(300);

    // Nothing yet.
    let mut store = place.open("one", short).await.expect("open");
    assert!(store.load().await.expect("load").is_none());

    // A write is read back whole, and the serial grows by one.
    let mut state = State::new("lineage-conformance".into());
    state.orgs.insert("a".into(), record(1));
    store.write(&mut state).await.expect("write");
    assert_eq!(state.serial, 1);
    let loaded = store.load().await.expect("load").expect("some");
    assert_eq!(loaded, state);

    // Journaled changes survive a run that dies before folding them in.
    let ops = vec![
        StateOp::Put {
            address: "b".into(),
            record: Box::new(record(2)),
        },
        StateOp::Remove {
            address: "a".into(),
        },
        StateOp::CreateSent {
            provider: "h".into(),
            at: 1_790_000_100,
        },
    ];
    let mut next = state.clone();
    for op in &ops {
        next.apply(op);
    }
    store.append(&mut next, &ops).await.expect("append");
    drop(store); // killed: no compaction
    let mut store = place.open("two", short).await.expect("reopen");
    let replayed = store.load().await.expect("load").expect("some");
    assert_eq!(replayed.orgs.keys().collect::<Vec<_>>(), vec!["b"]);
    assert_eq!(replayed.creates_sent["h"], vec![1_790_000_100]);
    assert_eq!(replayed.lineage, "lineage-conformance");

    // Folding the journal makes a new version holding the same state.
    let mut folded = replayed.clone();
    store.compact(&mut folded).await.expect("compact");
    assert_eq!(folded.serial, replayed.serial + 1);
    let after = store.load().await.expect("load").expect("some");
    assert_eq!(after.orgs, replayed.orgs);
    assert_eq!(after.serial, folded.serial);

    // The lock: a second run waits, then names the holder.
    let err = match place.open("three", short).await {
        Ok(_) => panic!("a second run got the lock"),
        Err(e) => e,
    };
    let message = err.to_string();
    assert!(message.contains("locked by"), "{message}");
    assert!(message.contains("orgform test two"), "{message}");
    drop(store);
    let mut store = place
        .open("four", short)
        .await
        .expect("free once the holder is gone");

    // A writer holding a stale view can't overwrite a newer state.
    let mut current = store.load().await.expect("load").expect("some");
    let mut stale = current.clone();
    store.write(&mut current).await.expect("write");
    let err = store
        .write(&mut stale)
        .await
        .expect_err("stale write refused");
    assert!(matches!(err, StateError::Conflict { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn file_store_conforms() {
    conformance(Place::file()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_store_conforms() {
    conformance(Place::postgres()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_keeps_every_version_with_its_writer() {
    let workspace = format!("history-{}", fastrand::u64(..));
    let mut backend = PostgresBackend::connect(&pg_url(), &workspace, who("h"))
        .await
        .expect("connect");
    backend.lock(Duration::from_secs(1)).await.expect("lock");
    let mut store = Store::Postgres(Box::new(backend));
    let mut state = State::new("lineage-history".into());
    for n in 0..3 {
        state.orgs.insert(format!("o{n}"), record(n));
        store.write(&mut state).await.expect("write");
    }
    let Store::Postgres(backend) = &store else {
        unreachable!()
    };
    let versions = backend.history().await.expect("history");
    assert_eq!(
        versions.iter().map(|v| v.serial).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        versions.iter().map(|v| v.organizations).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        versions
            .iter()
            .all(|v| v.command == "orgform test h" && v.written_by.contains("test-host"))
    );
}

/// The first schema orgform shipped (`jsonb` states, one journal row per op), as a database
/// created by an older orgform holds it.
const SCHEMA_V1: &str = r"
CREATE TABLE orgform_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
INSERT INTO orgform_schema (version) VALUES (1);
CREATE TABLE orgform_states (
    workspace text NOT NULL, serial bigint NOT NULL, lineage text NOT NULL, state jsonb NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(), written_by text NOT NULL, command text NOT NULL,
    PRIMARY KEY (workspace, serial)
);
CREATE TABLE orgform_journal (
    workspace text NOT NULL, base_serial bigint NOT NULL, seq bigserial, op jsonb NOT NULL,
    PRIMARY KEY (workspace, seq)
);
CREATE TABLE orgform_locks (
    workspace text PRIMARY KEY, lock_id text NOT NULL, holder jsonb NOT NULL,
    backend_pid integer NOT NULL, since timestamptz NOT NULL DEFAULT now()
);
";

/// A database an older orgform wrote, with a run's journal still unfolded (it was killed), is
/// upgraded in place on first use: its versions keep their counts, and the journal's ops are
/// read back in order before the next version folds them in.
#[tokio::test(flavor = "multi_thread")]
async fn a_version_one_database_is_upgraded_with_its_journal() {
    let admin_url = pg_url();
    let database = format!("orgform_v1_{}", fastrand::u64(..));
    let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .expect("create database");
    let mut url = url::Url::parse(&admin_url).expect("the test URL parses");
    url.set_path(&database);
    let url = url.to_string();

    let mut old = State::new("lineage-v1".into());
    old.serial = 1;
    old.orgs.insert("a".into(), record(1));
    let journal = [
        StateOp::Put {
            address: "b".into(),
            record: Box::new(record(2)),
        },
        StateOp::Remove {
            address: "a".into(),
        },
        StateOp::Put {
            address: "c".into(),
            record: Box::new(record(3)),
        },
    ];
    {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect to the new database");
        tokio::spawn(connection);
        client.batch_execute(SCHEMA_V1).await.expect("schema v1");
        let value = serde_json::to_value(&old).expect("state as JSON");
        client
            .execute(
                "INSERT INTO orgform_states (workspace, serial, lineage, state, written_by, command) VALUES ('w', 1, 'lineage-v1', $1, 'old-host pid 1', 'orgform apply')",
                &[&value],
            )
            .await
            .expect("a version one state");
        for op in &journal {
            let op = serde_json::to_value(op).expect("op as JSON");
            client
                .execute(
                    "INSERT INTO orgform_journal (workspace, base_serial, op) VALUES ('w', 1, $1)",
                    &[&op],
                )
                .await
                .expect("a version one journal entry");
        }
    }

    let mut backend = PostgresBackend::connect(&url, "w", who("upgrade"))
        .await
        .expect("connect upgrades the schema");
    backend.lock(Duration::from_secs(1)).await.expect("lock");
    let versions = backend.history().await.expect("history");
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.serial, v.organizations))
            .collect::<Vec<_>>(),
        vec![(1, 1)]
    );
    let mut store = Store::Postgres(Box::new(backend));
    let mut loaded = store.load().await.expect("load").expect("some");
    assert_eq!(loaded.orgs.keys().collect::<Vec<_>>(), vec!["b", "c"]);
    assert_eq!(loaded.lineage, "lineage-v1");
    assert_eq!(loaded.orgs["c"], record(3));
    store.compact(&mut loaded).await.expect("fold the journal");
    let after = store.load().await.expect("load").expect("some");
    assert_eq!(after.serial, 2);
    assert_eq!(after.orgs, loaded.orgs);
    let Store::Postgres(backend) = &store else {
        unreachable!()
    };
    assert_eq!(
        backend
            .history()
            .await
            .expect("history")
            .iter()
            .map(|v| (v.serial, v.organizations))
            .collect::<Vec<_>>(),
        vec![(1, 1), (2, 2)]
    );
    drop(store);
    // Best effort: the database is the test's own.
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .await;
}
