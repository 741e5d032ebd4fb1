//! What an apply waits for at each moment (a provider's rate limit, sign-ups being polled, the
//! creates in flight after an interrupt), kept as the tasks start and end those waits and
//! reported as [`Event::Waiting`] whenever it changes, so that the progress bar can say why it
//! is not moving. Nothing here decides anything: it only counts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::Event;
use crate::model::InstanceName;
use crate::time;

/// What the run waits for now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Waits {
    /// Addresses being worked on: a create about to be sent or sent, a look-up, a poll.
    pub(crate) in_flight: usize,
    /// Asynchronous creates (sign-ups) being polled until they finish.
    pub(crate) polling: usize,
    /// Instances whose rate limit holds creates back, with when the latest wait ends (Unix
    /// seconds).
    pub(crate) rate_limits: BTreeMap<InstanceName, u64>,
    /// An interrupt came: nothing new starts; what is in flight finishes and is recorded.
    pub(crate) stopping: bool,
}

/// Counts the waits of every task of one apply and reports each change.
pub(super) struct Tracker {
    counts: Mutex<Counts>,
    on_event: Arc<dyn Fn(&Event) + Send + Sync>,
}

#[derive(Default)]
struct Counts {
    in_flight: usize,
    polling: usize,
    /// Per instance: how many tasks wait out its rate limit, and until when the latest.
    rate_limits: BTreeMap<InstanceName, (usize, u64)>,
    stopping: bool,
    /// What was reported last, so that only changes are.
    reported: Waits,
}

impl Counts {
    fn waits(&self) -> Waits {
        Waits {
            in_flight: self.in_flight,
            polling: self.polling,
            rate_limits: self
                .rate_limits
                .iter()
                .map(|(name, (_, until))| (name.clone(), *until))
                .collect(),
            stopping: self.stopping,
        }
    }
}

/// Which count a [`Waiting`] guard holds up.
enum Kind {
    InFlight,
    RateLimit(InstanceName),
}

/// One task's wait: counted while this lives.
pub(super) struct Waiting<'a> {
    tracker: &'a Tracker,
    kind: Kind,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.tracker.change(|c| match &self.kind {
            Kind::InFlight => c.in_flight = c.in_flight.saturating_sub(1),
            Kind::RateLimit(name) => {
                if let Some((waiting, _)) = c.rate_limits.get_mut(name) {
                    *waiting = waiting.saturating_sub(1);
                    if *waiting == 0 {
                        c.rate_limits.remove(name);
                    }
                }
            }
        });
    }
}

impl Tracker {
    pub(super) fn new(on_event: Arc<dyn Fn(&Event) + Send + Sync>) -> Tracker {
        Tracker {
            counts: Mutex::default(),
            on_event,
        }
    }

    /// Applies `f` and reports the result if it differs from what was reported last. The
    /// report is made under the lock, so that reports arrive in the order of the changes.
    fn change(&self, f: impl FnOnce(&mut Counts)) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut counts);
        let waits = counts.waits();
        if waits != counts.reported {
            counts.reported = waits.clone();
            (self.on_event)(&Event::Waiting(waits));
        }
    }

    fn hold(&self, kind: Kind) -> Waiting<'_> {
        Waiting {
            tracker: self,
            kind,
        }
    }

    /// One address being worked on, while the guard lives.
    pub(super) fn working(&self) -> Waiting<'_> {
        self.change(|c| c.in_flight += 1);
        self.hold(Kind::InFlight)
    }

    /// One more asynchronous create being polled: handed to the rounds of its instance, which
    /// hold no task for it, so it is counted until [`Tracker::end_polling`] rather than by a
    /// guard.
    pub(super) fn start_polling(&self) {
        self.change(|c| c.polling += 1);
    }

    /// `n` asynchronous creates no longer polled (finished, timed out, or left `pending`).
    pub(super) fn end_polling(&self, n: usize) {
        self.change(|c| c.polling = c.polling.saturating_sub(n));
    }

    /// One task waiting `delay` out for `instance`'s rate limit, while the guard lives.
    pub(super) fn rate_limited(&self, instance: &InstanceName, delay: Duration) -> Waiting<'_> {
        let until =
            time::now().saturating_add(delay.as_secs() + u64::from(delay.subsec_nanos() > 0));
        self.change(|c| {
            let entry = c.rate_limits.entry(instance.clone()).or_insert((0, until));
            entry.0 += 1;
            entry.1 = entry.1.max(until);
        });
        self.hold(Kind::RateLimit(instance.clone()))
    }

    /// Waits for `stop` to be raised (by an interrupt, from outside the apply), then reports
    /// that the run is stopping. Aborted when the apply ends.
    pub(super) async fn notice_stop(self: Arc<Self>, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.change(|c| c.stopping = true);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::{Event, Tracker, Waits};

    #[test]
    fn each_change_is_reported_once_and_guards_undo_theirs() {
        let seen: Arc<Mutex<Vec<Waits>>> = Arc::default();
        let sink = seen.clone();
        let tracker = Tracker::new(Arc::new(move |event: &Event| {
            if let Event::Waiting(w) = event {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(w.clone());
            }
        }));
        let name = "heron_prod".to_string();
        {
            let _working = tracker.working();
            let _first = tracker.rate_limited(&name, Duration::from_secs(30));
            let _second = tracker.rate_limited(&name, Duration::from_millis(100));
            tracker.start_polling();
            tracker.end_polling(1);
        }
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let last = seen.last().cloned().unwrap_or_default();
        assert_eq!(last, Waits::default(), "{seen:?}");
        let limited: Vec<usize> = seen.iter().map(|w| w.rate_limits.len()).collect();
        // The second wait on the same instance, shorter, changes nothing shown.
        assert_eq!(limited, [0, 1, 1, 1, 0, 0], "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:?}");
    }
}
