//! The asynchronous creates an apply follows after their create was answered (Salesforce
//! sign-ups, Oracle requests), kept per provider instance and looked at in rounds: each round
//! one bulk read of every create awaited there, never a read per create. A create awaited holds
//! no task and no concurrency slot: its request is answered, so the next create may leave.
//!
//! When a round is sent: once the instance has no create left to send, and, where creates are
//! polled, a poll interval after the round before (the first, a poll interval after the first
//! create was awaited; the one look at creates that are not polled goes at once). Waiting for
//! the sends first is what a user of the real vendors wants: a sign-up takes minutes at
//! Salesforce and a request waits hours for an administrator at Oracle, while a run's creates
//! leave in seconds, so a round sent among them would find next to nothing finished; and a round
//! is not one request per page of creates awaited (2,000 usernames are about ten 8 KB `IN` lists,
//! or every sign-up the org holds), so rounds among the sends would cost more queries against
//! the org's daily API limit than they could settle. Once the sends are done, the first round
//! reads them all together (all the sign-ups of an empty org in pages of 2,000; Oracle's requests
//! in pages of 250), and later rounds only what is still in progress. A round settles what its
//! look hands over a page at a time (`Provider::look`), while the next page is read, so that a
//! round of 100,000 creates holds a page of what it read rather than all of it.
//!
//! A create awaited stays `pending` in state until a round finds it finished. Where the provider
//! is waited for (`Capabilities::waits_for_creates`), rounds go on until each has waited the
//! settle timeout since its create was answered (every one is looked at once at least: the sends
//! before the first round may outlast the timeout); elsewhere the first round is its only look.
//! An interrupt ends the waiting at once: what is awaited is left `pending` for the next run.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Context, Outcome, record_remote};
use crate::model::{InstanceName, NaturalKey, RemoteOrg, RemoteStatus};
use crate::providers::Provider as _;

/// Outcomes written to state in one batch, so that a round of many finished creates costs a
/// few group commits and the progress moves as they land.
const WRITE_BATCH: usize = 1000;

/// One create awaited: answered in progress, recorded `pending`.
pub(super) struct Awaited {
    pub(super) address: Arc<str>,
    pub(super) remote_id: String,
    /// Its id was found by a look-up (a pending create settled), not made by this run's create:
    /// its outcome is bound, refused if state records that id for another address.
    pub(super) found: bool,
    /// What is recorded for it now, and what the run reports if nothing finishes it.
    pub(super) outcome: Outcome,
    since: Instant,
}

impl Awaited {
    pub(super) fn new(address: &str, remote_id: &str, found: bool, outcome: Outcome) -> Awaited {
        Awaited {
            address: Arc::from(address),
            remote_id: remote_id.to_string(),
            found,
            outcome,
            since: Instant::now(),
        }
    }
}

/// The creates one instance awaits, and whether any of its creates may still be sent.
pub(super) struct Settling {
    queue: Mutex<Queue>,
    changed: Notify,
    /// The instance's creates are polled until they finish (sign-ups), not looked at once.
    waits: bool,
}

struct Queue {
    awaited: Vec<Awaited>,
    /// Every address handed over this run: its outcome is reported by the rounds, not its task.
    handed: HashSet<Arc<str>>,
    /// The instance's changes whose task has not ended yet (or not started).
    left: usize,
    /// When the first create was awaited: the first round is a poll interval after it.
    first: Option<Instant>,
}

