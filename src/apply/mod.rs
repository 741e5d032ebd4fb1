//! Executes a [`Plan`]: provider calls and state writes, nothing decided here.
//!
//! The invariant that makes it exactly-once: **a create is recorded as `pending` in durable state
//! before its request leaves, and its outcome is recorded as soon as it is known.** A create
//! whose answer was lost is settled by looking its natural key up, never by sending it again
//! blind; only a look-up that says "absent" lets a create be sent again. If state can't be
//! written, no further create is sent.
//!
//! This file orchestrates (one task per change: create, settle, follow, record); the state
//! writer that makes the records durable is `writer`, the look-ups gathered per instance are
//! `lookups`, and what the run waits for at each moment, for the progress bar, is `waits`.

mod lookups;
mod waits;
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::sync::Semaphore;

use crate::model::{InstanceName, RemoteOrg, RemoteStatus};
use crate::plan::{Action, Change, Plan};
use crate::providers::http::backoff;
use crate::providers::{AnyProvider, CreateContext, Provider, ProviderError, RetryPolicy};
use crate::spec::{OrgSpec, Spec};
use crate::state::{Record, RecordError, StateOp, Status};
use crate::time;

use lookups::{Found, Lookups};
use waits::Tracker;
pub(crate) use waits::Waits;
pub(crate) use writer::{Finished, Quota, Refused, Rename, StateWriter};

/// How apply behaves beyond the plan itself.
#[derive(Clone, Debug)]
pub(crate) struct ApplyOptions {
    /// How often to poll an asynchronous create.
    pub(crate) poll_interval: Duration,
    /// How long to wait for an asynchronous create before leaving it `pending` for a later run.
    pub(crate) settle_timeout: Duration,
    /// Attempts for one create, counting resends after a look-up found nothing.
    pub(crate) retry: RetryPolicy,
    /// Whether a pending create found absent may be sent again (`refresh` says no: it drops
    /// the record instead, and the next apply creates it).
    pub(crate) allow_creates: bool,
    /// The instances this run read (in bulk, under the state lock) before the plan's creates
    /// were decided: a create the plan proposes there was found absent by that read, so the
    /// client need not look its natural key up again before sending it.
    pub(crate) read: BTreeSet<InstanceName>,
}

impl Default for ApplyOptions {
    fn default() -> ApplyOptions {
        ApplyOptions {
            poll_interval: Duration::from_secs(10),
            settle_timeout: Duration::from_secs(15 * 60),
            retry: RetryPolicy::default(),
            allow_creates: true,
            read: BTreeSet::new(),
        }
    }
}

/// What happened to one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created {
        remote_id: String,
    },
    Adopted {
        remote_id: String,
    },
    /// A `move`: the record at `from` now stands for this address.
    Moved {
        from: String,
    },
    /// Sent and accepted, not finished yet (or its outcome could not be settled): the next
    /// run settles it.
    StillPending {
        why: String,
    },
    /// The provider reported the asynchronous create failed.
    FailedAtProvider {
        code: String,
        message: String,
    },
    /// Nothing was created; the error says why.
    Error {
        message: String,
    },
    /// Not attempted: an interrupt, a state that can't be written, or a quota.
    NotStarted {
        why: String,
    },
}

/// A progress event, for the progress bar or the CI log.
#[derive(Clone, Debug)]
pub enum Event {
    /// One address is done with, for this run.
    Finished { address: String, outcome: Outcome },
    /// What the run waits for changed (a rate limit, sign-ups being polled, the creates in
    /// flight after an interrupt).
    Waiting(Waits),
}

#[derive(Clone, Debug, Default)]
pub struct ApplyReport {
    pub(crate) outcomes: BTreeMap<String, (Action, Outcome)>,
    /// Set when apply stopped early, with why.
    pub(crate) stopped: Option<String>,
}

impl ApplyReport {
    pub(crate) fn errors(&self) -> usize {
        self.outcomes
            .values()
            .filter(|(_, o)| matches!(o, Outcome::Error { .. }))
            .count()
    }
}

/// Apply tasks alive per create the instance may have in flight.
const TASKS_PER_REQUEST: usize = 4;

