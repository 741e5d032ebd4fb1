//! Emulator of Salesforce's Trialforce sign-up API (`docs/providers/salesforce_signup.md`): the
//! OAuth token endpoint and the slice of the REST API orgform's client uses, speaking the real
//! wire contract.
//!
//! The rules are plain, synchronous Rust with the clock passed in (`now_ms`), so every one is
//! testable without a server ([`SalesforceData::handle`]); the routes at the end only turn HTTP
//! into a [`Request`] and a [`Reply`] back, through the sandbox's shared state. This file holds
//! the routing, the sessions, the API limit and the record's retrieve and delete; `signup.rs`
//! the SignupRequest object (its fields, a create's checks, how a sign-up ends), `soql.rs` the
//! query resource (the SOQL subset and paging by locator), `jwt.rs` the bearer assertion's
//! checks.
//!
//! What it serves:
//! - `POST /services/oauth2/token`: the username-password grant with the sandbox credentials
//!   ([`USERNAME`], [`PASSWORD`], [`CLIENT_ID`], [`CLIENT_SECRET`]), and the JWT bearer grant
//!   (`iss` = [`CLIENT_ID`], `sub` = [`USERNAME`], `aud` one of [`LOGIN_AUDIENCES`], `exp`
//!   ahead; any other audience, the sandbox's own URL included, is `invalid_grant` "audience is
//!   invalid" as Salesforce answers it). The sandbox can't know a customer's certificate, so it
//!   accepts any well-formed RS256 signature unless [`SalesforceConfig::jwt_public_key`] names
//!   the key to verify against. Errors are HTTP 400 `{error, error_description}`. The
//!   `instance_url` handed out is the sandbox's own base URL.
//! - `/services/data/vXX.X/` (27.0 and later): `sobjects/SignupRequest/` create (field names
//!   matched without case, 400 error arrays for a missing required field, a bad restricted
//!   picklist value, an unknown or read-only field, an over-long `SignupSource`; `SignupEmail`,
//!   an e-mail field, kept in lower case), retrieve by id, delete (the trial organization
//!   stays), PATCH refused; `query` and `queryAll` over a
//!   SOQL subset (`SELECT` fields or `COUNT()`, `WHERE` with `=`, `!=`, `<`, `>`, `IN`, `NOT IN`,
//!   `LIKE`, unquoted date-time literals (`CreatedDate > 2024-06-10T12:00:00Z`; quoted, refused),
//!   `AND` or `OR` and parentheses, `ORDER BY`, `LIMIT`; every selected field answered as the
//!   create stored it, and a field SignupRequest lacks at the URL's API version, `INVALID_FIELD`,
//!   in a query or a create alike), paged by `nextRecordsUrl` at
//!   [`SalesforceConfig::batch_size`] (or a smaller `Sforce-Query-Options: batchSize`). A
//!   missing, unknown or lapsed token is 401 `INVALID_SESSION_ID`; past the daily API limit,
//!   403 `REQUEST_LIMIT_EXCEEDED`. Every API answer carries `Sforce-Limit-Info`.
//!
//! A sign-up is `New` for [`SalesforceConfig::new_for`], `In Progress` for
//! [`SalesforceConfig::in_progress_for`], then `Success` or `Error`. Its outcome is decided when
//! it is created, by the first rule that applies: a malformed `TemplateId` is `T-0001`; one that
//! ends in `404` is `T-0002` (not found) and in `403` `T-0003` (not approved); a country outside
//! ISO 3166 is `S-2006`; a `SignupEmail` or `Username` not shaped like an address is `S-1006`;
//! a username already signed up successfully (any case) is `C-1007`; only one of the connected
//! app's consumer key and callback URL is `C-1016`; a subdomain that is too long for its edition
//! (33 for Developer editions, 40 otherwise) or not letters, digits and single inner hyphens
//! starting with a letter is `C-1018`; one already in use is `C-1019`; a sign-up beyond the
//! daily quota with [`OverQuota::FailLater`] is `C-9999`. Anything else succeeds.
//!
//! The daily quota ([`SalesforceConfig::signups_per_day`], 20 by default) counts sign-ups in the
//! last 24 hours. How the real API refuses the 21st is not documented, so it is a flag:
//! [`OverQuota::Reject`] (the default) answers 400 `LIMIT_EXCEEDED` and creates nothing;
//! [`OverQuota::FailLater`] accepts it and lets it end in `Error` with `C-9999`.
//!
//! Sign-ups are kept in the data file under `salesforce`; sessions, query locators and API
//! usage are transient. Invariant: **no credential a client sends is stored or echoed**: the
//! password, consumer secret and assertion are compared and dropped, and tokens are random.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::clock;
pub use super::serve::Request;
use super::serve::{Call, on_data};
use super::state::SandboxState;

