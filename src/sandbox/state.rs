//! The sandbox's shared state: configuration, the emulators' data, counters, the random source
//! and the stop signal, plus the data file's load and atomic save.
//!
//! Emulators change data through [`SandboxState::mutate`], which returns once the data file
//! holds the change, as a provider answers once its write is durable. Saves are grouped: a
//! save writes every change made before it, so the changes made while one save is written
//! share the next one, instead of each rewriting the whole file on its own (which made an apply
//! of 100,000 against `--data` crawl). The file always holds a prefix of the mutations in order.
//! Transient data (rate-limit windows) changes through [`SandboxState::touch`], which does not.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use super::{Emulated, Fault, SandboxConfig, SandboxData, SandboxError, Stats};
use crate::files::{OldVersion, write_atomically};
use crate::model::ProviderType;

/// Handed to every handler and middleware; cheap to clone.
#[derive(Clone)]
pub(crate) struct SandboxState {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    /// The latency added to every request now: `config.latency` until changed.
    latency_us: AtomicU64,
    data: Mutex<SandboxData>,
    counters: Mutex<Counters>,
    rng: Mutex<fastrand::Rng>,
    /// Held across a save, so saves reach the disk in mutation order.
    save_lock: tokio::sync::Mutex<()>,
    /// How many mutations were made; counted under the data lock, so a snapshot taken under
    /// it holds exactly the first so many.
    mutations: AtomicU64,
    /// How many of those mutations the data file holds (or a failed save gave up on).
    saved: AtomicU64,
    /// How many times the data file was written, for `/_sandbox/stats`.
    saves: AtomicU64,
    stopping: watch::Sender<bool>,
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<&'static str, BTreeMap<String, u64>>,
    faults: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// For each request answered 429 with a `Retry-After` (by its digest): the instant before
    /// which the same request again is too early.
    not_before: std::collections::HashMap<[u8; 32], std::time::Instant>,
    early_retries: BTreeMap<&'static str, u64>,
}

