//! The team state store: PostgreSQL. Many CI jobs, one truth.
//!
//! - One dedicated connection per run holds a **session-level advisory lock** for the whole run
//!   (never a pool, which could hand the lock's session to someone else). If the connection is
//!   lost, PostgreSQL frees the lock, and this run's next write fails, so it stops before its
//!   next create.
//! - Every version is kept (`orgform_states`, one row per serial, with who wrote it and with
//!   which command), until `orgform state history --prune --keep N` deletes all but the N
//!   newest under the lock: each version is a whole copy, so a workspace applied often is
//!   pruned on a schedule of its owner's choosing, never by orgform on its own. A write is **compare-and-swap on (lineage, serial)** inside a transaction,
//!   with the primary key as the last guard: a writer that lost its lock can never overwrite a
//!   newer state.
//! - Apply's per-create records go to `orgform_journal`, one row per group commit (its ops as a
//!   JSON array, committed before any of their requests leave, by a statement prepared once),
//!   and are folded into a new version at the end of the run.
//! - States and journal rows are JSON **text**, as Terraform's `pg` backend keeps them: `jsonb`
//!   made PostgreSQL parse each 10 MB state and every op, which cost an apply of 10,000 half
//!   as much again as the file state's. `state::jsonb` still queries them. Values are
//!   compressed with lz4 where the server has it (pglz otherwise), several times as fast.
//! - The schema is created on first use and versioned in `orgform_schema`.

use std::time::Duration;

use bytes::BufMut;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Statement};

use super::{LockInfo, State, StateBackend, StateError, StateOp, parse};

/// Advisory-lock class for orgform, so its locks never collide with an application's own.
const LOCK_CLASS: i32 = 0x6f72_6766; // "orgf"

/// Schema migrations, applied in order, each once.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE orgform_states (
    workspace  text        NOT NULL,
    serial     bigint      NOT NULL,
    lineage    text        NOT NULL,
    state      jsonb       NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    written_by text        NOT NULL,
    command    text        NOT NULL,
    PRIMARY KEY (workspace, serial)
);
CREATE TABLE orgform_journal (
    workspace   text   NOT NULL,
    base_serial bigint NOT NULL,
    seq         bigserial,
    op          jsonb  NOT NULL,
    PRIMARY KEY (workspace, seq)
);
CREATE TABLE orgform_locks (
    workspace   text        PRIMARY KEY,
    lock_id     text        NOT NULL,
    holder      jsonb       NOT NULL,
    backend_pid integer     NOT NULL,
    since       timestamptz NOT NULL DEFAULT now()
);
",
    r"
ALTER TABLE orgform_states ADD COLUMN organizations bigint;
UPDATE orgform_states
   SET organizations = (SELECT count(*) FROM jsonb_object_keys(coalesce(state->'orgs', '{}'::jsonb)));
ALTER TABLE orgform_states ALTER COLUMN organizations SET NOT NULL;
ALTER TABLE orgform_states ALTER COLUMN state TYPE text USING state::text;
ALTER TABLE orgform_journal RENAME COLUMN op TO ops;
ALTER TABLE orgform_journal ALTER COLUMN ops TYPE text USING jsonb_build_array(ops)::text;
",
];

/// A PostgreSQL workspace, connected.
pub struct PostgresBackend {
    client: Client,
    connection: JoinHandle<()>,
    workspace: String,
    shown: String,
    who: LockInfo,
    locked: bool,
    serial_on_disk: Option<u64>,
    lineage_on_disk: Option<String>,
    journal_base: Option<u64>,
    dirty: bool,
    /// The journal's INSERT, prepared on first use: a statement per group commit would be a
    /// second round trip for each.
    append: Option<Statement>,
}

/// A value sent as JSON text, serialized straight into the request's buffer (no copy of a 10
/// MB state first).
#[derive(Debug)]
struct JsonText<'a, T>(&'a T);

impl<T: serde::Serialize + std::fmt::Debug> ToSql for JsonText<'_, T> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        serde_json::to_writer(out.writer(), self.0)?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT
    }

    to_sql_checked!();
}

