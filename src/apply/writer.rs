//! The one writer of state during apply: tasks send it changes, it makes each batch durable
//! with one flush (group commit) before any sender goes on.
//!
//! Its invariants: a batch that would break a daily quota, or bind a found remote id that state
//! records for another address, is refused and nothing of it written; once a write fails, every
//! later batch is refused, so no create is sent without its intent on disk.

use std::collections::HashMap;
use std::hash::BuildHasher as _;

use tokio::sync::{mpsc, oneshot};

use crate::state::{State, StateBackend, StateOp, Store};

/// The one writer of state during apply. Tasks send it changes; it makes each batch durable
/// with one flush (group commit) before any sender goes on, so concurrency doesn't multiply
/// flushes, and once a write fails it refuses every later change.
pub(crate) struct StateWriter {
    sender: mpsc::Sender<Batch>,
    task: tokio::task::JoinHandle<Finished>,
}

struct Batch {
    ops: Vec<StateOp>,
    /// The ops bind a remote id that was found (adopted, or settled by a look-up), not made by
    /// this run's create: refused if state records that id for another address by then.
    exclusive: bool,
    /// A daily quota the batch must fit in, checked against the state as it stands when the
    /// batch is written, so that no path (a settled pending create included) sends one over.
    quota: Option<Quota>,
    /// A record to rename (a `move`), turned into ops against the state as it stands when the
    /// batch is written, so the record is carried whole (attempted_at, detail) and a state
    /// that no longer holds it as planned is left alone.
    rename: Option<Rename>,
    done: oneshot::Sender<Result<(), Refused>>,
}

/// A plan's `move`: the record at `from`, holding `remote_id`, becomes `to`'s.
#[derive(Clone, Debug)]
pub(crate) struct Rename {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) remote_id: Option<String>,
}

impl Rename {
    /// The ops that rename the record, or why state no longer holds it as the plan saw it.
    fn ops(&self, state: &State) -> Result<Vec<StateOp>, String> {
        let Rename { from, to, .. } = self;
        if state.orgs.contains_key(to) {
            return Err(format!(
                "`{to}` is in state by now: `{from}` was not moved onto it"
            ));
        }
        match state.orgs.get(from) {
            Some(record) if record.remote_id == self.remote_id => Ok(vec![
                StateOp::Remove {
                    address: from.clone(),
                },
                StateOp::Put {
                    address: to.clone(),
                    record: Box::new(record.clone()),
                },
            ]),
            Some(_) => Err(format!(
                "`{from}` records another organization by now: not moved to `{to}`"
            )),
            None => Err(format!(
                "`{from}` is no longer in state: nothing to move to `{to}`"
            )),
        }
    }
}

/// Why the state writer did not take a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The batch would break its daily quota: nothing was written, nothing may be sent.
    Quota(String),
    /// State can't be written (for this batch and every later one).
    Broken(String),
    /// The batch binds a remote id that state records for another address: nothing written.
    Bound(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Quota(why) | Refused::Broken(why) | Refused::Bound(why) => f.write_str(why),
        }
    }
}

/// A rolling daily quota on one provider instance.
#[derive(Clone, Debug)]
pub(crate) struct Quota {
    pub(crate) instance: String,
    pub(crate) per_day: u32,
    pub(crate) now: crate::model::Timestamp,
}

/// What the writer leaves when apply ends. Not the state: the run ends next, and freeing a
/// hundred thousand records one by one cost an incremental apply more than its creates, for
/// memory the operating system takes back at once.
#[expect(
    dead_code,
    reason = "handed back with the writer's end so the store, and the lock it holds, is dropped by apply, not inside the task"
)]
pub(crate) struct Finished {
    pub(crate) store: Store,
    /// Why state could not be written, if it could not.
    pub(crate) broken: Option<String>,
}

impl StateWriter {
    pub(crate) fn start(state: State, store: Store) -> StateWriter {
        let (sender, receiver) = mpsc::channel(4096);
        let task = tokio::spawn(write_loop(state, store, receiver));
        StateWriter { sender, task }
    }

    /// Makes `ops` durable; returns once they are, or why they could not be.
    pub(crate) async fn update(&self, ops: Vec<StateOp>) -> Result<(), String> {
        self.update_within(ops, None)
            .await
            .map_err(|r| r.to_string())
    }

