//! The sandbox: emulators of the provider APIs, served by one real HTTP server on loopback.
//!
//! Each emulator speaks its provider's wire contract, as `docs/providers/<type>.md` describes it
//! (auth, bodies, errors, limits, quirks), so that orgform's real clients work against it by
//! swapping the host of their `base_url` and nothing else. The sandbox is for tests, demos and benchmarks; it is never a
//! substitute for the real clients.
//!
//! Invariants:
//! - **Injected faults and request counting touch provider paths only, never `/_sandbox/*`.**
//! - **Nothing secret a client sends (API keys, passwords, write-only fields) is logged or
//!   stored**: logs carry the method, the path without its query, the status and the time.
//! - **The data file is replaced atomically** after every mutation and at shutdown, and keeps
//!   the sections of emulators this build does not know.
//!
//! Adding an emulator, for a new [`ProviderType`] variant (`heron/` is the model): the
//! compiler names every match below to extend.
//! 1. The file (or folder, when the emulator has more than one job) exposes `PREFIXES` (the
//!    paths it owns, as at the real host), `routes(&state) -> Router<SandboxState>` with full
//!    real paths (no `nest`: stats use the route patterns), its auth as a `route_layer` there,
//!    `status_error(&state, status)` in the provider's error shape, and its data type (serde,
//!    `Default`) with `organizations()` and `reset()`.
//! 2. Here: `mod commvault;`, an arm in each match of `impl Emulated for ProviderType`, and a
//!    `#[serde(default)]` field of `SandboxData` reset in `SandboxData::reset`.
//! 3. Handlers change data through `SandboxState::mutate` (saved) or `touch` (transient, such as
//!    sessions or rate-limit windows that need not survive a restart); `serve.rs` picks one for
//!    a call and holds what the handlers share.
//!
//! Everything else (faults, latency, stats, logs, persistence, shutdown) is shared.

mod clock;
pub mod commvault;
mod conn;
mod heron;
mod layers;
pub mod neoncrm;
pub mod oracle;
pub mod salesforce;
mod serve;
mod state;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::model::ProviderType;
use conn::{Connection, SandboxListener};
use state::SandboxState;

/// The one API key the Heron emulator accepts, besides any listed in the data file (a fact of
/// the catalog's).
pub use crate::catalog::heron::sandbox::API_KEY as HERON_API_KEY;

/// How long `shutdown` waits for open requests before it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How the sandbox behaves: latency, injected faults, persistence and limits.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Added to every request (zero for none).
    pub latency: Duration,
    /// The chance, from 0.0 to 1.0, that a request on a provider path gets a fault.
    pub fault_rate: f64,
    /// The faults to pick from, uniformly, when one fires.
    pub faults: Vec<Fault>,
    /// How long a [`Fault::TimeoutAfterCommit`] holds its answer back.
    pub timeout_hang: Duration,
    /// Loaded at start if it exists; saved after each mutation and at shutdown.
    pub data_file: Option<PathBuf>,
    /// Makes fault picks and ids reproducible.
    pub seed: Option<u64>,
    /// Heron requests per fixed 60-second window per API key; 0 for no limit.
    pub heron_rate_limit: u32,
    /// The largest request body any emulator reads, in bytes; 0 for no limit.
    pub max_body_bytes: usize,
    pub salesforce: salesforce::SalesforceConfig,
    pub neoncrm: neoncrm::NeonConfig,
    pub commvault: commvault::CommvaultConfig,
    pub oracle: oracle::OracleConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            latency: Duration::ZERO,
            fault_rate: 0.0,
            faults: Fault::ALL.to_vec(),
            timeout_hang: Duration::from_secs(30),
            data_file: None,
            seed: None,
            heron_rate_limit: 600,
            // axum's own default, what every emulator had.
            max_body_bytes: 2 * 1024 * 1024,
            salesforce: salesforce::SalesforceConfig::default(),
            neoncrm: neoncrm::NeonConfig::default(),
            commvault: commvault::CommvaultConfig::default(),
            oracle: oracle::OracleConfig::default(),
        }
    }
}

impl SandboxConfig {
    fn check(&self) -> Result<(), SandboxError> {
        if !(0.0..=1.0).contains(&self.fault_rate) {
            return Err(SandboxError::FaultRate(self.fault_rate));
        }
        if self.fault_rate > 0.0 && self.faults.is_empty() {
            return Err(SandboxError::NoFaultKinds);
        }
        Ok(())
    }
}

