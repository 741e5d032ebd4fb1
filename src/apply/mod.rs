//! Executes a [`Plan`]: provider calls and state writes, nothing decided here.
//!
//! The invariant that makes it exactly-once: **a create is recorded as `pending` in durable state
//! before its request leaves, and its outcome is recorded as soon as it is known.** A create
//! whose answer was lost is settled by looking its natural key up, never by sending it again
//! blind; only a look-up that says "absent" lets a create be sent again. If state can't be
//! written, no further create is sent.
//!
//! This file orchestrates (one task per change: create, settle, record); the state writer that
//! makes the records durable is `writer`, the look-ups gathered per instance are `lookups`, the
//! asynchronous creates followed after their answer, in rounds per instance, are `polls`, and
//! what the run waits for at each moment, for the progress bar, is `waits`.

mod lookups;
mod polls;
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
use polls::{Awaited, ChangeDone, Settling};
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

impl Outcome {
    /// The outcome with any secret a provider echoed into its words scrubbed (see
    /// [`crate::secrets::scrub`]), before it is shown, reported as JSON (where a second
    /// escaping would hide an echoed secret from the output's own scrub) or recorded.
    fn scrubbed(self) -> Outcome {
        let scrub = crate::secrets::scrub_owned;
        match self {
            Outcome::StillPending { why } => Outcome::StillPending { why: scrub(why) },
            Outcome::FailedAtProvider { code, message } => Outcome::FailedAtProvider {
                code: scrub(code),
                message: scrub(message),
            },
            Outcome::Error { message } => Outcome::Error {
                message: scrub(message),
            },
            Outcome::NotStarted { why } => Outcome::NotStarted { why: scrub(why) },
            kept @ (Outcome::Created { .. } | Outcome::Adopted { .. } | Outcome::Moved { .. }) => {
                kept
            }
        }
    }
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
    /// Per instance with changes to apply: the asynchronous creates answered in progress,
    /// followed in rounds of one bulk read once the instance's creates are sent (`polls`).
    settling: BTreeMap<InstanceName, Arc<Settling>>,
    /// What the run waits for, reported as it changes.
    waits: Arc<Tracker>,
}

/// What reaches the report: a task's outcome, or the later outcome of a create it handed to
/// the rounds of its instance.
enum Reported {
    Task(String, Action, Outcome),
    Settled(String, Outcome),
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
/// flight finish (or time out) and are recorded, and asynchronous creates still awaited are
/// left `pending`.
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
    let waits = Arc::new(Tracker::new(on_event.clone()));
    // The interrupt is raised from outside: noticed here, so the bar can say what is left.
    let noticing = tokio::spawn(waits.clone().notice_stop(stop.clone()));
    // One gate per provider instance, so that a create's intent is recorded just before its
    // request can actually leave, not long before while it queues.
    let request_gates: BTreeMap<InstanceName, Arc<Semaphore>> = spec
        .providers
        .values()
        .map(|p| {
            let permits = usize::try_from(p.limits.max_concurrency.max(1)).unwrap_or(1);
            (p.name.clone(), Arc::new(Semaphore::new(permits)))
        })
        .collect();
    // The changes of each instance, in plan order.
    let mut queues: BTreeMap<&InstanceName, Vec<&Change>> = BTreeMap::new();
    for change in plan.changes.iter().filter(|c| c.is_work()) {
        if spec.orgs.contains_key(&change.address) && request_gates.contains_key(&change.provider) {
            queues.entry(&change.provider).or_default().push(change);
        }
    }
    let settling = queues
        .iter()
        .map(|(name, changes)| {
            let waits = spec
                .providers
                .get(*name)
                .is_some_and(|p| p.provider_type.capabilities().waits_for_creates);
            (
                (*name).clone(),
                Arc::new(Settling::new(changes.len(), waits)),
            )
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
        settling,
        waits,
    });
    // Tasks per instance: the creates in flight (its gate), and as many again recording an
    // outcome or waiting for a look-up, so that the next create leaves while the last one's
    // outcome is made durable.
    let slots: BTreeMap<&InstanceName, Arc<Semaphore>> = cx
        .gates
        .iter()
        .map(|(name, gate)| {
            let tasks = gate.available_permits().saturating_mul(TASKS_PER_REQUEST);
            (name, Arc::new(Semaphore::new(tasks)))
        })
        .collect();

