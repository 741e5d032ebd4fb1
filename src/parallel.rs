//! Work spread over the machine's cores: spec files read, hashed, parsed and checked, each a
//! job for whichever thread is free next (files differ a lot in size, so fixed shares would
//! leave a core idle). Results come back in the order of the items, so nothing downstream
//! depends on which thread finished first. No I/O of its own: the pure spec layer uses it too.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `work(i, item)` for every item, on every core; results in item order. A panic in `work`
/// is carried to the caller.
pub(crate) fn each<'a, T: Sync, R: Send>(
    items: &'a [T],
    work: impl Fn(usize, &'a T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if threads <= 1 || items.len() <= 1 {
        return items.iter().enumerate().map(|(i, t)| work(i, t)).collect();
    }
    let next = AtomicUsize::new(0);
    let (work, next) = (&work, &next);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(items.len()))
            .map(|_| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, work(i, item)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// [`each`] for items the work takes by value.
pub(crate) fn each_owned<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    each(&slots, |_, slot| {
        // Each slot is taken once: `each` hands every index to exactly one thread.
        let item = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        item.map(&work)
    })
    .into_iter()
    .flatten()
    .collect()
}