impl Settling {
    /// For an instance with `changes` to apply.
    pub(super) fn new(changes: usize, waits: bool) -> Settling {
        Settling {
            queue: Mutex::new(Queue {
                awaited: Vec::new(),
                handed: HashSet::new(),
                left: changes,
                first: None,
            }),
            changed: Notify::new(),
            waits,
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn waits(&self) -> bool {
        self.waits
    }

    /// Hands a create over to the rounds.
    pub(super) fn await_later(&self, awaited: Awaited) {
        let mut queue = self.queue();
        queue.handed.insert(awaited.address.clone());
        queue.first.get_or_insert(awaited.since);
        queue.awaited.push(awaited);
        drop(queue);
        self.changed.notify_one();
    }

    /// Whether `address` was handed over: its task then leaves the report to the rounds.
    pub(super) fn handed(&self, address: &str) -> bool {
        self.queue().handed.contains(address)
    }

    /// `n` of the instance's changes are done with (their task ended, or never started).
    pub(super) fn done_with(&self, n: usize) {
        let mut queue = self.queue();
        queue.left = queue.left.saturating_sub(n);
        drop(queue);
        self.changed.notify_one();
    }
}

/// Counts one change of an instance done with when dropped: a task that ends in any way,
/// a panic included, lets the rounds start.
pub(super) struct ChangeDone(pub(super) Arc<Settling>);

impl Drop for ChangeDone {
    fn drop(&mut self) {
        self.0.done_with(1);
    }
}

/// The rounds of one instance, until nothing is awaited and no create is left to send there.
/// `report` hands each awaited create's final outcome on.
pub(super) async fn rounds(
    cx: &Context,
    instance: &InstanceName,
    settling: &Settling,
    report: &(dyn Fn(&str, Outcome) + Send + Sync),
) {
    let mut last: Option<Instant> = None;
    loop {
        // Until the instance's sends are done (or an interrupt) with something awaited.
        let first = loop {
            let waiting = settling.changed.notified();
            {
                let queue = settling.queue();
                let sent = queue.left == 0;
                if sent && queue.awaited.is_empty() {
                    return;
                }
                if (sent || cx.stop.load(Ordering::SeqCst)) && !queue.awaited.is_empty() {
                    break queue.first;
                }
            }
            // The interrupt is a flag raised from outside: looked at every 100 ms.
            let _ = tokio::time::timeout(Duration::from_millis(100), waiting).await;
        };
        // A look that is not polled (Oracle's) is sent at once: nothing is gained by waiting.
        if settling.waits
            && !cx.stop.load(Ordering::SeqCst)
            && let Some(from) = last.or(first)
        {
            super::pause_until(cx, from + cx.options.poll_interval).await;
        }
        let batch = std::mem::take(&mut settling.queue().awaited);
        if cx.stop.load(Ordering::SeqCst) {
            // Interrupted: left `pending`, as recorded, for the next run to settle.
            finish(cx, settling, batch, report);
            continue;
        }
        last = Some(Instant::now());
        let still = round(cx, instance, settling, batch, report).await;
        settling.queue().awaited.extend(still);
    }
}

/// One round: one read of every create in `batch`, settled as it is read: each batch the look
/// hands over (a page) is matched as it comes, its finished creates recorded and reported, so
/// that a round of 100,000 creates holds a page of what it read, not all of it. The rest are
/// handed back while they are still waited for.
async fn round(
    cx: &Context,
    instance: &InstanceName,
    settling: &Settling,
    batch: Vec<Awaited>,
    report: &(dyn Fn(&str, Outcome) + Send + Sync),
) -> Vec<Awaited> {
    let mut keys: Vec<NaturalKey> = batch
        .iter()
        .filter_map(|a| cx.spec.orgs.get(&*a.address))
        .map(|org| org.natural_key.clone())
        .collect();
    keys.sort();
    keys.dedup();
    let started = Instant::now();
    let (found, mut pages) = tokio::sync::mpsc::channel(PAGES_AHEAD);
    let read = async {
        // Owned here: the look's end closes the channel, which ends the matching below.
        let found = found;
        match cx.providers.get(instance) {
            Some(provider) => {
                crate::providers::http::retrying(cx.options.retry, || provider.look(&keys, &found))
                    .await
                    .map_err(|e| e.to_string())
            }
            None => Err(format!("provider `{instance}` is not connected")),
        }
    };
    let mut matcher = Matcher::new(cx, settling, &batch);
    let settle = async {
        while let Some(page) = pages.recv().await {
            matcher.page(page, report).await;
        }
        matcher.flush(report).await;
    };
    let (read, ()) = futures_util::future::join(read, settle).await;
    let Matcher {
        seen, still, made, ..
    } = matcher;
    debug_assert!(made.is_empty());
    drop(keys);
    tracing::debug!(
        provider = %instance,
        creates = batch.len(),
        still = still.len(),
        ms = started.elapsed().as_millis(),
        "a round of polls read and recorded"
    );
    let mut held = Vec::new();
    for (position, awaited) in batch.into_iter().enumerate() {
        if still.contains(&position) {
            held.push(awaited);
        } else if !seen[position] {
            match &read {
                // Not found under its own id (the read may hold another of its key): left
                // `pending`, for the next run's look-up to settle by the planner's rule.
                Ok(()) => finish(cx, settling, vec![awaited], report),
                Err(e) => {
                    let mut awaited = awaited;
                    awaited.outcome = Outcome::StillPending {
                        why: format!(
                            "accepted; the look that would settle it failed ({e}); the next run settles it"
                        ),
                    };
                    finish(cx, settling, vec![awaited], report);
                }
            }
        }
    }
    held
}

/// Batches of a look read ahead of the matching: the look goes on while a page is recorded.
const PAGES_AHEAD: usize = 2;

/// A round's creates matched against what its look hands over, a page at a time.
struct Matcher<'a> {
    cx: &'a Context,
    settling: &'a Settling,
    batch: &'a [Awaited],
    /// Positions in `batch` by remote id, to find a page's organizations among them.
    by_id: Vec<usize>,
    /// Whether each create was found (settled, or still in progress) by this round's look.
    seen: Vec<bool>,
    /// Positions of the creates still in progress and still waited for.
    still: std::collections::BTreeSet<usize>,
    /// Finished creates this run made, their outcome still to write: many to a write.
    made: Vec<(usize, RemoteOrg)>,
}

impl<'a> Matcher<'a> {
    fn new(cx: &'a Context, settling: &'a Settling, batch: &'a [Awaited]) -> Matcher<'a> {
        let mut by_id: Vec<usize> = (0..batch.len()).collect();
        by_id.sort_by(|a, b| batch[*a].remote_id.cmp(&batch[*b].remote_id));
        Matcher {
            cx,
            settling,
            batch,
            by_id,
            seen: vec![false; batch.len()],
            still: std::collections::BTreeSet::new(),
            made: Vec::new(),
        }
    }

    /// The creates awaited under this remote id, by their position.
    fn with_id(&self, id: &str) -> &[usize] {
        let from = self
            .by_id
            .partition_point(|p| self.batch[*p].remote_id.as_str() < id);
        let to =
            from + self.by_id[from..].partition_point(|p| self.batch[*p].remote_id.as_str() == id);
        &self.by_id[from..to]
    }

    /// Matches one page: the first organization found under a create's natural key and its own
    /// id settles it (or keeps it waiting, while in progress); bound ones are recorded now,
    /// this run's own many to a write.
    async fn page(&mut self, page: Vec<RemoteOrg>, report: &(dyn Fn(&str, Outcome) + Send + Sync)) {
        let cx = self.cx;
        let mut bound = Vec::new();
        for remote in page {
            let positions: Vec<usize> = self
                .with_id(&remote.remote_id)
                .iter()
                .copied()
                .filter(|p| {
                    !self.seen[*p]
                        && cx
                            .spec
                            .orgs
                            .get(&*self.batch[*p].address)
                            .is_some_and(|org| org.natural_key == remote.natural_key)
                })
                .collect();
            // Moved to the last create it settles (one, but for an id recorded twice).
            let mut remote = Some(remote);
            let last = positions.len().saturating_sub(1);
            for (n, position) in positions.into_iter().enumerate() {
                let Some(remote) = (if n == last {
                    remote.take()
                } else {
                    remote.clone()
                }) else {
                    continue;
                };
                self.seen[position] = true;
                let awaited = &self.batch[position];
                if matches!(remote.status, RemoteStatus::InProgress { .. })
                    && self.settling.waits
                    && awaited.since.elapsed() < cx.options.settle_timeout
                {
                    // Polled again while it is younger than the settle timeout.
                    self.still.insert(position);
                } else if awaited.found {
                    bound.push((position, remote));
                } else {
                    // Finished, or looked at for the last time this run: recorded as found (a
                    // phase still in progress stays `pending`).
                    self.made.push((position, remote));
                }
            }
        }
        // Found by a look-up, not made by this run: bound one by one.
        for (position, remote) in bound {
            let awaited = &self.batch[position];
            if let Some(org) = cx.spec.orgs.get(&*awaited.address) {
                let outcome = record_remote(cx, org, &remote, false, true).await;
                finished(cx, self.settling, awaited, outcome, report);
            }
        }
        if self.made.len() >= WRITE_BATCH {
            self.flush(report).await;
        }
    }

    /// Writes the outcomes of the finished creates this run made, and reports them.
    async fn flush(&mut self, report: &(dyn Fn(&str, Outcome) + Send + Sync)) {
        let made = std::mem::take(&mut self.made);
        let mut made = made.into_iter().peekable();
        while made.peek().is_some() {
            let chunk: Vec<(usize, RemoteOrg)> = made.by_ref().take(WRITE_BATCH).collect();
            let mut ops = Vec::with_capacity(chunk.len());
            let outcomes: Vec<Outcome> = chunk
                .iter()
                .map(|(position, remote)| {
                    let (op, outcome) = super::settled(&self.batch[*position].address, remote);
                    ops.push(op);
                    outcome
                })
                .collect();
            let written: Result<(), String> = self.cx.writer.update(ops).await;
            for ((position, _), outcome) in chunk.iter().zip(outcomes) {
                let outcome = match &written {
                    Ok(()) => outcome,
                    Err(why) => Outcome::StillPending {
                        why: format!(
                            "done at the provider, but state could not be written ({why}); the next run adopts it"
                        ),
                    },
                };
                finished(
                    self.cx,
                    self.settling,
                    &self.batch[*position],
                    outcome,
                    report,
                );
            }
        }
    }
}

/// Reports every create of `batch` with the outcome it holds.
fn finish(
    cx: &Context,
    settling: &Settling,
    batch: Vec<Awaited>,
    report: &(dyn Fn(&str, Outcome) + Send + Sync),
) {
    for awaited in batch {
        let outcome = awaited.outcome.clone();
        finished(cx, settling, &awaited, outcome, report);
    }
}

/// One awaited create done with for this run.
fn finished(
    cx: &Context,
    settling: &Settling,
    awaited: &Awaited,
    outcome: Outcome,
    report: &(dyn Fn(&str, Outcome) + Send + Sync),
) {
    if settling.waits {
        cx.waits.end_polling(1);
    }
    report(&awaited.address, outcome);
}

#[cfg(test)]
mod tests {
    use super::{Awaited, Outcome, Settling};

    #[test]
    fn a_handed_address_stays_handed_and_changes_count_down() {
        let settling = Settling::new(2, true);
        let pending = Outcome::StillPending { why: "new".into() };
        settling.await_later(Awaited::new("o1", "0TR1", false, pending));
        assert!(settling.handed("o1"));
        assert!(!settling.handed("o2"));
        settling.done_with(1);
        assert_eq!(settling.queue().left, 1);
        settling.done_with(5);
        assert_eq!(settling.queue().left, 0);
        let _ = std::mem::take(&mut settling.queue().awaited);
        assert!(settling.handed("o1"), "handed for the whole run");
    }
}
