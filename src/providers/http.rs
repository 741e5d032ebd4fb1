//! The one HTTP client every provider uses: TLS by rustls with certificates always verified,
//! plain HTTP only to loopback (the sandbox), per-instance concurrency and request-rate limits,
//! error classification, and retries with exponential backoff and jitter.
//!
//! Redirects are followed only within one origin (scheme, host and port): a provider that answers
//! 307 to another host would otherwise receive the same headers and body there (Heron's
//! `x-api-key`, Commvault's login), and reqwest strips only the standard credential headers.
//! A redirect elsewhere comes back as [`ProviderError::Redirected`], naming where it pointed.
//!
//! Classification is what keeps apply exactly-once: a request that provably never reached the
//! provider (connection refused, 429) may be sent again; a create whose answer was lost (timeout,
//! reset, 5xx) is `OutcomeUnknown` and is never resent blind: the caller looks the key up first.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::ProviderError;
use crate::spec::Limits;

/// Whether a request creates something: decides what a lost answer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Reads and logins: safe to send again.
    Safe,
    /// Creates: a lost answer may hide a created organization.
    Creates,
}

impl Effect {
    /// What losing this request's answer means: a safe one may be sent again; a create's
    /// outcome is unknown until its key is looked up.
    pub(crate) fn lost(self, message: String) -> ProviderError {
        match self {
            Effect::Safe => ProviderError::Unavailable {
                message,
                retry_after: None,
            },
            Effect::Creates => ProviderError::OutcomeUnknown { message },
        }
    }
}

/// The most of one answer read into memory: far beyond any page, login or create answer a
/// vendor documents (a Salesforce page of 2,000 sign-ups is a few MB), so that a server that
/// streams without end costs a bounded amount before it is refused. Heron's unpaged list has
/// its own bound ([`MOST_OF_A_LIST`]).
pub(crate) const MOST_OF_AN_ANSWER: usize = 256 << 20;

/// The most of Heron's list read: its whole account in one answer, about 1 KB an integration
/// (98 MB for 100,000), so two million integrations.
pub(crate) const MOST_OF_A_LIST: usize = 2 << 30;

/// The most of an error answer (429, 5xx) read: only its first words are shown.
const MOST_OF_AN_ERROR: usize = 64 << 10;

/// How a capped read of an answer ended.
pub(crate) enum Ending {
    /// Every byte was read.
    Whole,
    /// There were more than the cap: nothing more was read.
    Cut,
    /// The read broke off (a reset, a timeout).
    Broken(reqwest::Error),
}

/// An answer's bytes, at most `cap` of them, and how the read ended: what was read is kept
/// either way, for a caller that shows an error's first words.
pub(crate) async fn read_up_to(mut response: Response, cap: usize) -> (Vec<u8>, Ending) {
    // The announced length is a hint, never a promise to allocate whatever a header says.
    let hinted = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
        .min(cap)
        .min(256 << 20);
    let mut body = Vec::with_capacity(hinted);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = cap - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return (body, Ending::Cut);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return (body, Ending::Whole),
            Err(e) => return (body, Ending::Broken(e)),
        }
    }
}