/// Everything an apply task needs, shared.
struct Context {
    /// Per instance, its `max_concurrency`: a permit is held from a create's intent to its
    /// answer.
    gates: BTreeMap<InstanceName, Arc<Semaphore>>,
    spec: Arc<Spec>,
    providers: BTreeMap<InstanceName, Arc<AnyProvider>>,
    writer: StateWriter,
    options: ApplyOptions,
    stop: Arc<AtomicBool>,
    lookups: BTreeMap<InstanceName, Lookups>,
    /// The polls of asynchronous creates, per instance: one bulk read per poll round of every
    /// create in flight there, not one per create.
    polls: BTreeMap<InstanceName, Lookups>,
    /// Asynchronous creates the run does not wait for (Oracle requests): looked at once,
    /// together, after the instance's creates are sent.
    look_later: std::sync::Mutex<LookLater>,
    /// What the run waits for, reported as it changes.
    waits: Arc<Tracker>,
}

/// Creates accepted in progress that the run looks at once more before it ends, all of an
/// instance in one bulk read.
#[derive(Default)]
struct LookLater {
    /// Per instance: (address, remote id).
    by_instance: BTreeMap<InstanceName, Vec<(String, String)>>,
    /// The same addresses: their outcome is reported after that look, not before.
    addresses: std::collections::HashSet<String>,
}

impl Context {
    /// Looks one organization up, batched with the other look-ups of its provider instance.
    async fn look_up(
        &self,
        provider: &AnyProvider,
        org: &OrgSpec,
        remote_id: Option<&str>,
    ) -> Result<Found, ProviderError> {
        match self.lookups.get(&org.instance) {
            Some(lookups) => {
                lookups
                    .look_up(provider, org, remote_id, self.options.retry)
                    .await
            }
            None => Ok(provider
                .settle(org, remote_id)
                .await?
                .map_or(Found::None, Found::One)),
        }
    }
}

/// Applies `plan`. `stop` is raised by an interrupt: no new create starts after it, those in
/// flight finish (or time out) and are recorded.
pub(crate) async fn apply(
    plan: &Plan,
    spec: Arc<Spec>,
    providers: BTreeMap<InstanceName, Arc<AnyProvider>>,
    writer: StateWriter,
    options: ApplyOptions,
    stop: Arc<AtomicBool>,
    on_event: Arc<dyn Fn(&Event) + Send + Sync>,
) -> ApplyReport {
    let window = options.poll_interval.min(Duration::from_millis(50));
    let lookups = providers
        .keys()
        .map(|name| (name.clone(), Lookups::new(window, stop.clone())))
        .collect();
    let polls = providers
        .keys()
        .map(|name| {
            let round = options.poll_interval.max(window);
            (name.clone(), Lookups::new(round, stop.clone()))
        })
        .collect();
    let waits = Arc::new(Tracker::new(on_event.clone()));
    // The interrupt is raised from outside: noticed here, so the bar can say what is left.
    let noticing = tokio::spawn(waits.clone().notice_stop(stop.clone()));
    // One gate per provider instance, so that a create's intent is recorded just before its
    // request can actually leave, not long before while it queues.
    let request_gates = spec
        .providers
        .values()
        .map(|p| {
            let permits = usize::try_from(p.limits.max_concurrency.max(1)).unwrap_or(1);
            (p.name.clone(), Arc::new(Semaphore::new(permits)))
        })
        .collect();
    let cx = Arc::new(Context {
        gates: request_gates,
        spec,
        providers,
        writer,
        options,
        stop,
        lookups,
        polls,
        look_later: std::sync::Mutex::new(LookLater::default()),
        waits,
    });
    // Tasks per instance: the creates in flight (its gate), and as many again recording an
    // outcome or waiting for a look-up, so that the next create leaves while the last one's
    // outcome is made durable.
    let slots: BTreeMap<&str, Arc<Semaphore>> = cx
        .gates
        .iter()
        .map(|(name, gate)| {
            let tasks = gate.available_permits().saturating_mul(TASKS_PER_REQUEST);
            (name.as_str(), Arc::new(Semaphore::new(tasks)))
        })
        .collect();

    let mut report = ApplyReport::default();
    // The changes of each instance, fed to tasks no faster than its slots free: a task
    // (and its copy of the change) exists only while its create is in flight, not for every
    // change of a large plan at once.
    let mut queues: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for change in plan.changes.iter().filter(|c| c.is_work()) {
        if cx.spec.orgs.contains_key(&change.address)
            && slots.contains_key(change.provider.as_str())
        {
            queues
                .entry(change.provider.as_str())
                .or_default()
                .push(change);
        }
    }
    let expected: usize = queues.values().map(Vec::len).sum();
    let (done, mut results) = tokio::sync::mpsc::unbounded_channel();
    let feeders = queues.into_iter().map(|(instance, changes)| {
        let slots = slots.get(instance).cloned();
        let cx = cx.clone();
        let done = done.clone();
        let on_event = on_event.clone();
        async move {
            let Some(slots) = slots else { return };
            for change in changes {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let work = Work::of(change);
                let cx = cx.clone();
                let done = done.clone();
                let on_event = on_event.clone();
                tokio::spawn(async move {
                    let working = cx.waits.working();
                    let outcome = match cx.spec.orgs.get(&work.address) {
                        Some(org) => execute(&cx, &work, org).await,
                        None => not_started("not in the specs"),
                    };
                    drop(working);
                    drop(permit);
                    // An outcome looked at again at the end is reported then.
                    if !cx.looks_later(&work.address) {
                        on_event(&Event::Finished {
                            address: work.address.clone(),
                            outcome: outcome.clone(),
                        });
                    }
                    let _ = done.send((work.address, work.action, outcome));
                });
            }
        }
    });
    let feeders: Vec<_> = feeders.collect();
    drop(done);
    for change in plan
        .changes
        .iter()
        .filter(|c| c.action.creates() && c.deferred)
    {
        report.outcomes.insert(
            change.address.clone(),
            (
                change.action,
                not_started("waits for the provider's daily quota"),
            ),
        );
    }
    let collect = async {
        let mut received = 0usize;
        while let Some((address, action, outcome)) = results.recv().await {
            received += 1;
            report.outcomes.insert(address, (action, outcome));
        }
        received
    };
    let ((), received) = tokio::join!(futures_util::future::join_all(feeders).map(|_| ()), collect);
    if received < expected {
        report.stopped = Some(format!(
            "{} apply tasks failed before reporting",
            expected - received
        ));
    }
    look_at_last(&cx, &mut report, on_event.as_ref()).await;
    noticing.abort();
    let interrupted = cx.stop.load(Ordering::SeqCst);
    let finished = match Arc::try_unwrap(cx) {
        Ok(cx) => cx.writer.finish().await,
        Err(_) => Err("apply tasks outlived the run".to_string()),
    };
    match finished {
        Ok(Finished {
            broken: Some(why), ..
        })
        | Err(why) => report.stopped = Some(format!("state could not be written: {why}")),
        Ok(_) if interrupted => {
            report.stopped = Some("interrupted: no new create was started after the signal".into());
        }
        Ok(_) => {}
    }
    report
}

