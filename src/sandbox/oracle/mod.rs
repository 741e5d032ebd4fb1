//! Emulator of Oracle Commerce Cloud's organization APIs (providers.md §3, seed 002): the admin
//! login, organization requests and organizations, at their real paths under `/ccadmin/v1` and
//! `/ccstore/v1`, speaking OCC's wire contract.
//!
//! The rules are plain, synchronous Rust with the clock passed in (`now_ms`), so each one is
//! testable without a server ([`OracleData::handle`]); the routes at the end only turn HTTP into
//! a [`Request`] and a [`Reply`] back, through the sandbox's shared state.
//!
//! What it serves:
//! - `POST /ccadmin/v1/login`: form `grant_type=client_credentials` with `Authorization: Bearer`
//!   [`APP_KEY`] gives `{access_token, token_type, expires_in}`. A token lives
//!   [`OracleConfig::token_ttl`] from its issue (five minutes, as OCC's application-key tokens),
//!   or [`OracleConfig::token_max_uses`] calls when that knob is set. `POST /ccadmin/v1/refresh`
//!   with a live token gives a new one (the old one ends); `POST /ccadmin/v1/logout` ends one.
//!   A missing, unknown or lapsed token is 401.
//! - `POST /ccstore/v1/organizationRequests` (the storefront's self-registration: no token
//!   needed) checks the seed's rules (`name`; `profile.email`, `firstName`, `lastName`; the
//!   `customerType` and `type` enumerations; a nine-digit `dunsNumber`) and refuses a profile
//!   e-mail that a live request already registers (101013 [I]); it answers `{id, links}`.
//! - `GET /ccadmin/v1/organizationRequests[/{id}]`, `POST .../{id}/approve` and `.../reject`.
//!   A request is `new` for [`OracleConfig::new_for`], `review` for
//!   [`OracleConfig::review_for`] (forever when `None`: only an administrator decides), then
//!   `approved`, or `rejected` when its name contains [`OracleConfig::reject_marker`] (any case).
//!   Approval makes an organization, whose id the request then names.
//! - `POST /ccadmin/v1/organizations` (checked like the request's `organization`; duplicate
//!   names allowed [I], as OCC documents no refusal), `GET /ccadmin/v1/organizations[/{id}]`.
//! - Lists take a SCIM `q` ([`Filter`]: `eq`, `ne`, `co`, `sw`, `ew`, `pr`, `gt`, `ge`, `lt`,
//!   `le`, `and`, `or`, `not`, parentheses; strings compared without case, SCIM's default),
//!   `offset` and `limit` (at most [`OracleConfig::max_limit`], 250), `sort=attr:asc|desc`, and
//!   answer `{total, totalResults, offset, limit, links, items}`; the counts are strings when
//!   [`OracleConfig::counts_as_strings`] (the default: OCC's schema types them so), ids of
//!   requests are numbers and ids of organizations strings, as in OCC's examples. Every link
//!   points back at the sandbox.
//! - Errors are `{errorCode, message, status}` with string codes and status.
//!
//! Requests and organizations are kept in the data file under `oracle_commerce`; tokens are
//! transient. Invariant: **the application key and tokens are never stored or echoed**: the key
//! is compared and dropped, and tokens are random.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::state::SandboxState;

/// The paths this emulator owns at OCC's hosts.
pub const PREFIXES: &[&str] = &["/ccadmin/v1", "/ccstore/v1"];

/// The application key the sandbox's login accepts (a real one is a JWT from Settings > Web
/// APIs > Registered Applications).
pub const APP_KEY: &str = "sandbox-occ-app-key";

/// The sandbox credentials by the provider instance key that carries them.
pub const CREDENTIALS: &[(&str, &str)] = &[("app_key", APP_KEY)];

/// The site every request is made on.
const SITE_ID: &str = "siteUS";

/// Error codes. Sourced ones name their source; the rest are sandbox choices [I].
mod code {
    /// Invalid input (Organization APIs).
    pub const INVALID_INPUT: &str = "100000";
    /// No organization with the id.
    pub const NO_ORGANIZATION: &str = "100001";
    /// Invalid query expression (organizations).
    pub const BAD_ORGANIZATION_QUERY: &str = "100070";
    /// Invalid query expression (organization requests).
    pub const BAD_REQUEST_QUERY: &str = "85000";
    /// Invalid sort options.
    pub const BAD_SORT: &str = "50012";
    /// Invalid limit or offset.
    pub const BAD_PAGING: &str = "10002";
    /// Invalid request id (approve, reject).
    pub const BAD_REQUEST_ID: &str = "101000";
    /// No organization request found.
    pub const NO_REQUEST: &str = "101001";
    /// The request is approved or rejected already.
    pub const ALREADY_DECIDED: &str = "101008";
    /// "Registration request cannot ..." (text truncated in the source): here, the e-mail is
    /// registered already [I].
    pub const REGISTRATION_REFUSED: &str = "101013";
    /// [I] Login refused, token missing, unknown or lapsed.
    pub const UNAUTHORIZED: &str = "83037";
    /// [I] Unsupported grant type.
    pub const BAD_GRANT: &str = "83036";
    /// [I] Unknown resource or method.
    pub const NOT_FOUND: &str = "40400";
}

