//! Emulator of Salesforce's Trialforce sign-up API (providers.md §2): the OAuth token endpoint
//! and the slice of the REST API orgform's client uses, speaking the real wire contract.
//!
//! The rules are plain, synchronous Rust with the clock passed in (`now_ms`), so every one is
//! testable without a server ([`SalesforceData::handle`]); the routes at the end only turn HTTP
//! into a [`Request`] and a [`Reply`] back, through the sandbox's shared state.
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
//!   picklist value, an unknown or read-only field, an over-long `SignupSource`), retrieve by
//!   id, delete (the trial organization stays), PATCH refused; `query` and `queryAll` over a
//!   SOQL subset (`SELECT` fields or `COUNT()`, `WHERE` with `=`, `!=`, `<`, `>`, `IN`, `NOT IN`,
//!   `LIKE`, unquoted date-time literals (`CreatedDate > 2024-06-10T12:00:00Z`; quoted, refused),
//!   `AND` or `OR` and parentheses, `ORDER BY`, `LIMIT`), paged by `nextRecordsUrl` at
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::state::SandboxState;

/// The paths this emulator owns at Salesforce's hosts.
pub const PREFIXES: &[&str] = &["/services/oauth2", "/services/data"];

/// The Trialforce Management Organization's admin, as the sandbox knows it.
pub const USERNAME: &str = "tmo@sandbox.example";
/// Its password followed by its security token, as the password grant sends them.
pub const PASSWORD: &str = "sandbox-sf-password";
/// The connected app's consumer key.
pub const CLIENT_ID: &str = "sandbox-sf-client-id";
/// The connected app's consumer secret.
pub const CLIENT_SECRET: &str = "sandbox-sf-client-secret";

/// The sandbox credentials by the provider instance key that carries them, for `--sandbox`
/// runs. A JWT instance gets the username and client id; its `private_key` must still be a
/// real key file, since the sandbox only checks that the assertion is well signed.
pub const CREDENTIALS: &[(&str, &str)] = &[
    ("username", USERNAME),
    ("password", PASSWORD),
    ("client_id", CLIENT_ID),
    ("client_secret", CLIENT_SECRET),
];

/// The JWT audiences Salesforce documents for the bearer flow (providers.md §2.1): the
/// production and the sandbox login hosts. The emulator stands for both, since one URL serves
/// either kind of organization here.
pub const LOGIN_AUDIENCES: &[&str] = &[
    "https://login.salesforce.com",
    "https://test.salesforce.com",
];

/// The sandbox TMO's organization and user ids, for tokens and identity URLs.
const TMO_ORG_ID: &str = "00DSB0000000001";
const TMO_USER_ID: &str = "005SB0000000001";

/// The oldest API version with SignupRequest.
const MIN_API_VERSION: u32 = 27;

/// How long a query locator lives without being used.
const CURSOR_TTL_MS: u64 = 15 * 60 * 1000;

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
    /// REST API requests allowed per day before 403 `REQUEST_LIMIT_EXCEEDED`.
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
    pub last_id: u64,
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
    pub fn reset(&mut self) {
        *self = SalesforceData::default();
    }

    /// Sign-ups by their status now, the quota used and the tokens handed out.
    pub fn summary(&self, config: &SalesforceConfig, now_ms: u64) -> Value {
        let mut by_status: BTreeMap<&str, u32> = BTreeMap::new();
        for s in self.signups.iter().filter(|s| !s.deleted) {
            *by_status.entry(status(config, s, now_ms)).or_default() += 1;
        }
        json!({
            "signup_requests": self.signups.iter().filter(|s| !s.deleted).count(),
            "by_status": by_status,
            "signups_last_24h": signups_in_last_day(&self.signups, now_ms),
            "tokens_issued": self.tokens_issued,
        })
    }
}

/// One SignupRequest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signup {
    pub id: String,
    /// The create-able fields as sent, by their canonical names.
    pub fields: BTreeMap<String, Value>,
    pub created_ms: u64,
    pub outcome: Outcome,
    #[serde(default)]
    pub deleted: bool,
}

/// How a sign-up ends, decided when it is created and shown once it is done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Success {
        org_id: String,
        org_instance: String,
        auth_code: Option<String>,
    },
    Error {
        code: String,
    },
}

/// An HTTP request, as much of it as the emulator reads.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `Sforce-Query-Options` header.
    pub query_options: Option<&'a str>,
    pub body: &'a [u8],
}

/// The answer: a status, a JSON body (none for 204) and extra headers.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    Text,
    Bool,
    /// `TrialDays`: anyType, a number in practice.
    Number,
    Picklist(&'static [&'static str]),
}

/// The fields a create may set, by canonical name.
const CREATABLE: &[(&str, Type)] = &[
    ("Company", Type::Text),
    ("ConnectedAppCallbackUrl", Type::Text),
    ("ConnectedAppConsumerKey", Type::Text),
    ("Country", Type::Text),
    ("Edition", Type::Picklist(EDITIONS)),
    ("FirstName", Type::Text),
    ("LastName", Type::Text),
    ("PreferredLanguage", Type::Picklist(LANGUAGES)),
    ("ShouldConnectToEnvHub", Type::Bool),
    ("SignupEmail", Type::Text),
    ("SignupSource", Type::Text),
    ("Subdomain", Type::Text),
    ("SuppressSignupEmails", Type::Bool),
    ("TemplateId", Type::Text),
    ("TrialDays", Type::Number),
    ("Username", Type::Text),
];