/// What a task needs of a change: its copy while the change is in flight (not the declared
/// attributes, which the plan shows and apply never reads).
struct Work {
    address: String,
    provider: InstanceName,
    action: Action,
    remote_id: Option<String>,
    remote: Option<Box<RemoteOrg>>,
    from: Option<String>,
}

impl Work {
    fn of(change: &Change) -> Work {
        Work {
            address: change.address.clone(),
            provider: change.provider.clone(),
            action: change.action,
            remote_id: change.remote_id.clone(),
            remote: change.remote.clone(),
            from: change.from.clone(),
        }
    }
}

impl Context {
    fn looks_later(&self, address: &str) -> bool {
        self.look_later
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .addresses
            .contains(address)
    }

    fn look_later(&self, org: &OrgSpec, remote_id: &str) {
        let mut later = self
            .look_later
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        later.addresses.insert(org.address.clone());
        later
            .by_instance
            .entry(org.instance.clone())
            .or_default()
            .push((org.address.clone(), remote_id.to_string()));
    }
}

/// The one look at asynchronous creates the run does not wait for, once every create is sent:
/// one bulk read per instance for all of them, each recorded as found (approved by now, or
/// still pending) and reported.
async fn look_at_last(
    cx: &Context,
    report: &mut ApplyReport,
    on_event: &(dyn Fn(&Event) + Send + Sync),
) {
    let later = std::mem::take(
        &mut *cx
            .look_later
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for (instance, created) in later.by_instance {
        let provider = cx.providers.get(&instance);
        let read = match provider {
            Some(provider) if !cx.stop.load(Ordering::SeqCst) => {
                let mut keys: Vec<_> = created
                    .iter()
                    .filter_map(|(address, _)| cx.spec.orgs.get(address))
                    .map(|org| org.natural_key.clone())
                    .collect();
                keys.sort();
                keys.dedup();
                crate::providers::http::retrying(cx.options.retry, || provider.read(&keys))
                    .await
                    .ok()
            }
            _ => None,
        };
        for (address, remote_id) in created {
            let found = read.as_ref().and_then(|reality| {
                let org = cx.spec.orgs.get(&address)?;
                reality
                    .find(&org.natural_key)
                    .iter()
                    .find(|o| o.remote_id == remote_id)
                    .cloned()
                    .map(|remote| (org, remote))
            });
            if let Some((org, remote)) = found {
                let outcome = record_remote(cx, org, &remote, false, false).await;
                if let Some(entry) = report.outcomes.get_mut(&address) {
                    entry.1 = outcome;
                }
            }
            if let Some((_, outcome)) = report.outcomes.get(&address) {
                on_event(&Event::Finished {
                    address: address.clone(),
                    outcome: outcome.clone(),
                });
            }
        }
    }
}

fn not_started(why: &str) -> Outcome {
    Outcome::NotStarted {
        why: why.to_string(),
    }
}

async fn execute(cx: &Context, change: &Work, org: &OrgSpec) -> Outcome {
    // A move is a state write alone: no provider is asked.
    if change.action == Action::Move {
        return rename(cx, change).await;
    }
    let Some(provider) = cx.providers.get(&change.provider) else {
        return Outcome::Error {
            message: format!("provider `{}` is not connected", change.provider),
        };
    };
    match change.action {
        Action::Adopt => match &change.remote {
            Some(remote) => record_remote(cx, org, remote, true, true).await,
            None => settle_or_create(cx, provider, org, change.remote_id.as_deref()).await,
        },
        Action::Pending => settle_or_create(cx, provider, org, change.remote_id.as_deref()).await,
        Action::Create | Action::Recreate => {
            let absent_in_read = cx.options.read.contains(&change.provider);
            create(cx, provider, org, CreateContext { absent_in_read }).await
        }
        Action::Unchanged | Action::Blocked | Action::Orphan | Action::Move => {
            not_started("nothing to do")
        }
    }
}

/// A plan's `move`: the record is renamed in state, in one write.
async fn rename(cx: &Context, change: &Work) -> Outcome {
    let Some(from) = change.from.clone() else {
        return Outcome::Error {
            message: "a move without the address it moves from".into(),
        };
    };
    let written = cx
        .writer
        .rename(Rename {
            from: from.clone(),
            to: change.address.clone(),
            remote_id: change.remote_id.clone(),
        })
        .await;
    match written {
        Ok(()) => Outcome::Moved { from },
        Err(why) => Outcome::Error {
            message: why.to_string(),
        },
    }
}

/// A pending create: look it up; found is recorded (and polled if still in progress), absent is
/// created again.
async fn settle_or_create(
    cx: &Context,
    provider: &AnyProvider,
    org: &OrgSpec,
    remote_id: Option<&str>,
) -> Outcome {
    match cx.look_up(provider, org, remote_id).await {
        Ok(Found::One(remote)) => follow(cx, provider, org, remote, true).await,
        Ok(Found::Many(ids)) => Outcome::StillPending {
            why: Found::ambiguous(&ids),
        },
        // The look-up just now is the read that answered.
        Ok(Found::None) if cx.options.allow_creates => {
            let known = CreateContext {
                absent_in_read: true,
            };
            create(cx, provider, org, known).await
        }
        Ok(Found::None) => match cx
            .writer
            .update(vec![StateOp::Remove {
                address: org.address.clone(),
            }])
            .await
        {
            Ok(()) => {
                not_started("absent at the provider: dropped from state; the next apply creates it")
            }
            Err(why) => not_started(&format!(
                "absent at the provider; state could not be written: {why}"
            )),
        },
        Err(e) => Outcome::StillPending {
            why: format!("the look-up that would settle it failed: {e}"),
        },
    }
}

/// Sends one create, with the intent recorded first. `known` is what this run's reads said of
/// its natural key; a resend after a lost answer is preceded by exactly one look-up, which
/// answers for it.
async fn create(
    cx: &Context,
    provider: &AnyProvider,
    org: &OrgSpec,
    mut known: CreateContext,
) -> Outcome {
    let policy = cx.options.retry;
    let mut attempt = 0;
    loop {
        attempt += 1;
        if cx.stop.load(Ordering::SeqCst) {
            return not_started("interrupted before its create was sent");
        }
        let now = time::now();
        let quota = cx
            .spec
            .providers
            .get(&org.instance)
            .and_then(|p| p.limits.creates_per_day)
            .map(|per_day| Quota {
                instance: org.instance.clone(),
                per_day,
                now,
            });
        // When creates were sent only matters where a daily quota counts them.
        let mut intent_ops = vec![StateOp::Put {
            address: org.address.clone(),
            record: Box::new(pending_record(org, now)),
        }];
        if quota.is_some() {
            intent_ops.push(StateOp::CreateSent {
                provider: org.instance.clone(),
                at: now,
            });
        }
        // Held from the intent to the answer: the intent is written just before the request
        // can leave, and the outcome is written after the next create has left.
        let sending = match cx.gates.get(&org.instance) {
            Some(gate) => gate.clone().acquire_owned().await.ok(),
            None => None,
        };
        let intent = cx.writer.update_within(intent_ops, quota).await;
        match intent {
            Ok(()) => {}
            Err(Refused::Quota(why)) => return not_started(&why),
            // An intent carries no remote id and is never exclusive; listed for completeness.
            Err(Refused::Broken(why) | Refused::Bound(why)) => {
                return not_started(&format!(
                    "state could not be written, so the create was not sent: {why}"
                ));
            }
        }
        let answer = provider.create(org, known).await;
        drop(sending);
        match answer {
            // A fresh id, made by this create: no other address can hold it.
            Ok(remote) => return follow(cx, provider, org, remote, false).await,
            Err(e) if e.is_retryable() && attempt < policy.attempts => {
                // Refused before any work (429, connection refused, 503 on a read path): safe.
                let delay = backoff(policy, attempt, e.retry_after());
                let _held = matches!(e, ProviderError::RateLimited { .. })
                    .then(|| cx.waits.rate_limited(&org.instance, delay));
                pause(cx, delay).await;
            }
            Err(ProviderError::OutcomeUnknown { message }) => {
                // The create may have happened. Look before sending anything again.
                match cx.look_up(provider, org, None).await {
                    Ok(Found::One(remote)) => return follow(cx, provider, org, remote, true).await,
                    Ok(Found::Many(ids)) => {
                        // One of them may be this create's: sending again could make another.
                        return Outcome::StillPending {
                            why: format!(
                                "the answer was lost ({message}); {}",
                                Found::ambiguous(&ids)
                            ),
                        };
                    }
                    Ok(Found::None) if attempt < policy.attempts => {
                        tracing::info!(address = %org.address, "create answer lost and not found by look-up: sending again");
                        known.absent_in_read = true;
                        pause(cx, backoff(policy, attempt, None)).await;
                    }
                    Ok(Found::None) => {
                        return Outcome::StillPending {
                            why: format!(
                                "the answer was lost ({message}) and attempts ran out; the next run looks it up"
                            ),
                        };
                    }
                    Err(e) => {
                        return Outcome::StillPending {
                            why: format!(
                                "the answer was lost ({message}) and the look-up failed ({e}); the next run settles it"
                            ),
                        };
                    }
                }
            }
            Err(ProviderError::AlreadyExists { message }) => {
                return match cx.look_up(provider, org, None).await {
                    Ok(Found::One(remote)) => record_remote(cx, org, &remote, true, true).await,
                    Ok(Found::Many(ids)) => Outcome::StillPending {
                        why: format!(
                            "the provider says it exists ({message}); {}",
                            Found::ambiguous(&ids)
                        ),
                    },
                    Ok(Found::None) => Outcome::Error {
                        message: format!(
                            "the provider says it exists ({message}), but the look-up does not find it"
                        ),
                    },
                    Err(e) => Outcome::StillPending {
                        why: format!(
                            "the provider says it exists ({message}); the look-up failed ({e})"
                        ),
                    },
                };
            }
            Err(e) => {
                // Nothing was created: drop the intent so the next plan proposes it again.
                let dropped = cx
                    .writer
                    .update(vec![StateOp::Remove {
                        address: org.address.clone(),
                    }])
                    .await;
                let mut message = e.to_string();
                if let Err(why) = dropped {
                    message.push_str(&format!(" (and state could not be written: {why})"));
                }
                return Outcome::Error { message };
            }
        }
    }
}

/// Records what the provider reported; polls an asynchronous create until it finishes or the
/// settle timeout passes, where the provider's capabilities say apply waits for its creates;
/// elsewhere looks it up once, at once, and leaves it `pending` for a later run.
async fn follow(
    cx: &Context,
    provider: &AnyProvider,
    org: &OrgSpec,
    mut remote: RemoteOrg,
    found: bool,
) -> Outcome {
    let started = tokio::time::Instant::now();
    let waits = org.provider_type.capabilities().waits_for_creates;
    // Counted among the creates being polled from the first wait to the return.
    let mut polled = None;
    loop {
        let outcome = record_remote(cx, org, &remote, false, found).await;
        let in_progress = matches!(remote.status, RemoteStatus::InProgress { .. });
        if !in_progress || cx.stop.load(Ordering::SeqCst) {
            return outcome;
        }
        if !waits {
            // Found by a look-up already: that was the one look. A fresh create is looked at
            // once more with the instance's others, after they are all sent.
            if !found {
                cx.look_later(org, &remote.remote_id);
            }
            return outcome;
        }
        if started.elapsed() >= cx.options.settle_timeout {
            return outcome;
        }
        polled.get_or_insert_with(|| cx.waits.polling());
        // The instance's poll round: one read, a poll interval from its first waiter, of every
        // create in flight there.
        let poll = match cx.polls.get(&org.instance) {
            Some(polls) => {
                polls
                    .look_up(provider, org, Some(&remote.remote_id), cx.options.retry)
                    .await
            }
            None => cx.look_up(provider, org, Some(&remote.remote_id)).await,
        };
        match poll {
            Ok(Found::One(next)) => remote = next,
            Ok(Found::None | Found::Many(_)) | Err(_) => return outcome,
        }
    }
}

/// Waits `delay`, or less if the run is interrupted meanwhile: after Ctrl-C a create held back
/// by a rate limit is not sent, and a sign-up being polled is left `pending` for the next run,
/// at once rather than at the end of the wait.
async fn pause(cx: &Context, delay: Duration) {
    let until = tokio::time::Instant::now() + delay;
    while !cx.stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(Duration::from_millis(100))).await;
    }
}