/// What a read of an answer that broke off says: a timeout named as one (`--http-timeout`),
/// anything else as the transport put it, with its causes and without the URL (which may
/// hold a query).
pub(crate) fn broken_read(what: &str, e: reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("reading {what} timed out (--http-timeout)");
    }
    let e = e.without_url();
    let mut text = format!("reading {what} failed: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The `Content-Type` an answer names, for [`decoded`].
fn content_type(response: &Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Text in the charset the answer's `Content-Type` names (UTF-8 when it names none), as
/// reqwest's own `text()` decodes it, malformed sequences replaced.
fn decoded(bytes: Vec<u8>, content_type: Option<&str>) -> String {
    let label = content_type
        .and_then(|t| {
            t.split(';')
                .skip(1)
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "utf-8".to_string());
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap_or(encoding_rs::UTF_8);
    let (text, _, _) = encoding.decode(&bytes);
    match text {
        // UTF-8 as it came, no byte-order mark to drop (nearly every answer): the bytes become
        // the text, not a copy.
        std::borrow::Cow::Borrowed(t)
            if encoding == encoding_rs::UTF_8 && t.len() == bytes.len() =>
        {
            String::from_utf8(bytes).unwrap_or_default()
        }
        text => text.into_owned(),
    }
}

/// Reads an answer's body, at most [`MOST_OF_AN_ANSWER`]; a read that breaks off is classified
/// by what the request does, and named after `what` was being read ("the login answer"). An
/// answer too large to be one is refused: for a create, its outcome is unknown (the look-up
/// by key finds it); for anything else, it is not what the vendor documents.
pub(crate) async fn read_body(
    response: Response,
    effect: Effect,
    what: &str,
) -> Result<String, ProviderError> {
    let content_type = content_type(&response);
    match read_up_to(response, MOST_OF_AN_ANSWER).await {
        (bytes, Ending::Whole) => Ok(decoded(bytes, content_type.as_deref())),
        (_, Ending::Cut) => {
            let message = format!(
                "{what} is larger than {} MiB; orgform reads no more of one answer",
                MOST_OF_AN_ANSWER >> 20
            );
            Err(match effect {
                Effect::Creates => ProviderError::OutcomeUnknown { message },
                Effect::Safe => ProviderError::Protocol { message },
            })
        }
        (_, Ending::Broken(e)) => Err(effect.lost(broken_read(what, e))),
    }
}

/// The first words of an error answer (a 429's, a 5xx's), read no further than
/// [`MOST_OF_AN_ERROR`]: a body that never ends costs nothing more.
async fn error_words(response: Response) -> String {
    let content_type = content_type(&response);
    let (body, _) = read_up_to(response, MOST_OF_AN_ERROR).await;
    short(&decoded(body, content_type.as_deref()))
}

/// A successful create's answer, read as `T`. The organization exists whatever the answer
/// says, so an unreadable one leaves the outcome unknown: the look-up by key finds it.
pub(crate) fn created_answer<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, ProviderError> {
    serde_json::from_str(text).map_err(|e| ProviderError::OutcomeUnknown {
        message: format!("{what} could not be read: {e}"),
    })
}

/// The longest `Retry-After` orgform waits out; past it, the request fails and says when to
/// try again, rather than holding a CI job for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How hard and how often to retry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub(crate) attempts: u32,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// An HTTP client bound to one provider instance.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base_url: String,
    concurrency: Arc<Semaphore>,
    pacer: Option<Arc<Pacer>>,
    /// No request starts before this: the latest `Retry-After` the provider gave any request.
    /// A rate limit is the account's, not one request's, so every request waits it out.
    held_until: Arc<std::sync::Mutex<Option<Instant>>>,
    pub(crate) retry: RetryPolicy,
    requests: RequestCount,
    /// The provider instance this client talks to, named in connection errors.
    instance: Option<Arc<str>>,
}

/// Requests sent, shared by every client built from the same [`HttpOptions`]: how `discover`
/// says what reading cost.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestCount(Arc<std::sync::atomic::AtomicU64>);

impl RequestCount {
    fn add_one(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Requests sent so far.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Spaces request starts at least `interval` apart.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    async fn wait(&self) {
        let start = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + self.interval;
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// Options that hold for every provider in a run.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// The longest a request may take before its answer is given up as lost.
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    /// Counts every request sent by clients made with these options.
    pub(crate) requests: RequestCount,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            requests: RequestCount::default(),
        }
    }
}

/// The TLS configuration every client shares: rustls with ring, ALPN for HTTP/2 and 1.1,
/// certificates verified against the system's store by the platform verifier (what reqwest
/// builds by itself). Cheap to build: the store is read by [`SystemStore`] at the first
/// handshake that needs it, once per process, so a run that talks plain HTTP to loopback only
/// (the sandbox) never reads it.
static TLS: std::sync::OnceLock<Result<rustls::ClientConfig, String>> = std::sync::OnceLock::new();

fn tls_config() -> Result<rustls::ClientConfig, String> {
    TLS.get_or_init(|| {
        // The process may have installed it already; either way ring is the provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SystemStore { provider }))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    })
    .clone()
}

/// The platform verifier over the system's certificate store, built once per process, when
/// first needed: reading the store reads every file in it.
static SYSTEM_VERIFIER: std::sync::OnceLock<Result<rustls_platform_verifier::Verifier, String>> =
    std::sync::OnceLock::new();

fn system_verifier() -> Result<&'static rustls_platform_verifier::Verifier, rustls::Error> {
    SYSTEM_VERIFIER
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls_platform_verifier::Verifier::new(provider)
                .map_err(|e| format!("the system's certificates could not be read: {e}"))
        })
        .as_ref()
        .map_err(|message| rustls::Error::General(message.clone()))
}

/// Reads the system's certificate store on a thread of its own, once, so that it overlaps what
/// comes before a client's first handshake (a login prepared, specs still read) instead of
/// delaying it. Called when a client for an `https` URL is made.
fn prepare_tls() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        std::thread::spawn(|| {
            let _ = system_verifier();
        });
    });
}