/// Fields the system fills: selectable, never settable.
const SYSTEM: &[&str] = &[
    "Id",
    "AuthCode",
    "CreatedDate",
    "CreatedOrgId",
    "CreatedOrgInstance",
    "ErrorCode",
    "IsDeleted",
    "LastModifiedDate",
    "ResolvedTemplateId",
    "Status",
    "TrialSourceOrgId",
];

/// Required on create (non-nillable and not defaulted in seed 001).
const REQUIRED: &[&str] = &["Company", "Country", "LastName", "SignupEmail", "Username"];

const EDITIONS: &[&str] = &[
    "Partner Group",
    "Professional",
    "Partner Professional",
    "Sales Professional",
    "Professional TSO",
    "Enterprise",
    "Partner Enterprise",
    "Service Enterprise",
    "Enterprise TSO",
    "Developer",
    "Partner Developer",
];

/// The picklist: Salesforce's fully supported and end-user languages.
const LANGUAGES: &[&str] = &[
    "zh_CN", "zh_TW", "da", "nl_NL", "en_US", "fi", "fr", "de", "it", "ja", "ko", "no", "pt_BR",
    "ru", "es", "es_MX", "sv", "th", "ar", "bg", "hr", "cs", "en_GB", "el", "iw", "hu", "in", "pl",
    "pt_PT", "ro", "sk", "sl", "tr", "uk", "vi",
];

/// ISO 3166-1 alpha-2.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// The canonical name of a field, matched without case.
fn canonical(name: &str) -> Option<&'static str> {
    CREATABLE
        .iter()
        .map(|(n, _)| *n)
        .chain(SYSTEM.iter().copied())
        .find(|n| n.eq_ignore_ascii_case(name))
}

#[derive(Debug)]
struct Session {
    last_used_ms: u64,
    requests: u32,
}