/// `organization.customerType` and `organization.type`, as the seed lists them.
const CUSTOMER_TYPES: &[&str] = &[
    "Standard",
    "Preferred",
    "Enterprise",
    "OEM",
    "Distributor",
    "Supplier",
];
const ORGANIZATION_TYPES: &[&str] = &["none", "company", "division", "department", "group"];

/// The emulator's knobs.
#[derive(Clone, Debug)]
pub struct OracleConfig {
    /// How long a token lives from its issue (OCC: five minutes for application keys).
    pub token_ttl: Duration,
    /// When set, a token lapses after this many admin calls: a deterministic mid-run lapse.
    pub token_max_uses: Option<u32>,
    /// How long a request stays `new`.
    pub new_for: Duration,
    /// How long it is then in `review` before it is decided; `None` leaves every request in
    /// review until an administrator approves or rejects it.
    pub review_for: Option<Duration>,
    /// A request whose name contains this (any case) is rejected instead of approved.
    pub reject_marker: String,
    /// Send `total`, `totalResults`, `offset` and `limit` as strings, as OCC's schema types them.
    pub counts_as_strings: bool,
    /// The most items a list page holds.
    pub max_limit: u64,
    /// The first this many creates are committed, then answered with HTTP 502 instead, as a
    /// proxy that lost the answer: the client must look before it creates again.
    pub lose_create_answers: u32,
}

impl Default for OracleConfig {
    fn default() -> OracleConfig {
        OracleConfig {
            token_ttl: Duration::from_secs(300),
            token_max_uses: None,
            new_for: Duration::from_millis(500),
            // As OCC: a request waits for an administrator (`orgform sandbox --occ-auto-approve`).
            review_for: None,
            reject_marker: "reject".into(),
            counts_as_strings: true,
            max_limit: 250,
            lose_create_answers: 0,
        }
    }
}

/// OCC's section of the sandbox data file: requests and organizations. Tokens are transient, so
/// a restarted sandbox answers an old token with 401, as OCC does once a token lapses.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct OracleData {
    #[serde(default)]
    pub requests: Vec<OrgRequest>,
    /// Organizations created directly; approved requests' organizations are derived from them.
    #[serde(default)]
    pub organizations: Vec<Organization>,
    /// The last numbers used in ids.
    #[serde(default)]
    pub last_request_id: u64,
    #[serde(default)]
    pub last_organization_id: u64,
    #[serde(skip)]
    tokens: HashMap<String, Token>,
    #[serde(skip)]
    tokens_issued: u64,
    #[serde(skip)]
    answers_lost: u32,
}

/// One organization request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgRequest {
    pub id: u64,
    pub name: String,
    /// The known fields as sent (`organization`, `profile`, `requesterComments`,
    /// `relatedOrganizationName`), by their wire names.
    pub fields: Map<String, Value>,
    pub created_ms: u64,
    /// The organization and profile an approval makes, reserved at creation.
    pub organization_id: String,
    pub profile_id: String,
    /// What the clock decides, if no administrator does first.
    pub outcome: Outcome,
    /// An administrator's decision, which wins over the clock.
    #[serde(default)]
    pub decided: Option<Decided>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Rejected { comments: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub approved: bool,
    pub comments: String,
    pub at_ms: u64,
}

/// An organization created directly: its fields as sent, by wire name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: String,
    pub fields: Map<String, Value>,
    pub created_ms: u64,
}

#[derive(Debug)]
struct Token {
    issued_ms: u64,
    uses: u32,
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
    pub body: &'a [u8],
}

/// The answer: a status and a JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply { status, body }
    }

    /// OCC's error shape: string code and status.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
        Reply::json(
            status,
            json!({ "errorCode": code, "message": message.into(), "status": status.to_string() }),
        )
    }
}

impl OracleData {
    /// Answers one request. `base_url` is where this sandbox is reached (for links), `now_ms`
    /// the time in milliseconds since the Unix epoch, `random` a seed for tokens.
    pub fn handle(
        &mut self,
        config: &OracleConfig,
        request: &Request<'_>,
        base_url: &str,
        now_ms: u64,
        random: u64,
    ) -> Reply {
        Emulator {
            config,
            data: self,
            rng: fastrand::Rng::with_seed(random),
            base_url: base_url.trim_end_matches('/'),
            now_ms,
        }
        .handle(request)
    }

    /// Organizations made or being made: those created directly, and requests an administrator
    /// approved or the clock will approve (none, when only an administrator decides).
    pub fn organizations(&self, config: &OracleConfig) -> usize {
        self.organizations.len()
            + self
                .requests
                .iter()
                .filter(|r| match &r.decided {
                    Some(d) => d.approved,
                    None => config.review_for.is_some() && r.outcome == Outcome::Approved,
                })
                .count()
    }

    /// Forgets every request, organization and token.
    pub fn reset(&mut self) {
        *self = OracleData::default();
    }

    /// Whether the create just made loses its answer (see [`OracleConfig::lose_create_answers`]).
    pub fn lose_this_answer(&mut self, config: &OracleConfig) -> bool {
        if self.answers_lost < config.lose_create_answers {
            self.answers_lost += 1;
            true
        } else {
            false
        }
    }
}

