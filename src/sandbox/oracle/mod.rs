//! Emulator of Oracle Commerce Cloud's organization APIs (`docs/providers/oracle_commerce.md`,
//! seed 002): the admin login, organization requests and organizations, at their real paths
//! under `/ccadmin/v1` and `/ccstore/v1`, speaking OCC's wire contract. The SCIM filters that
//! lists take are parsed and matched in `filter.rs`.
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
//!   A list item is OCC's `{id, name, status, organization: {id}, profile: {id}}` (the ids once
//!   approved); a request read alone adds its comments, and with `expand` (`organization`,
//!   `profile`, `requestAll`, ...) its organization's and profile's fields as it holds them.
//!   A request is `new` for [`OracleConfig::new_for`], `review` for
//!   [`OracleConfig::review_for`] (forever when `None`: only an administrator decides), then
//!   `approved`, or `rejected` when its name contains [`OracleConfig::reject_marker`] (any case).
//!   Approval makes an organization, whose id the request then names.
//! - `POST /ccadmin/v1/organizations` (checked like the request's `organization`; duplicate
//!   names allowed [I], as OCC documents no refusal), `GET /ccadmin/v1/organizations[/{id}]`
//!   (listed whole, or as OCC's example item with [`OracleConfig::brief_organization_items`]),
//!   `PUT /ccadmin/v1/organizations/{id}` (fields replaced, as an administrator changes them).
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
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::clock;
pub use super::serve::Request;
use super::serve::{Call, LostAnswers, on_data};
use super::state::SandboxState;

mod checks;
mod filter;
mod index;
mod list;

use checks::{check_organization, check_profile};
pub use filter::Filter;
use index::Source;
use list::Collection;

/// The paths this emulator owns at OCC's hosts.
pub(crate) const PREFIXES: &[&str] = &["/ccadmin/v1", "/ccstore/v1"];

/// The credentials the emulator accepts live in the catalog, with the rest of OCC's facts.
pub use crate::catalog::oracle::sandbox::APP_KEY;

/// The site every request is made on.
const SITE_ID: &str = "siteUS";

/// Error codes. Sourced ones name their source; the rest are sandbox choices [I].
mod code {
    /// Invalid input (Organization APIs).
    pub(crate) const INVALID_INPUT: &str = "100000";
    /// No organization with the id.
    pub(crate) const NO_ORGANIZATION: &str = "100001";
    /// Invalid query expression (organizations).
    pub(crate) const BAD_ORGANIZATION_QUERY: &str = "100070";
    /// Invalid query expression (organization requests).
    pub(crate) const BAD_REQUEST_QUERY: &str = "85000";
    /// Invalid sort options.
    pub(crate) const BAD_SORT: &str = "50012";
    /// Invalid limit or offset.
    pub(crate) const BAD_PAGING: &str = "10002";
    /// Invalid request id (approve, reject).
    pub(crate) const BAD_REQUEST_ID: &str = "101000";
    /// No organization request found.
    pub(crate) const NO_REQUEST: &str = "101001";
    /// The request is approved or rejected already.
    pub(crate) const ALREADY_DECIDED: &str = "101008";
    /// "Registration request cannot ..." (text truncated in the source): here, the e-mail is
    /// registered already [I].
    pub(crate) const REGISTRATION_REFUSED: &str = "101013";
    /// [I] Login refused, token missing, unknown or lapsed.
    pub(crate) const UNAUTHORIZED: &str = "83037";
    /// [I] Unsupported grant type.
    pub(crate) const BAD_GRANT: &str = "83036";
    /// [I] Unknown resource or method.
    pub(crate) const NOT_FOUND: &str = "40400";
}

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
    /// List organizations as OCC's example item, `{name, repositoryId, active, id}`, rather than
    /// the whole organization (the larger item some versions list, and this emulator's default);
    /// `GET /ccadmin/v1/organizations/{id}` answers the whole organization either way.
    pub brief_organization_items: bool,
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
            brief_organization_items: false,
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
    pub(crate) organizations: Vec<Organization>,
    /// The last numbers used in ids.
    #[serde(default)]
    pub last_request_id: u64,
    #[serde(default)]
    pub last_organization_id: u64,
    #[serde(skip)]
    tokens: HashMap<String, Token>,
    #[serde(skip)]
    tokens_issued: u64,
    /// What [`OracleConfig::lose_create_answers`] has lost so far.
    #[serde(skip)]
    lost_answers: LostAnswers,
    /// Where to find requests and organizations; transient, built again when needed.
    #[serde(skip)]
    index: index::Index,
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
pub(crate) struct Organization {
    pub(crate) id: String,
    pub(crate) fields: Map<String, Value>,
    pub(crate) created_ms: u64,
}