mod index;
mod jwt;
mod signup;
mod soql;

pub use jwt::rsa_public_key_der;
use soql::{Cursor, batch_size};

/// The paths this emulator owns at Salesforce's hosts.
pub(crate) const PREFIXES: &[&str] = &["/services/oauth2", "/services/data"];

/// The credentials the emulator accepts live in the catalog, with the rest of Salesforce's facts.
pub use crate::catalog::salesforce::sandbox::{CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME};

/// The JWT audiences Salesforce documents for the bearer flow
/// (`docs/providers/salesforce_signup.md`): the production and the sandbox login hosts. The
/// emulator stands for both, since one URL serves either kind of organization here.
pub(crate) const LOGIN_AUDIENCES: &[&str] = &[
    "https://login.salesforce.com",
    "https://test.salesforce.com",
];

/// The sandbox TMO's organization and user ids, for tokens and identity URLs.
const TMO_ORG_ID: &str = "00DSB0000000001";
const TMO_USER_ID: &str = "005SB0000000001";

/// The oldest API version with SignupRequest.
const MIN_API_VERSION: u32 = 27;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The emulator's knobs.
#[derive(Clone, Debug)]
pub struct SalesforceConfig {
    /// How long a sign-up stays `New`.
    pub new_for: Duration,
    /// How long it is then `In Progress` before it ends.
    pub in_progress_for: Duration,
    /// Sign-ups allowed in any 24 hours; 0 for no limit.
    pub signups_per_day: u32,
    /// What happens to a sign-up beyond the quota.
    pub over_quota: OverQuota,
    /// Records per query page (Salesforce's default is 2000).
    pub batch_size: usize,
    /// A session lapses after this long unused (Salesforce's default: 2 hours).
    pub session_ttl: Duration,
    /// A session lapses after this many API requests, to exercise clients' renewal.
    pub session_max_requests: Option<u32>,
    /// REST API requests allowed per day before 403 `REQUEST_LIMIT_EXCEEDED`; 0 for no limit.
    pub api_requests_per_day: u32,
    /// A PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`) that JWT assertions must be signed
    /// with; without one, any well-formed RS256 signature is accepted.
    pub jwt_public_key: Option<String>,
}

impl Default for SalesforceConfig {
    fn default() -> SalesforceConfig {
        SalesforceConfig {
            new_for: Duration::ZERO,
            in_progress_for: Duration::from_secs(1),
            signups_per_day: 20,
            over_quota: OverQuota::Reject,
            batch_size: 2000,
            session_ttl: Duration::from_secs(2 * 60 * 60),
            session_max_requests: None,
            api_requests_per_day: 15_000,
            jwt_public_key: None,
        }
    }
}

/// How a sign-up beyond the daily quota is refused (the real behaviour is not documented).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverQuota {
    /// 400 `[{"errorCode": "LIMIT_EXCEEDED"}]` on create: nothing is created.
    #[default]
    Reject,
    /// Accepted, then `Status = Error` with `ErrorCode = C-9999`.
    FailLater,
}

impl std::str::FromStr for OverQuota {
    type Err = String;
    fn from_str(s: &str) -> Result<OverQuota, String> {
        match s {
            "reject" => Ok(OverQuota::Reject),
            "fail-later" => Ok(OverQuota::FailLater),
            other => Err(format!(
                "`{other}` is not a quota behaviour: use reject or fail-later"
            )),
        }
    }
}