fn pending_record(org: &OrgSpec, now: u64) -> Record {
    Record {
        provider: org.instance.clone(),
        provider_type: org.provider_type,
        remote_id: None,
        natural_key: org.natural_key.clone(),
        digest: org.digest.clone(),
        status: Status::Pending,
        attributes: crate::state::Attributes::declared(&org.attrs),
        attempted_at: Some(now),
        updated_at: now,
        error: None,
        detail: crate::state::Detail::default(),
    }
}

/// Records what the provider reported for `org`. `found`: the remote id was found (adopted, or
/// settled by a look-up) rather than made by this run's create, so the write is refused if
/// state records that id for another address.
async fn record_remote(
    cx: &Context,
    org: &OrgSpec,
    remote: &RemoteOrg,
    adopted: bool,
    found: bool,
) -> Outcome {
    let now = time::now();
    let (status, error, outcome) = match &remote.status {
        RemoteStatus::Ready if adopted => (
            Status::Created,
            None,
            Outcome::Adopted {
                remote_id: remote.remote_id.clone(),
            },
        ),
        RemoteStatus::Ready => (
            Status::Created,
            None,
            Outcome::Created {
                remote_id: remote.remote_id.clone(),
            },
        ),
        RemoteStatus::InProgress { phase } => (
            Status::Pending,
            None,
            Outcome::StillPending {
                why: format!("accepted, still {phase} at the provider"),
            },
        ),
        RemoteStatus::Failed { code, message } => (
            Status::Failed,
            Some(RecordError {
                code: code.clone(),
                message: message.clone(),
            }),
            Outcome::FailedAtProvider {
                code: code.clone(),
                message: message.clone(),
            },
        ),
    };
    let ops = if found || adopted {
        // A record from what was found: whole, with the declaration as it stands.
        vec![StateOp::Put {
            address: org.address.clone(),
            record: Box::new(Record {
                remote_id: Some(remote.remote_id.clone()),
                status,
                error,
                detail: (&remote.detail).into(),
                // Kept from the intent by `State::apply` when this is the create's outcome.
                attempted_at: None,
                updated_at: now,
                ..pending_record(org, now)
            }),
        }]
    } else {
        // The answer to this run's own create (or a poll of it): the intent recorded the
        // declaration just before, so only the outcome is written.
        vec![StateOp::Settle {
            address: org.address.clone(),
            remote_id: Some(remote.remote_id.clone()),
            status,
            error,
            detail: remote.detail.clone(),
            updated_at: now,
        }]
    };
    let written = if found {
        cx.writer.bind(ops).await
    } else {
        cx.writer.update(ops).await.map_err(Refused::Broken)
    };
    match written {
        Ok(()) => outcome,
        Err(Refused::Bound(why)) => Outcome::Error { message: why },
        Err(why) => Outcome::StillPending {
            why: format!(
                "done at the provider, but state could not be written ({why}); the next run adopts it"
            ),
        },
    }
}
