//! State: what orgform created or adopted, per address, with a lineage and a serial.
//!
//! The data types are plain and pure (the planner reads them); the [`StateBackend`] trait is the
//! I/O edge, with the local file store beside it. A state never holds a secret: records carry
//! the natural key, the remote id and a digest of the non-secret declaration only.

pub mod file;
mod load;
pub mod postgres;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use serde_json::value::RawValue;

use crate::escape::Shown;
pub use crate::model::Detail;
use crate::model::packed::PackedTable;
use crate::model::{Address, InstanceName, NaturalKey, ProviderType, Timestamp, Value};
use crate::time;

/// The newest state format this version reads. A newer one is refused, never half-read.
pub(crate) const STATE_FORMAT_VERSION: u32 = 2;

/// The format of a state that stands alone.
pub(crate) const STANDALONE_FORMAT_VERSION: u32 = 1;

/// The format of a large local state that a journal (compressed, format 2) may accompany across
/// runs: an orgform that would not replay that journal refuses the state instead of planning
/// without the changes in it.
pub(crate) const JOURNALED_FORMAT_VERSION: u32 = 2;

/// A state file is read through [`parse`] (`load.rs`), which keeps each record's attributes
/// where they are in the document's text; `Deserialize` copies them, for other sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Format version of this document.
    pub(crate) version: u32,
    /// Identifies one line of history: two states with different lineages are unrelated.
    pub lineage: String,
    /// Grows by one with every write.
    pub serial: u64,
    #[serde(default, deserialize_with = "records_in_bulk")]
    pub orgs: BTreeMap<Address, Record>,
    /// When creates were sent, per provider instance, for rolling daily quotas. Pruned to the
    /// last 24 hours on each write.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "time::rfc3339_lists"
    )]
    pub creates_sent: BTreeMap<InstanceName, Vec<Timestamp>>,
}

/// One organization orgform knows about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The provider instance (`[provider.NAME]`) it lives on.
    pub provider: InstanceName,
    pub provider_type: ProviderType,
    /// The provider's id, once known. For an asynchronous create, the id of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    pub natural_key: NaturalKey,
    /// SHA-256 of the declared non-secret attributes when it was created or adopted.
    pub digest: String,
    pub status: Status,
    /// The declared non-secret attributes it was created with, to show what changed since.
    #[serde(default)]
    pub attributes: Attributes,
    /// When orgform sent the create (or last tried to), for quotas and for "pending since".
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::opt_rfc3339"
    )]
    pub attempted_at: Option<Timestamp>,
    #[serde(with = "time::rfc3339")]
    pub updated_at: Timestamp,
    /// Why an asynchronous create failed at the provider. Boxed: few records have one, and a
    /// hundred thousand records' map carries room for it in every slot otherwise (40 bytes of
    /// the 248 a record takes in a node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<RecordError>>,
    /// Provider facts worth keeping (Salesforce's `CreatedOrgId`, Oracle's organization id).
    #[serde(default, skip_serializing_if = "Detail::is_empty")]
    pub detail: Detail,
}

/// Declared non-secret attributes as compact JSON text. Kept as text: only a `blocked` diff
/// reads them, and a hundred thousand parsed trees would cost far more memory than the text.
/// A record apply makes from the specs holds the spec's packed table instead, shared, and is
/// written out as the same text when state is: at a hundred thousand creates the text of each
/// was as large as the rest of the run's memory. A record read from a state file points into
/// the file's text, which all its records share: a copy of each was as much again as the text.
#[derive(Clone, Debug)]
pub struct Attributes(Held);

#[derive(Clone, Debug)]
enum Held {
    /// As a journal holds it (or a state file read from elsewhere).
    Text(Box<RawValue>),
    /// A value in a state file's text, valid JSON (checked when the file was read).
    Within {
        text: Arc<String>,
        start: usize,
        end: usize,
    },
    /// An organization's declared table, shared with the spec it was declared in.
    Declared(PackedTable),
}

impl Attributes {
    pub(crate) fn from_serialize(value: &impl Serialize) -> Attributes {
        serde_json::value::to_raw_value(value)
            .map_or_else(|_| Attributes::default(), |raw| Attributes(Held::Text(raw)))
    }