/// One kept version, for `orgform state history`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Version {
    pub serial: u64,
    pub(crate) lineage: String,
    pub(crate) written_at: String,
    pub written_by: String,
    pub command: String,
    pub organizations: u64,
}

fn db(target: &str, e: &tokio_postgres::Error) -> StateError {
    // The driver's messages never carry the password; the URL is shown redacted.
    let detail = e.as_db_error().map_or_else(
        || e.to_string(),
        |d| format!("{}: {}", d.code().code(), d.message()),
    );
    StateError::Database {
        target: target.to_string(),
        message: detail,
    }
}

/// What `state history --prune` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Pruned {
    /// Versions deleted.
    pub deleted: u64,
    /// Versions kept (the newest).
    pub kept: u64,
    /// The stored size of the deleted versions' states, in bytes.
    pub bytes_freed: u64,
}

/// A PostgreSQL URL as messages show it: `postgres://user:secret@host/db?password=x` ->
/// `postgres://user@host/db`. The password, the query (which may hold `password=` or
/// `sslpassword=`) and any fragment are dropped, and a value that is not a `postgres://` URL
/// at all is not shown: a `[state] url` is a secret reference, which a pull request may point
/// at any variable the CI job holds.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if matches!(u.scheme(), "postgres" | "postgresql") => {
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Ok(_) => "(a value that is not a postgres:// URL, not shown)".into(),
        Err(_) => "postgres://(unparsable URL)".into(),
    }
}

impl PostgresBackend {
    /// Awaits one of the client's calls, naming this store in its failure.
    async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StateError> {
        call.await.map_err(|e| db(&self.shown, &e))
    }