    let mut report = ApplyReport::default();
    let expected: usize = queues.values().map(Vec::len).sum();
    let (done, mut results) = tokio::sync::mpsc::unbounded_channel();
    // The changes of each instance, fed to tasks no faster than its slots free: a task (and its
    // copy of the change) exists only while its create is in flight, not for every change of a
    // large plan at once.
    let feeders = queues.into_iter().map(|(instance, changes)| {
        let slots = slots.get(instance).cloned();
        let settling = cx.settling.get(instance).cloned();
        let cx = cx.clone();
        let done = done.clone();
        let on_event = on_event.clone();
        async move {
            let (Some(slots), Some(settling)) = (slots, settling) else {
                return;
            };
            let total = changes.len();
            for (fed, change) in changes.into_iter().enumerate() {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    // Never started: done with, so the instance's rounds may begin.
                    settling.done_with(total - fed);
                    return;
                };
                let work = Work::of(change);
                let cx = cx.clone();
                let done = done.clone();
                let on_event = on_event.clone();
                let change_done = ChangeDone(settling.clone());
                tokio::spawn(async move {
                    let working = cx.waits.working();
                    let outcome = match cx.spec.orgs.get(&work.address) {
                        Some(org) => execute(&cx, &work, org).await.scrubbed(),
                        None => not_started("not in the specs"),
                    };
                    drop(working);
                    drop(permit);
                    // A create handed to the rounds is reported when they are done with it.
                    if !change_done.0.handed(&work.address) {
                        on_event(&Event::Finished {
                            address: work.address.clone(),
                            outcome: outcome.clone(),
                        });
                    }
                    let _ = done.send(Reported::Task(work.address, work.action, outcome));
                    drop(change_done);
                });
            }
        }
    });
    let feeders: Vec<_> = feeders.collect();
    // The rounds of each instance, reporting what they settle through the same channel.
    let rounds: Vec<_> = cx
        .settling
        .iter()
        .map(|(instance, settling)| {
            let done = done.clone();
            let on_event = on_event.clone();
            let cx = &cx;
            async move {
                let report = move |address: &str, outcome: Outcome| {
                    let outcome = outcome.scrubbed();
                    on_event(&Event::Finished {
                        address: address.to_string(),
                        outcome: outcome.clone(),
                    });
                    let _ = done.send(Reported::Settled(address.to_string(), outcome));
                };
                polls::rounds(cx, instance, settling, &report).await;
            }
        })
        .collect();
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
        // Outcomes settled before their task reported (its report comes a moment later).
        let mut early: std::collections::HashMap<String, Outcome> =
            std::collections::HashMap::new();
        while let Some(reported) = results.recv().await {
            match reported {
                Reported::Task(address, action, outcome) => {
                    received += 1;
                    let outcome = early.remove(&address).unwrap_or(outcome);
                    report.outcomes.insert(address, (action, outcome));
                }
                Reported::Settled(address, outcome) => match report.outcomes.get_mut(&address) {
                    Some(entry) => entry.1 = outcome,
                    None => {
                        early.insert(address, outcome);
                    }
                },
            }
        }
        received
    };
    let ((), (), received) = tokio::join!(
        futures_util::future::join_all(feeders).map(|_| ()),
        futures_util::future::join_all(rounds).map(|_| ()),
        collect
    );
    if received < expected {
        report.stopped = Some(format!(
            "{} apply tasks failed before reporting",
            expected - received
        ));
    }
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
        Ok(Found::One(remote)) => follow(cx, org, remote, true).await,
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
            Ok(remote) => return follow(cx, org, remote, false).await,
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
                    Ok(Found::One(remote)) => return follow(cx, org, remote, true).await,
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