    pub fn from_value(value: &serde_json::Value) -> Attributes {
        Attributes::from_serialize(value)
    }

    /// The non-secret part of a declared table, held as the table (shared) until written.
    pub(crate) fn declared(table: &PackedTable) -> Attributes {
        Attributes(Held::Declared(table.clone()))
    }

    /// `raw`, read from `text`, as the place in `text` it is (copied if it is not there).
    fn within(text: &Arc<String>, raw: &RawValue) -> Attributes {
        let value = raw.get();
        let start = (value.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
        let end = start.wrapping_add(value.len());
        if text
            .get(start..end)
            .is_some_and(|at| at.as_ptr() == value.as_ptr())
        {
            Attributes(Held::Within {
                text: text.clone(),
                start,
                end,
            })
        } else {
            Attributes(Held::Text(raw.to_owned()))
        }
    }

    /// The JSON text, when it is held as text.
    fn json(&self) -> Option<&str> {
        match &self.0 {
            Held::Text(raw) => Some(raw.get()),
            Held::Within { text, start, end } => text.get(*start..*end),
            Held::Declared(_) => None,
        }
    }

    pub(crate) fn to_value(&self) -> serde_json::Value {
        match &self.0 {
            Held::Text(_) | Held::Within { .. } => self
                .json()
                .and_then(|json| serde_json::from_str(json).ok())
                .unwrap_or(serde_json::Value::Null),
            Held::Declared(table) => {
                serde_json::to_value(Value::Table(table.unpack()).public_view())
                    .unwrap_or(serde_json::Value::Null)
            }
        }
    }

    /// The compact JSON text, as state writes it.
    fn text(&self) -> std::borrow::Cow<'_, RawValue> {
        match &self.0 {
            Held::Text(raw) => std::borrow::Cow::Borrowed(raw),
            // Checked when the file was read; borrowed, not copied, as the state is written.
            Held::Within { .. } => self
                .json()
                .and_then(|json| serde_json::from_str::<&RawValue>(json).ok())
                .map_or_else(
                    || std::borrow::Cow::Owned(empty_object()),
                    std::borrow::Cow::Borrowed,
                ),
            Held::Declared(table) => std::borrow::Cow::Owned(
                serde_json::value::to_raw_value(&Value::Table(table.unpack()).public_view())
                    .unwrap_or_else(|_| empty_object()),
            ),
        }
    }

    /// Whether both are written as the same text: at once when both hold one shared table.
    fn same_text(&self, other: &Attributes) -> bool {
        match (&self.0, &other.0) {
            (Held::Declared(a), Held::Declared(b)) if a == b => true,
            _ => match (self.json(), other.json()) {
                (Some(a), Some(b)) => a == b,
                _ => self.text().get() == other.text().get(),
            },
        }
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_string()).expect("an empty object is JSON")
}

impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Text, as it was always written: compact, on one line even in a pretty state file.
        self.text().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Attributes, D::Error> {
        Box::<RawValue>::deserialize(d).map(|raw| Attributes(Held::Text(raw)))
    }
}