/// Salesforce's section of the sandbox data file: the sign-up requests. Sessions, query
/// locators and API usage are transient (never saved), so a restarted sandbox answers an old
/// token with 401, as Salesforce does once a session lapses.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SalesforceData {
    #[serde(default)]
    pub signups: Vec<Signup>,
    /// The last number used in an id.
    #[serde(default)]
    pub(crate) last_id: u64,
    #[serde(skip)]
    sessions: HashMap<String, Session>,
    #[serde(skip)]
    cursors: HashMap<String, Cursor>,
    /// REST API requests on one UTC day: (day number, count).
    #[serde(skip)]
    api_usage: (u64, u32),
    /// Access tokens handed out since start.
    #[serde(skip)]
    tokens_issued: u64,
    /// Where to find sign-ups by id and username; transient, built again when needed.
    #[serde(skip)]
    index: index::Index,
}

impl SalesforceData {
    /// Answers one request. `base_url` is where this sandbox is reached (the `instance_url`
    /// handed out), `now_ms` the time in milliseconds since the Unix epoch, `random` a seed for
    /// the tokens and locators it makes.
    pub fn handle(
        &mut self,
        config: &SalesforceConfig,
        request: &Request<'_>,
        base_url: &str,
        now_ms: u64,
        random: u64,
    ) -> Reply {
        let mut reply = self.serve(config, request, base_url, now_ms, random);
        if let Some(text) = reply.written.take() {
            reply.body = serde_json::from_slice(&text).ok();
        }
        reply
    }

    /// [`SalesforceData::handle`] for the HTTP route: a body written as text is left so.
    fn serve(
        &mut self,
        config: &SalesforceConfig,
        request: &Request<'_>,
        base_url: &str,
        now_ms: u64,
        random: u64,
    ) -> Reply {
        self.index.refresh(&self.signups);
        Emulator {
            config,
            data: self,
            rng: fastrand::Rng::with_seed(random),
        }
        .handle(request, base_url, now_ms)
    }

    /// Trial organizations made or being made: sign-ups whose outcome is a success. Deleting
    /// a request record leaves its organization, so deleted ones count too.
    pub fn organizations(&self) -> usize {
        self.signups
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Success { .. }))
            .count()
    }

    /// Forgets every sign-up, session and locator.
    pub(crate) fn reset(&mut self) {
        *self = SalesforceData::default();
    }
}

/// One SignupRequest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signup {
    pub(crate) id: String,
    /// The create-able fields as sent (`SignupEmail` lower-cased), by their canonical names.
    pub(crate) fields: BTreeMap<String, Value>,
    pub(crate) created_ms: u64,
    pub(crate) outcome: Outcome,
    #[serde(default)]
    pub(crate) deleted: bool,
}

/// How a sign-up ends, decided when it is created and shown once it is done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub(crate) enum Outcome {
    Success {
        org_id: String,
        org_instance: String,
        auth_code: Option<String>,
    },
    Error {
        code: String,
    },
}

/// The answer: a status, a JSON body (none for 204) and extra headers.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    /// A JSON body already written as text (a query page, written record by record), served
    /// as it is; [`SalesforceData::handle`] reads it into `body` for a caller of the rules.
    written: Option<Box<[u8]>>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
            written: None,
        }
    }

    /// A JSON body written as text.
    fn written(status: u16, text: Vec<u8>) -> Reply {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
            written: Some(text.into_boxed_slice()),
        }
    }

    /// A REST error: a top-level array of one `{message, errorCode[, fields]}`.
    fn error(status: u16, code: &str, message: impl Into<String>, fields: &[&str]) -> Reply {
        Reply::json(status, json!([api_error(code, message, fields)]))
    }

    /// An OAuth error: `{error, error_description}`, always HTTP 400.
    fn oauth(error: &str, description: &str) -> Reply {
        Reply::json(
            400,
            json!({ "error": error, "error_description": description }),
        )
    }
}

fn api_error(code: &str, message: impl Into<String>, fields: &[&str]) -> Value {
    let mut e = json!({ "message": message.into(), "errorCode": code });
    if !fields.is_empty() {
        e["fields"] = json!(fields);
    }
    e
}

#[derive(Debug)]
struct Session {
    last_used_ms: u64,
    requests: u32,
}

/// One request's view of the emulator: the knobs, the data and a random source.
struct Emulator<'a> {
    config: &'a SalesforceConfig,
    data: &'a mut SalesforceData,
    rng: fastrand::Rng,
}