/// A request's status at `now_ms`.
pub fn status(config: &OracleConfig, request: &OrgRequest, now_ms: u64) -> &'static str {
    if let Some(d) = &request.decided {
        return if d.approved { "approved" } else { "rejected" };
    }
    let age = Duration::from_millis(now_ms.saturating_sub(request.created_ms));
    if age < config.new_for {
        return "new";
    }
    match config.review_for {
        Some(review) if age >= config.new_for + review => match request.outcome {
            Outcome::Approved => "approved",
            Outcome::Rejected { .. } => "rejected",
        },
        _ => "review",
    }
}

/// One request's view of the emulator.
struct Emulator<'a> {
    config: &'a OracleConfig,
    data: &'a mut OracleData,
    rng: fastrand::Rng,
    base_url: &'a str,
    now_ms: u64,
}

impl Emulator<'_> {
    fn handle(&mut self, request: &Request<'_>) -> Reply {
        let path = request.path.trim_end_matches('/');
        if let Some(rest) = path.strip_prefix("/ccstore/v1/") {
            return match (request.method, rest) {
                ("POST", "organizationRequests") => self.create_request(request.body),
                _ => not_found(),
            };
        }
        let Some(rest) = path.strip_prefix("/ccadmin/v1/") else {
            return not_found();
        };
        match (request.method, rest) {
            ("POST", "login") => return self.login(request),
            ("POST", "refresh") => return self.refresh(request.authorization),
            _ => {}
        }
        if let Err(reply) = self.authorize(request.authorization) {
            return reply;
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let query = request.query.unwrap_or("");
        match (request.method, parts.as_slice()) {
            ("POST", ["logout"]) => {
                if let Some(token) = bearer(request.authorization) {
                    self.data.tokens.remove(token);
                }
                Reply::json(200, json!({}))
            }
            ("GET", ["organizationRequests"]) => self.list(Collection::Requests, query),
            ("GET", ["organizationRequests", id]) => self.get_request(id),
            ("POST", ["organizationRequests", id, verb @ ("approve" | "reject")]) => {
                self.decide(id, *verb == "approve", request.body)
            }
            ("GET", ["organizations"]) => self.list(Collection::Organizations, query),
            ("POST", ["organizations"]) => self.create_organization(request.body, query),
            ("GET", ["organizations", id]) => self.get_organization(id),
            _ => not_found(),
        }
    }

    // ---- tokens ----

    fn login(&mut self, request: &Request<'_>) -> Reply {
        if bearer(request.authorization) != Some(APP_KEY) {
            return unauthorized("The application key is missing or not valid.");
        }
        let grant = url::form_urlencoded::parse(request.body)
            .find(|(k, _)| k == "grant_type")
            .map(|(_, v)| v.into_owned());
        match grant.as_deref() {
            Some("client_credentials") => self.issue(),
            Some(other) => Reply::error(
                400,
                code::BAD_GRANT,
                format!(
                    "grant_type {other} is not supported with an application key; use client_credentials"
                ),
            ),
            None => Reply::error(400, code::BAD_GRANT, "grant_type is required"),
        }
    }

    fn refresh(&mut self, authorization: Option<&str>) -> Reply {
        if let Err(reply) = self.authorize(authorization) {
            return reply;
        }
        if let Some(token) = bearer(authorization) {
            self.data.tokens.remove(token);
        }
        self.issue()
    }

    fn issue(&mut self) -> Reply {
        let token = format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}",
            self.random_text(40),
            self.random_text(43)
        );
        self.data.tokens_issued += 1;
        self.data.tokens.insert(
            token.clone(),
            Token {
                issued_ms: self.now_ms,
                uses: 0,
            },
        );
        Reply::json(
            200,
            json!({
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.config.token_ttl.as_secs().max(1),
            }),
        )
    }

    fn authorize(&mut self, authorization: Option<&str>) -> Result<(), Reply> {
        let refused = || unauthorized("The access token is missing, not valid or expired.");
        let token = bearer(authorization).ok_or_else(refused)?;
        let ttl = u64::try_from(self.config.token_ttl.as_millis()).unwrap_or(u64::MAX);
        let max = self.config.token_max_uses;
        let Some(state) = self.data.tokens.get_mut(token) else {
            return Err(refused());
        };
        let lapsed = self.now_ms.saturating_sub(state.issued_ms) >= ttl
            || max.is_some_and(|m| state.uses >= m);
        if lapsed {
            self.data.tokens.remove(token);
            return Err(refused());
        }
        state.uses += 1;
        Ok(())
    }

    // ---- organization requests ----

    fn create_request(&mut self, body: &[u8]) -> Reply {
        let object = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Reply::error(
                    400,
                    code::INVALID_INPUT,
                    "The request body must be a JSON object.",
                );
            }
        };
        let name = match object.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Reply::error(
                    400,
                    code::INVALID_INPUT,
                    "The name of the organization request is required.",
                );
            }
        };
        let mut fields = Map::new();
        for key in ["requesterComments", "relatedOrganizationName"] {
            match object.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => {
                    fields.insert(key.into(), json!(s));
                }
                Some(_) => return invalid(format!("{key} must be a string.")),
            }
        }
        match object.get("organization") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => match check_organization(o, "organization.") {
                Ok(o) => {
                    fields.insert("organization".into(), Value::Object(o));
                }
                Err(reply) => return reply,
            },
            Some(_) => return invalid("organization must be an object."),
        }
        let profile = match object.get("profile") {
            Some(Value::Object(p)) => match check_profile(p) {
                Ok(p) => p,
                Err(reply) => return reply,
            },
            _ => return invalid("profile is required, with email, firstName and lastName."),
        };
        let email = profile
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        let now_ms = self.now_ms;
        let taken = self.data.requests.iter().any(|r| {
            status(self.config, r, now_ms) != "rejected"
                && r.fields
                    .get("profile")
                    .and_then(|p| p.get("email"))
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.to_lowercase() == email)
        });
        if taken {
            return Reply::error(
                400,
                code::REGISTRATION_REFUSED,
                format!(
                    "Registration request cannot be created: the e-mail {email} is already registered."
                ),
            );
        }
        fields.insert("profile".into(), Value::Object(profile));

        self.data.last_request_id += 1;
        let id = 100_000 + self.data.last_request_id;
        let organization_id = self.next_organization_id();
        let marker = self.config.reject_marker.to_lowercase();
        let outcome = if !marker.is_empty() && name.to_lowercase().contains(&marker) {
            Outcome::Rejected {
                comments: format!(
                    "Rejected by the sandbox: the request name contains \"{}\".",
                    self.config.reject_marker
                ),
            }
        } else {
            Outcome::Approved
        };
        self.data.requests.push(OrgRequest {
            id,
            name,
            fields,
            created_ms: now_ms,
            organization_id,
            profile_id: format!("{}", 200_000 + self.data.last_request_id),
            outcome,
            decided: None,
        });
        Reply::json(
            200,
            json!({
                // A string here, a number in the admin API's answers: as OCC's examples show.
                "id": id.to_string(),
                "links": [{
                    "rel": "self",
                    "href": format!("{}/ccstore/v1/organizationRequests/{id}", self.base_url),
                }],
            }),
        )
    }

    fn next_organization_id(&mut self) -> String {
        self.data.last_organization_id += 1;
        format!("or-{}", 100_000 + self.data.last_organization_id)
    }

    fn find_request(&self, id: &str) -> Option<usize> {
        let id = id.parse::<u64>().ok()?;
        self.data.requests.iter().position(|r| r.id == id)
    }

    fn get_request(&self, id: &str) -> Reply {
        match self.find_request(id) {
            Some(i) => Reply::json(200, self.render_request(&self.data.requests[i])),
            None => Reply::error(
                404,
                code::NO_REQUEST,
                format!("No organization request found with the id {id}."),
            ),
        }
    }

    fn decide(&mut self, id: &str, approve: bool, body: &[u8]) -> Reply {
        let Some(i) = self.find_request(id) else {
            return Reply::error(
                400,
                code::BAD_REQUEST_ID,
                format!("The organization request id {id} is not valid."),
            );
        };
        let current = status(self.config, &self.data.requests[i], self.now_ms);
        if matches!(current, "approved" | "rejected") {
            return Reply::error(
                400,
                code::ALREADY_DECIDED,
                format!(
                    "This operation is not allowed as the registration request is already in {current} state."
                ),
            );
        }
        let comments = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|b| {
                b.get("approverComments")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        self.data.requests[i].decided = Some(Decided {
            approved: approve,
            comments,
            at_ms: self.now_ms,
        });
        Reply::json(
            200,
            json!({ "status": if approve { "approved" } else { "rejected" } }),
        )
    }

    /// A request as the admin API shows it now.
    fn render_request(&self, r: &OrgRequest) -> Value {
        let status = status(self.config, r, self.now_ms);
        let comments = match (&r.decided, status, &r.outcome) {
            (Some(d), _, _) => json!(d.comments),
            (None, "approved", _) => json!("Approved by the sandbox."),
            (None, "rejected", Outcome::Rejected { comments }) => json!(comments),
            _ => Value::Null,
        };
        let mut item = Map::new();
        item.insert("id".into(), json!(r.id));
        item.insert("repositoryId".into(), json!(r.id.to_string()));
        item.insert("name".into(), json!(r.name));
        item.insert("status".into(), json!(status));
        item.insert("siteId".into(), json!(SITE_ID));
        item.insert("createdTime".into(), json!(iso_time(r.created_ms)));
        item.insert("approverComments".into(), comments);
        for key in ["requesterComments", "relatedOrganizationName"] {
            item.insert(
                key.into(),
                r.fields.get(key).cloned().unwrap_or(Value::Null),
            );
        }
        item.insert(
            "organization".into(),
            if status == "approved" {
                json!({ "id": r.organization_id })
            } else {
                Value::Null
            },
        );
        item.insert(
            "profile".into(),
            if status == "approved" {
                json!({ "id": r.profile_id })
            } else {
                Value::Null
            },
        );
        Value::Object(item)
    }

    // ---- organizations ----

    fn create_organization(&mut self, body: &[u8], query: &str) -> Reply {
        let object = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Reply::error(
                    400,
                    code::INVALID_INPUT,
                    "The request body must be a JSON object.",
                );
            }
        };
        let mut fields = match check_organization(&object, "") {
            Ok(f) => f,
            Err(reply) => return reply,
        };
        if fields
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(|n| n.trim().is_empty())
        {
            return invalid("name is required.");
        }
        for key in ["active", "approvalRequired"] {
            if let Some(v) = object.get(key).filter(|v| v.is_boolean()) {
                fields.insert(key.into(), v.clone());
            }
        }
        let id = self.next_organization_id();
        let organization = Organization {
            id: id.clone(),
            fields,
            created_ms: self.now_ms,
        };
        let rendered = render_organization(&id, &organization.fields);
        self.data.organizations.push(organization);
        let expand_none = url::form_urlencoded::parse(query.as_bytes())
            .any(|(k, v)| k == "expand" && v == "none");
        Reply::json(
            200,
            if expand_none {
                json!({ "id": id })
            } else {
                rendered
            },
        )
    }

    fn get_organization(&self, id: &str) -> Reply {
        match self
            .all_organizations()
            .into_iter()
            .find(|o| o["id"].as_str() == Some(id))
        {
            Some(o) => Reply::json(200, o),
            None => Reply::error(
                404,
                code::NO_ORGANIZATION,
                format!("No organization found with the id {id}."),
            ),
        }
    }

    /// Every organization as the admin API shows it now: created directly, or by an approval.
    fn all_organizations(&self) -> Vec<Value> {
        self.organizations_named(None)
    }

    /// The organizations, or only those whose name may be one of `names` (lower-cased).
    fn organizations_named(&self, names: Option<&HashSet<String>>) -> Vec<Value> {
        let may_match = |name: Option<&Value>| match (names, name) {
            (Some(names), Some(Value::String(name))) => names.contains(&name.to_lowercase()),
            _ => true,
        };
        let mut out: Vec<(u64, Value)> = self
            .data
            .organizations
            .iter()
            .filter(|o| may_match(o.fields.get("name")))
            .map(|o| (o.created_ms, render_organization(&o.id, &o.fields)))
            .collect();
        for r in &self.data.requests {
            if status(self.config, r, self.now_ms) != "approved" {
                continue;
            }
            let organization = r.fields.get("organization").and_then(Value::as_object);
            let name = organization.and_then(|o| o.get("name"));
            if !may_match(name.or(Some(&json!(r.name)))) {
                continue;
            }
            let mut fields = organization.cloned().unwrap_or_default();
            fields
                .entry("name")
                .or_insert_with(|| json!(r.name.clone()));
            let at = r.decided.as_ref().map_or(r.created_ms, |d| d.at_ms);
            out.push((at, render_organization(&r.organization_id, &fields)));
        }
        out.sort_by(|a, b| a.1["id"].as_str().cmp(&b.1["id"].as_str()));
        out.into_iter().map(|(_, v)| v).collect()
    }

    // ---- lists ----

    fn list(&self, collection: Collection, query: &str) -> Reply {
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let paging = |name: &str, default: u64| -> Result<u64, Reply> {
            match param(name) {
                None | Some("") => Ok(default),
                Some(v) => v.trim().parse::<u64>().map_err(|_| {
                    Reply::error(
                        400,
                        code::BAD_PAGING,
                        format!("The value {v} for parameter '{name}' is invalid. '{name}' can be 'limit', 'offset'."),
                    )
                }),
            }
        };
        let offset = match paging("offset", 0) {
            Ok(v) => v,
            Err(reply) => return reply,
        };
        let limit = match paging("limit", self.config.max_limit) {
            Ok(0) => self.config.max_limit,
            Ok(v) => v.min(self.config.max_limit),
            Err(reply) => return reply,
        };
        let filter = match param("q").map(str::trim).filter(|q| !q.is_empty()) {
            None => None,
            Some(q) => match Filter::parse(q) {
                Ok(f) => Some(f),
                Err(why) => {
                    let code = match collection {
                        Collection::Requests => code::BAD_REQUEST_QUERY,
                        Collection::Organizations => code::BAD_ORGANIZATION_QUERY,
                    };
                    return Reply::error(400, code, format!("Invalid Query Expression. {why}"));
                }
            },
        };
        // Only the items the filter may match are rendered (rendering is what costs).
        let names = filter.as_ref().and_then(Filter::only_names);
        let mut items: Vec<Value> = match collection {
            Collection::Requests => self
                .data
                .requests
                .iter()
                .filter(|r| {
                    names
                        .as_ref()
                        .is_none_or(|n| n.contains(&r.name.to_lowercase()))
                })
                .map(|r| self.render_request(r))
                .collect(),
            Collection::Organizations => self.organizations_named(names.as_ref()),
        };
        items.retain(|item| filter.as_ref().is_none_or(|f| f.matches(item)));
        let mut sort_echo = Vec::new();
        if let Some(sort) = param("sort").filter(|s| !s.trim().is_empty()) {
            let (field, order) = sort.split_once(':').unwrap_or((sort, "asc"));
            let descending = match order.trim() {
                "asc" => false,
                "desc" => true,
                _ => {
                    return Reply::error(
                        400,
                        code::BAD_SORT,
                        format!("Invalid sort options: {sort}"),
                    );
                }
            };
            let field = field.trim();
            items.sort_by(|a, b| {
                let ord = compare(
                    lookup(a, field).unwrap_or(&Value::Null),
                    lookup(b, field).unwrap_or(&Value::Null),
                );
                if descending { ord.reverse() } else { ord }
            });
            sort_echo.push(
                json!({ "property": field, "order": if descending { "desc" } else { "asc" } }),
            );
        }
        let total = items.len() as u64;
        let start = usize::try_from(offset.min(total)).unwrap_or(usize::MAX);
        let end = usize::try_from((offset.saturating_add(limit)).min(total)).unwrap_or(usize::MAX);
        let page: Vec<Value> = items[start..end].to_vec();
        let number = |n: u64| {
            if self.config.counts_as_strings {
                json!(n.to_string())
            } else {
                json!(n)
            }
        };
        let path = match collection {
            Collection::Requests => "/ccadmin/v1/organizationRequests",
            Collection::Organizations => "/ccadmin/v1/organizations",
        };
        let href = if query.is_empty() {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}{path}?{query}", self.base_url)
        };
        let mut answer = json!({
            "total": number(total),
            "totalResults": number(total),
            "offset": number(offset),
            "limit": number(limit),
            "links": [{ "rel": "self", "href": href }],
            "items": page,
        });
        if !sort_echo.is_empty() {
            answer["sort"] = Value::Array(sort_echo);
        }
        Reply::json(200, answer)
    }

    fn random_text(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len)
            .map(|_| char::from(ALPHABET[self.rng.usize(..ALPHABET.len())]))
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Collection {
    Requests,
    Organizations,
}

fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn unauthorized(message: &str) -> Reply {
    Reply::error(401, code::UNAUTHORIZED, message)
}

fn invalid(message: impl Into<String>) -> Reply {
    Reply::error(400, code::INVALID_INPUT, message)
}

fn not_found() -> Reply {
    Reply::error(
        404,
        code::NOT_FOUND,
        "The requested resource was not found.",
    )
}

/// The organization object's fields as OCC takes them (the seed's names), checked; `at` prefixes
/// field names in messages.
fn check_organization(object: &Map<String, Value>, at: &str) -> Result<Map<String, Value>, Reply> {
    const TEXT: &[&str] = &[
        "name",
        "description",
        "externalOrganizationId",
        "partyNumber",
        "taxReferenceNumber",
        "vatReferenceNumber",
        "uniqueId",
    ];
    let mut out = Map::new();
    for (key, value) in object {
        if value.is_null() {
            continue;
        }
        let key = key.as_str();
        match key {
            k if TEXT.contains(&k) => {
                if !value.is_string() {
                    return Err(invalid(format!("{at}{k} must be a string.")));
                }
            }
            "customerType" => check_enum(value, CUSTOMER_TYPES, &format!("{at}customerType"))?,
            "type" => check_enum(value, ORGANIZATION_TYPES, &format!("{at}type"))?,
            "dunsNumber" => {
                let ok = value
                    .as_str()
                    .is_some_and(|s| s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit()));
                if !ok {
                    return Err(invalid(format!(
                        "{at}dunsNumber should be a 9 digit number."
                    )));
                }
            }
            "partyId" => {
                if !value.is_number() {
                    return Err(invalid(format!("{at}partyId must be a number.")));
                }
            }
            "secondaryAddresses" => check_addresses(value, at)?,
            // Other organization properties (active, parentOrganization, ...) are not part of
            // what this emulator keeps.
            _ => continue,
        }
        out.insert(key.to_string(), value.clone());
    }
    Ok(out)
}