impl Default for Attributes {
    fn default() -> Attributes {
        Attributes(Held::Text(empty_object()))
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Attributes) -> bool {
        self.same_text(other) || self.to_value() == other.to_value()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A create was (or was about to be) sent and its outcome is not recorded yet.
    Pending,
    Created,
    /// The provider accepted the create and later reported it failed.
    Failed,
}

impl Status {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Created => "created",
            Status::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordError {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl State {
    /// SHA-256 of what the state holds (records and quota use), without its lineage and
    /// serial: two loads of one state give the same digest, and so does a new empty state, while
    /// a journal replayed onto it (a killed apply's pending creates) changes it.
    pub(crate) fn records_digest(&self) -> String {
        // Serializing a BTreeMap is deterministic; streamed into the hash, not held whole.
        crate::digest::json_sha256(&(&self.orgs, &self.creates_sent))
    }

    /// A new, empty state with a fresh lineage.
    pub fn new(lineage: String) -> State {
        State {
            version: STANDALONE_FORMAT_VERSION,
            lineage,
            serial: 0,
            orgs: BTreeMap::new(),
            creates_sent: BTreeMap::new(),
        }
    }

    /// Creates sent to `instance` in the 24 hours before `now`. The times are kept oldest first
    /// (here and when read), so those within the day are a suffix found by a binary search: an
    /// apply of 100,000 creates checks its quota 100,000 times.
    pub(crate) fn creates_in_last_day(&self, instance: &str, now: Timestamp) -> u32 {
        self.creates_sent.get(instance).map_or(0, |times| {
            let older = times.partition_point(|t| now.saturating_sub(*t) >= DAY.as_secs());
            u32::try_from(times.len() - older).unwrap_or(u32::MAX)
        })
    }

    /// Records a create sent now, oldest first, dropping entries older than a day.
    pub(crate) fn note_create_sent(&mut self, instance: &str, now: Timestamp) {
        let times = self.creates_sent.entry(instance.to_string()).or_default();
        let older = times.partition_point(|t| now.saturating_sub(*t) >= DAY.as_secs());
        times.drain(..older);
        // Creates are noted in the order their intents are written, nearly the order of `now`.
        let at = times.partition_point(|t| *t <= now);
        times.insert(at, now);
    }
}

pub(crate) const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// One change to state as apply records it: small, so that making it durable costs the same
/// whether the state holds ten organizations or a hundred thousand (the file store appends it
/// to a journal; the whole state is rewritten once, at the end of the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// Externally tagged (`{"put": {...}}`): an internally tagged enum would buffer its fields,
// which raw JSON attributes can't survive.
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StateOp {
    /// Sets an address's record. An `attempted_at` left empty keeps the one recorded before:
    /// adopting or settling a create doesn't forget when it was sent.
    Put {
        address: Address,
        record: Box<Record>,
    },
    Remove {
        address: Address,
    },
    /// Sets the outcome of a record the address holds already (its create's answer, or a
    /// poll's): only what changed, so that the journal does not carry the declaration twice.
    Settle {
        address: Address,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote_id: Option<String>,
        status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<RecordError>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        detail: BTreeMap<String, String>,
        #[serde(with = "time::rfc3339")]
        updated_at: Timestamp,
    },
    /// A create was sent to `provider` at `at`, for rolling quotas.
    CreateSent {
        provider: InstanceName,
        #[serde(with = "time::rfc3339")]
        at: Timestamp,
    },
}

impl State {
    pub fn apply(&mut self, op: &StateOp) {
        match op {
            StateOp::Put { address, record } => {
                let mut record = (**record).clone();
                if record.attempted_at.is_none() {
                    record.attempted_at = self.orgs.get(address).and_then(|r| r.attempted_at);
                }
                self.orgs.insert(address.clone(), record);
            }
            StateOp::Remove { address } => {
                self.orgs.remove(address);
            }
            StateOp::Settle {
                address,
                remote_id,
                status,
                error,
                detail,
                updated_at,
            } => {
                if let Some(record) = self.orgs.get_mut(address) {
                    record.remote_id.clone_from(remote_id);
                    record.status = *status;
                    record.error = error.clone().map(Box::new);
                    record.detail = Detail::from(detail);
                    record.updated_at = *updated_at;
                }
            }
            StateOp::CreateSent { provider, at } => self.note_create_sent(provider, *at),
        }
    }

    /// Rebuilds the records' map with full nodes. A map filled in key order (an apply's
    /// records, sent in the plan's order) leaves every node but the last a little over half
    /// full (heaptrack: 59 MB of nodes at a Salesforce apply's peak of 100,000). Appending the
    /// upper half to the lower builds one tree from both, in order, freeing the old nodes as it
    /// goes, so the rebuild never holds two maps.
    pub(crate) fn compact_records(&mut self) {
        let Some(middle) = self.orgs.keys().nth(self.orgs.len() / 2).cloned() else {
            return;
        };
        let mut upper = self.orgs.split_off(&middle);
        self.orgs.append(&mut upper);
    }

    /// `op` as the journal needs it, against the state before it applies: a `put` that only
    /// records an outcome for the record the address holds (same instance, key, declaration and
    /// attributes; the sent time kept) becomes the `settle` of what changed.
    pub(crate) fn lean(&self, op: &StateOp) -> Option<StateOp> {
        let StateOp::Put { address, record } = op else {
            return None;
        };
        let held = self.orgs.get(address)?;
        let same = held.provider == record.provider
            && held.provider_type == record.provider_type
            && held.natural_key == record.natural_key
            && held.digest == record.digest
            && (record.attempted_at.is_none() || record.attempted_at == held.attempted_at)
            && held.attributes.same_text(&record.attributes);
        same.then(|| StateOp::Settle {
            address: address.clone(),
            remote_id: record.remote_id.clone(),
            status: record.status,
            error: record.error.as_deref().cloned(),
            detail: record.detail.to_map(),
            updated_at: record.updated_at,
        })
    }
}

/// Who holds a lock, recorded so that a waiting run can say whom it waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub command: String,
    #[serde(with = "time::rfc3339")]
    pub since: Timestamp,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {} on {}, since {}, lock id {})",
            // Read back from a lock file or the database: shown escaped, as any value.
            crate::escape::Shown(&self.command),
            self.pid,
            crate::escape::Shown(&self.host),
            time::format(self.since),
            crate::escape::Shown(&self.id)
        )
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("state is locked by {holder}; waited {waited}")]
    #[diagnostic(help(
        "wait for that run to finish, or pass a longer --lock-timeout; if its holder is gone, the operating system has already freed the lock"
    ))]
    Locked { holder: String, waited: String },
    /// `force-unlock` met a holder that is still running: it is never ended from outside.
    #[error("force-unlock refused: the lock is held by a live run, {holder}")]
    #[diagnostic(help("{advice}"))]
    HeldByLiveRun { holder: String, advice: String },
    #[error("cannot read state at {}: {source}", Shown(.path))]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state at {} is not valid: {message}", Shown(.path))]
    Corrupt { path: String, message: String },
    #[error(
        "state at {} was written by a newer orgform (format {found}, this one reads up to {STATE_FORMAT_VERSION}); upgrade orgform",
        Shown(.path)
    )]
    TooNew { path: String, found: u64 },
    #[error("cannot write state at {}: {source}; the previous state is intact", Shown(.path))]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{target}: {message}")]
    Database { target: String, message: String },
    #[error(
        "state at {} changed under this run (expected serial {expected}, found {found}); rerun",
        Shown(.path)
    )]
    Conflict {
        path: String,
        expected: u64,
        found: u64,
    },
}