    /// Connects to `url` (its password, if it has none, from `PGPASSWORD`) for `workspace`, and
    /// creates or upgrades the schema.
    #[expect(
        clippy::disallowed_methods,
        reason = "a config reader: libpq's PGPASSWORD"
    )]
    pub async fn connect(
        url: &str,
        workspace: &str,
        who: LockInfo,
    ) -> Result<PostgresBackend, StateError> {
        let shown = format!("{} (workspace `{workspace}`)", redact_url(url));
        let mut config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| StateError::Database {
                    target: shown.clone(),
                    message: format!("not a PostgreSQL URL: {e}"),
                })?;
        if config.get_password().is_none()
            && let Ok(password) = std::env::var("PGPASSWORD")
        {
            config.password(password);
        }
        config.application_name("orgform");
        config.connect_timeout(Duration::from_secs(10));
        // TCP keepalives, so a holder whose machine vanished loses its lock in bounded time.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        let (client, connection) = config.connect(NoTls).await.map_err(|e| db(&shown, &e))?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the PostgreSQL state connection ended");
            }
        });
        let mut backend = PostgresBackend {
            client,
            connection,
            workspace: workspace.to_string(),
            shown,
            who,
            locked: false,
            serial_on_disk: None,
            lineage_on_disk: None,
            journal_base: None,
            dirty: false,
            append: None,
        };
        backend.migrate().await?;
        // lz4 compresses a 10 MB state in a tenth of pglz's time. A server built without it (or
        // older than 14) refuses the setting, and keeps its own default.
        if let Err(e) = backend
            .client
            .batch_execute("SET default_toast_compression = lz4")
            .await
        {
            tracing::debug!(error = %e, "the state's values are compressed with the server's default");
        }
        Ok(backend)
    }

    async fn migrate(&mut self) -> Result<(), StateError> {
        let shown = self.shown.clone();
        let tx = self
            .client
            .transaction()
            .await
            .map_err(|e| db(&shown, &e))?;
        // Two runs starting at once on an empty database must not both create the schema.
        tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_CLASS])
            .await
            .map_err(|e| db(&shown, &e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS orgform_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(|e| db(&shown, &e))?;
        let row = tx
            .query_one("SELECT coalesce(max(version), 0) FROM orgform_schema", &[])
            .await
            .map_err(|e| db(&shown, &e))?;
        let current: i32 = row.get(0);
        let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
        if current > known {
            return Err(StateError::Database {
                target: shown,
                message: format!(
                    "the database schema is version {current}, newer than this orgform knows ({known}); upgrade orgform"
                ),
            });
        }
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(current).unwrap_or(0))
        {
            let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
            tx.batch_execute(sql).await.map_err(|e| db(&shown, &e))?;
            tx.execute(
                "INSERT INTO orgform_schema (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(|e| db(&shown, &e))?;
        }
        tx.commit().await.map_err(|e| db(&shown, &e))
    }

    /// Takes the workspace's lock for this session, waiting up to `timeout`.
    pub async fn lock(&mut self, timeout: Duration) -> Result<(), StateError> {
        let started = Instant::now();
        let mut said = false;
        loop {
            let row = self
                .run(self.client.query_one(
                    "SELECT pg_try_advisory_lock($1, hashtext($2))",
                    &[&LOCK_CLASS, &self.workspace],
                ))
                .await?;
            if row.get::<_, bool>(0) {
                break;
            }
            if started.elapsed() >= timeout {
                let holder = self.holder().await?;
                return Err(StateError::Locked {
                    holder: holder
                        .map_or_else(|| "another orgform run".to_string(), |h| h.to_string()),
                    waited: humantime::format_duration(timeout).to_string(),
                });
            }
            if !said && started.elapsed() >= super::file::LOCK_NOTICE_AFTER {
                said = true;
                let holder = self.holder().await?.map(|h| h.to_string());
                crate::output::waiting_for_lock(holder.as_deref(), timeout);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let holder = serde_json::to_value(&self.who).unwrap_or_default();
        self.run(self.client.execute(
                "INSERT INTO orgform_locks (workspace, lock_id, holder, backend_pid) VALUES ($1, $2, $3, pg_backend_pid())
                 ON CONFLICT (workspace) DO UPDATE SET lock_id = $2, holder = $3, backend_pid = pg_backend_pid(), since = now()",
                &[&self.workspace, &self.who.id, &holder],
            )).await?;
        self.locked = true;
        Ok(())
    }

    async fn holder(&self) -> Result<Option<LockInfo>, StateError> {
        let row = self
            .run(self.client.query_opt(
                "SELECT holder FROM orgform_locks WHERE workspace = $1",
                &[&self.workspace],
            ))
            .await?;
        Ok(row.and_then(|r| serde_json::from_value(r.get::<_, serde_json::Value>(0)).ok()))
    }

    /// Releases the lock and forgets the holder record.
    pub async fn unlock(&mut self) -> Result<(), StateError> {
        if !self.locked {
            return Ok(());
        }
        self.run(self.client.execute(
            "DELETE FROM orgform_locks WHERE workspace = $1 AND lock_id = $2",
            &[&self.workspace, &self.who.id],
        ))
        .await?;
        self.run(self.client.query_one(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&LOCK_CLASS, &self.workspace],
        ))
        .await?;
        self.locked = false;
        Ok(())
    }

    /// Clears the lock record of a holder that is gone, if the recorded lock id is `lock_id`.
    /// Returns the holder it cleared. A holder whose session still holds the workspace's
    /// advisory lock is alive (a killed run's session ends, and its lock with it): it is named
    /// and left alone, as the file backend does, never ended from here.
    pub(crate) async fn force_unlock(
        &mut self,
        lock_id: &str,
    ) -> Result<Option<LockInfo>, StateError> {
        let row = self
            .run(self.client.query_opt(
                "SELECT lock_id, holder, backend_pid FROM orgform_locks WHERE workspace = $1",
                &[&self.workspace],
            ))
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let recorded: String = row.get(0);
        if recorded != lock_id {
            return Err(StateError::Database {
                target: self.shown.clone(),
                message: format!(
                    "the lock is recorded as `{recorded}`, not `{lock_id}`; nothing was changed"
                ),
            });
        }
        // An unreadable holder record still names a lock: it is cleared like any other.
        let holder: LockInfo = serde_json::from_value(row.get::<_, serde_json::Value>(1))
            .unwrap_or_else(|_| LockInfo {
                id: recorded.clone(),
                host: "an unknown host".into(),
                pid: 0,
                command: "a run whose record can't be read".into(),
                since: 0,
            });
        let live = self.run(self.client.query_opt(
                "SELECT l.pid FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.classid::int = $1 AND l.objid::int = hashtext($2) AND l.granted",
                &[&LOCK_CLASS, &self.workspace],
            )).await?;
        if let Some(live) = live {
            let pid: i32 = live.get(0);
            return Err(StateError::HeldByLiveRun {
                holder: holder.to_string(),
                advice: format!(
                    "wait for it to finish, or stop it (Ctrl-C records what it sent). If its machine is gone but PostgreSQL still keeps its session (until TCP keepalives notice), a database administrator can end that session: SELECT pg_terminate_backend({pid});"
                ),
            });
        }
        self.run(self.client.execute(
            "DELETE FROM orgform_locks WHERE workspace = $1 AND lock_id = $2",
            &[&self.workspace, &lock_id],
        ))
        .await?;
        Ok(Some(holder))
    }

    /// Every kept version of this workspace, oldest first.
    pub async fn history(&self) -> Result<Vec<Version>, StateError> {
        let rows = self.run(self.client.query(
                "SELECT serial, lineage, to_char(written_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), written_by, command, organizations
                 FROM orgform_states WHERE workspace = $1 ORDER BY serial",
                &[&self.workspace],
            )).await?;
        Ok(rows
            .iter()
            .map(|r| Version {
                serial: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                lineage: r.get(1),
                written_at: r.get(2),
                written_by: r.get(3),
                command: r.get(4),
                organizations: u64::try_from(r.get::<_, i64>(5)).unwrap_or(0),
            })
            .collect())
    }

    /// Deletes every version of this workspace but the `keep` newest (at least one: the state
    /// itself), under the lock the caller holds.
    pub async fn prune(&mut self, keep: u64) -> Result<Pruned, StateError> {
        let keep = Self::serial(keep.max(1));
        let shown = self.shown.clone();
        let tx = self
            .client
            .transaction()
            .await
            .map_err(|e| db(&shown, &e))?;
        let row = tx
            .query_one(
                "WITH doomed AS (
                     SELECT serial FROM orgform_states WHERE workspace = $1
                     ORDER BY serial DESC OFFSET $2
                 ), deleted AS (
                     DELETE FROM orgform_states s USING doomed d
                     WHERE s.workspace = $1 AND s.serial = d.serial
                     RETURNING pg_column_size(s.state) AS size
                 )
                 SELECT count(*), coalesce(sum(size), 0)::bigint,
                        (SELECT count(*) FROM orgform_states WHERE workspace = $1)
                 FROM deleted",
                &[&self.workspace, &keep],
            )
            .await
            .map_err(|e| db(&shown, &e))?;
        tx.commit().await.map_err(|e| db(&shown, &e))?;
        let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        let deleted = count(0);
        // The count in the same statement sees the rows before the delete.
        let kept = count(2).saturating_sub(deleted);
        Ok(Pruned {
            deleted,
            kept,
            bytes_freed: count(1),
        })
    }

    fn serial(value: u64) -> i64 {
        i64::try_from(value).unwrap_or(i64::MAX)
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        // Closing the session frees its advisory lock.
        self.connection.abort();
    }
}