fn check_enum(value: &Value, allowed: &[&str], name: &str) -> Result<(), Reply> {
    match value.as_str() {
        Some(s) if allowed.contains(&s) => Ok(()),
        _ => Err(invalid(format!(
            "{name} accepts one of these values [{}].",
            allowed.join(", ")
        ))),
    }
}

fn check_addresses(value: &Value, at: &str) -> Result<(), Reply> {
    let Some(items) = value.as_array() else {
        return Err(invalid(format!("{at}secondaryAddresses must be an array.")));
    };
    for (i, item) in items.iter().enumerate() {
        let Some(item) = item.as_object() else {
            return Err(invalid(format!(
                "{at}secondaryAddresses[{i}] must be an object."
            )));
        };
        if let Some(t) = item
            .get("addressType")
            .filter(|t| !t.is_null() && !t.is_string())
        {
            return Err(invalid(format!(
                "{at}secondaryAddresses[{i}].addressType must be a string, not {t}."
            )));
        }
        if let Some(address) = item.get("address").filter(|a| !a.is_null()) {
            let Some(address) = address.as_object() else {
                return Err(invalid(format!(
                    "{at}secondaryAddresses[{i}].address must be an object."
                )));
            };
            for (k, v) in address {
                let ok = match k.as_str() {
                    "types" => v.as_array().is_some_and(|t| t.iter().all(Value::is_string)),
                    "isDefaultBillingAddress" | "isDefaultShippingAddress" => v.is_boolean(),
                    _ => v.is_string() || v.is_null(),
                };
                if !ok {
                    return Err(invalid(format!(
                        "{at}secondaryAddresses[{i}].address.{k} has the wrong type."
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The profile of a request: email, firstName and lastName required (seed 002).
fn check_profile(profile: &Map<String, Value>) -> Result<Map<String, Value>, Reply> {
    for key in ["email", "firstName", "lastName"] {
        let present = profile
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty());
        if !present {
            return Err(invalid(format!("profile.{key} is required.")));
        }
    }
    let email = profile.get("email").and_then(Value::as_str).unwrap_or("");
    let well_formed = email
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
    if !well_formed {
        return Err(invalid(format!(
            "profile.email {email} is not a valid e-mail address."
        )));
    }
    let mut out = Map::new();
    for (key, value) in profile {
        let ok = match key.as_str() {
            "partyId" => value.is_number(),
            "email" | "firstName" | "lastName" | "customerContactId" | "partyNumber"
            | "receiveEmail" => value.is_string(),
            _ => continue,
        };
        if !ok && !value.is_null() {
            return Err(invalid(format!("profile.{key} has the wrong type.")));
        }
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

/// An organization as the admin API shows it.
fn render_organization(id: &str, fields: &Map<String, Value>) -> Value {
    let mut object = fields.clone();
    object.insert("id".into(), json!(id));
    object.insert("repositoryId".into(), json!(id));
    object.entry("active").or_insert(json!(true));
    object.entry("approvalRequired").or_insert(json!(false));
    object
        .entry("secondaryAddresses")
        .or_insert_with(|| json!([]));
    Value::Object(object)
}

/// `2024-06-10T12:00:00.000Z`.
fn iso_time(ms: u64) -> String {
    let salesforce = super::salesforce::soql_datetime(ms);
    // Same instant, ISO 8601's `Z` in place of `+0000`.
    salesforce.trim_end_matches("+0000").to_string() + "Z"
}

// ---- SCIM filters ----

/// A parsed SCIM filter (RFC 7644 §3.4.2.2), the subset OCC's `q` is documented to take.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Compare { path: String, op: Op, value: Value },
    Present(String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Word(String),
    Literal(Value),
}

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if c == '"' {
            // A JSON string: find its closing quote, honouring backslash escapes.
            let start = i;
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                match chars[i] {
                    '\\' => i += 2,
                    '"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
            if !closed {
                return Err("a string is not closed".into());
            }
            let text: String = chars[start..i].iter().collect();
            let value: Value =
                serde_json::from_str(&text).map_err(|_| format!("{text} is not a valid string"))?;
            out.push(Tok::Literal(value));
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '(' | ')' | '"')
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(out)
}

impl Filter {
    /// Parses a filter; the error says what is wrong, for the 400 answer.
    pub fn parse(q: &str) -> Result<Filter, String> {
        let tokens = tokenize(q)?;
        let mut parser = Parser { tokens, at: 0 };
        let filter = parser.or()?;
        if parser.at != parser.tokens.len() {
            return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
        }
        Ok(filter)
    }

    /// The names (lower-cased) that a filter of the shape `name eq "..." or name eq "..."`
    /// can only match; `None` for any other shape. orgform's look-ups are this shape, and
    /// knowing it lets a list skip rendering items that can't match.
    pub fn only_names(&self) -> Option<HashSet<String>> {
        match self {
            Filter::Compare {
                path,
                op: Op::Eq,
                value: Value::String(name),
            } if path == "name" => Some(std::iter::once(name.to_lowercase()).collect()),
            Filter::Or(a, b) => {
                let mut names = a.only_names()?;
                names.extend(b.only_names()?);
                Some(names)
            }
            _ => None,
        }
    }

    /// Whether `item` matches.
    pub fn matches(&self, item: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(item) && b.matches(item),
            Filter::Or(a, b) => a.matches(item) || b.matches(item),
            Filter::Not(f) => !f.matches(item),
            Filter::Present(path) => lookup(item, path).is_some_and(|v| match v {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            }),
            Filter::Compare { path, op, value } => {
                let Some(actual) = lookup(item, path) else {
                    return *op == Op::Ne;
                };
                compare_op(actual, *op, value)
            }
        }
    }
}

struct Parser {
    tokens: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.group()?)));
        }
        if matches!(self.tokens.get(self.at), Some(Tok::Open)) {
            return self.group();
        }
        self.comparison()
    }

    fn group(&mut self) -> Result<Filter, String> {
        if !matches!(self.tokens.get(self.at), Some(Tok::Open)) {
            return Err("expected (".into());
        }
        self.at += 1;
        let inner = self.or()?;
        if !matches!(self.tokens.get(self.at), Some(Tok::Close)) {
            return Err("a parenthesis is not closed".into());
        }
        self.at += 1;
        Ok(inner)
    }

    fn comparison(&mut self) -> Result<Filter, String> {
        let Some(Tok::Word(path)) = self.tokens.get(self.at).cloned() else {
            return Err("expected an attribute name".into());
        };
        if !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            return Err(format!("{path} is not an attribute name"));
        }
        self.at += 1;
        let Some(Tok::Word(op)) = self.tokens.get(self.at).cloned() else {
            return Err(format!("expected an operator after {path}"));
        };
        self.at += 1;
        let op = match op.to_ascii_lowercase().as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            other => return Err(format!("{other} is not an operator")),
        };
        let value = match self.tokens.get(self.at).cloned() {
            Some(Tok::Literal(v)) => v,
            Some(Tok::Word(w)) => match w.as_str() {
                "true" => json!(true),
                "false" => json!(false),
                "null" => Value::Null,
                number => serde_json::from_str::<serde_json::Number>(number)
                    .map(Value::Number)
                    .map_err(|_| format!("{number} is not a value: quote strings"))?,
            },
            _ => return Err(format!("expected a value after {path}")),
        };
        self.at += 1;
        Ok(Filter::Compare { path, op, value })
    }
}

/// The value at a dotted attribute path, names matched without case (SCIM's rule).
fn lookup<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(item, |value, part| {
        value
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(part))
            .map(|(_, v)| v)
    })
}