/// The serial a write after `serial` gives: one more, never wrapped to 0 (a hand-edited state
/// at the largest serial would otherwise start its count again, and a saved plan made at an
/// old serial could match).
pub(crate) fn next_serial(serial: u64, path: &str) -> Result<u64, StateError> {
    serial.checked_add(1).ok_or_else(|| StateError::Corrupt {
        path: path.to_string(),
        message: format!(
            "its serial is {serial}, the largest a serial can be; no later version can be written (start a new state with `orgform state migrate --to NEW`)"
        ),
    })
}

/// Where state lives. A backend holds its lock from `open` until it is dropped.
pub trait StateBackend: Send {
    /// The current state, or `None` if none was ever written.
    fn load(&mut self) -> impl Future<Output = Result<Option<State>, StateError>> + Send;

    /// Writes `state` whole as the next version: bumps its serial, and refuses to overwrite a
    /// version other than the one this run read.
    fn write(&mut self, state: &mut State) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Makes `ops` durable; `state` already has them applied. The default writes the whole
    /// state; a store with a journal appends the ops instead.
    fn append(
        &mut self,
        state: &mut State,
        _ops: &[StateOp],
    ) -> impl Future<Output = Result<(), StateError>> + Send {
        self.write(state)
    }

    /// Whether `append` has made ops durable that no version holds yet (only a store with a
    /// journal has any).
    fn journal_pending(&self) -> bool {
        false
    }

    /// Folds what `append` made durable into a new version, by writing `state` whole; nothing
    /// to do when nothing is pending.
    fn compact(
        &mut self,
        state: &mut State,
    ) -> impl Future<Output = Result<(), StateError>> + Send {
        async move {
            if self.journal_pending() {
                self.write(state).await?;
            }
            Ok(())
        }
    }

    /// Where this state lives, for messages.
    fn describe(&self) -> String;
}