impl Emulator<'_> {
    fn handle(&mut self, request: &Request<'_>, base_url: &str, now_ms: u64) -> Reply {
        if request.path == "/services/oauth2/token" {
            return if request.method == "POST" {
                self.token(request.body, base_url, now_ms)
            } else {
                Reply::error(
                    405,
                    "METHOD_NOT_ALLOWED",
                    format!(
                        "HTTP Method '{}' not allowed. Allowed are POST",
                        request.method
                    ),
                    &[],
                )
            };
        }
        let Some(rest) = request.path.strip_prefix("/services/data/") else {
            return not_found();
        };
        let (version, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(version) = version.strip_prefix('v').filter(|v| known_version(v)) else {
            return not_found();
        };
        let version = version.to_string();
        if let Err(reply) = self.authorize(request.authorization, now_ms) {
            return reply;
        }
        let mut reply = match self.count_api_request(now_ms) {
            Err(reply) => reply,
            Ok(()) => self.route(request, &version, rest, now_ms),
        };
        reply.headers.push((
            "Sforce-Limit-Info",
            format!(
                "api-usage={}/{}",
                self.data.api_usage.1, self.config.api_requests_per_day
            ),
        ));
        reply
    }

    fn route(&mut self, request: &Request<'_>, version: &str, rest: &str, now_ms: u64) -> Reply {
        let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        match (request.method, parts.as_slice()) {
            ("GET", [q @ ("query" | "queryAll")]) => {
                let soql = request
                    .query
                    .and_then(|qs| {
                        url::form_urlencoded::parse(qs.as_bytes())
                            .find(|(k, _)| k == "q")
                            .map(|(_, v)| v.into_owned())
                    })
                    .unwrap_or_default();
                let batch = batch_size(request.query_options, self.config.batch_size);
                self.query(&soql, *q == "queryAll", version, batch, now_ms)
            }
            ("GET", ["query" | "queryAll", locator]) => self.query_more(locator, now_ms),
            ("POST", ["sobjects", object]) if object.eq_ignore_ascii_case("SignupRequest") => {
                self.create(request.body, version, now_ms)
            }
            ("GET", ["sobjects", object, id]) if object.eq_ignore_ascii_case("SignupRequest") => {
                self.retrieve(id, version, now_ms)
            }
            ("DELETE", ["sobjects", object, id])
                if object.eq_ignore_ascii_case("SignupRequest") =>
            {
                self.delete(id)
            }
            ("PATCH", ["sobjects", object, _]) if object.eq_ignore_ascii_case("SignupRequest") => {
                Reply::error(
                    400,
                    "INVALID_TYPE_FOR_OPERATION",
                    "entity type SignupRequest does not support update",
                    &[],
                )
            }
            (_, ["sobjects", object, ..]) if !object.eq_ignore_ascii_case("SignupRequest") => {
                Reply::error(
                    404,
                    "NOT_FOUND",
                    format!(
                        "The requested resource does not exist: sObject type '{object}' is not supported"
                    ),
                    &[],
                )
            }
            (method, ["sobjects", _] | ["sobjects", _, _] | ["query" | "queryAll"]) => {
                Reply::error(
                    405,
                    "METHOD_NOT_ALLOWED",
                    format!("HTTP Method '{method}' not allowed"),
                    &[],
                )
            }
            _ => not_found(),
        }
    }

    // ---- OAuth ----

    fn token(&mut self, body: &[u8], base_url: &str, now_ms: u64) -> Reply {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let field = |k: &str| form.get(k).map(String::as_str);
        let granted = match field("grant_type") {
            None | Some("") => return Reply::oauth("invalid_request", "grant type is missing"),
            Some("password") => {
                if field("client_id") != Some(CLIENT_ID) {
                    return Reply::oauth("invalid_client_id", "client identifier invalid");
                }
                if field("client_secret") != Some(CLIENT_SECRET) {
                    return Reply::oauth("invalid_client", "invalid client credentials");
                }
                if field("username") != Some(USERNAME) || field("password") != Some(PASSWORD) {
                    return Reply::oauth("invalid_grant", "authentication failure");
                }
                true
            }
            Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
                match self.check_assertion(field("assertion").unwrap_or(""), now_ms) {
                    Ok(()) => false,
                    Err(reply) => return reply,
                }
            }
            Some(_) => return Reply::oauth("unsupported_grant_type", "grant type not supported"),
        };
        let token = format!("{TMO_ORG_ID}!{}", self.random_text(48));
        self.data.tokens_issued += 1;
        self.data.sessions.insert(
            token.clone(),
            Session {
                last_used_ms: now_ms,
                requests: 0,
            },
        );
        let base_url = base_url.trim_end_matches('/');
        let mut answer = json!({
            "access_token": token,
            "instance_url": base_url,
            "id": format!("{base_url}/id/{TMO_ORG_ID}AAA/{TMO_USER_ID}AAA"),
            "token_type": "Bearer",
            "issued_at": now_ms.to_string(),
        });
        if granted {
            // The password flow signs id + issued_at with the consumer secret (HMAC-SHA256).
            let signed = format!("{}{now_ms}", answer["id"].as_str().unwrap_or_default());
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, CLIENT_SECRET.as_bytes());
            answer["signature"] = json!(
                base64::engine::general_purpose::STANDARD
                    .encode(ring::hmac::sign(&key, signed.as_bytes()))
            );
        } else {
            answer["scope"] = json!("id full");
        }
        Reply::json(200, answer)
    }

    fn authorize(&mut self, authorization: Option<&str>, now_ms: u64) -> Result<(), Reply> {
        let expired = || Reply::error(401, "INVALID_SESSION_ID", "Session expired or invalid", &[]);
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("OAuth "))
            })
            .map(str::trim)
            .ok_or_else(expired)?;
        let ttl = u64::try_from(self.config.session_ttl.as_millis()).unwrap_or(u64::MAX);
        let max = self.config.session_max_requests;
        let Some(session) = self.data.sessions.get_mut(token) else {
            return Err(expired());
        };
        let lapsed = now_ms.saturating_sub(session.last_used_ms) > ttl
            || max.is_some_and(|m| session.requests >= m);
        if lapsed {
            self.data.sessions.remove(token);
            return Err(expired());
        }
        session.last_used_ms = now_ms;
        session.requests += 1;
        Ok(())
    }

    fn count_api_request(&mut self, now_ms: u64) -> Result<(), Reply> {
        let day = now_ms / DAY_MS;
        if self.data.api_usage.0 != day {
            self.data.api_usage = (day, 0);
        }
        if self.config.api_requests_per_day > 0
            && self.data.api_usage.1 >= self.config.api_requests_per_day
        {
            return Err(Reply::error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                &[],
            ));
        }
        self.data.api_usage.1 += 1;
        Ok(())
    }

    fn attributes(&self, id: &str, version: &str) -> Value {
        json!({
            "type": "SignupRequest",
            "url": format!("/services/data/v{version}/sobjects/SignupRequest/{id}"),
        })
    }

    fn retrieve(&self, id: &str, version: &str, now_ms: u64) -> Reply {
        let signups = &self.data.signups;
        let Some(signup) = self
            .data
            .index
            .with_id(id)
            .iter()
            .filter_map(|p| signups.get(*p))
            .find(|s| !s.deleted && ids_match(&s.id, id))
        else {
            return not_found();
        };
        let mut object = serde_json::Map::new();
        object.insert("attributes".into(), self.attributes(&signup.id, version));
        for (k, v) in self.render(signup, now_ms) {
            if signup::exists_in(k, version) {
                object.insert(k.into(), v);
            }
        }
        Reply::json(200, Value::Object(object))
    }

    fn delete(&mut self, id: &str) -> Reply {
        let position = self.data.index.with_id(id).iter().copied().find(|p| {
            self.data
                .signups
                .get(*p)
                .is_some_and(|s| !s.deleted && ids_match(&s.id, id))
        });
        match position.and_then(|p| self.data.signups.get_mut(p)) {
            Some(signup) => {
                // The request record goes; the trial organization it made stays.
                signup.deleted = true;
                Reply {
                    status: 204,
                    body: None,
                    headers: Vec::new(),
                    written: None,
                }
            }
            None => not_found(),
        }
    }

    fn random_text(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| char::from(ALPHABET[self.rng.usize(..ALPHABET.len())]))
            .collect()
    }
}