#[derive(Debug)]
struct Token {
    issued_ms: u64,
    uses: u32,
}

/// The answer: a status and a JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// A JSON body already written as text (a list page, written item by item), served as it
    /// is; [`OracleData::handle`] reads it into `body` for a caller of the rules.
    written: Option<Vec<u8>>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            written: None,
        }
    }

    /// A JSON body written as text.
    fn written(status: u16, text: Vec<u8>) -> Reply {
        Reply {
            status,
            body: Value::Null,
            written: Some(text),
        }
    }

    /// OCC's error shape: string code and status.
    pub(crate) fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
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
        let mut reply = self.serve(config, request, base_url, now_ms, random);
        if let Some(text) = reply.written.take() {
            reply.body = serde_json::from_slice(&text).unwrap_or(Value::Null);
        }
        reply
    }

    /// [`OracleData::handle`] for the HTTP route: a body written as text is left so.
    fn serve(
        &mut self,
        config: &OracleConfig,
        request: &Request<'_>,
        base_url: &str,
        now_ms: u64,
        random: u64,
    ) -> Reply {
        self.index.refresh(&self.requests, &self.organizations);
        let reply = Emulator {
            config,
            data: self,
            rng: fastrand::Rng::with_seed(random),
            base_url: base_url.trim_end_matches('/'),
            now_ms,
        }
        .handle(request);
        match request.method {
            "GET" => {}
            // An update changes names in place: index them again.
            "PUT" => self.index.invalidate(),
            // A decision changes what lists hold.
            _ => self.index.changed(),
        }
        reply
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
    pub(crate) fn reset(&mut self) {
        *self = OracleData::default();
    }
}

