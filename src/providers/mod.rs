//! The I/O edge to the five provider APIs.
//!
//! One small trait, [`Provider`], with the verbs of the domain: log in once, read remote reality
//! for many organizations at once, create, and settle a create whose outcome is not known.
//! [`AnyProvider`] is the closed set of implementations, one file each; the planner never sees
//! a client, only the [`InstanceReality`] they report.

pub mod commvault;
pub(crate) mod heron;
pub mod http;
pub(crate) mod json_array;
pub(crate) mod login;
pub mod neoncrm;
pub mod oracle;
pub mod salesforce;
pub mod wire;

use std::future::Future;
use std::time::Duration;

use crate::escape::Shown;
use crate::model::{InstanceReality, NaturalKey, ProviderType, RemoteOrg};
use crate::secrets::{SecretError, SecretResolver, SecretString};
use crate::spec::{OrgSpec, ProviderInstance};

pub(crate) use http::RetryPolicy;
pub use http::{Http, HttpOptions};

/// What can go wrong talking to a provider, sorted by what the caller may do about it.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("login failed: {}", Shown(.message))]
    Login { message: String },
    #[error("the provider refused the credentials: {}", Shown(.message))]
    Unauthorized { message: String },
    #[error("rate limited{}: {}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default(), Shown(.message))]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("the provider is unavailable: {}", Shown(.message))]
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The create may or may not have happened: the answer was lost. Never resent blind.
    #[error("the answer to a create was lost ({}); it may or may not have been created", Shown(.message))]
    OutcomeUnknown { message: String },
    /// The provider says an organization with this natural key exists already (Commvault's 409):
    /// apply looks it up and adopts it.
    #[error("it exists at the provider already: {}", Shown(.message))]
    AlreadyExists { message: String },
    /// The provider refused the create: nothing was created.
    #[error("the provider rejected it (HTTP {status}): {}", Shown(.message))]
    Rejected { status: u16, message: String },
    /// The provider redirected to another origin, which orgform never follows: nothing was
    /// sent there.
    #[error("{}", Shown(.message))]
    Redirected { message: String },
    #[error("the provider answered in an unexpected way: {}", Shown(.message))]
    Protocol { message: String },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{}", Shown(.message))]
    Config { message: String },
}

impl ProviderError {
    /// Whether sending the same request again is safe and may help within this run: not when
    /// the provider asks for a wait longer than [`http::MAX_RETRY_AFTER`].
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. } | ProviderError::Unavailable { .. }
        ) && self
            .retry_after()
            .is_none_or(|after| after <= http::MAX_RETRY_AFTER)
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. }
            | ProviderError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The verbs orgform needs from a provider. Implementations log in lazily and renew a lapsed
/// session by themselves; `login` exists so that a run fails early on bad credentials.
pub trait Provider: Send + Sync {
    /// Logs in (once per run) and checks the credentials.
    fn login(&self) -> impl Future<Output = Result<(), ProviderError>> + Send;

    /// Reads what exists for these natural keys, in as few requests as the API allows.
    /// Providers that list everything in one call may report more than was asked.
    fn read(
        &self,
        keys: &[NaturalKey],
    ) -> impl Future<Output = Result<InstanceReality, ProviderError>> + Send;