/// The rows of a query, served page by page through its locator.
#[derive(Debug)]
struct Cursor {
    rows: Vec<Value>,
    batch: usize,
    version: String,
    last_used_ms: u64,
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
                self.create(request.body, now_ms)
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
            // The password flow signs id + issued_at with the consumer secret.
            let signed = format!("{}{now_ms}", answer["id"].as_str().unwrap_or_default());
            answer["signature"] = json!(
                base64::engine::general_purpose::STANDARD
                    .encode(hmac_sha256(CLIENT_SECRET.as_bytes(), signed.as_bytes()))
            );
        } else {
            answer["scope"] = json!("id full");
        }
        Reply::json(200, answer)
    }

    fn check_assertion(&self, assertion: &str, now_ms: u64) -> Result<(), Reply> {
        let invalid = || Reply::oauth("invalid_grant", "invalid assertion");
        let mut parts = assertion.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let decode = |part: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .ok()
        };
        let header: Value = decode(header)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(invalid)?;
        let claims: Value = decode(claims)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(invalid)?;
        let signature = decode(signature).ok_or_else(invalid)?;
        if header["alg"] != "RS256" {
            return Err(Reply::oauth(
                "invalid_grant",
                "invalid assertion: alg must be RS256",
            ));
        }
        if claims["iss"] != CLIENT_ID {
            return Err(Reply::oauth(
                "invalid_client_id",
                "client identifier invalid",
            ));
        }
        // Older clients send `prn` for the subject.
        let subject = claims.get("sub").or_else(|| claims.get("prn"));
        if subject.and_then(Value::as_str) != Some(USERNAME) {
            return Err(Reply::oauth(
                "invalid_grant",
                "user hasn't approved this consumer",
            ));
        }
        // The audience is the login host the emulator stands for, as Salesforce documents it,
        // never the URL it is served at: that URL stands for a My Domain (or the client's own
        // guess), and accepting it would echo the client's assumption back to it.
        let audience = claims["aud"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('/');
        if !LOGIN_AUDIENCES.contains(&audience) {
            return Err(Reply::oauth("invalid_grant", "audience is invalid"));
        }
        match claims["exp"].as_u64() {
            Some(exp) if exp.saturating_mul(1000) > now_ms => {}
            _ => return Err(Reply::oauth("invalid_grant", "expired authorization code")),
        }
        let signed = assertion
            .rsplit_once('.')
            .map_or("", |(signed, _)| signed)
            .as_bytes();
        match &self.config.jwt_public_key {
            Some(pem) => {
                let key = rsa_public_key_der(pem).ok_or_else(|| {
                    Reply::oauth(
                        "invalid_grant",
                        "the sandbox's jwt_public_key is not a PEM RSA public key",
                    )
                })?;
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    key,
                )
                .verify(signed, &signature)
                .map_err(|_| Reply::oauth("invalid_grant", "invalid assertion: bad signature"))?;
            }
            // Without the customer's certificate, a well-formed 2048-bit-or-longer signature.
            None if signature.len() >= 256 => {}
            None => {
                return Err(Reply::oauth(
                    "invalid_grant",
                    "invalid assertion: bad signature",
                ));
            }
        }
        Ok(())
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
        if self.data.api_usage.1 >= self.config.api_requests_per_day {
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

    // ---- SignupRequest ----

    fn create(&mut self, body: &[u8], now_ms: u64) -> Reply {
        let object = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) | Err(_) => {
                return Reply::error(
                    400,
                    "JSON_PARSER_ERROR",
                    "The request body is not a JSON object of SignupRequest fields",
                    &[],
                );
            }
        };
        let mut errors = Vec::new();
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        for (name, value) in &object {
            if name == "attributes" {
                continue;
            }
            let Some(canon) = canonical(name) else {
                errors.push(api_error(
                    "INVALID_FIELD",
                    format!("No such column '{name}' on sobject of type SignupRequest"),
                    &[],
                ));
                continue;
            };
            if canon == "Id" {
                errors.push(api_error(
                    "INVALID_FIELD",
                    "The Id field should not be specified in the sobject data.",
                    &[],
                ));
                continue;
            }
            let Some((_, kind)) = CREATABLE.iter().find(|(n, _)| *n == canon) else {
                errors.push(api_error(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    format!("Unable to create/update fields: {canon}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."),
                    &[canon],
                ));
                continue;
            };
            match coerce(*kind, value) {
                Ok(Value::Null) => {}
                Ok(v) => {
                    if let (Type::Picklist(_), Value::String(s)) = (kind, &v)
                        && s.is_empty()
                    {
                        continue;
                    }
                    fields.insert(canon.to_string(), v);
                }
                Err(e) => errors.push(with_field(e, canon)),
            }
        }
        if let Some(source) = fields.get("SignupSource").and_then(Value::as_str)
            && source.chars().count() > 60
        {
            errors.push(api_error(
                "STRING_TOO_LONG",
                format!("Signup Source: data value too large: {source} (max length=60)"),
                &["SignupSource"],
            ));
        }
        let present = |f: &str| {
            fields
                .get(f)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty())
        };
        let mut missing: Vec<&str> = REQUIRED.iter().copied().filter(|f| !present(f)).collect();
        if !present("TemplateId") && !present("Edition") {
            // "If you don't specify an edition, a template ID is required."
            missing.push("TemplateId");
        }
        if !missing.is_empty() {
            errors.push(api_error(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                &missing,
            ));
        }
        if !errors.is_empty() {
            return Reply::json(400, Value::Array(errors));
        }

        let over_quota = self.config.signups_per_day > 0
            && signups_in_last_day(&self.data.signups, now_ms) >= self.config.signups_per_day;
        if over_quota && self.config.over_quota == OverQuota::Reject {
            return Reply::error(400, "LIMIT_EXCEEDED", "Sign-up limit exceeded", &[]);
        }
        self.data.last_id += 1;
        let n = self.data.last_id;
        let outcome = match self.failure(&fields, over_quota) {
            Some(code) => Outcome::Error { code: code.into() },
            None => Outcome::Success {
                org_id: format!("00DSB{:010}", n + 1),
                org_instance: format!("SB{}", 100 + n % 900),
                auth_code: fields
                    .contains_key("ConnectedAppConsumerKey")
                    .then(|| format!("aPrxSB{}", self.random_text(32))),
            },
        };
        let id = format!("0TRSB{n:010}AAA");
        self.data.signups.push(Signup {
            id: id.clone(),
            fields,
            created_ms: now_ms,
            outcome,
            deleted: false,
        });
        Reply::json(201, json!({ "id": id, "success": true, "errors": [] }))
    }

    /// The error code this sign-up will end with, if any: the rules in the module docs.
    fn failure(&self, fields: &BTreeMap<String, Value>, over_quota: bool) -> Option<&'static str> {
        let text = |f: &str| fields.get(f).and_then(Value::as_str).unwrap_or("");
        let template = text("TemplateId");
        if !template.is_empty() {
            let well_formed = template.len() == 15
                && template.starts_with("0TT")
                && template.bytes().all(|b| b.is_ascii_alphanumeric());
            if !well_formed {
                return Some("T-0001");
            }
            if template.ends_with("404") {
                return Some("T-0002");
            }
            if template.ends_with("403") {
                return Some("T-0003");
            }
        }
        let country = text("Country");
        if country.len() != 2 || !COUNTRIES.split(' ').any(|c| c == country) {
            return Some("S-2006");
        }
        if !is_address(text("SignupEmail")) || !is_address(text("Username")) {
            return Some("S-1006");
        }
        let succeeded = || {
            self.data
                .signups
                .iter()
                .filter(|s| matches!(s.outcome, Outcome::Success { .. }))
        };
        let username = text("Username");
        if succeeded().any(|s| {
            s.fields
                .get("Username")
                .and_then(Value::as_str)
                .is_some_and(|u| u.eq_ignore_ascii_case(username))
        }) {
            return Some("C-1007");
        }
        if fields.contains_key("ConnectedAppConsumerKey")
            != fields.contains_key("ConnectedAppCallbackUrl")
        {
            return Some("C-1016");
        }
        let subdomain = text("Subdomain");
        if !subdomain.is_empty() {
            let developer = matches!(text("Edition"), "Developer" | "Partner Developer");
            let max = if developer { 33 } else { 40 };
            let well_formed = subdomain.len() <= max
                && subdomain.starts_with(|c: char| c.is_ascii_alphabetic())
                && !subdomain.ends_with('-')
                && !subdomain.contains("--")
                && subdomain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !well_formed {
                return Some("C-1018");
            }
            if succeeded().any(|s| {
                s.fields
                    .get("Subdomain")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.eq_ignore_ascii_case(subdomain))
            }) {
                return Some("C-1019");
            }
        }
        over_quota.then_some("C-9999")
    }

    fn status(&self, signup: &Signup, now_ms: u64) -> &'static str {
        status(self.config, signup, now_ms)
    }

    /// Every field of a sign-up as it stands now, by canonical name.
    fn render(&self, signup: &Signup, now_ms: u64) -> BTreeMap<&'static str, Value> {
        let status = self.status(signup, now_ms);
        let done = matches!(status, "Success" | "Error");
        let mut row: BTreeMap<&'static str, Value> = BTreeMap::new();
        for (name, _) in CREATABLE {
            row.insert(
                name,
                signup.fields.get(*name).cloned().unwrap_or(Value::Null),
            );
        }
        row.entry("ShouldConnectToEnvHub").and_modify(|v| {
            if v.is_null() {
                *v = json!(false);
            }
        });
        row.insert("Id", json!(signup.id));
        row.insert("Status", json!(status));
        row.insert("IsDeleted", json!(signup.deleted));
        row.insert("CreatedDate", json!(soql_datetime(signup.created_ms)));
        let finished_ms = signup.created_ms
            + u64::try_from((self.config.new_for + self.config.in_progress_for).as_millis())
                .unwrap_or(0);
        row.insert(
            "LastModifiedDate",
            json!(soql_datetime(if done {
                finished_ms
            } else {
                signup.created_ms
            })),
        );
        let template = signup
            .fields
            .get("TemplateId")
            .cloned()
            .unwrap_or(Value::Null);
        let (org_id, instance, auth_code, error_code) = match (&signup.outcome, status) {
            (
                Outcome::Success {
                    org_id,
                    org_instance,
                    auth_code,
                },
                "Success",
            ) => (
                json!(org_id),
                json!(org_instance),
                json!(auth_code),
                Value::Null,
            ),
            (Outcome::Error { code }, "Error") => {
                (Value::Null, Value::Null, Value::Null, json!(code))
            }
            _ => (Value::Null, Value::Null, Value::Null, Value::Null),
        };
        row.insert("CreatedOrgId", org_id);
        row.insert("CreatedOrgInstance", instance);
        row.insert("AuthCode", auth_code);
        row.insert("ErrorCode", error_code);
        row.insert(
            "ResolvedTemplateId",
            if done { template.clone() } else { Value::Null },
        );
        row.insert(
            "TrialSourceOrgId",
            if done && !template.is_null() {
                json!("00DSB0000000002")
            } else {
                Value::Null
            },
        );
        if done && row.get("TrialDays").is_some_and(Value::is_null) {
            row.insert("TrialDays", json!(30));
        }
        row
    }

    fn attributes(&self, id: &str, version: &str) -> Value {
        json!({
            "type": "SignupRequest",
            "url": format!("/services/data/v{version}/sobjects/SignupRequest/{id}"),
        })
    }

    fn retrieve(&self, id: &str, version: &str, now_ms: u64) -> Reply {
        let Some(signup) = self
            .data
            .signups
            .iter()
            .find(|s| !s.deleted && ids_match(&s.id, id))
        else {
            return not_found();
        };
        let mut object = serde_json::Map::new();
        object.insert("attributes".into(), self.attributes(&signup.id, version));
        for (k, v) in self.render(signup, now_ms) {
            object.insert(k.into(), v);
        }
        Reply::json(200, Value::Object(object))
    }

    fn delete(&mut self, id: &str) -> Reply {
        match self
            .data
            .signups
            .iter_mut()
            .find(|s| !s.deleted && ids_match(&s.id, id))
        {
            Some(signup) => {
                // The request record goes; the trial organization it made stays.
                signup.deleted = true;
                Reply {
                    status: 204,
                    body: None,
                    headers: Vec::new(),
                }
            }
            None => not_found(),
        }
    }

    // ---- SOQL ----

    fn query(
        &mut self,
        soql: &str,
        include_deleted: bool,
        version: &str,
        batch: usize,
        now_ms: u64,
    ) -> Reply {
        if soql.trim().is_empty() {
            return Reply::error(
                400,
                "MALFORMED_QUERY",
                "SOQL statements cannot be empty or null",
                &[],
            );
        }
        let query = match parse_soql(soql) {
            Ok(q) => q,
            Err(reply) => return reply,
        };
        let mut rows: Vec<BTreeMap<&'static str, Value>> = self
            .data
            .signups
            .iter()
            .filter(|s| include_deleted || !s.deleted)
            .map(|s| self.render(s, now_ms))
            .filter(|row| query.filter.as_ref().is_none_or(|c| c.matches(row)))
            .collect();
        if let Some((field, descending)) = query.order_by {
            rows.sort_by(|a, b| {
                let ord = compare(&a[field], &b[field]);
                if descending { ord.reverse() } else { ord }
            });
        }
        if let Some(limit) = query.limit {
            rows.truncate(limit);
        }
        let total = rows.len();
        let Some(fields) = query.fields else {
            // COUNT()
            return Reply::json(
                200,
                json!({ "totalSize": total, "done": true, "records": [] }),
            );
        };
        let rendered: Vec<Value> = rows
            .iter()
            .map(|row| {
                let mut object = serde_json::Map::new();
                let id = row["Id"].as_str().unwrap_or_default();
                object.insert("attributes".into(), self.attributes(id, version));
                for f in &fields {
                    object.insert((*f).into(), row[f].clone());
                }
                Value::Object(object)
            })
            .collect();
        self.data
            .cursors
            .retain(|_, c| now_ms.saturating_sub(c.last_used_ms) < CURSOR_TTL_MS);
        if rendered.len() <= batch {
            return Reply::json(
                200,
                json!({ "totalSize": total, "done": true, "records": rendered }),
            );
        }
        let locator = format!("01gSB{}", self.random_text(13));
        let first: Vec<Value> = rendered[..batch].to_vec();
        self.data.cursors.insert(
            locator.clone(),
            Cursor {
                rows: rendered,
                batch,
                version: version.to_string(),
                last_used_ms: now_ms,
            },
        );
        Reply::json(
            200,
            json!({
                "totalSize": total,
                "done": false,
                "nextRecordsUrl": format!("/services/data/v{version}/query/{locator}-{batch}"),
                "records": first,
            }),
        )
    }

    fn query_more(&mut self, locator: &str, now_ms: u64) -> Reply {
        let invalid = || Reply::error(400, "INVALID_QUERY_LOCATOR", "invalid query locator", &[]);
        let Some((id, offset)) = locator.rsplit_once('-') else {
            return invalid();
        };
        let Ok(offset) = offset.parse::<usize>() else {
            return invalid();
        };
        let Some(cursor) = self.data.cursors.get_mut(id) else {
            return invalid();
        };
        if now_ms.saturating_sub(cursor.last_used_ms) >= CURSOR_TTL_MS || offset > cursor.rows.len()
        {
            self.data.cursors.remove(id);
            return invalid();
        }
        cursor.last_used_ms = now_ms;
        let end = (offset + cursor.batch).min(cursor.rows.len());
        let page: Vec<Value> = cursor.rows[offset..end].to_vec();
        let total = cursor.rows.len();
        let mut answer = json!({ "totalSize": total, "done": end == total, "records": page });
        if end < total {
            answer["nextRecordsUrl"] = json!(format!(
                "/services/data/v{}/query/{id}-{end}",
                cursor.version
            ));
        } else {
            self.data.cursors.remove(id);
        }
        Reply::json(200, answer)
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

/// The page size: `Sforce-Query-Options: batchSize=N` (200 to 2000, as Salesforce allows) when
/// it is smaller than the configured one.
fn batch_size(options: Option<&str>, configured: usize) -> usize {
    let asked = options.and_then(|o| {
        o.split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
    });
    let configured = configured.max(1);
    asked.map_or(configured, |a| a.clamp(200, 2000).min(configured))
}

fn with_field(mut error: Value, field: &str) -> Value {
    error["fields"] = json!([field]);
    if let Some(m) = error["message"].as_str() {
        error["message"] = json!(m.replace("{field}", field));
    }
    error
}

/// A JSON value as a field of `kind` takes it, or the error Salesforce gives.
fn coerce(kind: Type, value: &Value) -> Result<Value, Value> {
    let parser_error = |expected: &str| {
        api_error(
            "JSON_PARSER_ERROR",
            format!("Cannot deserialize instance of {expected} from {value} for field {{field}}"),
            &[],
        )
    };
    match (kind, value) {
        (_, Value::Null) => Ok(Value::Null),
        (Type::Text, Value::String(_)) => Ok(value.clone()),
        (Type::Text, Value::Number(n)) => Ok(json!(n.to_string())),
        (Type::Text, Value::Bool(b)) => Ok(json!(b.to_string())),
        (Type::Text, _) => Err(parser_error("string")),
        (Type::Bool, Value::Bool(_)) => Ok(value.clone()),
        (Type::Bool, _) => Err(parser_error("boolean")),
        (Type::Number, Value::Number(_)) => Ok(value.clone()),
        (Type::Number, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(|n| json!(n))
            .map_err(|_| parser_error("number")),
        (Type::Number, _) => Err(parser_error("number")),
        (Type::Picklist(allowed), Value::String(s)) => {
            if s.is_empty() || allowed.contains(&s.as_str()) {
                Ok(value.clone())
            } else {
                Err(api_error(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("bad value for restricted picklist field: {s}"),
                    &[],
                ))
            }
        }
        (Type::Picklist(_), _) => Err(parser_error("string")),
    }
}

/// An address in the `local@domain.tld` shape both `SignupEmail` and `Username` must have.
fn is_address(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.contains(char::is_whitespace)
}

/// `2024-06-10T12:00:00.000+0000`, Salesforce's date-time form in records.
pub fn soql_datetime(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// HMAC-SHA256 (RFC 2104), for the password flow's `signature`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// The PKCS#1 `RSAPublicKey` DER of a PEM public key, from either a `PUBLIC KEY`
/// (SubjectPublicKeyInfo) or an `RSA PUBLIC KEY` block: what ring verifies with.
pub fn rsa_public_key_der(pem: &str) -> Option<Vec<u8>> {
    let (label, body) = ["PUBLIC KEY", "RSA PUBLIC KEY"].iter().find_map(|label| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let body = pem.split_once(&begin)?.1.split_once(&end)?.0;
        Some((*label, body))
    })?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    if label == "RSA PUBLIC KEY" {
        return Some(der);
    }
    // SubjectPublicKeyInfo ::= SEQUENCE { algorithm SEQUENCE {...}, subjectPublicKey BIT STRING }
    let (tag, spki, _) = der_element(&der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _, rest) = der_element(spki)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, bits, _) = der_element(rest)?;
    // The BIT STRING's first byte counts unused bits: 0 for a key.
    match (tag, bits.split_first()) {
        (0x03, Some((0, key))) => Some(key.to_vec()),
        _ => None,
    }
}

/// One DER element: its tag, its content and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

// ---- A SOQL subset ----

struct Query {
    /// `None` for `COUNT()`.
    fields: Option<Vec<&'static str>>,
    filter: Option<Condition>,
    order_by: Option<(&'static str, bool)>,
    limit: Option<usize>,
}

enum Condition {
    Compare {
        field: &'static str,
        op: Op,
        value: Value,
    },
    In {
        field: &'static str,
        values: Vec<Value>,
        negated: bool,
    },
    Like {
        field: &'static str,
        pattern: String,
    },
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Condition {
    fn matches(&self, row: &BTreeMap<&'static str, Value>) -> bool {
        match self {
            Condition::Compare { field, op, value } => {
                let actual = &row[field];
                let ord = compare(actual, value);
                // Ordering against null matches nothing, as in SOQL.
                let comparable = !actual.is_null() && !value.is_null();
                match op {
                    Op::Eq => values_equal(actual, value),
                    Op::Ne => !values_equal(actual, value),
                    Op::Lt => comparable && ord.is_lt(),
                    Op::Le => comparable && ord.is_le(),
                    Op::Gt => comparable && ord.is_gt(),
                    Op::Ge => comparable && ord.is_ge(),
                }
            }
            Condition::In {
                field,
                values,
                negated,
            } => values.iter().any(|v| values_equal(&row[field], v)) != *negated,
            Condition::Like { field, pattern } => row[field]
                .as_str()
                .is_some_and(|s| like(&s.to_lowercase(), &pattern.to_lowercase())),
            Condition::All(all) => all.iter().all(|c| c.matches(row)),
            Condition::Any(any) => any.iter().any(|c| c.matches(row)),
        }
    }
}

/// SOQL compares text without case.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // Compared without allocating: this runs for every record of every query.
        (Value::String(x), Value::String(y)) => x
            .chars()
            .flat_map(char::to_lowercase)
            .eq(y.chars().flat_map(char::to_lowercase)),
        (Value::Number(x), Value::String(y)) | (Value::String(y), Value::Number(x)) => {
            x.to_string() == *y
        }
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        // Nulls first, as SOQL sorts ascending by default.
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => {
            let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_lowercase);
            text(a).cmp(&text(b))
        }
    }
}