/// Records what the provider reported. An asynchronous create still in progress is handed to
/// the rounds of its instance (`polls`), which look at it together with the others once the
/// instance's creates are sent: polled until it finishes or the settle timeout passes where the
/// provider's capabilities say apply waits for its creates, looked at once elsewhere. A create
/// found by a look-up where apply does not wait was looked at already: it stays `pending`.
async fn follow(cx: &Context, org: &OrgSpec, remote: RemoteOrg, found: bool) -> Outcome {
    // A create answered with an organization of another natural key is not this create's: its
    // id is not recorded (the record stays `pending`, for the next run to look up by its own
    // key), never bound to an address that did not declare it.
    if !found && remote.natural_key != org.natural_key {
        return Outcome::Error {
            message: format!(
                "the provider answered the create with {} under the natural key `{}`, not `{}`; the answer was not recorded, and the next run looks the organization up by its key",
                crate::escape::Shown(&remote.remote_id),
                crate::escape::Shown(&remote.natural_key.0),
                crate::escape::Shown(&org.natural_key.0),
            ),
        };
    }
    let outcome = record_remote(cx, org, &remote, false, found).await;
    if !matches!(remote.status, RemoteStatus::InProgress { .. }) || cx.stop.load(Ordering::SeqCst) {
        return outcome;
    }
    let Some(settling) = cx.settling.get(&org.instance) else {
        return outcome;
    };
    if !settling.waits() && found {
        return outcome;
    }
    if settling.waits() {
        cx.waits.start_polling();
    }
    settling.await_later(Awaited::new(
        &org.address,
        &remote.remote_id,
        found,
        outcome.clone(),
    ));
    outcome
}

/// Waits `delay`, or less if the run is interrupted meanwhile: after Ctrl-C a create held back
/// by a rate limit is not sent, at once rather than at the end of the wait.
async fn pause(cx: &Context, delay: Duration) {
    pause_until(cx, tokio::time::Instant::now() + delay).await;
}

/// Waits until `until`, or less if the run is interrupted meanwhile (a round of polls then
/// leaves what it awaits `pending` for the next run at once).
async fn pause_until(cx: &Context, until: tokio::time::Instant) {
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
    let (status, error, outcome) = reported(remote, adopted);
    let ops = if found || adopted {
        // A record from what was found: whole, with the declaration as it stands.
        vec![StateOp::Put {
            address: org.address.clone(),
            record: Box::new(Record {
                remote_id: Some(remote.remote_id.clone()),
                status,
                error: error.map(Box::new),
                detail: remote.detail.clone(),
                // Kept from the intent by `State::apply` when this is the create's outcome.
                attempted_at: None,
                updated_at: now,
                ..pending_record(org, now)
            }),
        }]
    } else {
        // The answer to this run's own create (or a poll of it): the intent recorded the
        // declaration just before, so only the outcome is written.
        vec![settle_op(&org.address, remote, status, error, now)]
    };
    // Bound either way: an id found, or one this run's create was answered with, that state
    // records for another address is never written for this one (a provider that answers two
    // creates with one id, or with another organization's). What this create made is then
    // left `pending`, for a look-up by its natural key to settle.
    match cx.writer.bind(ops).await {
        Ok(()) => outcome,
        Err(Refused::Bound(why)) => Outcome::Error { message: why },
        Err(why) => Outcome::StillPending {
            why: format!(
                "done at the provider, but state could not be written ({why}); the next run adopts it"
            ),
        },
    }
}

/// The outcome of this run's own create as a round found it: the op that records it (its
/// intent holds the declaration already) and what the run reports once that op is written.
fn settled(address: &str, remote: &RemoteOrg) -> (StateOp, Outcome) {
    let (status, error, outcome) = reported(remote, false);
    let op = settle_op(address, remote, status, error, time::now());
    (op, outcome)
}

/// Only the outcome of a create, for a record whose intent this run wrote.
fn settle_op(
    address: &str,
    remote: &RemoteOrg,
    status: Status,
    error: Option<RecordError>,
    now: u64,
) -> StateOp {
    StateOp::Settle {
        address: address.to_string(),
        remote_id: Some(remote.remote_id.clone()),
        status,
        error,
        detail: remote.detail.to_map(),
        updated_at: now,
    }
}

/// What the provider reported, as state records it and as the run reports it.
fn reported(remote: &RemoteOrg, adopted: bool) -> (Status, Option<RecordError>, Outcome) {
    match &remote.status {
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
            // What the provider said is kept in state: never a secret it echoed.
            Some(RecordError {
                code: crate::secrets::scrub_owned(code.clone()),
                message: crate::secrets::scrub_owned(message.clone()),
            }),
            Outcome::FailedAtProvider {
                code: code.clone(),
                message: message.clone(),
            },
        ),
    }
}