    /// Reads what settling asynchronous creates needs for these natural keys: each organization's
    /// id and status, in as few requests as `read` (attributes may be left out, so that a look
    /// at many creates carries no more than that), handed to `found` a batch at a time as it is
    /// read (a page of a list), so that a look at 100,000 creates never holds them all: what
    /// apply's rounds of polls read, settling each batch while the next is read. A batch may
    /// hold organizations not asked for; one organization is in one batch (a provider that must
    /// see every page to tell which of several stands for a key sends after the last). An error
    /// may come after some batches were sent: those stand.
    fn look(
        &self,
        keys: &[NaturalKey],
        found: &Found,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send {
        async move {
            let reality = self.read(keys).await?;
            send_found(found, reality.orgs.into_values().flatten()).await
        }
    }

    /// Lists every organization the instance holds, with the attributes the provider reports
    /// (`RemoteOrg::attributes`), in the same bounded pages as `read`: what `discover` reads. A
    /// provider whose list leaves attributes out may read each organization once more, within
    /// the instance's limits.
    /// No default: `read(&[])` lists everything only where one call lists everything, and a
    /// provider read by keys would silently discover nothing.
    fn list_all(&self) -> impl Future<Output = Result<InstanceReality, ProviderError>> + Send;

    /// Sends one create. Returns what was created (or, for an asynchronous create, the request
    /// that stands for it, `InProgress`). `cx` says what this run already knows, so a client
    /// whose API allows duplicates looks the natural key up itself only where nothing answered.
    fn create(
        &self,
        org: &OrgSpec,
        cx: CreateContext,
    ) -> impl Future<Output = Result<RemoteOrg, ProviderError>> + Send;

    /// Creates made on this account in the last 24 hours by the provider's own count, for a
    /// daily quota that counts every create, not only orgform's. `None` where the provider
    /// can't tell.
    fn creates_in_last_day(
        &self,
    ) -> impl Future<Output = Result<Option<u32>, ProviderError>> + Send {
        async { Ok(None) }
    }

    /// Looks one organization up by its natural key: how a create of unknown outcome (or an
    /// asynchronous one) is settled. `None` means the provider has no such organization.
    fn settle(
        &self,
        org: &OrgSpec,
        remote_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<RemoteOrg>, ProviderError>> + Send {
        async move {
            let reality = self.read(std::slice::from_ref(&org.natural_key)).await?;
            let found = reality.find(&org.natural_key);
            Ok(remote_id
                .and_then(|id| found.iter().find(|o| o.remote_id == id))
                .or_else(|| found.first())
                .cloned())
        }
    }
}

/// Where [`Provider::look`] hands what it read, a batch at a time.
pub type Found = tokio::sync::mpsc::Sender<Vec<RemoteOrg>>;

/// Organizations a look read, handed to `found` in batches of [`FOUND_BATCH`].
pub(crate) async fn send_found(
    found: &Found,
    orgs: impl IntoIterator<Item = RemoteOrg>,
) -> Result<(), ProviderError> {
    let mut batch = Vec::new();
    for org in orgs {
        batch.push(org);
        if batch.len() >= FOUND_BATCH {
            send_batch(found, std::mem::take(&mut batch)).await?;
        }
    }
    if batch.is_empty() {
        Ok(())
    } else {
        send_batch(found, batch).await
    }
}

/// Organizations to a batch where a look has no page of its own to hand over.
pub(crate) const FOUND_BATCH: usize = 1000;

/// One batch of a look handed over; an error only when the one who asked has gone.
pub(crate) async fn send_batch(found: &Found, batch: Vec<RemoteOrg>) -> Result<(), ProviderError> {
    found
        .send(batch)
        .await
        .map_err(|_| ProviderError::Unavailable {
            message: "the look was abandoned".into(),
            retry_after: None,
        })
}

/// What a run knows about an organization when it sends its create.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateContext {
    /// This run, holding the state lock, read the instance (the plan's bulk read, or a look-up
    /// just before a resend) and found no organization with this natural key. A client whose
    /// API allows two organizations with one key (NeonCRM, Oracle) then skips its own look-up;
    /// without it (a create nothing answered for) it looks first.
    pub absent_in_read: bool,
}

/// The five providers, closed: a sixth makes the compiler list every place to touch.
pub enum AnyProvider {
    Commvault(commvault::Commvault),
    Heron(heron::Heron),
    Salesforce(salesforce::Salesforce),
    Neoncrm(neoncrm::Neon),
    Oracle(oracle::Oracle),
}

/// How to reach providers in this run.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    pub secrets: SecretResolver,
    pub http: HttpOptions,
    /// Sends every instance's requests to this scheme, host and port instead, keeping the path
    /// of its `base_url` (the embedded sandbox serves each API at its real paths). Kept out of
    /// the specs, so a plan made against the sandbox still matches its specs.
    pub base_url_override: Option<String>,
}