/// Sign-ups sent in the 24 hours before `now_ms`: what the daily quota counts.
fn signups_in_last_day(signups: &[Signup], now_ms: u64) -> u32 {
    let n = signups
        .iter()
        .filter(|s| now_ms.saturating_sub(s.created_ms) < DAY_MS)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `New`, `In Progress`, then how it ended, on the clock.
fn status(config: &SalesforceConfig, signup: &Signup, now_ms: u64) -> &'static str {
    let age = Duration::from_millis(now_ms.saturating_sub(signup.created_ms));
    if age < config.new_for {
        "New"
    } else if age < config.new_for + config.in_progress_for {
        "In Progress"
    } else {
        match signup.outcome {
            Outcome::Success { .. } => "Success",
            Outcome::Error { .. } => "Error",
        }
    }
}

fn not_found() -> Reply {
    Reply::error(
        404,
        "NOT_FOUND",
        "The requested resource does not exist",
        &[],
    )
}

fn known_version(version: &str) -> bool {
    let Some((major, minor)) = version.split_once('.') else {
        return false;
    };
    minor.bytes().all(|b| b.is_ascii_digit())
        && !minor.is_empty()
        && major.parse::<u32>().is_ok_and(|m| m >= MIN_API_VERSION)
}

/// 15- and 18-character ids name the same record.
fn ids_match(stored: &str, asked: &str) -> bool {
    stored == asked || (asked.len() == 15 && stored.starts_with(asked))
}