/// Certificates verified by the platform verifier, which is built at the first handshake (or
/// ahead of it, see [`prepare_tls`]); a store that can't be read fails every handshake, which
/// `classify_transport` reports once and never retries.
#[derive(Debug)]
struct SystemStore {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for SystemStore {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        system_verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        system_verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        system_verifier()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        // What the platform verifier offers: the provider's own algorithms (offered even when
        // the store can't be read; the certificate is refused then anyway).
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl Http {
    /// A client for `base_url`, which must be HTTPS unless it points at a loopback address.
    pub fn new(
        base_url: &str,
        limits: &Limits,
        options: &HttpOptions,
    ) -> Result<Http, ProviderError> {
        check_transport(base_url)?;
        if url::Url::parse(base_url).is_ok_and(|u| u.scheme() == "https") {
            prepare_tls();
        }
        let tls = tls_config().map_err(|message| ProviderError::Config {
            message: format!("cannot build the HTTP client: {message}"),
        })?;
        #[expect(
            clippy::disallowed_methods,
            reason = "the one HTTP client is built here"
        )]
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(same_origin_redirects())
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("orgform/", env!("CARGO_PKG_VERSION")))
            .https_only(!is_loopback_url(base_url))
            .pool_max_idle_per_host(usize::try_from(limits.max_concurrency).unwrap_or(16))
            .build()
            .map_err(|e| ProviderError::Config {
                message: format!("cannot build the HTTP client: {}", e.without_url()),
            })?;
        let pacer = limits.requests_per_second.map(|rps| {
            Arc::new(Pacer {
                // Validation bounds the pace; a value past it waits an hour at most, never panics.
                interval: Duration::try_from_secs_f64(1.0 / rps)
                    .unwrap_or(Duration::from_secs(3600))
                    .min(Duration::from_secs(3600)),
                next: Mutex::new(Instant::now()),
            })
        });
        Ok(Http {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            concurrency: Arc::new(Semaphore::new(
                usize::try_from(limits.max_concurrency.max(1)).unwrap_or(1),
            )),
            pacer,
            held_until: Arc::default(),
            retry: options.retry,
            requests: options.requests.clone(),
            instance: None,
        })
    }

    /// Names the provider instance in this client's connection errors ("could not connect to
    /// provider `heron_prod` at https://...").
    #[must_use]
    pub fn named(mut self, instance: &str) -> Http {
        self.instance = Some(instance.into());
        self
    }

    /// A request to `path` under the base URL (or to an absolute URL the provider handed out).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base_url, path)
        };
        self.client.request(method, url)
    }

    /// Sends once, within the instance's limits, and classifies the outcome. Non-success
    /// statuses come back as `Ok(response)` except 429 and 5xx, which are errors here.
    pub async fn send(
        &self,
        request: RequestBuilder,
        effect: Effect,
    ) -> Result<Response, ProviderError> {
        let _permit = self
            .concurrency
            .acquire()
            .await
            .map_err(|_| ProviderError::Config {
                message: "the request limiter was closed".into(),
            })?;
        if let Some(pacer) = &self.pacer {
            pacer.wait().await;
        }
        self.wait_out_holds().await;
        self.requests.add_one();
        let response = request
            .send()
            .await
            .map_err(|e| classify_transport(&e, effect, self.instance.as_deref()))?;
        let status = response.status();
        if status.is_redirection()
            && let Some(error) = redirected_elsewhere(&response, effect)
        {
            return Err(error);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = retry_after(&response);
            self.hold_for(retry_after);
            return Err(ProviderError::RateLimited {
                retry_after,
                message: error_words(response).await,
            });
        }
        if status.is_server_error() {
            let retry_after = retry_after(&response);
            self.hold_for(retry_after);
            let message = format!("HTTP {status}: {}", error_words(response).await);
            return Err(match effect {
                Effect::Safe => ProviderError::Unavailable {
                    message,
                    retry_after,
                },
                Effect::Creates => ProviderError::OutcomeUnknown { message },
            });
        }
        Ok(response)
    }

    /// Waits until no `Retry-After` the provider gave holds (it may be extended while waiting).
    async fn wait_out_holds(&self) {
        loop {
            let until = *self
                .held_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    /// Holds every request to this instance for a `Retry-After` (and a little past it, so
    /// that a clock tick doesn't make one early).
    fn hold_for(&self, retry_after: Option<Duration>) {
        let Some(after) = retry_after.filter(|a| *a <= MAX_RETRY_AFTER) else {
            return;
        };
        let until = Instant::now() + after + Duration::from_millis(50);
        let mut held = self
            .held_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *held = Some(held.map_or(until, |h| h.max(until)));
    }

    /// Sends a request that is safe to repeat, retrying transient failures.
    pub async fn send_retrying<F>(&self, make: F) -> Result<Response, ProviderError>
    where
        F: Fn() -> RequestBuilder,
    {
        retrying(self.retry, || self.send(make(), Effect::Safe)).await
    }

    /// Runs `op` as `effect` allows: a safe one again on transient failures, a create once.
    pub(crate) async fn as_allowed<T, F, Fut>(
        &self,
        effect: Effect,
        mut op: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        match effect {
            Effect::Safe => retrying(self.retry, op).await,
            Effect::Creates => op().await,
        }
    }

    /// Sends a request as its effect allows: a safe one retrying transient failures, a create
    /// once.
    pub(crate) async fn send_as<F>(
        &self,
        effect: Effect,
        make: F,
    ) -> Result<Response, ProviderError>
    where
        F: Fn() -> RequestBuilder,
    {
        self.as_allowed(effect, || self.send(make(), effect)).await
    }

    /// Sends a request that is safe to repeat, retrying transient failures, and reads its
    /// status and body (`what` names the body if reading it breaks off).
    pub(crate) async fn fetch<F>(
        &self,
        what: &str,
        make: F,
    ) -> Result<(StatusCode, String), ProviderError>
    where
        F: Fn() -> RequestBuilder,
    {
        let response = self.send_retrying(make).await?;
        let status = response.status();
        Ok((status, read_body(response, Effect::Safe, what).await?))
    }
}

/// How many redirects within one origin a request may follow (a path that moved, a trailing
/// slash added); past it the request fails rather than loop.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// Follows a redirect only to the origin the request was first sent to. Any other stops the
/// chain: the 3xx comes back to [`Http::send`], which refuses it with a clear error, so neither
/// headers nor body are ever sent to a host the specs did not name.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(url::Url::origin);
        if first.is_some_and(|first| first != attempt.url().origin()) {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!(
                "more than {MAX_REDIRECTS} redirects within the provider's own host"
            ))
        } else {
            attempt.follow()
        }
    })
}