/// `%` any run, `_` one character.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(String),
    /// A date-time literal, `2024-06-10T12:00:00Z`, unquoted as SOQL wants it: milliseconds.
    DateTime(u64),
    Comma,
    Open,
    Close,
    Op(Op),
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

fn malformed(message: impl Into<String>) -> Reply {
    Reply::error(400, "MALFORMED_QUERY", message, &[])
}

fn tokenize(soql: &str) -> Result<Vec<Token>, Reply> {
    let mut tokens = Vec::new();
    let mut chars = soql.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            ',' => {
                chars.next();
                tokens.push(Token::Comma);
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '=' => {
                chars.next();
                tokens.push(Token::Op(Op::Eq));
            }
            '!' | '<' | '>' => {
                chars.next();
                let next_eq = chars.peek() == Some(&'=');
                let next_gt = chars.peek() == Some(&'>');
                let op = match (c, next_eq, next_gt) {
                    ('!', true, _) => Op::Ne,
                    ('<', _, true) => Op::Ne,
                    ('<', true, _) => Op::Le,
                    ('<', false, false) => Op::Lt,
                    ('>', true, _) => Op::Ge,
                    ('>', false, _) => Op::Gt,
                    _ => return Err(malformed(format!("unexpected token: '{c}'"))),
                };
                if next_eq || (c == '<' && next_gt) {
                    chars.next();
                }
                tokens.push(Token::Op(op));
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(malformed("unterminated string literal")),
                        Some('\'') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('r') => s.push('\r'),
                            Some('t') => s.push('\t'),
                            Some('b') => s.push('\u{8}'),
                            Some('f') => s.push('\u{c}'),
                            Some(e @ ('\'' | '"' | '\\' | '%' | '_')) => s.push(e),
                            _ => {
                                return Err(malformed("invalid escape sequence in string literal"));
                            }
                        },
                        Some(other) => s.push(other),
                    }
                }
                tokens.push(Token::Str(s));
            }
            // `YYYY-MM-DD...`: a date-time literal, not a number.
            c if c.is_ascii_digit() && datetime_ahead(chars.clone()) => {
                let mut literal = String::new();
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_alphanumeric() || matches!(d, '-' | ':' | '.' | '+') {
                        literal.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let ms = parse_datetime(&literal)
                    .ok_or_else(|| malformed(format!("invalid date-time literal: {literal}")))?;
                tokens.push(Token::DateTime(ms));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut s = String::new();
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_digit() || d == '.' || (d == '-' && s.is_empty()) {
                        s.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Num(s));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut s = String::new();
                while let Some(&d) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' || d == '.' {
                        s.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(s));
            }
            other => return Err(malformed(format!("unexpected token: '{other}'"))),
        }
    }
    Ok(tokens)
}