/// `2024-06-10T12:00:00.000+0000`, Salesforce's date-time form in records.
pub(crate) fn soql_datetime(ms: u64) -> String {
    let utc = clock::utc_millis(ms);
    format!("{}+0000", utc.trim_end_matches('Z'))
}

// ---- HTTP ----

/// The routes orgform's client uses, at their real paths. Everything goes through [`serve`],
/// which hands the request to the emulator's rules.
pub(crate) fn routes(_state: &SandboxState) -> Router<SandboxState> {
    const SIGNUP: &str = "/services/data/{version}/sobjects/SignupRequest";
    Router::new()
        .route("/services/oauth2/token", post(serve))
        .route("/services/data/{version}/query", get(serve))
        .route("/services/data/{version}/query/{locator}", get(serve))
        .route("/services/data/{version}/queryAll", get(serve))
        .route("/services/data/{version}/queryAll/{locator}", get(serve))
        .route(SIGNUP, post(serve))
        // Salesforce's own examples post to `.../SignupRequest/`, with the slash.
        .route(&format!("{SIGNUP}/"), post(serve))
        .route(
            &format!("{SIGNUP}/{{id}}"),
            get(serve).delete(serve).patch(serve),
        )
}

/// An error for a bare status (injected faults, unknown routes), as a REST error array.
pub(crate) fn status_error(_state: &SandboxState, status: StatusCode) -> Response {
    let (code, message) = match status {
        StatusCode::TOO_MANY_REQUESTS => {
            ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        }
        StatusCode::NOT_FOUND => ("NOT_FOUND", "The requested resource does not exist"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "METHOD_NOT_ALLOWED",
            "HTTP Method not allowed for this resource",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "SERVER_UNAVAILABLE",
            "Server temporarily unavailable; try again later",
        ),
        _ => (
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: 1000000000-1 (-1)",
        ),
    };
    (status, axum::Json(json!([api_error(code, message, &[])]))).into_response()
}

/// Every Salesforce route: the request to the rules, under the data lock. Creates and deletes
/// change what the data file keeps, so they are saved; logins and queries only change sessions
/// and locators.
async fn serve(State(state): State<SandboxState>, call: Call) -> Response {
    let request = call.request();
    // The instance URL handed out is wherever the client reached this sandbox.
    let base_url = call.base_url();
    let (now_ms, random) = (clock::now_ms(), state.random());
    let config = &state.config().salesforce;
    let saves = matches!(call.method, Method::POST | Method::DELETE)
        && call.uri.path().contains("/sobjects/");
    let reply = on_data(&state, saves, |data| {
        data.salesforce
            .serve(config, &request, &base_url, now_ms, random)
    })
    .await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match (reply.written, reply.body) {
        // The content type axum's `Json` gives.
        (Some(text), _) => (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            text.into_vec(),
        )
            .into_response(),
        (None, Some(body)) => (status, axum::Json(body)).into_response(),
        (None, None) => status.into_response(),
    };
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