/// A value as text for comparison: strings as they are, numbers and booleans as written.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compare_op(actual: &Value, op: Op, expected: &Value) -> bool {
    if expected.is_null() {
        return match op {
            Op::Eq => actual.is_null(),
            Op::Ne => !actual.is_null(),
            _ => false,
        };
    }
    // Numbers compare as numbers; everything else as text without case.
    if let (Some(a), Some(b)) = (number(actual), number(expected))
        && (actual.is_number() || expected.is_number())
    {
        let ord = a.partial_cmp(&b);
        return match op {
            Op::Eq => ord == Some(std::cmp::Ordering::Equal),
            Op::Ne => ord != Some(std::cmp::Ordering::Equal),
            Op::Gt => ord == Some(std::cmp::Ordering::Greater),
            Op::Ge => matches!(
                ord,
                Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
            ),
            Op::Lt => ord == Some(std::cmp::Ordering::Less),
            Op::Le => matches!(
                ord,
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            ),
            Op::Co | Op::Sw | Op::Ew => false,
        };
    }
    let (Some(a), Some(b)) = (text(actual), text(expected)) else {
        return op == Op::Ne;
    };
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Co => a.contains(&b),
        Op::Sw => a.starts_with(&b),
        Op::Ew => a.ends_with(&b),
        Op::Gt => a > b,
        Op::Ge => a >= b,
        Op::Lt => a < b,
        Op::Le => a <= b,
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Sorts values: numbers by value, text without case, nulls last.
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        _ => text(a)
            .map(|t| t.to_lowercase())
            .cmp(&text(b).map(|t| t.to_lowercase())),
    }
}