/// The state stores, closed like the providers: a new one makes the compiler list every place
/// that must learn about it.
pub enum Store {
    File(file::FileBackend),
    Postgres(Box<postgres::PostgresBackend>),
}

impl Store {
    /// The state this store holds, or a new one (a fresh lineage, serial 0) if none was ever
    /// written.
    pub(crate) async fn load_or_new(&mut self) -> Result<State, StateError> {
        Ok(self
            .load()
            .await?
            .unwrap_or_else(|| State::new(new_lineage())))
    }
}

impl StateBackend for Store {
    async fn load(&mut self) -> Result<Option<State>, StateError> {
        match self {
            Store::File(b) => b.load().await,
            Store::Postgres(b) => b.load().await,
        }
    }

    async fn write(&mut self, state: &mut State) -> Result<(), StateError> {
        match self {
            Store::File(b) => b.write(state).await,
            Store::Postgres(b) => b.write(state).await,
        }
    }

    async fn append(&mut self, state: &mut State, ops: &[StateOp]) -> Result<(), StateError> {
        match self {
            Store::File(b) => b.append(state, ops).await,
            Store::Postgres(b) => b.append(state, ops).await,
        }
    }

    async fn compact(&mut self, state: &mut State) -> Result<(), StateError> {
        match self {
            Store::File(b) => b.compact(state).await,
            Store::Postgres(b) => b.compact(state).await,
        }
    }

    fn describe(&self) -> String {
        match self {
            Store::File(b) => b.describe(),
            Store::Postgres(b) => b.describe(),
        }
    }
}

/// Parses a state document, refusing newer formats with a message that says so.
pub fn parse(path: &str, text: &str) -> Result<State, StateError> {
    parse_owned(path, text.to_string())
}

/// [`parse`] of a document this run holds: its records' attributes keep pointing into it.
pub(crate) fn parse_owned(path: &str, text: String) -> Result<State, StateError> {
    if !text.trim_start().starts_with('{') {
        return Err(StateError::Corrupt {
            path: path.to_string(),
            message: "it is not a JSON object (a backup of the previous version is kept beside it)"
                .into(),
        });
    }
    let text = Arc::new(text);
    // One pass in the common case; the format version is only looked at on its own to explain
    // a document this version can't read.
    match load::read(&text) {
        Ok(state) if state.version > STATE_FORMAT_VERSION => Err(StateError::TooNew {
            path: path.to_string(),
            found: u64::from(state.version),
        }),
        Ok(state) => Ok(state),
        Err(e) => Err(explain(path, &text, &e)),
    }
}

/// Reads the records as a list, then builds the map in one go: orgform writes them sorted, and
/// a map built from a sorted list costs no search per key.
fn records_in_bulk<'de, D>(deserializer: D) -> Result<BTreeMap<Address, Record>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Entries;
    impl<'de> serde::de::Visitor<'de> for Entries {
        type Value = Vec<(Address, Record)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of addresses to records")
        }

        fn visit_map<A>(self, mut map: A) -> Result<Self::Value, A::Error>
        where
            A: serde::de::MapAccess<'de>,
        {
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    Ok(deserializer.deserialize_map(Entries)?.into_iter().collect())
}