    /// Like `update`, but refuses the ops (writing nothing) if `quota` is used up.
    pub(crate) async fn update_within(
        &self,
        ops: Vec<StateOp>,
        quota: Option<Quota>,
    ) -> Result<(), Refused> {
        self.send(ops, quota, false).await
    }

    /// Renames a record (a plan's `move`) in one batch; refused, writing nothing, if state
    /// no longer holds it as the plan saw it.
    pub(crate) async fn rename(&self, rename: Rename) -> Result<(), Refused> {
        let (done, wait) = oneshot::channel();
        self.sender
            .send(Batch {
                ops: Vec::new(),
                exclusive: false,
                quota: None,
                rename: Some(rename),
                done,
            })
            .await
            .map_err(|_| Refused::Broken("the state writer has stopped".to_string()))?;
        wait.await
            .map_err(|_| Refused::Broken("the state writer has stopped".to_string()))?
    }

    /// Like `update`, for ops that record a remote id found at the provider rather than made by
    /// this run: refused (nothing written) if state records that id for another address.
    pub(crate) async fn bind(&self, ops: Vec<StateOp>) -> Result<(), Refused> {
        self.send(ops, None, true).await
    }

    async fn send(
        &self,
        ops: Vec<StateOp>,
        quota: Option<Quota>,
        exclusive: bool,
    ) -> Result<(), Refused> {
        let (done, wait) = oneshot::channel();
        self.sender
            .send(Batch {
                ops,
                exclusive,
                quota,
                rename: None,
                done,
            })
            .await
            .map_err(|_| Refused::Broken("the state writer has stopped".to_string()))?;
        wait.await
            .map_err(|_| Refused::Broken("the state writer has stopped".to_string()))?
    }

    /// Stops taking changes, folds what was recorded into a new state version, and hands back
    /// the state and its store.
    pub(crate) async fn finish(self) -> Result<Finished, String> {
        drop(self.sender);
        self.task
            .await
            .map_err(|e| format!("the state writer task failed: {e}"))
    }
}

async fn write_loop(
    mut state: State,
    mut store: Store,
    mut receiver: mpsc::Receiver<Batch>,
) -> Finished {
    let mut broken: Option<String> = None;
    let mut written_any = false;
    // Who holds each remote id, built the first time a batch binds one that was found, then
    // kept up to date: a run that only creates never builds it.
    let mut holders: Option<Holders> = None;
    // The records' map is rebuilt full each time it has grown by a quarter (see
    // `State::compact_records`): a few milliseconds at a hundred thousand, a few times over.
    let mut compacted_at = state.orgs.len();
    while let Some(first) = receiver.recv().await {
        let mut batches = vec![first];
        while batches.len() < 4096 {
            match receiver.try_recv() {
                Ok(more) => batches.push(more),
                Err(_) => break,
            }
        }
        if let Some(why) = &broken {
            for batch in batches {
                let _ = batch.done.send(Err(Refused::Broken(why.clone())));
            }
            continue;
        }
        // Apply the batches in order, refusing any that would break its quota. In place: a
        // copy of a large state per group commit would make apply quadratic, and if the write
        // fails the writer is broken for good, so the unwritten changes are never written
        // or folded in.
        let mut ops: Vec<StateOp> = Vec::new();
        let mut verdicts: Vec<Result<(), Refused>> = Vec::with_capacity(batches.len());
        for batch in &mut batches {
            if let Some(rename) = &batch.rename {
                match rename.ops(&state) {
                    Ok(renaming) => batch.ops = renaming,
                    Err(why) => {
                        verdicts.push(Err(Refused::Bound(why)));
                        continue;
                    }
                }
            }
            if let Some(q) = &batch.quota
                && state.creates_in_last_day(&q.instance, q.now) >= q.per_day
            {
                verdicts.push(Err(Refused::Quota(format!(
                    "the daily quota of {} on `{}` is used up; it waits for a later apply",
                    crate::text::plural(q.per_day as usize, "create"),
                    q.instance
                ))));
                continue;
            }
            if batch.exclusive {
                let index = holders.get_or_insert_with(|| Holders::of(&state));
                if let Some(why) = batch.ops.iter().find_map(|op| index.taken(&state, op)) {
                    verdicts.push(Err(Refused::Bound(why)));
                    continue;
                }
            }
            for op in &batch.ops {
                if let Some(index) = &mut holders {
                    index.track(&state, op);
                }
                // An outcome is journaled as what changed, not the whole record again.
                let journaled = state.lean(op);
                state.apply(op);
                ops.push(journaled.unwrap_or_else(|| op.clone()));
            }
            verdicts.push(Ok(()));
        }
        if state.orgs.len() >= (compacted_at + compacted_at / 4).max(4096) {
            state.compact_records();
            compacted_at = state.orgs.len();
        }
        let written = if ops.is_empty() {
            Ok(())
        } else {
            store.append(&mut state, &ops).await
        };
        match written {
            Ok(()) => {
                written_any |= !ops.is_empty();
                for (batch, verdict) in batches.into_iter().zip(verdicts) {
                    let _ = batch.done.send(verdict);
                }
            }
            Err(e) => {
                let why = e.to_string();
                broken = Some(why.clone());
                for batch in batches {
                    let _ = batch.done.send(Err(Refused::Broken(why.clone())));
                }
            }
        }
    }
    if broken.is_none()
        && written_any
        && let Err(e) = store.compact(&mut state).await
    {
        broken = Some(format!(
            "{e}; the changes are safe in the journal and the next run folds them in"
        ));
    }
    std::mem::forget(state);
    Finished { store, broken }
}