/// Whether the characters ahead start like a date: four digits and a hyphen.
fn datetime_ahead(mut chars: impl Iterator<Item = char>) -> bool {
    (0..4).all(|_| chars.next().is_some_and(|c| c.is_ascii_digit())) && chars.next() == Some('-')
}

/// A SOQL date-time literal as milliseconds since the epoch: `YYYY-MM-DDThh:mm:ss[.sss]Z`, or
/// with a `+hh:mm`/`-hh:mm` offset instead of `Z`, as Salesforce's SOQL reference gives them.
fn parse_datetime(literal: &str) -> Option<u64> {
    let (base, offset_secs) = match literal.strip_suffix('Z') {
        Some(base) => (base, 0i64),
        None => {
            let at = literal.len().checked_sub(6)?;
            let (base, offset) = (literal.get(..at)?, literal.get(at..)?);
            let sign = match offset.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = offset.get(1..)?.split_once(':')?;
            (
                base,
                sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
            )
        }
    };
    if base.len() < 19 || base.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let utc = humantime::parse_rfc3339(&format!("{base}Z")).ok()?;
    let ms = i64::try_from(utc.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    u64::try_from(ms - offset_secs * 1000).ok()
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), Reply> {
        if self.keyword(word) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn unexpected(&self) -> Reply {
        match self.peek() {
            Some(Token::Word(w) | Token::Num(w)) => malformed(format!("unexpected token: {w}")),
            Some(Token::Str(s)) => malformed(format!("unexpected token: '{s}'")),
            Some(Token::DateTime(ms)) => {
                malformed(format!("unexpected token: {}", soql_datetime(*ms)))
            }
            Some(Token::Comma) => malformed("unexpected token: ','"),
            Some(Token::Open) => malformed("unexpected token: '('"),
            Some(Token::Close) => malformed("unexpected token: ')'"),
            Some(Token::Op(op)) => malformed(format!("unexpected token: '{op:?}'")),
            None => malformed("unexpected end of query"),
        }
    }

    fn field(&mut self) -> Result<&'static str, Reply> {
        match self.next() {
            Some(Token::Word(w)) => canonical(&w).ok_or_else(|| {
                Reply::error(
                    400,
                    "INVALID_FIELD",
                    format!("No such column '{w}' on entity 'SignupRequest'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name."),
                    &[],
                )
            }),
            _ => {
                self.at -= 1;
                Err(self.unexpected())
            }
        }
    }

    fn value(&mut self) -> Result<Value, Reply> {
        match self.next() {
            Some(Token::Str(s)) => Ok(json!(s)),
            Some(Token::Num(n)) => n
                .parse::<i64>()
                .map(|i| json!(i))
                .or_else(|_| n.parse::<f64>().map(|f| json!(f)))
                .map_err(|_| malformed(format!("unexpected token: {n}"))),
            Some(Token::DateTime(ms)) => Ok(json!(soql_datetime(ms))),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Value::Null),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(json!(true)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(json!(false)),
            _ => {
                self.at -= 1;
                Err(self.unexpected())
            }
        }
    }

    /// A chain of terms joined by one kind of connective: SOQL refuses `a AND b OR c` without
    /// parentheses.
    fn condition(&mut self) -> Result<Condition, Reply> {
        let mut terms = vec![self.term()?];
        let mut connective: Option<bool> = None; // Some(true) for AND
        loop {
            let and = if self.keyword("AND") {
                true
            } else if self.keyword("OR") {
                false
            } else {
                break;
            };
            if connective.is_some_and(|c| c != and) {
                return Err(malformed(
                    "unexpected token: mixing AND and OR needs parentheses",
                ));
            }
            connective = Some(and);
            terms.push(self.term()?);
        }
        Ok(match (connective, terms.len()) {
            (_, 1) => terms.remove(0),
            (Some(false), _) => Condition::Any(terms),
            _ => Condition::All(terms),
        })
    }

    fn term(&mut self) -> Result<Condition, Reply> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.condition()?;
            if self.next() != Some(Token::Close) {
                self.at -= 1;
                return Err(self.unexpected());
            }
            return Ok(inner);
        }
        let field = self.field()?;
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            if self.next() != Some(Token::Open) {
                self.at -= 1;
                return Err(self.unexpected());
            }
            let mut values = vec![self.value()?];
            loop {
                match self.next() {
                    Some(Token::Comma) => values.push(self.value()?),
                    Some(Token::Close) => break,
                    _ => {
                        self.at -= 1;
                        return Err(self.unexpected());
                    }
                }
            }
            return Ok(Condition::In {
                field,
                values,
                negated,
            });
        }
        if negated {
            return Err(self.unexpected());
        }
        if self.keyword("LIKE") {
            return match self.next() {
                Some(Token::Str(pattern)) => Ok(Condition::Like { field, pattern }),
                _ => {
                    self.at -= 1;
                    Err(self.unexpected())
                }
            };
        }
        match self.next() {
            Some(Token::Op(op)) => {
                // A date-time field takes an unquoted date-time literal (or null); a quoted one
                // is a string, which Salesforce refuses rather than compares as text.
                if field == "CreatedDate" && matches!(self.peek(), Some(Token::Str(_))) {
                    return Err(Reply::error(
                        400,
                        "INVALID_FIELD",
                        "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes",
                        &[],
                    ));
                }
                Ok(Condition::Compare {
                    field,
                    op,
                    value: self.value()?,
                })
            }
            _ => {
                self.at -= 1;
                Err(self.unexpected())
            }
        }
    }
}