/// Why a state document didn't parse: a newer format, no format at all, or broken JSON.
fn explain(path: &str, text: &str, error: &serde_json::Error) -> StateError {
    #[derive(Deserialize)]
    struct Header {
        version: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Header>(text) {
        Ok(Header { version: Some(v) }) => match v.as_u64() {
            Some(found) if found > u64::from(STATE_FORMAT_VERSION) => StateError::TooNew {
                path: path.to_string(),
                found,
            },
            Some(_) => StateError::Corrupt {
                path: path.to_string(),
                message: error.to_string(),
            },
            None => StateError::Corrupt {
                path: path.to_string(),
                message: "its format `version` is not a number".into(),
            },
        },
        Ok(Header { version: None }) => StateError::Corrupt {
            path: path.to_string(),
            message: "it has no format `version`".into(),
        },
        Err(_) => StateError::Corrupt {
            path: path.to_string(),
            message: format!("{error} (a backup of the previous version is kept beside it)"),
        },
    }
}

/// A random lineage id, in UUID version 4 layout.
pub(crate) fn new_lineage() -> String {
    let mut bytes = [0u8; 16];
    for b in &mut bytes {
        *b = fastrand::u8(..);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SecretRef, Table};

    fn declared() -> PackedTable {
        let nested: Table = [
            ("b".to_string(), Value::Float(1.5)),
            ("a".to_string(), Value::Secret(SecretRef::Env("X".into()))),
        ]
        .into_iter()
        .collect();
        PackedTable::pack(
            &[
                ("name".to_string(), Value::String("Acme \"Co\"".into())),
                (
                    "token".to_string(),
                    Value::Secret(SecretRef::File("t".into())),
                ),
                ("n".to_string(), Value::Int(-3)),
                ("nested".to_string(), Value::Table(nested)),
                ("list".to_string(), Value::Array(vec![Value::Bool(true)])),
            ]
            .into_iter()
            .collect(),
        )
    }

    #[test]
    fn declared_attributes_are_written_as_the_text_state_always_held() {
        let table = declared();
        let text = Attributes::from_serialize(&Value::Table(table.unpack()).public_view());
        let shared = Attributes::declared(&table);
        assert_eq!(
            serde_json::to_string(&shared).unwrap_or_default(),
            serde_json::to_string(&text).unwrap_or_default()
        );
        assert_eq!(
            serde_json::to_string(&shared).unwrap_or_default(),
            r#"{"list":[true],"n":-3,"name":"Acme \"Co\"","nested":{"b":1.5}}"#
        );
        // Pretty state files keep each record's attributes on one line, as before.
        let pretty = serde_json::to_string_pretty(&[&shared]).unwrap_or_default();
        assert!(pretty.contains(r#"{"list":[true],"#), "{pretty}");
        assert_eq!(shared, text);
        assert_eq!(shared.to_value(), text.to_value());
    }

    #[test]
    fn an_outcome_for_a_shared_declaration_is_journaled_as_a_settle() {
        let table = declared();
        let record = |status, remote_id: Option<&str>| Record {
            provider: "p".into(),
            provider_type: ProviderType::Heron,
            remote_id: remote_id.map(str::to_string),
            natural_key: NaturalKey("k".into()),
            digest: "d".into(),
            status,
            attributes: Attributes::declared(&table),
            attempted_at: None,
            updated_at: 1,
            error: None,
            detail: Detail::from([("is_enabled".to_string(), "true".to_string())]),
        };
        let mut state = State::new("l".into());
        state.apply(&StateOp::Put {
            address: "a".into(),
            record: Box::new(record(Status::Pending, None)),
        });
        let outcome = StateOp::Put {
            address: "a".into(),
            record: Box::new(record(Status::Created, Some("id"))),
        };
        let Some(StateOp::Settle { detail, .. }) = state.lean(&outcome) else {
            panic!("expected a settle");
        };
        assert_eq!(detail.get("is_enabled").map(String::as_str), Some("true"));
    }

    #[test]
    fn compacted_records_are_the_same_records() {
        for n in [0, 1, 2, 3, 1000] {
            let mut state = State::new("l".into());
            for i in 0..n {
                state.apply(&StateOp::Put {
                    address: format!("org_{i:05}"),
                    record: Box::new(Record {
                        provider: "p".into(),
                        provider_type: ProviderType::Heron,
                        remote_id: Some(format!("id{i}")),
                        natural_key: NaturalKey(format!("k{i}")),
                        digest: "d".into(),
                        status: Status::Created,
                        attributes: Attributes::default(),
                        attempted_at: None,
                        updated_at: 1,
                        error: None,
                        detail: Detail::default(),
                    }),
                });
            }
            let before = state.clone();
            state.compact_records();
            assert_eq!(state, before, "{n} records");
            assert_eq!(state.orgs.len(), n);
        }
    }

    #[test]
    fn detail_reads_and_writes_as_a_map_in_key_order() {
        let detail: Detail = serde_json::from_str(r#"{"z":"1","a":"2"}"#).unwrap_or_default();
        assert_eq!(
            serde_json::to_string(&detail).unwrap_or_default(),
            r#"{"a":"2","z":"1"}"#
        );
        assert_eq!(detail.values().collect::<Vec<_>>(), ["2", "1"]);
        assert!(Detail::default().is_empty());
    }
}