// ---- HTTP ----

/// The routes orgform's client uses (and an administrator's approve and reject), at their real
/// paths. Everything goes through [`serve`].
pub fn routes(_state: &SandboxState) -> Router<SandboxState> {
    const REQUESTS: &str = "/ccadmin/v1/organizationRequests";
    Router::new()
        .route("/ccadmin/v1/login", post(serve))
        .route("/ccadmin/v1/refresh", post(serve))
        .route("/ccadmin/v1/logout", post(serve))
        .route(REQUESTS, get(serve))
        .route(&format!("{REQUESTS}/{{id}}"), get(serve))
        .route(&format!("{REQUESTS}/{{id}}/approve"), post(serve))
        .route(&format!("{REQUESTS}/{{id}}/reject"), post(serve))
        .route("/ccstore/v1/organizationRequests", post(serve))
        .route("/ccadmin/v1/organizations", get(serve).post(serve))
        .route("/ccadmin/v1/organizations/{id}", get(serve))
}

/// An error for a bare status (injected faults, unknown routes), in OCC's shape.
pub fn status_error(_state: &SandboxState, status: StatusCode) -> Response {
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => "Too many requests; try again later.",
        StatusCode::NOT_FOUND => "The requested resource was not found.",
        StatusCode::METHOD_NOT_ALLOWED => "The method is not allowed for this resource.",
        StatusCode::SERVICE_UNAVAILABLE => "The service is temporarily unavailable.",
        StatusCode::BAD_GATEWAY => "The upstream server did not answer.",
        _ => "An internal error occurred.",
    };
    let reply = Reply::error(status.as_u16(), &status.as_u16().to_string(), message);
    (status, axum::Json(reply.body)).into_response()
}