impl StateBackend for PostgresBackend {
    async fn load(&mut self) -> Result<Option<State>, StateError> {
        let row = self.run(self.client.query_opt(
                "SELECT state FROM orgform_states WHERE workspace = $1 ORDER BY serial DESC LIMIT 1",
                &[&self.workspace],
            )).await?;
        let mut state = match row {
            Some(r) => Some(parse(&self.shown, r.get::<_, &str>(0))?),
            None => None,
        };
        self.serial_on_disk = state.as_ref().map(|s| s.serial);
        self.lineage_on_disk = state.as_ref().map(|s| s.lineage.clone());
        let base = self.serial_on_disk.unwrap_or(0);
        let batches = self.run(self.client.query(
                "SELECT ops FROM orgform_journal WHERE workspace = $1 AND base_serial = $2 ORDER BY seq",
                &[&self.workspace, &Self::serial(base)],
            )).await?;
        if !batches.is_empty() {
            let state = state.get_or_insert_with(|| State::new(super::new_lineage()));
            for row in &batches {
                let ops: Vec<StateOp> =
                    serde_json::from_str(row.get::<_, &str>(0)).map_err(|e| {
                        StateError::Corrupt {
                            path: self.shown.clone(),
                            message: format!("journal entry: {e}"),
                        }
                    })?;
                for op in &ops {
                    state.apply(op);
                }
            }
            self.journal_base = Some(base);
            self.dirty = true;
        }
        Ok(state)
    }