impl ConnectOptions {
    /// The base URL to use for `instance`.
    pub(crate) fn base_url(&self, instance: &ProviderInstance) -> String {
        let Some(root) = &self.base_url_override else {
            return instance.base_url.clone();
        };
        let path = url::Url::parse(&instance.base_url)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        format!("{}{path}", root.trim_end_matches('/'))
    }

    /// The HTTP client for `instance`, at its base URL and within its limits.
    pub(crate) fn http(&self, instance: &ProviderInstance) -> Result<Http, ProviderError> {
        Http::new(&self.base_url(instance), &instance.limits, &self.http)
            .map(|http| http.named(&instance.name))
    }

    /// The credential `key` of `instance`, resolved; a missing one is a configuration error.
    pub(crate) fn secret(
        &self,
        instance: &ProviderInstance,
        key: &str,
    ) -> Result<SecretString, ProviderError> {
        let reference = instance.secret(key).ok_or_else(|| ProviderError::Config {
            message: format!("provider `{}` has no `{key}`", instance.name),
        })?;
        Ok(self.secrets.resolve(reference)?)
    }
}

impl AnyProvider {
    /// A client for one provider instance. Credentials are read here, so a missing secret fails
    /// before any request is sent.
    pub fn connect(
        instance: &ProviderInstance,
        options: &ConnectOptions,
    ) -> Result<AnyProvider, ProviderError> {
        match instance.provider_type {
            ProviderType::CommvaultSalesforce => Ok(AnyProvider::Commvault(
                commvault::Commvault::connect(instance, options)?,
            )),
            ProviderType::Heron => Ok(AnyProvider::Heron(heron::Heron::connect(
                instance, options,
            )?)),
            ProviderType::SalesforceSignup => Ok(AnyProvider::Salesforce(
                salesforce::Salesforce::connect(instance, options)?,
            )),
            ProviderType::Neoncrm => Ok(AnyProvider::Neoncrm(neoncrm::Neon::connect(
                instance, options,
            )?)),
            ProviderType::OracleCommerce => Ok(AnyProvider::Oracle(oracle::Oracle::connect(
                instance, options,
            )?)),
        }
    }
}

/// Runs the same call on whichever client `AnyProvider` holds: every verb forwards alike.
macro_rules! with_client {
    ($any:expr, $p:ident => $call:expr) => {
        match $any {
            AnyProvider::Commvault($p) => $call,
            AnyProvider::Heron($p) => $call,
            AnyProvider::Salesforce($p) => $call,
            AnyProvider::Neoncrm($p) => $call,
            AnyProvider::Oracle($p) => $call,
        }
    };
}

impl Provider for AnyProvider {
    async fn login(&self) -> Result<(), ProviderError> {
        with_client!(self, p => p.login().await)
    }

    async fn read(&self, keys: &[NaturalKey]) -> Result<InstanceReality, ProviderError> {
        with_client!(self, p => p.read(keys).await)
    }

    async fn look(&self, keys: &[NaturalKey], found: &Found) -> Result<(), ProviderError> {
        with_client!(self, p => p.look(keys, found).await)
    }

    async fn list_all(&self) -> Result<InstanceReality, ProviderError> {
        with_client!(self, p => p.list_all().await)
    }

    async fn creates_in_last_day(&self) -> Result<Option<u32>, ProviderError> {
        with_client!(self, p => p.creates_in_last_day().await)
    }

    async fn create(&self, org: &OrgSpec, cx: CreateContext) -> Result<RemoteOrg, ProviderError> {
        with_client!(self, p => p.create(org, cx).await)
    }

    async fn settle(
        &self,
        org: &OrgSpec,
        remote_id: Option<&str>,
    ) -> Result<Option<RemoteOrg>, ProviderError> {
        with_client!(self, p => p.settle(org, remote_id).await)
    }
}