fn parse_soql(soql: &str) -> Result<Query, Reply> {
    let mut p = Parser {
        tokens: tokenize(soql)?,
        at: 0,
    };
    p.expect_keyword("SELECT")?;
    let fields = if p.keyword("COUNT") {
        if p.next() != Some(Token::Open) || p.next() != Some(Token::Close) {
            return Err(malformed("COUNT takes no field here: COUNT()"));
        }
        None
    } else {
        let mut fields = vec![p.field()?];
        while p.peek() == Some(&Token::Comma) {
            p.at += 1;
            fields.push(p.field()?);
        }
        Some(fields)
    };
    p.expect_keyword("FROM")?;
    match p.next() {
        Some(Token::Word(object)) if object.eq_ignore_ascii_case("SignupRequest") => {}
        Some(Token::Word(object)) => {
            return Err(Reply::error(
                400,
                "INVALID_TYPE",
                format!(
                    "sObject type '{object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name."
                ),
                &[],
            ));
        }
        _ => {
            p.at -= 1;
            return Err(p.unexpected());
        }
    }
    let filter = if p.keyword("WHERE") {
        Some(p.condition()?)
    } else {
        None
    };
    let order_by = if p.keyword("ORDER") {
        p.expect_keyword("BY")?;
        let field = p.field()?;
        let descending = if p.keyword("DESC") {
            true
        } else {
            p.keyword("ASC");
            false
        };
        Some((field, descending))
    } else {
        None
    };
    let limit = if p.keyword("LIMIT") {
        match p.next() {
            Some(Token::Num(n)) => Some(
                n.parse::<usize>()
                    .map_err(|_| malformed(format!("unexpected token: {n}")))?,
            ),
            _ => {
                p.at -= 1;
                return Err(p.unexpected());
            }
        }
    } else {
        None
    };
    if p.peek().is_some() {
        return Err(p.unexpected());
    }
    Ok(Query {
        fields,
        filter,
        order_by,
        limit,
    })
}

// ---- HTTP ----

/// The routes orgform's client uses, at their real paths. Everything goes through [`serve`],
/// which hands the request to the emulator's rules.
pub fn routes(_state: &SandboxState) -> Router<SandboxState> {
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
pub fn status_error(_state: &SandboxState, status: StatusCode) -> Response {
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
/// change what the data file keeps, so they go through `mutate` (saved); logins and queries
/// only change sessions and locators, through `touch`.
async fn serve(
    State(state): State<SandboxState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // The instance URL handed out is wherever the client reached this sandbox.
    let base_url = format!("http://{}", header_text("host").unwrap_or("127.0.0.1"));
    let request = Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        authorization: header_text("authorization"),
        query_options: header_text("sforce-query-options"),
        body: &body,
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random = state.random();
    let config = &state.config().salesforce;
    let saved =
        matches!(method, Method::POST | Method::DELETE) && uri.path().contains("/sobjects/");
    let handle = |data: &mut super::SandboxData| {
        data.salesforce
            .handle(config, &request, &base_url, now_ms, random)
    };
    let reply = if saved {
        state.mutate(handle).await
    } else {
        state.touch(handle)
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    };
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