    async fn write(&mut self, state: &mut State) -> Result<(), StateError> {
        let shown = self.shown.clone();
        let written_by = format!("{} pid {}", self.who.host, self.who.pid);
        let tx = self
            .client
            .transaction()
            .await
            .map_err(|e| db(&shown, &e))?;
        let latest = tx
            .query_opt(
                "SELECT serial, lineage FROM orgform_states WHERE workspace = $1 ORDER BY serial DESC LIMIT 1",
                &[&self.workspace],
            )
            .await
            .map_err(|e| db(&shown, &e))?;
        let found = latest.map(|r| {
            (
                u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                r.get::<_, String>(1),
            )
        });
        let expected = self.serial_on_disk.zip(self.lineage_on_disk.clone());
        if found != expected {
            return Err(StateError::Conflict {
                path: shown,
                expected: state.serial,
                found: found.map_or(0, |f| f.0),
            });
        }
        // The state goes out with its next serial, serialized straight into the request
        // (`JsonText`): a copy of it and a `serde_json::Value` tree of it cost a PostgreSQL apply
        // of 10,000 half as much again as the file state's. The serial is put back if the write
        // fails.
        let serial = state.serial;
        let next = super::next_serial(serial, &shown)?;
        state.serial = next;
        let organizations = i64::try_from(state.orgs.len()).unwrap_or(i64::MAX);
        let inserted = tx
            .execute(
                "INSERT INTO orgform_states (workspace, serial, lineage, state, organizations, written_by, command) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&self.workspace, &Self::serial(state.serial), &state.lineage, &JsonText(&*state), &organizations, &written_by, &self.who.command],
            )
            .await;
        state.serial = serial;
        if let Err(e) = inserted {
            // Someone wrote this serial first: never overwrite it.
            return Err(
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                    StateError::Conflict {
                        path: shown,
                        expected: state.serial,
                        found: next,
                    }
                } else {
                    db(&shown, &e)
                },
            );
        }
        tx.execute(
            "DELETE FROM orgform_journal WHERE workspace = $1",
            &[&self.workspace],
        )
        .await
        .map_err(|e| db(&shown, &e))?;
        tx.commit().await.map_err(|e| db(&shown, &e))?;
        state.serial = next;
        self.serial_on_disk = Some(state.serial);
        self.lineage_on_disk = Some(state.lineage.clone());
        self.journal_base = None;
        self.dirty = false;
        Ok(())
    }

    async fn append(&mut self, state: &mut State, ops: &[StateOp]) -> Result<(), StateError> {
        if self.journal_base.is_none() && self.serial_on_disk.is_none() {
            // Nothing written yet: a first version anchors the lineage the journal applies to.
            let mut empty = state.clone();
            empty.orgs.clear();
            empty.creates_sent.clear();
            self.write(&mut empty).await?;
            state.serial = empty.serial;
        }
        let base = self.serial_on_disk.unwrap_or(0);
        let insert = match &self.append {
            Some(statement) => statement.clone(),
            None => {
                let statement = self
                    .run(self.client.prepare_typed(
                        "INSERT INTO orgform_journal (workspace, base_serial, ops) VALUES ($1, $2, $3)",
                        &[Type::TEXT, Type::INT8, Type::TEXT],
                    ))
                    .await?;
                self.append.insert(statement).clone()
            }
        };
        self.run(self.client.execute(
            &insert,
            &[&self.workspace, &Self::serial(base), &JsonText(&ops)],
        ))
        .await?;
        self.journal_base = Some(base);
        self.dirty = true;
        Ok(())
    }

    fn journal_pending(&self) -> bool {
        self.dirty
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}