/// A fault the sandbox can inject into a provider request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 429 without `Retry-After`; the request is not handled.
    TooManyRequests,
    /// 429 with `Retry-After: 1`; the request is not handled.
    TooManyRequestsRetryAfter,
    /// 500; the request is not handled.
    InternalError,
    /// 503; the request is not handled.
    Unavailable,
    /// The connection is closed without a response; the request is not handled.
    Reset,
    /// The request IS handled (a create is committed), then the answer is held back for
    /// `timeout_hang`: the case where a client cannot know whether its create happened.
    TimeoutAfterCommit,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::TooManyRequests,
        Fault::TooManyRequestsRetryAfter,
        Fault::InternalError,
        Fault::Unavailable,
        Fault::Reset,
        Fault::TimeoutAfterCommit,
    ];

    /// The name used on the command line and in stats.
    pub fn name(self) -> &'static str {
        match self {
            Fault::TooManyRequests => "429",
            Fault::TooManyRequestsRetryAfter => "429-retry-after",
            Fault::InternalError => "500",
            Fault::Unavailable => "503",
            Fault::Reset => "reset",
            Fault::TimeoutAfterCommit => "timeout",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|fault| fault.name() == s)
            .ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

/// A fault name that is not one of [`Fault::ALL`]'s.
#[derive(Debug, thiserror::Error)]
#[error("unknown fault {0:?}: expected one of 429, 429-retry-after, 500, 503, reset, timeout")]
pub struct UnknownFault(pub(crate) String);

/// Why the sandbox could not start, save or stop.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("fault rate {0} is not between 0 and 1")]
    FaultRate(f64),
    #[error("a fault rate above 0 needs at least one fault kind")]
    NoFaultKinds,
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the sandbox data file {}", path.display())]
    ReadData {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the sandbox data file {} is not valid", path.display())]
    ParseData {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the sandbox data file {}", path.display())]
    WriteData {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the sandbox server failed")]
    Serve(#[source] io::Error),
    #[error("the sandbox server task ended abnormally")]
    ServerTask(#[source] tokio::task::JoinError),
}

/// What `GET /_sandbox/stats` reports. Keys are API names (`heron`), endpoints
/// (`POST /api/crm_integrations`, the route pattern rather than the raw path) and fault names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests per API and endpoint, including those that got a fault.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Injected faults per API and fault name.
    pub faults: BTreeMap<String, BTreeMap<String, u64>>,
    /// Organizations each emulator holds.
    pub organizations: BTreeMap<String, u64>,
    /// Requests sent again before the `Retry-After` their first answer gave (per API): a
    /// client that honours Retry-After keeps this at zero.
    #[serde(default)]
    pub(crate) early_retries: BTreeMap<String, u64>,
    /// The CPU time (user and system, milliseconds) of the process serving the sandbox since it
    /// started, so that a benchmark can tell the sandbox's share of a run's CPU; absent where
    /// the system does not say (`/proc/self/stat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// How many times the data file (`--data`) was written: changes made while one save is
    /// written share the next, so under load this stays well below the changes made.
    #[serde(default)]
    pub data_saves: u64,
}

/// What the sandbox asks of each provider type's emulator. Every method matches on
/// [`ProviderType`] with no catch-all arm, so a new provider type does not compile until the
/// sandbox serves it.
trait Emulated: Copy {
    /// The emulator's name in stats, as in the data file (`SandboxData` names its sections).
    fn stats_name(self) -> &'static str;
    /// The path prefixes the emulator owns at the provider's real host.
    fn prefixes(self) -> &'static [&'static str];
    fn routes(self, state: &SandboxState) -> Router<SandboxState>;
    /// An error in the provider's own shape, for injected faults and unknown routes.
    fn status_error(self, state: &SandboxState, status: StatusCode) -> Response;
    /// The organizations the emulator holds.
    fn organizations(self, data: &SandboxData, config: &SandboxConfig) -> usize;
}

impl Emulated for ProviderType {
    fn stats_name(self) -> &'static str {
        match self {
            ProviderType::CommvaultSalesforce => "commvault_salesforce",
            // Not the type's name (`salesforce_signup`): stats and existing data files say
            // `salesforce`.
            ProviderType::SalesforceSignup => "salesforce",
            ProviderType::OracleCommerce => "oracle_commerce",
            ProviderType::Heron => "heron",
            ProviderType::Neoncrm => "neoncrm",
        }
    }

    fn prefixes(self) -> &'static [&'static str] {
        match self {
            ProviderType::CommvaultSalesforce => commvault::PREFIXES,
            ProviderType::SalesforceSignup => salesforce::PREFIXES,
            ProviderType::OracleCommerce => oracle::PREFIXES,
            ProviderType::Heron => heron::PREFIXES,
            ProviderType::Neoncrm => neoncrm::PREFIXES,
        }
    }

    fn routes(self, state: &SandboxState) -> Router<SandboxState> {
        match self {
            ProviderType::CommvaultSalesforce => commvault::routes(state),
            ProviderType::SalesforceSignup => salesforce::routes(state),
            ProviderType::OracleCommerce => oracle::routes(state),
            ProviderType::Heron => heron::routes(state),
            ProviderType::Neoncrm => neoncrm::routes(state),
        }
    }

    fn status_error(self, state: &SandboxState, status: StatusCode) -> Response {
        match self {
            ProviderType::CommvaultSalesforce => commvault::status_error(state, status),
            ProviderType::SalesforceSignup => salesforce::status_error(state, status),
            ProviderType::OracleCommerce => oracle::status_error(state, status),
            ProviderType::Heron => heron::status_error(state, status),
            ProviderType::Neoncrm => neoncrm::status_error(state, status),
        }
    }

    fn organizations(self, data: &SandboxData, config: &SandboxConfig) -> usize {
        match self {
            ProviderType::CommvaultSalesforce => data.commvault_salesforce.organizations(),
            ProviderType::SalesforceSignup => data.salesforce.organizations(),
            ProviderType::OracleCommerce => data.oracle.organizations(&config.oracle),
            ProviderType::Heron => data.heron.organizations(),
            ProviderType::Neoncrm => data.neoncrm.organizations(),
        }
    }
}