/// The error for a redirect [`same_origin_redirects`] did not follow; `None` for a 3xx without a
/// `Location` (not a redirect to anywhere: the provider client reports its status as usual).
fn redirected_elsewhere(response: &Response, effect: Effect) -> Option<ProviderError> {
    let location = response.headers().get(reqwest::header::LOCATION)?;
    let target = location
        .to_str()
        .ok()
        .and_then(|l| response.url().join(l).ok())
        .map_or_else(|| "an unreadable address".to_string(), |u| shown_url(&u));
    let status = response.status();
    let message = format!(
        "the provider answered {status}, pointing to {target}; orgform does not follow redirects to another origin, so credentials stay with the host you named"
    );
    // 307 and 308 ask for the same request to be sent elsewhere: nothing was done here. After
    // 301, 302 or 303 a create may have been done before the redirect: it is settled by a
    // look-up, never sent again blind.
    let not_done = matches!(
        status,
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
    );
    Some(match effect {
        Effect::Creates if !not_done => ProviderError::OutcomeUnknown { message },
        _ => ProviderError::Redirected { message },
    })
}

/// A URL as it may be shown: no user name or password, no query (it may carry a session id),
/// no fragment.
fn shown_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_fragment(None);
    let query = shown.query().is_some();
    shown.set_query(None);
    if query {
        format!("{shown}?…")
    } else {
        shown.to_string()
    }
}