/// A request's status at `now_ms`.
pub(crate) fn status(config: &OracleConfig, request: &OrgRequest, now_ms: u64) -> &'static str {
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
            ("GET", ["organizationRequests", id]) => self.get_request(id, query),
            ("POST", ["organizationRequests", id, verb @ ("approve" | "reject")]) => {
                self.decide(id, *verb == "approve", request.body)
            }
            ("GET", ["organizations"]) => self.list(Collection::Organizations, query),
            ("POST", ["organizations"]) => self.create_organization(request.body, query),
            ("GET", ["organizations", id]) => self.get_organization(id),
            ("PUT", ["organizations", id]) => self.update_organization(id, request.body),
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
        let object = match object_body(body) {
            Ok(object) => object,
            Err(reply) => return reply,
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
        let requests = &self.data.requests;
        let taken = self.data.index.requests_with_email(&email).iter().any(|p| {
            let Some(r) = requests.get(*p) else {
                return false;
            };
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
        let request = OrgRequest {
            id,
            name,
            fields,
            created_ms: now_ms,
            organization_id,
            profile_id: format!("{}", 200_000 + self.data.last_request_id),
            outcome,
            decided: None,
        };
        self.data
            .index
            .add_request(self.data.requests.len(), &request);
        self.data.requests.push(request);
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
        self.data
            .index
            .request_with_id(id)
            .iter()
            .copied()
            .find(|p| self.data.requests.get(*p).is_some_and(|r| r.id == id))
    }

    /// One request; `expand` (OCC's values, one or several separated by commas [I]) adds what
    /// the request holds: `organization` and `organizationAll` the organization's fields but its
    /// addresses, `organizationAddresses` those, `profile` and `profileAll` the profile's fields,
    /// `requestAll` all of them [I: OCC lists the values, "static" and "static & dynamic" data,
    /// without saying which fields each brings].
    fn get_request(&self, id: &str, query: &str) -> Reply {
        let expand: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == "expand")
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(|e| e.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        let has = |value: &str| expand.iter().any(|e| e == value || e == "requestAll");
        match self.find_request(id) {
            Some(i) => {
                let r = &self.data.requests[i];
                let mut body = self.render_request(r);
                let stored = |key: &str| r.fields.get(key).and_then(Value::as_object);
                if has("organization") || has("organizationAll") || has("organizationAddresses") {
                    let mut organization = match &body["organization"] {
                        Value::Object(reference) => reference.clone(),
                        _ => Map::new(),
                    };
                    for (key, value) in stored("organization").into_iter().flatten() {
                        let address = key == "secondaryAddresses";
                        if (address && has("organizationAddresses"))
                            || (!address && (has("organization") || has("organizationAll")))
                        {
                            organization.insert(key.clone(), value.clone());
                        }
                    }
                    body["organization"] = Value::Object(organization);
                }
                if has("profile") || has("profileAll") {
                    let mut profile = match &body["profile"] {
                        Value::Object(reference) => reference.clone(),
                        _ => Map::new(),
                    };
                    for (key, value) in stored("profile").into_iter().flatten() {
                        profile.insert(key.clone(), value.clone());
                    }
                    body["profile"] = Value::Object(profile);
                }
                Reply::json(200, body)
            }
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
        item.insert("createdTime".into(), json!(clock::utc_millis(r.created_ms)));
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
        let object = match object_body(body) {
            Ok(object) => object,
            Err(reply) => return reply,
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
        self.data
            .index
            .add_organization(self.data.organizations.len(), &organization);
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

    /// `PUT /ccadmin/v1/organizations/{id}`: the fields given replace those held, checked as at
    /// creation (OCC's updateOrganization takes a partial body); answers the organization. An
    /// organization an approval made is kept in its request, so the change is made there.
    fn update_organization(&mut self, id: &str, body: &[u8]) -> Reply {
        let object = match object_body(body) {
            Ok(object) => object,
            Err(reply) => return reply,
        };
        let mut changes = match check_organization(&object, "") {
            Ok(f) => f,
            Err(reply) => return reply,
        };
        if changes
            .get("name")
            .is_some_and(|n| n.as_str().is_none_or(|n| n.trim().is_empty()))
        {
            return invalid("name must not be empty.");
        }
        for key in ["active", "approvalRequired"] {
            if let Some(v) = object.get(key).filter(|v| v.is_boolean()) {
                changes.insert(key.into(), v.clone());
            }
        }
        let now_ms = self.now_ms;
        let config = self.config;
        let fields = if let Some(o) = self.data.organizations.iter_mut().find(|o| o.id == id) {
            &mut o.fields
        } else if let Some(r) = self
            .data
            .requests
            .iter_mut()
            .find(|r| r.organization_id == id && status(config, r, now_ms) == "approved")
        {
            let name = r.name.clone();
            let organization = r
                .fields
                .entry("organization")
                .or_insert_with(|| json!({ "name": name }));
            if !organization.is_object() {
                *organization = json!({ "name": name });
            }
            match organization.as_object_mut() {
                Some(fields) => fields,
                None => return not_found(),
            }
        } else {
            return Reply::error(
                404,
                code::NO_ORGANIZATION,
                format!("No organization found with the id {id}."),
            );
        };
        fields.extend(changes);
        self.get_organization(id)
    }

    fn get_organization(&self, id: &str) -> Reply {
        // As the first item with this id in the list of every organization: one created
        // directly, else an approved request's.
        let data = &*self.data;
        let direct = data
            .index
            .organization_with_id(id)
            .iter()
            .filter_map(|p| data.organizations.get(*p))
            .find(|o| o.id == id)
            .map(|o| render_organization(&o.id, &o.fields));
        let found = direct.or_else(|| {
            data.index
                .requests_making(id)
                .iter()
                .filter_map(|p| data.requests.get(*p))
                .find(|r| {
                    r.organization_id == id && status(self.config, r, self.now_ms) == "approved"
                })
                .map(render_approved)
        });
        match found {
            Some(o) => Reply::json(200, o),
            None => Reply::error(
                404,
                code::NO_ORGANIZATION,
                format!("No organization found with the id {id}."),
            ),
        }
    }

    /// The organizations, or only those whose name may be one of `names` (lower-cased), in
    /// the lists' order (by id), without rendering them.
    fn organizations_named(&self, names: Option<&HashSet<String>>) -> Vec<Source> {
        let data = &*self.data;
        let (direct, approved): (Vec<usize>, Vec<usize>) = match names {
            None => (
                (0..data.organizations.len()).collect(),
                (0..data.requests.len()).collect(),
            ),
            Some(names) => {
                let mut direct: Vec<usize> = names
                    .iter()
                    .flat_map(|n| data.index.organizations_named(n))
                    .collect();
                let mut approved: Vec<usize> = names
                    .iter()
                    .flat_map(|n| data.index.requests_making_named(n))
                    .collect();
                for list in [&mut direct, &mut approved] {
                    list.sort_unstable();
                    list.dedup();
                }
                (direct, approved)
            }
        };
        let may_match = |name: Option<&Value>| match (names, name) {
            (Some(names), Some(Value::String(name))) => names.contains(&name.to_lowercase()),
            _ => true,
        };
        let mut out: Vec<(&str, Source)> = direct
            .into_iter()
            .filter_map(|p| Some((p, data.organizations.get(p)?)))
            .filter(|(_, o)| may_match(o.fields.get("name")))
            .map(|(p, o)| (o.id.as_str(), Source::Organization(p)))
            .collect();
        for p in approved {
            let Some(r) = data.requests.get(p) else {
                continue;
            };
            if status(self.config, r, self.now_ms) != "approved" {
                continue;
            }
            let organization = r.fields.get("organization").and_then(Value::as_object);
            let name = organization.and_then(|o| o.get("name"));
            if !may_match(name.or(Some(&json!(r.name)))) {
                continue;
            }
            out.push((r.organization_id.as_str(), Source::Approved(p)));
        }
        // Stable: among equal ids, those created directly first, as they are listed first.
        out.sort_by(|a, b| a.0.cmp(b.0));
        out.into_iter().map(|(_, source)| source).collect()
    }

    /// An item of a list, as the admin API shows it now.
    fn render_source(&self, source: Source) -> Value {
        let data = &*self.data;
        match source {
            Source::Request(p) => data
                .requests
                .get(p)
                .map_or(Value::Null, |r| self.render_request(r)),
            Source::Organization(p) => data
                .organizations
                .get(p)
                .map_or(Value::Null, |o| render_organization(&o.id, &o.fields)),
            Source::Approved(p) => data.requests.get(p).map_or(Value::Null, render_approved),
        }
    }

    /// The time before which no request's status changes by itself (`u64::MAX` for never):
    /// until then, a list read whole holds.
    fn statuses_hold_until(&self) -> u64 {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let new_for = ms(self.config.new_for);
        let review_for = self.config.review_for.map(ms);
        self.data
            .requests
            .iter()
            .filter(|r| r.decided.is_none())
            .filter_map(|r| {
                let reviewed = r.created_ms.saturating_add(new_for);
                if self.now_ms < reviewed {
                    return Some(reviewed);
                }
                let decided = reviewed.saturating_add(review_for?);
                (self.now_ms < decided).then_some(decided)
            })
            .min()
            .unwrap_or(u64::MAX)
    }

    fn random_text(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len)
            .map(|_| char::from(ALPHABET[self.rng.usize(..ALPHABET.len())]))
            .collect()
    }
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

/// A body that must be a JSON object, or OCC's 400.
fn object_body(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid("The request body must be a JSON object.")),
    }
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

/// The organization an approved request made, as the admin API shows it.
fn render_approved(r: &OrgRequest) -> Value {
    let organization = r.fields.get("organization").and_then(Value::as_object);
    let mut fields = organization.cloned().unwrap_or_default();
    fields
        .entry("name")
        .or_insert_with(|| json!(r.name.clone()));
    organization_object(&r.organization_id, fields)
}

/// An organization as the admin API shows it.
fn render_organization(id: &str, fields: &Map<String, Value>) -> Value {
    organization_object(id, fields.clone())
}

/// What [`render_approved`] (`name`: the request's) or [`render_organization`] (`None`)
/// renders, written as JSON text onto `out` without copying the fields, with only the keys of
/// `keep` when it names them: the bytes the tree serializes to.
pub(super) fn write_organization(
    out: &mut Vec<u8>,
    id: &str,
    fields: Option<&Map<String, Value>>,
    name: Option<&str>,
    keep: Option<&[&str]>,
) {
    let has = |key: &str| fields.is_some_and(|f| f.contains_key(key));
    let mut first = true;
    let mut entry = |out: &mut Vec<u8>, key: &str, value: &dyn Fn(&mut Vec<u8>)| {
        if keep.is_some_and(|keep| !keep.contains(&key)) {
            return;
        }
        out.push(if first { b'{' } else { b',' });
        first = false;
        write_json(out, key);
        out.push(b':');
        value(out);
    };
    for (key, value) in fields.into_iter().flatten() {
        match key.as_str() {
            "id" | "repositoryId" => entry(out, key, &|out| write_json(out, id)),
            _ => entry(out, key, &|out| write_json(out, value)),
        }
    }
    if let Some(name) = name.filter(|_| !has("name")) {
        entry(out, "name", &|out| write_json(out, name));
    }
    for key in ["id", "repositoryId"] {
        if !has(key) {
            entry(out, key, &|out| write_json(out, id));
        }
    }
    let defaults: [(&str, &[u8]); 3] = [
        ("active", b"true"),
        ("approvalRequired", b"false"),
        ("secondaryAddresses", b"[]"),
    ];
    for (key, text) in defaults {
        if !has(key) {
            entry(out, key, &|out| out.extend_from_slice(text));
        }
    }
    if first {
        out.push(b'{');
    }
    out.push(b'}');
}

/// `value` as compact JSON text onto `out`.
pub(super) fn write_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    // Writing to a Vec fails only for a value serde_json cannot write (a map with non-string
    // keys), which these are not.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// [`render_organization`] of fields already copied: an approved request's organization is
/// copied once, not twice.
fn organization_object(id: &str, mut object: Map<String, Value>) -> Value {
    object.insert("id".into(), json!(id));
    object.insert("repositoryId".into(), json!(id));
    object.entry("active").or_insert(json!(true));
    object.entry("approvalRequired").or_insert(json!(false));
    object
        .entry("secondaryAddresses")
        .or_insert_with(|| json!([]));
    Value::Object(object)
}

// ---- HTTP ----

/// The routes orgform's client uses (and an administrator's approve and reject), at their real
/// paths. Everything goes through [`serve`].
pub(crate) fn routes(_state: &SandboxState) -> Router<SandboxState> {
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
        .route("/ccadmin/v1/organizations/{id}", get(serve).put(serve))
}

/// An error for a bare status (injected faults, unknown routes), in OCC's shape.
pub(crate) fn status_error(_state: &SandboxState, status: StatusCode) -> Response {
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

/// Whether a request changes what the data file keeps: creates, decisions and updates.
fn saves(method: &Method, path: &str) -> bool {
    (*method == Method::POST
        && (path.starts_with("/ccstore/v1/organizationRequests")
            || path.starts_with("/ccadmin/v1/organizations")
            || path.starts_with("/ccadmin/v1/organizationRequests/")))
        || (*method == Method::PUT && path.starts_with("/ccadmin/v1/organizations/"))
}

fn creates(method: &Method, path: &str) -> bool {
    *method == Method::POST
        && matches!(
            path.trim_end_matches('/'),
            "/ccstore/v1/organizationRequests" | "/ccadmin/v1/organizations"
        )
}

/// Every OCC route: the request to the rules, under the data lock. Creates and decisions are
/// saved; logins and reads only change tokens.
async fn serve(State(state): State<SandboxState>, call: Call) -> Response {
    let request = call.request();
    // Links point wherever the client reached this sandbox.
    let base_url = call.base_url();
    let (now_ms, random) = (clock::now_ms(), state.random());
    let config = &state.config().oracle;
    let creates = creates(&call.method, call.uri.path());
    let (reply, lost) = on_data(&state, saves(&call.method, call.uri.path()), |data| {
        let reply = data
            .oracle
            .serve(config, &request, &base_url, now_ms, random);
        let lost = creates
            && reply.status == 200
            && data.oracle.lost_answers.lose(config.lose_create_answers);
        (reply, lost)
    })
    .await;
    if lost {
        return status_error(&state, StatusCode::BAD_GATEWAY);
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reply.written {
        // The content type axum's `Json` gives.
        Some(text) => (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            text,
        )
            .into_response(),
        None => (status, axum::Json(reply.body)).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An organization written as text is, byte for byte, the tree `render_organization` and
    /// `render_approved` build, serialized, with or without the brief item's keys.
    #[test]
    fn an_organization_written_as_text_is_its_tree_serialized() {
        let stored = [
            json!({}),
            json!({"name": "Acme", "customerType": "OEM"}),
            json!({"id": "old", "name": "Acme", "active": false, "secondaryAddresses": [{"a": 1}]}),
            json!({"repositoryId": "x", "approvalRequired": true, "description": "a\"b\n"}),
        ];
        let brief: &[&str] = &["name", "repositoryId", "active", "id"];
        for fields in &stored {
            let fields = fields.as_object().expect("an object");
            for name in [None, Some("Request name")] {
                for keep in [None, Some(brief)] {
                    let mut copied = fields.clone();
                    if let Some(name) = name {
                        copied.entry("name").or_insert_with(|| json!(name));
                    }
                    let mut tree = organization_object("or-1", copied);
                    if let (Some(keys), Value::Object(object)) = (keep, &mut tree) {
                        object.retain(|k, _| keys.contains(&k.as_str()));
                    }
                    let mut text = Vec::new();
                    write_organization(&mut text, "or-1", Some(fields), name, keep);
                    assert_eq!(
                        String::from_utf8(text).expect("UTF-8"),
                        tree.to_string(),
                        "{fields:?} {name:?} {keep:?}"
                    );
                }
            }
        }
        let mut text = Vec::new();
        write_organization(&mut text, "or-2", None, Some("N"), None);
        assert_eq!(
            String::from_utf8(text).expect("UTF-8"),
            organization_object("or-2", Map::from_iter([("name".to_string(), json!("N"))]))
                .to_string()
        );
    }
}