/// The provider type whose emulator owns `path`, if any.
fn owner(path: &str) -> Option<ProviderType> {
    ProviderType::ALL.into_iter().find(|provider| {
        provider.prefixes().iter().any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    })
}

/// Everything the emulators hold, one section per API; this is the data file's shape.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SandboxData {
    #[serde(default)]
    commvault_salesforce: commvault::CommvaultData,
    #[serde(default)]
    heron: heron::HeronData,
    #[serde(default)]
    salesforce: salesforce::SalesforceData,
    #[serde(default)]
    neoncrm: neoncrm::NeonData,
    #[serde(default, rename = "oracle_commerce")]
    oracle: oracle::OracleData,
    /// Sections this build does not know (a newer sandbox wrote them): kept, so that saving
    /// never drops another emulator's data.
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl SandboxData {
    /// Forgets organizations and transient state; keeps configuration such as extra API keys.
    fn reset(&mut self) {
        self.commvault_salesforce.reset();
        self.heron.reset();
        self.salesforce.reset();
        self.neoncrm.reset();
        self.oracle.reset();
    }
}

/// A running sandbox server. Dropping it stops the server without saving; prefer `shutdown`.
pub struct Sandbox {
    addr: SocketAddr,
    state: SandboxState,
    server: Option<JoinHandle<io::Result<()>>>,
}

impl Sandbox {
    /// Loads the data file, binds `listen` (port 0 picks a free port) and serves in a spawned
    /// task; returns once the socket is listening.
    ///
    /// # Errors
    /// Bad fault settings, an unreadable or invalid data file, or an address it cannot bind.
    pub async fn start(listen: SocketAddr, config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.check()?;
        let data = match &config.data_file {
            Some(path) => state::load(path)?,
            None => SandboxData::default(),
        };
        let bind_error = |source| SandboxError::Bind {
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let state = SandboxState::new(config, data);
        let app = layers::router(&state);
        let stopped = state.stopped();
        let server = tokio::spawn(async move {
            axum::serve(
                SandboxListener::new(listener),
                app.into_make_service_with_connect_info::<Connection>(),
            )
            .with_graceful_shutdown(stopped)
            .await
        });
        tracing::info!(%addr, "sandbox listening");
        Ok(Sandbox {
            addr,
            state,
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`: what a provider's `base_url` becomes.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the latency added to every request from now on (a benchmark fills a sandbox
    /// fast, then reads it at the latency it measures).
    pub fn set_latency(&self, latency: Duration) {
        self.state.set_latency(latency);
    }

    /// The same data as `GET /_sandbox/stats`.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Stops accepting, lets open requests finish (held answers are released at once), then
    /// saves the data file.
    ///
    /// # Errors
    /// The server failed, or the data file could not be written (saving is tried either way).
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        self.state.stop();
        let served = match self.server.take() {
            Some(mut server) => match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(Ok(result)) => result.map_err(SandboxError::Serve),
                Ok(Err(join)) => Err(SandboxError::ServerTask(join)),
                Err(_elapsed) => {
                    tracing::warn!("sandbox requests still open after the grace period: dropped");
                    server.abort();
                    Ok(())
                }
            },
            None => Ok(()),
        };
        // Save even when the server failed: the data in memory is still the truth.
        let saved = self.state.save().await;
        served.and(saved)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.state.stop();
    }
}