/// Whether a request changes what the data file keeps: creates and decisions.
fn saves(method: &Method, path: &str) -> bool {
    *method == Method::POST
        && (path.starts_with("/ccstore/v1/organizationRequests")
            || path.starts_with("/ccadmin/v1/organizations")
            || path.starts_with("/ccadmin/v1/organizationRequests/"))
}

fn creates(method: &Method, path: &str) -> bool {
    *method == Method::POST
        && matches!(
            path.trim_end_matches('/'),
            "/ccstore/v1/organizationRequests" | "/ccadmin/v1/organizations"
        )
}

/// Every OCC route: the request to the rules, under the data lock. Creates and decisions go
/// through `mutate` (saved); logins and reads only change tokens, through `touch`.
async fn serve(
    State(state): State<SandboxState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Links point wherever the client reached this sandbox.
    let base_url = format!("http://{}", header_text("host").unwrap_or("127.0.0.1"));
    let request = Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        authorization: header_text("authorization"),
        body: &body,
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random = state.random();
    let config = &state.config().oracle;
    let creates = creates(&method, uri.path());
    let handle = |data: &mut super::SandboxData| {
        let reply = data
            .oracle
            .handle(config, &request, &base_url, now_ms, random);
        let lost = creates && reply.status == 200 && data.oracle.lose_this_answer(config);
        (reply, lost)
    };
    let (reply, lost) = if saves(&method, uri.path()) {
        state.mutate(handle).await
    } else {
        state.touch(handle)
    };
    if lost {
        return status_error(&state, StatusCode::BAD_GATEWAY);
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reply.body)).into_response()
}