/// Which address state records each (provider instance, remote id) for, by hashes: the index
/// is built over every record of a run's state (an apply of 100,000 binds each create's id),
/// and keyed by copies of the strings it held 20 MB at that size. A hash that matches is
/// confirmed against the records before anything is refused, so a collision refuses nothing.
struct Holders {
    hasher: std::hash::RandomState,
    /// hash(instance, id) -> hash(address)
    by_id: HashMap<u64, u64>,
}

impl Holders {
    fn of(state: &State) -> Holders {
        let hasher = std::hash::RandomState::new();
        let by_id = state
            .orgs
            .iter()
            .filter_map(|(address, r)| {
                let id = r.remote_id.as_deref()?;
                Some((
                    hasher.hash_one((r.provider.as_str(), id)),
                    hasher.hash_one(address.as_str()),
                ))
            })
            .collect();
        Holders { hasher, by_id }
    }

    fn key(&self, provider: &str, id: &str) -> u64 {
        self.hasher.hash_one((provider, id))
    }

    /// Why `op` may not be written: it binds an id another address holds (a record put whole,
    /// or the outcome of a create: a provider's answer naming an id state has for another).
    fn taken(&self, state: &State, op: &StateOp) -> Option<String> {
        let (address, provider, id) = match op {
            StateOp::Put { address, record } => {
                (address, &record.provider, record.remote_id.as_ref()?)
            }
            StateOp::Settle {
                address,
                remote_id: Some(id),
                ..
            } => (address, &state.orgs.get(address)?.provider, id),
            _ => return None,
        };
        let holder_hash = *self.by_id.get(&self.key(provider, id))?;
        if holder_hash == self.hasher.hash_one(address.as_str()) {
            return None;
        }
        // Confirmed by the records themselves (rare: only where a hash matched).
        let (holder, _) = state.orgs.iter().find(|(other, r)| {
            *other != address && r.provider == *provider && r.remote_id.as_ref() == Some(id)
        })?;
        Some(format!(
            "{} on `{provider}` is already recorded for `{holder}`: one organization is never two addresses; `{address}` was left as it was (if it is `{holder}` renamed, `orgform forget {holder}` then `orgform import {address} {}`)",
            crate::escape::Shown(id),
            crate::escape::Shown(id),
        ))
    }

    /// Keeps the index in step with `op`, before `state` applies it.
    fn track(&mut self, state: &State, op: &StateOp) {
        let address = match op {
            StateOp::Put { address, .. } | StateOp::Remove { address } => address,
            StateOp::CreateSent { .. } => return,
            StateOp::Settle { address, .. } => address,
        };
        let address_hash = self.hasher.hash_one(address.as_str());
        if let Some(old) = state.orgs.get(address)
            && let Some(id) = &old.remote_id
        {
            let key = self.key(&old.provider, id);
            if self.by_id.get(&key) == Some(&address_hash) {
                self.by_id.remove(&key);
            }
        }
        match op {
            StateOp::Put { record, .. } => {
                if let Some(id) = &record.remote_id {
                    let key = self.key(&record.provider, id);
                    self.by_id.insert(key, address_hash);
                }
            }
            StateOp::Settle {
                remote_id: Some(id),
                ..
            } => {
                if let Some(old) = state.orgs.get(address) {
                    let key = self.key(&old.provider, id);
                    self.by_id.insert(key, address_hash);
                }
            }
            _ => {}
        }
    }
}