/// Runs `op` until it succeeds, fails for good, or runs out of attempts. Only errors that
/// [`ProviderError::is_retryable`] are retried; a `Retry-After` is always waited out.
pub(crate) async fn retrying<T, F, Fut>(policy: RetryPolicy, mut op: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < policy.attempts => {
                let delay = backoff(policy, attempt, e.retry_after());
                tracing::debug!(attempt, delay_ms = delay.as_millis(), error = %e, "retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Exponential backoff with full jitter, never shorter than the server's `Retry-After`.
pub(crate) fn backoff(
    policy: RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(policy.max_delay);
    let jittered = exp.mul_f64(0.5 + fastrand::f64() * 0.5);
    match retry_after {
        // A little past the server's time, so that a clock tick doesn't make us early.
        Some(after) => after.max(jittered) + Duration::from_millis(50),
        None => jittered,
    }
}

/// A failure before any answer, classified: a TLS handshake that failed (a certificate not
/// trusted, above all) is said once and never retried, since sending again meets the same
/// certificate; a connection refused is safe to send again; any other lost answer is safe to
/// send again only for a request that creates nothing.
fn classify_transport(e: &reqwest::Error, effect: Effect, instance: Option<&str>) -> ProviderError {
    let target = target(instance, e.url());
    if let Some(tls) = tls_failure(e) {
        let what = match tls {
            rustls::Error::InvalidCertificate(_) => "its TLS certificate is not valid",
            _ => "the TLS handshake failed",
        };
        // The handshake comes before the request: nothing was sent, whatever the effect.
        return ProviderError::Config {
            message: format!(
                "could not connect to {target}: {what} ({}); not retried",
                redact(&tls.to_string())
            ),
        };
    }
    let what = describe_transport(e, &target);
    if e.is_connect() {
        // The request never left: always safe to send again.
        return ProviderError::Unavailable {
            message: what,
            retry_after: None,
        };
    }
    match effect {
        Effect::Safe => ProviderError::Unavailable {
            message: what,
            retry_after: None,
        },
        Effect::Creates => ProviderError::OutcomeUnknown { message: what },
    }
}

/// What a transport error was talking to: "provider `heron_prod` at https://host/path", the
/// URL shown without credentials or query.
fn target(instance: Option<&str>, url: Option<&url::Url>) -> String {
    let url = url.map(shown_url);
    match (instance, url) {
        (Some(name), Some(url)) => format!("provider `{name}` at {url}"),
        (Some(name), None) => format!("provider `{name}`"),
        (None, Some(url)) => url,
        (None, None) => "the provider".to_string(),
    }
}

/// The TLS error under a transport error, if the TLS handshake is what failed. rustls's error
/// sits inside `io::Error`s, whose `source` skips what they wrap: each one met is looked into.
fn tls_failure(e: &reqwest::Error) -> Option<&rustls::Error> {
    fn within<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| within(inner))
        {
            return Some(tls);
        }
        e.source().and_then(within)
    }
    std::error::Error::source(e).and_then(within)
}

/// A transport error in words, naming what it was talking to (`target`) but not the URL's query
/// (it may carry a session id).
fn describe_transport(e: &reqwest::Error, target: &str) -> String {
    let what = if e.is_timeout() {
        format!("timed out waiting for {target}")
    } else if e.is_connect() {
        format!("could not connect to {target}")
    } else if e.is_body() || e.is_decode() {
        format!("the connection to {target} broke while reading the answer")
    } else {
        format!("the request to {target} failed")
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what
    } else {
        format!("{what}: {}", redact(&detail))
    }
}

/// How long `Retry-After` says to wait (seconds, or an HTTP date), or until
/// `x-ratelimit-reset` (a Unix time) when only that is given.
fn retry_after(response: &Response) -> Option<Duration> {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let now = crate::time::now();
    if let Some(value) = header("retry-after") {
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // Too many digits to hold is longer than any wait a run takes.
            return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            let at = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            return Some(Duration::from_secs(at.saturating_sub(now)));
        }
    }
    let reset = header("x-ratelimit-reset")?.parse::<u64>().ok()?;
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

/// The first part of an error body, for messages: one line (its line breaks and other
/// controls escaped, so that a provider can't forge lines of a report), URLs without queries.
pub(crate) fn short(body: &str) -> String {
    let body = body.trim();
    let cut: String = body.chars().take(300).collect();
    let cut = crate::escape::controls(&redact(&cut)).into_owned();
    if body.chars().nth(300).is_some() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Removes query strings from anything that looks like a URL: they may carry session ids.
pub(crate) fn redact(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            if (word.contains("http://") || word.contains("https://")) && word.contains('?') {
                let trailing: String = word
                    .chars()
                    .rev()
                    .take_while(|c| c.is_whitespace())
                    .collect();
                let cut = word.split('?').next().unwrap_or("");
                format!("{cut}?…{trailing}")
            } else {
                word.to_string()
            }
        })
        .collect()
}

/// HTTPS everywhere, plain HTTP only to loopback (the sandbox).
pub(crate) fn check_transport(base_url: &str) -> Result<(), ProviderError> {
    let url = url::Url::parse(base_url).map_err(|e| ProviderError::Config {
        message: format!("`{base_url}` is not a valid URL: {e}"),
    })?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_url(base_url) => Ok(()),
        _ => Err(ProviderError::Config {
            message: format!(
                "`{base_url}` is not HTTPS; orgform sends credentials over HTTPS only (plain HTTP is allowed to loopback addresses)"
            ),
        }),
    }
}

fn is_loopback_url(base_url: &str) -> bool {
    let Ok(url) = url::Url::parse(base_url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}