/// Locks a mutex, carrying on after a panic elsewhere: the data stays usable for a test tool.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SandboxState {
    pub(super) fn new(config: SandboxConfig, data: SandboxData) -> SandboxState {
        let rng = match config.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        SandboxState {
            inner: Arc::new(Inner {
                latency_us: AtomicU64::new(
                    u64::try_from(config.latency.as_micros()).unwrap_or(u64::MAX),
                ),
                config,
                data: Mutex::new(data),
                counters: Mutex::new(Counters::default()),
                rng: Mutex::new(rng),
                save_lock: tokio::sync::Mutex::new(()),
                mutations: AtomicU64::new(0),
                saved: AtomicU64::new(0),
                saves: AtomicU64::new(0),
                stopping: watch::Sender::new(false),
            }),
        }
    }

    pub(super) fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// The latency added to every request now.
    pub(super) fn latency(&self) -> Duration {
        Duration::from_micros(self.inner.latency_us.load(Ordering::Relaxed))
    }

    pub(super) fn set_latency(&self, latency: Duration) {
        self.inner.latency_us.store(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Reads the data.
    pub(super) fn read<R>(&self, f: impl FnOnce(&SandboxData) -> R) -> R {
        f(&lock(&self.inner.data))
    }

    /// Changes transient data that is not saved (rate-limit windows).
    pub(super) fn touch<R>(&self, f: impl FnOnce(&mut SandboxData) -> R) -> R {
        f(&mut lock(&self.inner.data))
    }

    /// Changes the data, then returns once the data file (if there is one) holds the change. A
    /// failed save is logged, not returned: the change is made, and the emulator answers as the
    /// provider would.
    pub(super) async fn mutate<R>(&self, f: impl FnOnce(&mut SandboxData) -> R) -> R {
        let inner = &self.inner;
        let (result, mutation) = {
            let mut data = lock(&inner.data);
            let result = f(&mut data);
            (result, inner.mutations.fetch_add(1, Ordering::SeqCst) + 1)
        };
        if inner.config.data_file.is_none() {
            return result;
        }
        let _saving = inner.save_lock.lock().await;
        // A save that began after this mutation, while this one waited for the lock, holds it.
        if inner.saved.load(Ordering::SeqCst) >= mutation {
            return result;
        }
        if let Err(error) = self.save_locked().await {
            tracing::error!(error = %error_chain(&error), "sandbox data not saved");
        }
        result
    }

    /// Saves the data file, if there is one.
    pub(super) async fn save(&self) -> Result<(), SandboxError> {
        let _saving = self.inner.save_lock.lock().await;
        self.save_locked().await
    }

    /// Writes every mutation made so far; the caller holds `save_lock`.
    async fn save_locked(&self) -> Result<(), SandboxError> {
        let inner = &self.inner;
        let (snapshot, upto) = {
            let data = lock(&inner.data);
            (self.snapshot(&data), inner.mutations.load(Ordering::SeqCst))
        };
        let written = self.write(snapshot).await;
        inner.saves.fetch_add(1, Ordering::Relaxed);
        // Given up on after a failure too: the next mutation's save tries the whole file again.
        inner.saved.fetch_max(upto, Ordering::SeqCst);
        written
    }

    fn snapshot(&self, data: &SandboxData) -> Option<(PathBuf, Vec<u8>)> {
        let path = self.inner.config.data_file.clone()?;
        match serde_json::to_vec_pretty(data) {
            Ok(bytes) => Some((path, bytes)),
            // Plain maps of JSON values always serialize; this only guards the impossible.
            Err(error) => {
                tracing::error!(%error, "sandbox data not serializable");
                None
            }
        }
    }

    async fn write(&self, snapshot: Option<(PathBuf, Vec<u8>)>) -> Result<(), SandboxError> {
        let Some((path, bytes)) = snapshot else {
            return Ok(());
        };
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&target, &bytes, OldVersion::Discard))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join)))
            .map_err(|source| SandboxError::WriteData { path, source })
    }

    /// A random number from the sandbox's (possibly seeded) source.
    pub(super) fn random(&self) -> u64 {
        lock(&self.inner.rng).u64(..)
    }

    /// Decides whether this request gets a fault, and which.
    pub(super) fn pick_fault(&self) -> Option<Fault> {
        let config = &self.inner.config;
        if config.fault_rate <= 0.0 || config.faults.is_empty() {
            return None;
        }
        let mut rng = lock(&self.inner.rng);
        if rng.f64() >= config.fault_rate {
            return None;
        }
        config.faults.get(rng.usize(..config.faults.len())).copied()
    }

    pub(super) fn count_request(&self, api: ProviderType, endpoint: String) {
        let mut counters = lock(&self.inner.counters);
        *counters
            .requests
            .entry(api.stats_name())
            .or_default()
            .entry(endpoint)
            .or_default() += 1;
    }

    /// Remembers that `request` (a digest) was told to wait until `until`.
    pub(super) fn told_to_wait(&self, request: [u8; 32], until: std::time::Instant) {
        lock(&self.inner.counters).not_before.insert(request, until);
    }

    /// Counts `request` as an early retry if it comes back before it was told to.
    pub(super) fn check_retry(&self, api: ProviderType, request: [u8; 32]) {
        let mut counters = lock(&self.inner.counters);
        let early = counters
            .not_before
            .get(&request)
            .is_some_and(|until| std::time::Instant::now() < *until);
        if early {
            *counters.early_retries.entry(api.stats_name()).or_default() += 1;
        }
    }

    pub(super) fn count_fault(&self, api: ProviderType, fault: Fault) {
        let mut counters = lock(&self.inner.counters);
        *counters
            .faults
            .entry(api.stats_name())
            .or_default()
            .entry(fault.name())
            .or_default() += 1;
    }

    pub(super) fn stats(&self) -> Stats {
        let (requests, faults, early_retries) = {
            let counters = lock(&self.inner.counters);
            let early_retries = counters
                .early_retries
                .iter()
                .map(|(api, n)| (api.to_string(), *n))
                .collect();
            let requests = counters
                .requests
                .iter()
                .map(|(api, endpoints)| (api.to_string(), endpoints.clone()))
                .collect();
            let faults = counters
                .faults
                .iter()
                .map(|(api, faults)| {
                    let faults = faults.iter().map(|(f, n)| (f.to_string(), *n)).collect();
                    (api.to_string(), faults)
                })
                .collect();
            (requests, faults, early_retries)
        };
        let organizations = self.read(|data| {
            ProviderType::ALL
                .into_iter()
                .map(|api| {
                    (
                        api.stats_name().to_owned(),
                        u64::try_from(api.organizations(data, &self.inner.config))
                            .unwrap_or(u64::MAX),
                    )
                })
                .collect()
        });
        Stats {
            requests,
            faults,
            organizations,
            early_retries,
            cpu_ms: process_cpu_ms(),
            data_saves: self.inner.saves.load(Ordering::Relaxed),
        }
    }

    /// Forgets every organization and counter (`POST /_sandbox/reset`), and saves.
    pub(super) async fn reset(&self) {
        *lock(&self.inner.counters) = Counters::default();
        self.mutate(SandboxData::reset).await;
    }

    /// Sleeps, but wakes at once when the sandbox stops: held answers must not hold up shutdown.
    pub(super) async fn sleep(&self, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        let mut stopping = self.inner.stopping.subscribe();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    }

    pub(super) fn stop(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Resolves when [`SandboxState::stop`] is called.
    pub(super) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.inner.stopping.subscribe();
        async move {
            // An error means the sender is gone, which also means stop.
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    }
}

