//! The look-up coalescer: look-ups by natural key on one provider instance, gathered into one
//! read, each answered by the planner's matching rule (the recorded id, else the only live
//! one, never a pick among several).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::model::{NaturalKey, RemoteOrg};
use crate::plan::{Match, matching};
use crate::providers::{AnyProvider, Provider, ProviderError, RetryPolicy};
use crate::spec::OrgSpec;

/// What a look-up by natural key found.
#[derive(Clone, Debug)]
pub(super) enum Found {
    None,
    One(RemoteOrg),
    /// Several organizations hold the key, none of them the recorded one: their ids. Never
    /// settled by picking one.
    Many(Vec<String>),
}

impl Found {
    pub(super) fn ambiguous(ids: &[String]) -> String {
        format!(
            "{} organizations at the provider have its natural key ({}): orgform won't choose; the next plan shows it blocked",
            ids.len(),
            ids.join(", ")
        )
    }
}

/// Look-ups of one provider instance, gathered into one read: a hundred lost answers or pending
/// creates settled at once cost a page of a query, not a hundred queries. The first caller in a
/// window leads:
/// it waits briefly for others to join, reads for all of them, and hands each its answer.
pub(super) struct Lookups {
    waiting: std::sync::Mutex<Vec<Waiter>>,
    window: Duration,
    /// An interrupt cuts the window short: those waiting are answered at once.
    stop: Arc<AtomicBool>,
}

struct Waiter {
    key: NaturalKey,
    remote_id: Option<String>,
    reply: oneshot::Sender<Result<Found, String>>,
}

impl Lookups {
    pub(super) fn new(window: Duration, stop: Arc<AtomicBool>) -> Lookups {
        Lookups {
            waiting: std::sync::Mutex::new(Vec::new()),
            window,
            stop,
        }
    }

    pub(super) async fn look_up(
        &self,
        provider: &AnyProvider,
        org: &OrgSpec,
        remote_id: Option<&str>,
        retry: RetryPolicy,
    ) -> Result<Found, ProviderError> {
        let (reply, answer) = oneshot::channel();
        let leads = {
            let mut waiting = self
                .waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            waiting.push(Waiter {
                key: org.natural_key.clone(),
                remote_id: remote_id.map(str::to_string),
                reply,
            });
            waiting.len() == 1
        };
        if leads {
            let until = tokio::time::Instant::now() + self.window;
            while !self.stop.load(Ordering::SeqCst) {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left.min(Duration::from_millis(100))).await;
            }
            let batch = std::mem::take(
                &mut *self
                    .waiting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            let mut keys: Vec<_> = batch.iter().map(|w| w.key.clone()).collect();
            keys.sort();
            keys.dedup();
            let read = crate::providers::http::retrying(retry, || provider.read(&keys)).await;
            for waiter in batch {
                let answer = match &read {
                    // The planner's rule: the recorded id, else the only live one, never a pick
                    // among several.
                    Ok(reality) => Ok(
                        match matching(reality.find(&waiter.key), waiter.remote_id.as_deref()) {
                            Match::None => Found::None,
                            Match::One(o) => Found::One(o.clone()),
                            Match::Many(ids) => Found::Many(ids),
                        },
                    ),
                    Err(e) => Err(e.to_string()),
                };
                let _ = waiter.reply.send(answer);
            }
        }
        match answer.await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(message)) => Err(ProviderError::Unavailable {
                message,
                retry_after: None,
            }),
            Err(_) => Err(ProviderError::Unavailable {
                message: "the look-up was abandoned".into(),
                retry_after: None,
            }),
        }
    }
}