/// Loads the data file; a missing file is an empty sandbox.
pub(super) fn load(path: &Path) -> Result<SandboxData, SandboxError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(SandboxData::default()),
        Err(source) => {
            return Err(SandboxError::ReadData {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes).map_err(|source| SandboxError::ParseData {
        path: path.to_path_buf(),
        source,
    })
}

/// This process's CPU time so far (user and system), in milliseconds, from `/proc/self/stat`
/// (fields 14 and 15, in clock ticks of `USER_HZ`, 100 a second in Linux's ABI); `None` where
/// there is no such file.
fn process_cpu_ms() -> Option<u64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system).saturating_mul(10))
}

/// An error and its sources on one line, for logs.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Changes made while a save is being written share the next save, and every one of them
    /// is in the file when its `mutate` returns.
    #[tokio::test]
    async fn changes_made_during_a_save_share_the_next() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sandbox.json");
        let state = SandboxState::new(
            SandboxConfig {
                data_file: Some(path.clone()),
                ..SandboxConfig::default()
            },
            SandboxData::default(),
        );
        // A save in progress: holds the lock the way a slow write would.
        let writing = state.inner.save_lock.lock().await;
        let changes: Vec<_> = (0..10)
            .map(|n| {
                let state = state.clone();
                tokio::spawn(async move {
                    state
                        .mutate(|data| data.heron.api_keys.push(format!("key-{n}")))
                        .await;
                    let saved: serde_json::Value = serde_json::from_slice(
                        &fs::read(state.inner.config.data_file.as_ref().expect("a data file"))
                            .expect("saved"),
                    )
                    .expect("JSON");
                    assert!(
                        saved["heron"]["api_keys"]
                            .to_string()
                            .contains(&format!("\"key-{n}\""))
                    );
                })
            })
            .collect();
        while state.inner.mutations.load(Ordering::SeqCst) < 10 {
            tokio::task::yield_now().await;
        }
        drop(writing);
        for change in changes {
            change
                .await
                .expect("the change is saved before mutate returns");
        }
        assert_eq!(state.stats().data_saves, 1);
    }
}
