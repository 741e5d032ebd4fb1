//! Oracle Commerce Cloud (OCC): organization requests and organizations (seed 002,
//! docs/providers/oracle_commerce.md).
//!
//! - Login: `POST {base}/ccadmin/v1/login`, form `grant_type=client_credentials`, with the
//!   application key as `Authorization: Bearer`; the answer's `access_token` is the bearer of
//!   every admin call. Tokens from an application key last five minutes (`expires_in` when the
//!   server says, else 300 s), so the client refreshes one (`POST /ccadmin/v1/refresh` with the
//!   current token) once three quarters of its life are gone, logs in again when it has lapsed or
//!   a refresh is refused, and answers a 401 by logging in again once and resending (a refused
//!   request did nothing). The token lives behind a mutex with its issue time, so concurrent
//!   calls that find it stale renew it once between them.
//! - `mode = "request"` (the default): the declaration is the seed's payload, sent to
//!   `POST /ccstore/v1/organizationRequests` on the storefront (`store_url`, default `base_url`).
//!   That endpoint is the shopper's self-registration, so it is called without the admin token:
//!   each OCC API issues its own tokens, and an admin token means nothing to the store. The
//!   answer `{id, links}` stands for a request an administrator approves or rejects later:
//!   `new` and `review` are in progress, `approved` is ready (the new organization's id is kept
//!   as `organization_id`), `rejected` failed with the approver's comments. Apply looks once
//!   (all of an instance's new requests in one bulk read, once they are sent) and leaves it
//!   `pending`; a later plan or `refresh` settles it.
//! - `mode = "direct"`: only the `organization` table goes to `POST /ccadmin/v1/organizations`,
//!   which answers the organization at once.
//! - Remote reality: `GET /ccadmin/v1/organizationRequests` (or `/organizations`) with a SCIM
//!   filter naming many names at once (`q=name eq "A" or name eq "B"`, chunked so URLs stay
//!   short), paged by `offset` and `limit` (250) until `offset` reaches `totalResults`. OCC
//!   documents those counts as strings and shows them as numbers; ids come both ways too: every
//!   number is read from either ([`count`], [`Id`]). What an item holds is reported back under
//!   spec names (`RemoteOrg::attributes`): a request's item only its name (its organization and
//!   profile by id), an organization's whatever the version lists (`{name, id, active}` in
//!   OCC's example, the whole organization in some versions).
//! - `list_all` (discover) pages the same lists without `q`, then reads each request once
//!   (`GET .../organizationRequests/{id}?expand=requestAll`, for its comments, organization and
//!   profile) and each organization whose item carries nothing but its name
//!   (`GET .../organizations/{id}`), concurrently within `max_concurrency`.
//! - Errors are `{errorCode, message, status}` with string codes, sometimes with `errors[]`;
//!   [`describe_errors`] reads both. A 4xx on a create created nothing (`Rejected`).
//!
//! OCC lets two requests or organizations share a name, so no create is sent for a name this
//! run has not seen without a live one: apply's bulk read (under the state lock) answers for the
//! creates the plan proposes, and apply looks a name up before resending after a lost answer
//! ([`CreateContext::absent_in_read`]); anywhere else [`Oracle::create`] looks the name up first
//! and answers `AlreadyExists` for a live one (a rejected request may be asked again). The
//! application key and tokens only ever sit in a [`SecretString`] and a header; no message
//! quotes one, and serde's messages are never shown for the token answers.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::ACCEPT;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::{Deserialize, Deserializer};
use tokio::time::Instant;

use super::http::{Effect, Http, check_transport, created_answer, read_body, short};
use super::login::LoginCell;
use super::wire::{Matched, MatchedSeed, SecretEncoding, create_body, from_wire, to_json};
use super::{
    ConnectOptions, CreateContext, Found, Provider, ProviderError, send_batch, send_found,
};
use crate::catalog::schema::{Field, Kind, field_at};
use crate::model::{
    InstanceReality, NaturalKey, ProviderType, RemoteOrg, RemoteStatus, Reported, Value,
};
use crate::secrets::{SecretResolver, SecretString};
use crate::spec::{OrgSpec, ProviderInstance};

pub(crate) const LOGIN_PATH: &str = "/ccadmin/v1/login";
pub(crate) const REFRESH_PATH: &str = "/ccadmin/v1/refresh";
/// Where an administrator lists and decides organization requests.
pub const REQUESTS_PATH: &str = "/ccadmin/v1/organizationRequests";
/// Where a shopper sends an organization request.
pub const STORE_REQUESTS_PATH: &str = "/ccstore/v1/organizationRequests";
pub const ORGANIZATIONS_PATH: &str = "/ccadmin/v1/organizations";

/// Items per list page, as the catalog gives it.
pub(crate) const PAGE_LIMIT: u64 = crate::catalog::oracle::PAGE_LIMIT as u64;

/// Longest URL-encoded `q` per request: servers commonly refuse request lines over 8 KiB.
pub(crate) const MAX_ENCODED_FILTER: usize = 4_000;

/// How long a token lives when the login answer does not say: OCC's five minutes for tokens
/// from an application key.
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// Pages of one list asked for at once once its count is known: enough to keep the
/// instance's connections busy, few enough that the pages read ahead of the one awaited stay
/// few.
const PAGES_IN_FLIGHT: usize = 32;

/// Pages followed for one filter before giving up: a guard against a server whose counts never
/// add up.
const MAX_PAGES: usize = 10_000;

/// How many sessions one call may go through when each is refused.
const MAX_SESSIONS: usize = 3;

/// The instance's mode: what a declaration creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Organization requests, approved later by an administrator.
    Request,
    /// Organizations, created at once.
    Direct,
}

pub struct Oracle {
    http: Http,
    /// The storefront's root, where requests are sent; the admin host unless `store_url` says.
    store_url: String,
    app_key: SecretString,
    mode: Mode,
    token: LoginCell<Token>,
    secrets: SecretResolver,
    instance_name: String,
}

/// An access token and when it was issued.
struct Token {
    access: SecretString,
    issued: Instant,
    lifetime: Duration,
}

impl Token {
    fn age(&self) -> Duration {
        self.issued.elapsed()
    }

    /// Old enough to refresh: three quarters of its life are gone.
    fn due(&self) -> bool {
        self.age() >= self.lifetime.mul_f64(0.75)
    }

    fn lapsed(&self) -> bool {
        self.age() >= self.lifetime
    }
}

/// The login and refresh answers; only what orgform reads. Not `Debug`: it holds the token.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default, deserialize_with = "count")]
    expires_in: Option<u64>,
}

/// An id OCC sends as a number (`"id": 100001`) or a string (`"id": "or-100002"`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Id(pub String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(s) => Ok(Id(s)),
            serde_json::Value::Number(n) => Ok(Id(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "an id must be a string or a number, found {other}"
            ))),
        }
    }
}

/// A count OCC may send as a number or as a string of digits (`"totalResults": "3"`); absent,
/// null or empty is `None`.
pub(crate) fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a count"))),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("\"{s}\" is not a count"))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "a count must be a number or a string, found {other}"
        ))),
    }
}

/// One page of a list: `{total, totalResults, offset, limit, links, items}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(default, deserialize_with = "count")]
    pub(crate) total_results: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    pub(crate) total: Option<u64>,
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

impl<T> Page<T> {
    /// How many items the filter matches in all.
    pub fn matching(&self) -> Option<u64> {
        self.total_results.or(self.total)
    }
}

/// A reference to another object: `{"id": "150002"}`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Ref {
    #[serde(default)]
    pub id: Option<Id>,
}

/// An organization request as the admin list returns it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequestItem {
    pub id: Id,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub organization: Option<Ref>,
    #[serde(default)]
    pub approver_comments: Option<String>,
}

/// An organization as the admin list returns it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationItem {
    pub(crate) id: Id,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) active: Option<bool>,
}

/// A request or an organization as OCC answered it: what orgform matches on (`item`), and the
/// whole object (`wire`), from which the attributes it reports are read back to spec names.
/// The item types stay plain, so a list whose items carry more (some versions return a larger
/// organization) is read the same way.
#[derive(Clone, Debug)]
pub(crate) struct Listed<T> {
    pub(crate) item: T,
    pub(crate) wire: serde_json::Map<String, serde_json::Value>,
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Listed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Listed<T>, D::Error> {
        let value = serde_json::Value::Object(serde_json::Map::deserialize(deserializer)?);
        let item = T::deserialize(&value).map_err(serde::de::Error::custom)?;
        let serde_json::Value::Object(wire) = value else {
            return Err(serde::de::Error::custom("an item must be an object"));
        };
        Ok(Listed { item, wire })
    }
}

/// A list item type: the keys it reads, and how what it reports is read by the schema.
pub(crate) trait ListItem: serde::de::DeserializeOwned {
    /// The wire keys the type reads.
    const KEYS: &'static [&'static str];
    /// The fields of the wire object.
    fn fields() -> &'static [Field];
    /// What the object reported by [`ListItem::fields`] reports under spec names.
    fn attributes(reported: Reported) -> Reported;
}

impl ListItem for RequestItem {
    const KEYS: &'static [&'static str] =
        &["id", "name", "status", "organization", "approverComments"];

    fn fields() -> &'static [Field] {
        ProviderType::OracleCommerce.schema().org
    }

    /// As [`request_attributes`].
    fn attributes(reported: Reported) -> Reported {
        reported.without_empty_tables()
    }
}

impl ListItem for OrganizationItem {
    const KEYS: &'static [&'static str] = &["id", "name", "active"];

    fn fields() -> &'static [Field] {
        organization_fields()
    }

    /// As [`organization_attributes`].
    fn attributes(reported: Reported) -> Reported {
        Reported::nested("organization", &reported.without_empty_tables())
    }
}

/// A list item read in one pass, for a read of many ([`Oracle::search`]): the item and the
/// attributes it reports, read straight from the wire ([`MatchedSeed`]); where [`Listed`] keeps
/// the whole object as a tree (a read of one, discover's, reads it again).
pub(crate) struct Streamed<T> {
    pub(crate) item: T,
    pub(crate) attributes: Reported,
}

impl<'de, T: ListItem> Deserialize<'de> for Streamed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Streamed<T>, D::Error> {
        use serde::de::DeserializeSeed as _;
        let Matched { item, reported } =
            MatchedSeed::<T>::new(T::KEYS, Some(T::fields())).deserialize(deserializer)?;
        Ok(Streamed {
            item,
            attributes: T::attributes(reported),
        })
    }
}

/// `POST /ccstore/v1/organizationRequests` → `{"id": "100001", "links": [...]}`, or a `message`
/// in place of the id when the site checks registration e-mails.
#[derive(Deserialize)]
struct RequestCreated {
    #[serde(default)]
    id: Option<Id>,
}

/// OCC's error body: `{"errorCode": "...", "message": "...", "status": "400", "errors": [...]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiError {
    #[serde(default)]
    error_code: Option<Id>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<ApiError>,
}

/// OCC's error body in words: `100000: Invalid input (20031: ...)`; anything else as its status
/// and first characters.
pub fn describe_errors(status: StatusCode, body: &str) -> String {
    fn one(e: &ApiError) -> Option<String> {
        let message = e.message.as_deref().map(str::trim).unwrap_or("");
        match (&e.error_code, message) {
            (Some(code), "") => Some(code.0.clone()),
            (Some(code), m) => Some(format!("{}: {m}", code.0)),
            (None, "") => None,
            (None, m) => Some(m.to_string()),
        }
    }
    match serde_json::from_str::<ApiError>(body) {
        Ok(error) => {
            let inner: Vec<String> = error.errors.iter().filter_map(one).collect();
            match (one(&error), inner.is_empty()) {
                (Some(top), true) => top,
                (Some(top), false) => format!("{top} ({})", inner.join("; ")),
                (None, false) => inner.join("; "),
                (None, true) => format!("HTTP {status}: {}", short(body)),
            }
        }
        Err(_) => format!("HTTP {status}: {}", short(body)),
    }
}

/// A string literal in a SCIM filter: JSON's quoting, as SCIM specifies.
pub(crate) fn scim_quote(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

/// The SCIM filters that look `names` up: `name eq "A" or name eq "B" ...`, as many names per
/// filter as fit in `budget` URL-encoded bytes (one per filter if a name alone is longer), in
/// the given order, without repeats or empty names.
pub fn name_filters(names: &[&str], budget: usize) -> Vec<String> {
    let encoded = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .map(str::len)
            .sum::<usize>()
    };
    let separator = encoded(" or ");
    let mut seen = std::collections::BTreeSet::new();
    let mut filters = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 0;
    for name in names {
        if name.is_empty() || !seen.insert(*name) {
            continue;
        }
        let term = format!("name eq {}", scim_quote(name));
        let cost = encoded(&term);
        if !current.is_empty() && size + separator + cost > budget {
            filters.push(current.join(" or "));
            current.clear();
            size = 0;
        }
        size += if current.is_empty() {
            cost
        } else {
            separator + cost
        };
        current.push(term);
    }
    if !current.is_empty() {
        filters.push(current.join(" or "));
    }
    filters
}

/// Of several requests with one name (a rejected one, then another), the order they stand for
/// it in: approved first, then those still in progress, then rejected; newest first within each.
pub fn preference(items: &mut [RequestItem]) {
    items.sort_by(preferred);
}

/// [`preference`]'s order of two requests.
fn preferred(a: &RequestItem, b: &RequestItem) -> std::cmp::Ordering {
    let rank = |r: &RequestItem| match r.status.as_str() {
        "approved" => 0,
        "rejected" => 2,
        // `new`, `review`, or a status this version doesn't know: not finished.
        _ => 1,
    };
    // Ids are numbers in every example; newest is the largest. Text sorts the rest.
    let newest = |r: &RequestItem| (r.id.0.parse::<u64>().ok(), r.id.0.clone());
    rank(a)
        .cmp(&rank(b))
        .then_with(|| newest(b).cmp(&newest(a)))
}

/// A request as orgform's model sees it.
pub fn request_to_remote(item: &RequestItem) -> RemoteOrg {
    let mut detail = BTreeMap::new();
    let status = match item.status.as_str() {
        "approved" => {
            if let Some(Id(id)) = item.organization.as_ref().and_then(|o| o.id.clone()) {
                detail.insert("organization_id".to_string(), id);
            }
            RemoteStatus::Ready
        }
        "rejected" => RemoteStatus::Failed {
            code: "rejected".into(),
            message: item
                .approver_comments
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map_or_else(
                    || "an administrator rejected the organization request".to_string(),
                    |c| format!("an administrator rejected the organization request: {c}"),
                ),
        },
        // Unknown statuses wait rather than ask again.
        phase => RemoteStatus::InProgress {
            phase: if phase.is_empty() { "new" } else { phase }.to_string(),
        },
    };
    RemoteOrg {
        remote_id: item.id.0.clone(),
        natural_key: ProviderType::OracleCommerce.natural_key(&[&item.name]),
        status,
        detail: detail.into(),
        attributes: Reported::default(),
    }
}

/// An organization as orgform's model sees it.
pub(crate) fn organization_to_remote(item: &OrganizationItem) -> RemoteOrg {
    let mut detail = BTreeMap::new();
    if let Some(active) = item.active {
        detail.insert("active".to_string(), active.to_string());
    }
    RemoteOrg {
        remote_id: item.id.0.clone(),
        natural_key: ProviderType::OracleCommerce.natural_key(&[&item.name]),
        status: RemoteStatus::Ready,
        detail: detail.into(),
        attributes: Reported::default(),
    }
}

/// An organization with the attributes its answer reports.
fn listed_organization(listed: &Listed<OrganizationItem>) -> RemoteOrg {
    let mut remote = organization_to_remote(&listed.item);
    remote.attributes = organization_attributes(&listed.wire);
    remote
}

/// Requests into `reality` with the attributes each reports, those sharing a name in
/// [`preference`]'s order.
fn insert_requests(reality: &mut InstanceReality, requests: Vec<(RequestItem, Reported)>) {
    let mut by_name: BTreeMap<String, Vec<(RequestItem, Reported)>> = BTreeMap::new();
    for request in requests {
        by_name
            .entry(request.0.name.clone())
            .or_default()
            .push(request);
    }
    for mut items in by_name.into_values() {
        items.sort_by(|a, b| preferred(&a.0, &b.0));
        for (item, attributes) in items {
            let mut remote = request_to_remote(&item);
            remote.attributes = attributes;
            reality.insert(remote);
        }
    }
}

/// The declarable fields of the `organization` table (the organization itself, in direct mode).
fn organization_fields() -> &'static [Field] {
    match field_at(ProviderType::OracleCommerce.schema().org, "organization").map(|f| &f.kind) {
        Some(Kind::Object(fields)) => fields,
        _ => &[],
    }
}

/// What a request reports, under spec names (`name`, `requester_comments`, `organization`,
/// `profile`, ...). A reference that carries only an id (`organization: {"id": ...}` in a list)
/// says nothing declarable and is left out, not reported as an empty table.
pub(crate) fn request_attributes(wire: &serde_json::Map<String, serde_json::Value>) -> Reported {
    from_wire(ProviderType::OracleCommerce.schema().org, wire).without_empty_tables()
}

/// What an organization reports, under spec names: a direct-mode declaration holds the
/// organization as its `organization` table.
pub(crate) fn organization_attributes(
    wire: &serde_json::Map<String, serde_json::Value>,
) -> Reported {
    let organization = from_wire(organization_fields(), wire).without_empty_tables();
    Reported::nested("organization", &organization)
}

/// Whether an organization item carries a declarable field besides its name: the larger item
/// some versions list does (`secondaryAddresses`, `customerType`, ...), the documented
/// `{name, repositoryId, active, id}` does not.
fn carries_attributes(wire: &serde_json::Map<String, serde_json::Value>) -> bool {
    organization_fields()
        .iter()
        .any(|f| f.name != "name" && wire.get(f.wire).is_some_and(|v| !v.is_null()))
}

/// An id as one path segment: unreserved characters as they are, every other byte
/// percent-encoded (ids are digits or `or-100002` in every example).
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The storefront root: `store_url` if declared, else the admin `base_url`; moved to the
/// override's host like `base_url` is (the sandbox serves both APIs on one address).
fn store_url(instance: &ProviderInstance, options: &ConnectOptions) -> String {
    let declared = instance
        .setting("store_url")
        .unwrap_or(&instance.base_url)
        .trim_end_matches('/')
        .to_string();
    match &options.base_url_override {
        None => declared,
        Some(root) => {
            let path = url::Url::parse(&declared)
                .map(|u| u.path().trim_end_matches('/').to_string())
                .unwrap_or_default();
            format!("{}{path}", root.trim_end_matches('/'))
        }
    }
}

impl Oracle {
    pub(crate) fn connect(
        instance: &ProviderInstance,
        options: &ConnectOptions,
    ) -> Result<Oracle, ProviderError> {
        let reference = instance
            .secret("app_key")
            .ok_or_else(|| ProviderError::Config {
                message: format!("provider `{}` has no `app_key`", instance.name),
            })?;
        let store_url = store_url(instance, options);
        check_transport(&store_url)?;
        Ok(Oracle {
            http: options.http(instance)?,
            store_url,
            app_key: options.secrets.resolve(reference)?,
            mode: match instance.setting("mode") {
                Some("direct") => Mode::Direct,
                _ => Mode::Request,
            },
            token: LoginCell::default(),
            secrets: options.secrets.clone(),
            instance_name: instance.name.clone(),
        })
    }

    /// A usable token: the current one, refreshed when it is due, or a new login when there is
    /// none or it has lapsed. Held under the lock, so concurrent callers renew once.
    async fn token(&self) -> Result<Arc<Token>, ProviderError> {
        let mut current = self.token.lock().await;
        if let Some(token) = &*current {
            if !token.due() {
                return Ok(token.clone());
            }
            if !token.lapsed() {
                match self.refresh(token).await {
                    Ok(fresh) => {
                        let fresh = Arc::new(fresh);
                        *current = Some(fresh.clone());
                        return Ok(fresh);
                    }
                    Err(e) => {
                        tracing::debug!(provider = %self.instance_name, error = %e, "OCC token refresh refused: logging in again");
                    }
                }
            }
        }
        LoginCell::replace(&mut current, || self.log_in()).await
    }

    /// `POST /ccadmin/v1/login` with the application key.
    async fn log_in(&self) -> Result<Token, ProviderError> {
        let (status, body) = self
            .http
            .fetch("the answer", || {
                self.authorized(&self.app_key, Method::POST, LOGIN_PATH)
                    .form(&[("grant_type", "client_credentials")])
            })
            .await?;
        match status {
            StatusCode::OK => self.token_from(&body, "login"),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(ProviderError::Unauthorized {
                message: format!(
                    "Oracle Commerce refused the application key of `{}`: {}",
                    self.instance_name,
                    describe_errors(status, &body)
                ),
            }),
            _ => Err(ProviderError::Login {
                message: describe_errors(status, &body),
            }),
        }
    }

    /// `POST /ccadmin/v1/refresh` with the current token: a new token, the clock restarted.
    async fn refresh(&self, token: &Token) -> Result<Token, ProviderError> {
        let (status, body) = self
            .http
            .fetch("the answer", || {
                self.admin(token, Method::POST, REFRESH_PATH)
            })
            .await?;
        if status == StatusCode::OK {
            self.token_from(&body, "refresh")
        } else {
            Err(ProviderError::Unauthorized {
                message: describe_errors(status, &body),
            })
        }
    }

    fn token_from(&self, body: &str, what: &str) -> Result<Token, ProviderError> {
        // Not serde's message: on a malformed answer it could quote the token.
        let answer: TokenAnswer =
            serde_json::from_str(body).map_err(|_| ProviderError::Protocol {
                message: format!("the {what} answer has no access_token"),
            })?;
        if answer.access_token.trim().is_empty() {
            return Err(ProviderError::Protocol {
                message: format!("the {what} answer has an empty access_token"),
            });
        }
        let lifetime = answer
            .expires_in
            .filter(|s| *s > 0)
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        tracing::debug!(provider = %self.instance_name, lifetime_s = lifetime.as_secs(), "OCC token issued ({what})");
        Ok(Token {
            access: SecretString::new(answer.access_token),
            issued: Instant::now(),
            lifetime,
        })
    }

    /// A request to the admin API with the token.
    fn admin(&self, token: &Token, method: Method, path: &str) -> RequestBuilder {
        self.authorized(&token.access, method, path)
    }

    /// A request that asks for JSON, with `bearer` as its credential (the application key to
    /// log in, a token after).
    fn authorized(&self, bearer: &SecretString, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, path)
            .bearer_auth(bearer.expose())
            .header(ACCEPT, "application/json")
    }

    /// Sends an admin request built for the current token. A 401 means the token was refused
    /// before any work: log in again (once per call) and send again. Reads are retried on
    /// transient failures; creates are sent once per token.
    async fn call<F>(&self, effect: Effect, build: F) -> Result<(StatusCode, String), ProviderError>
    where
        F: Fn(&Token) -> RequestBuilder,
    {
        let token = self.token().await?;
        let build = &build;
        self.token
            .send_until_accepted(
                token,
                MAX_SESSIONS,
                || self.log_in(),
                |token| async move {
                    let send = || async {
                        let response = self.http.send(build(&token), effect).await?;
                        let status = response.status();
                        Ok((status, read_body(response, effect, "the answer").await?))
                    };
                    self.http.as_allowed(effect, send).await
                },
                describe_errors,
            )
            .await
    }

    /// Every item of `path` matching `filter`, handed to `each` a page at a time in the list's
    /// order: the first page, then the other pages its count announces at once (up to
    /// [`PAGES_IN_FLIGHT`] at a time, within the instance's `max_concurrency`), then page by
    /// page for as long as more appear (or when OCC gives no count). A page is handed over as
    /// soon as those before it were, so a list of 100,000 is never held whole here.
    async fn list_pages<T, F, Fut>(
        &self,
        path: &str,
        filter: &str,
        extra: &[(&str, &str)],
        mut each: F,
    ) -> Result<(), ProviderError>
    where
        T: serde::de::DeserializeOwned + Send,
        F: FnMut(Vec<T>) -> Fut + Send,
        Fut: Future<Output = Result<(), ProviderError>> + Send,
    {
        use futures_util::StreamExt as _;
        let page = |offset: u64| self.list_page::<T>(path, filter, extra, offset);
        let first = page(0).await?;
        let step = first.items.len() as u64;
        let mut total = first.matching();
        each(first.items).await?;
        let mut offset = step;
        let mut pages = 1;
        if let Some(known) = total
            && step > 0
            && offset < known
        {
            let offsets: Vec<u64> = (offset..known)
                .step_by(usize::try_from(step).unwrap_or(usize::MAX))
                .take(MAX_PAGES)
                .collect();
            pages += offsets.len();
            let mut answers = futures_util::stream::iter(offsets)
                .map(page)
                .buffered(PAGES_IN_FLIGHT);
            while let Some(answer) = answers.next().await {
                let answer = answer?;
                offset += answer.items.len() as u64;
                total = total.max(answer.matching());
                each(answer.items).await?;
            }
        }
        let mut got = step;
        loop {
            let more = match total {
                Some(total) => offset < total && got > 0,
                // No count: a full page may have a successor.
                None => got >= PAGE_LIMIT,
            };
            if !more {
                return Ok(());
            }
            if pages >= MAX_PAGES {
                return Err(ProviderError::Protocol {
                    message: format!("listing {path} did not finish after {MAX_PAGES} pages"),
                });
            }
            let answer = page(offset).await?;
            pages += 1;
            got = answer.items.len() as u64;
            offset += got;
            total = answer.matching();
            each(answer.items).await?;
        }
    }

    /// One page of `path` from `offset`.
    async fn list_page<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        filter: &str,
        extra: &[(&str, &str)],
        offset: u64,
    ) -> Result<Page<T>, ProviderError> {
        let offset_text = offset.to_string();
        let limit_text = PAGE_LIMIT.to_string();
        let (status, body) = self
            .call(Effect::Safe, |t| {
                let request = self.admin(t, Method::GET, path);
                // No filter at all lists everything (an empty `q` is not a valid one).
                let request = if filter.is_empty() {
                    request
                } else {
                    request.query(&[("q", filter)])
                };
                request
                    .query(&[
                        ("offset", offset_text.as_str()),
                        ("limit", limit_text.as_str()),
                    ])
                    .query(extra)
            })
            .await?;
        if status != StatusCode::OK {
            let message = format!("listing {path}: {}", describe_errors(status, &body));
            return Err(match status {
                StatusCode::FORBIDDEN => ProviderError::Unauthorized { message },
                _ => ProviderError::Protocol { message },
            });
        }
        serde_json::from_str(&body).map_err(|e| ProviderError::Protocol {
            message: format!("the {path} list is not what OCC documents: {e}"),
        })
    }

    /// The filters that read `names`: `q` filters of names, or none (everything) where those
    /// would take more requests. Names in `q` filters cost a request per ~4 KB of filter. When
    /// that is more requests than N items fill pages of 250, listing everything takes fewer,
    /// for as long as most of it is orgform's.
    fn filters_for(names: &[&str], asked: usize) -> Vec<String> {
        let page = usize::try_from(PAGE_LIMIT).unwrap_or(usize::MAX);
        // A filter holds at most so many names (each term `name eq "X"` is at least 15 bytes
        // encoded, and 4 more with its ` or `): when even that many filters would be more
        // requests than the pages, none is built (100,000 names were a hundred thousand terms
        // written to be dropped).
        let most_per_filter = (MAX_ENCODED_FILTER + 4) / 19;
        let distinct = asked.saturating_sub(usize::from(names.contains(&"")));
        if distinct.div_ceil(most_per_filter.max(1)) > asked.div_ceil(page) {
            return vec![String::new()];
        }
        let by_name = name_filters(names, MAX_ENCODED_FILTER);
        if by_name.len() > asked.div_ceil(page) {
            vec![String::new()]
        } else {
            by_name
        }
    }

    /// The requests (request mode) or organizations (direct mode) with these names, exactly.
    /// Each page keeps what was asked for and drops the rest as it is read.
    async fn search(&self, names: &[&str]) -> Result<InstanceReality, ProviderError> {
        let asked: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        let filters = Self::filters_for(names, asked.len());
        let mut reality = InstanceReality::default();
        match self.mode {
            Mode::Request => {
                let mut listed = Vec::new();
                for filter in &filters {
                    self.list_pages(
                        REQUESTS_PATH,
                        filter,
                        &[],
                        |items: Vec<Streamed<RequestItem>>| {
                            // SCIM may compare without case; orgform's keys are exact.
                            listed.extend(
                                items
                                    .into_iter()
                                    .filter(|l| asked.contains(l.item.name.as_str()))
                                    .map(|l| (l.item, l.attributes)),
                            );
                            std::future::ready(Ok(()))
                        },
                    )
                    .await?;
                }
                insert_requests(&mut reality, listed);
            }
            Mode::Direct => {
                for filter in &filters {
                    self.list_pages(
                        ORGANIZATIONS_PATH,
                        filter,
                        &[("useAdvancedQParser", "true")],
                        |items: Vec<Streamed<OrganizationItem>>| {
                            for listed in items {
                                if asked.contains(listed.item.name.as_str()) {
                                    let mut remote = organization_to_remote(&listed.item);
                                    remote.attributes = listed.attributes;
                                    reality.insert(remote);
                                }
                            }
                            std::future::ready(Ok(()))
                        },
                    )
                    .await?;
                }
            }
        }
        Ok(reality)
    }

    /// Every request (request mode) or organization (direct mode) of the instance, paged without
    /// a filter, each with the attributes OCC reports. A list item lacks declarable fields the
    /// documented read of one returns (a request's list item names its organization and profile
    /// by id only; the documented organization item is `{name, repositoryId, active, id}`), so
    /// each is read once more, concurrently within `max_concurrency`: every request but a
    /// rejected one (which made nothing), and every organization whose item carries nothing
    /// but its name.
    async fn list_everything(&self) -> Result<InstanceReality, ProviderError> {
        let mut reality = InstanceReality::default();
        match self.mode {
            Mode::Request => {
                let listed = self
                    .list_whole::<Listed<RequestItem>>(REQUESTS_PATH)
                    .await?;
                let read = listed.into_iter().map(|mut listed| async move {
                    if listed.item.status != "rejected"
                        && let Some(wire) = self
                            .read_one(REQUESTS_PATH, &listed.item.id, &[("expand", "requestAll")])
                            .await?
                    {
                        listed.wire = wire;
                    }
                    Ok::<_, ProviderError>(listed)
                });
                let requests = futures_util::future::try_join_all(read).await?;
                insert_requests(
                    &mut reality,
                    requests
                        .into_iter()
                        .map(|listed| {
                            let attributes = request_attributes(&listed.wire);
                            (listed.item, attributes)
                        })
                        .collect(),
                );
            }
            Mode::Direct => {
                let listed = self
                    .list_whole::<Listed<OrganizationItem>>(ORGANIZATIONS_PATH)
                    .await?;
                let read = listed.into_iter().map(|mut listed| async move {
                    if !carries_attributes(&listed.wire)
                        && let Some(wire) = self
                            .read_one(ORGANIZATIONS_PATH, &listed.item.id, &[])
                            .await?
                    {
                        listed.wire = wire;
                    }
                    Ok::<_, ProviderError>(listed)
                });
                for listed in futures_util::future::try_join_all(read).await? {
                    reality.insert(listed_organization(&listed));
                }
            }
        }
        Ok(reality)
    }

    /// Every item of `path`, unfiltered, held.
    async fn list_whole<T: serde::de::DeserializeOwned + Send>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, ProviderError> {
        let mut all = Vec::new();
        self.list_pages(path, "", &[], |items: Vec<T>| {
            all.extend(items);
            std::future::ready(Ok(()))
        })
        .await?;
        Ok(all)
    }

    /// `GET {path}/{id}`: the whole object, or `None` when it is gone since it was listed (OCC's
    /// 404), in which case the list item stands.
    async fn read_one(
        &self,
        path: &str,
        id: &Id,
        query: &[(&str, &str)],
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ProviderError> {
        let url = format!("{path}/{}", path_segment(&id.0));
        let (status, body) = self
            .call(Effect::Safe, |t| {
                self.admin(t, Method::GET, &url).query(query)
            })
            .await?;
        match status {
            StatusCode::OK => {
                serde_json::from_str(&body)
                    .map(Some)
                    .map_err(|e| ProviderError::Protocol {
                        message: format!("{path}/{{id}} answered what OCC does not document: {e}"),
                    })
            }
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::FORBIDDEN => Err(ProviderError::Unauthorized {
                message: format!("reading {url}: {}", describe_errors(status, &body)),
            }),
            _ => Err(ProviderError::Protocol {
                message: format!("reading {url}: {}", describe_errors(status, &body)),
            }),
        }
    }

    /// Refuses a declaration that does not fit the instance's mode, before anything is sent.
    /// `validate` refuses such specs already (`schema::oracle::fields_fit_mode`); this stays for
    /// an `OrgSpec` built some other way, since a wrong mode would drop fields silently.
    fn check_mode(&self, org: &OrgSpec) -> Result<(), ProviderError> {
        let wrong = |why: &str| {
            Err(ProviderError::Config {
                message: format!(
                    "organization `{}` does not fit provider `{}`: {why}",
                    org.address, self.instance_name
                ),
            })
        };
        let attrs = org.attrs.unpack();
        let organization_name = attrs
            .get("organization")
            .and_then(Value::as_table)
            .and_then(|t| t.get("name"))
            .is_some();
        match self.mode {
            Mode::Request if !attrs.contains_key("name") => wrong(
                "mode = \"request\" sends an organization request, which needs `name` and `profile`; add them, or set `mode = \"direct\"` on the provider",
            ),
            Mode::Direct if !organization_name => wrong(
                "mode = \"direct\" creates the `organization` table, which needs `organization.name`",
            ),
            Mode::Direct if attrs.contains_key("name") => wrong(
                "it declares an organization request (`name`), but mode = \"direct\" sends only `organization`; remove `name`, `profile`, `requester_comments` and `related_organization_name`, or set `mode = \"request\"`",
            ),
            _ => Ok(()),
        }
    }

    async fn create_request(&self, org: &OrgSpec) -> Result<RemoteOrg, ProviderError> {
        let schema = schema()?;
        let body = create_body(schema.org, org, &self.secrets)?;
        let url = format!("{}{STORE_REQUESTS_PATH}", self.store_url);
        // The storefront's self-registration: no admin token (see the module docs).
        let request = self
            .http
            .request(Method::POST, &url)
            .header(ACCEPT, "application/json")
            .json(&body);
        let response = self.http.send(request, Effect::Creates).await?;
        let status = response.status();
        let text = read_body(response, Effect::Creates, "the answer").await?;
        match status {
            StatusCode::OK | StatusCode::CREATED => {
                let created: RequestCreated = created_answer(&text, "the request's create answer")?;
                let Some(Id(id)) = created.id.filter(|i| !i.0.trim().is_empty()) else {
                    // Sites that check registration e-mails answer a message, not the id; the
                    // look-up by name finds the request.
                    return Err(ProviderError::OutcomeUnknown {
                        message: format!(
                            "OCC accepted the request without saying its id: {}",
                            short(&text)
                        ),
                    });
                };
                Ok(RemoteOrg {
                    remote_id: id,
                    natural_key: org.natural_key.clone(),
                    status: RemoteStatus::InProgress {
                        phase: "new".into(),
                    },
                    detail: crate::model::Detail::default(),
                    attributes: Reported::default(),
                })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(ProviderError::Rejected {
                status: status.as_u16(),
                message: format!(
                    "{} (the storefront refused an anonymous organization request: check that the site lets shoppers register accounts, and `store_url`)",
                    describe_errors(status, &text)
                ),
            }),
            s if s.is_client_error() => Err(ProviderError::Rejected {
                status: s.as_u16(),
                message: describe_errors(s, &text),
            }),
            s => Err(ProviderError::OutcomeUnknown {
                message: format!("unexpected HTTP {s}: {}", describe_errors(s, &text)),
            }),
        }
    }

    async fn create_organization(&self, org: &OrgSpec) -> Result<RemoteOrg, ProviderError> {
        let schema = schema()?;
        let fields = match field_at(schema.org, "organization").map(|f| &f.kind) {
            Some(Kind::Object(fields)) => *fields,
            _ => {
                return Err(ProviderError::Config {
                    message: "the OCC schema has no `organization` table".into(),
                });
            }
        };
        let organization = org
            .attrs
            .unpack()
            .get("organization")
            .and_then(Value::as_table)
            .cloned()
            .unwrap_or_default();
        let body = to_json(fields, &organization, &self.secrets, SecretEncoding::Plain)?;
        let (status, text) = self
            .call(Effect::Creates, |t| {
                self.admin(t, Method::POST, ORGANIZATIONS_PATH).json(&body)
            })
            .await?;
        match status {
            StatusCode::OK | StatusCode::CREATED => {
                let created: Listed<OrganizationItem> =
                    created_answer(&text, "the organization's create answer")?;
                let mut remote = listed_organization(&created);
                remote.natural_key = org.natural_key.clone();
                Ok(remote)
            }
            s if s.is_client_error() => Err(ProviderError::Rejected {
                status: s.as_u16(),
                message: describe_errors(s, &text),
            }),
            s => Err(ProviderError::OutcomeUnknown {
                message: format!("unexpected HTTP {s}: {}", describe_errors(s, &text)),
            }),
        }
    }
}

fn schema() -> Result<&'static crate::catalog::schema::ProviderSchema, ProviderError> {
    Ok(ProviderType::OracleCommerce.schema())
}

impl Provider for Oracle {
    async fn login(&self) -> Result<(), ProviderError> {
        self.token().await.map(|_| ())
    }

    async fn read(&self, keys: &[NaturalKey]) -> Result<InstanceReality, ProviderError> {
        let names: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        self.search(&names).await
    }

    /// Request mode: the requests' ids and statuses, each page handed over as it is read (a
    /// request's list item carries its status and organization; its other fields, and the
    /// attributes a read reports, are not kept). Every request of a name is handed over, so
    /// the one asked about is found by its id. Direct mode: `read`.
    async fn look(&self, keys: &[NaturalKey], found: &Found) -> Result<(), ProviderError> {
        let names: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        if self.mode == Mode::Direct {
            let reality = self.search(&names).await?;
            return send_found(found, reality.orgs.into_values().flatten()).await;
        }
        let asked: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        for filter in Self::filters_for(&names, asked.len()) {
            self.list_pages(REQUESTS_PATH, &filter, &[], |items: Vec<RequestItem>| {
                let page: Vec<RemoteOrg> = items
                    .iter()
                    .filter(|item| asked.contains(item.name.as_str()))
                    .map(request_to_remote)
                    .collect();
                let found = found.clone();
                async move {
                    if page.is_empty() {
                        Ok(())
                    } else {
                        send_batch(&found, page).await
                    }
                }
            })
            .await?;
        }
        Ok(())
    }

    async fn list_all(&self) -> Result<InstanceReality, ProviderError> {
        self.list_everything().await
    }

    async fn create(&self, org: &OrgSpec, cx: CreateContext) -> Result<RemoteOrg, ProviderError> {
        self.check_mode(org)?;
        let name = org.natural_key.0.as_str();
        // OCC would accept a second request or organization with this name: look first, unless
        // this run's own read just found none live. A rejected request does not stand in the way
        // of asking again.
        if !cx.absent_in_read {
            let existing = self.search(&[name]).await?;
            if let Some(found) = existing
                .find(&org.natural_key)
                .iter()
                .find(|o| !matches!(o.status, RemoteStatus::Failed { .. }))
            {
                let what = match self.mode {
                    Mode::Request => "organization request",
                    Mode::Direct => "organization",
                };
                return Err(ProviderError::AlreadyExists {
                    message: format!("OCC {what} {} is already named `{name}`", found.remote_id),
                });
            }
        }
        match self.mode {
            Mode::Request => self.create_request(org).await,
            Mode::Direct => self.create_organization(org).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_item_reports_its_fields_and_no_bare_references() {
        let listed: Listed<RequestItem> = serde_json::from_value(json!({
            "id": 100_001, "name": "Acme", "status": "approved", "siteId": "siteUS",
            "requesterComments": "Some comments", "relatedOrganizationName": null,
            "organization": {"id": "or-1"}, "profile": {"id": "200001"},
        }))
        .expect("a documented request item");
        assert_eq!(listed.item.id, Id("100001".into()));
        assert_eq!(
            serde_json::Value::Object(request_attributes(&listed.wire).to_json()),
            json!({"name": "Acme", "requester_comments": "Some comments"})
        );
        // Read with `expand`, the same request names what its organization and profile hold.
        let expanded = json!({
            "name": "Acme",
            "organization": {"id": "or-1", "customerType": "OEM", "partyId": "42"},
            "profile": {"id": "200001", "email": "a@acme.example", "firstName": "Dana"},
        });
        let serde_json::Value::Object(expanded) = expanded else {
            unreachable!("a JSON object literal")
        };
        assert_eq!(
            serde_json::Value::Object(request_attributes(&expanded).to_json()),
            json!({
                "name": "Acme",
                "organization": {"customer_type": "OEM", "party_id": 42},
                "profile": {"email": "a@acme.example", "first_name": "Dana"},
            })
        );
    }

    #[test]
    fn an_organization_reports_under_its_table_and_a_brief_item_asks_for_a_read() {
        let brief: Listed<OrganizationItem> = serde_json::from_value(json!({
            "name": "Acme Corp", "repositoryId": "or-100002", "active": true, "id": "or-100002",
        }))
        .expect("the documented organization item");
        assert!(!carries_attributes(&brief.wire));
        assert_eq!(
            serde_json::Value::Object(listed_organization(&brief).attributes.to_json()),
            json!({"organization": {"name": "Acme Corp"}})
        );
        let whole: Listed<OrganizationItem> = serde_json::from_value(json!({
            "name": "Acme Corp", "id": "or-100002", "active": true, "approvalRequired": false,
            "customerType": "Standard", "dunsNumber": "123456789", "secondaryAddresses": [],
        }))
        .expect("the larger organization item");
        assert!(carries_attributes(&whole.wire));
        let remote = listed_organization(&whole);
        assert_eq!(
            remote.detail.get("active").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            serde_json::Value::Object(remote.attributes.to_json()),
            json!({"organization": {
                "customer_type": "Standard", "duns_number": "123456789", "name": "Acme Corp",
                "secondary_addresses": [],
            }})
        );
    }

    /// A list item read as it streams in is what its whole JSON tree read.
    #[test]
    fn items_streamed_from_a_list_are_what_their_trees_read() {
        let requests = [
            json!({"id": 100_001, "name": "Acme", "status": "approved", "siteId": "siteUS",
                   "requesterComments": "c", "organization": {"id": "or-1"}, "profile": {"id": "2"}}),
            json!({"id": "100002", "name": "B", "status": "rejected", "organization": null,
                   "approverComments": "no", "relatedOrganizationName": 5}),
            json!({"id": 3, "organization": {"id": 7, "customerType": "OEM", "partyId": "42"},
                   "profile": {"email": "a@b.example", "firstName": null}}),
        ];
        for wire in requests {
            let listed: Listed<RequestItem> = serde_json::from_value(wire.clone()).expect("item");
            let streamed: Streamed<RequestItem> =
                serde_json::from_str(&wire.to_string()).expect("item");
            assert_eq!(streamed.item, listed.item, "{wire}");
            assert_eq!(
                streamed.attributes,
                request_attributes(&listed.wire),
                "{wire}"
            );
        }
        let organizations = [
            json!({"name": "Acme Corp", "repositoryId": "or-1", "active": true, "id": "or-1"}),
            json!({"name": "Acme Corp", "id": 12, "active": null, "customerType": "Standard",
                   "dunsNumber": 123_456_789, "secondaryAddresses": [{"address": {"city": "X"}}]}),
        ];
        for wire in organizations {
            let listed: Listed<OrganizationItem> =
                serde_json::from_value(wire.clone()).expect("item");
            let streamed: Streamed<OrganizationItem> =
                serde_json::from_str(&wire.to_string()).expect("item");
            assert_eq!(streamed.item, listed.item, "{wire}");
            assert_eq!(
                streamed.attributes,
                listed_organization(&listed).attributes,
                "{wire}"
            );
        }
        for bad in [
            r#"{"name": "x"}"#,
            r#"{"id": true}"#,
            "[1]",
            r#"{"id": 1, "status": 5}"#,
        ] {
            assert!(
                serde_json::from_str::<Streamed<RequestItem>>(bad).is_err(),
                "{bad}"
            );
        }
    }

    /// The shortcut past building filters for many names chooses as building them did.
    #[test]
    fn many_names_list_everything_without_building_their_filters() {
        for n in [0_usize, 1, 2, 300, 5_000, 20_000, 60_000] {
            let owned: Vec<String> = (0..n).map(|i| format!("N{i}")).collect();
            let names: Vec<&str> = owned.iter().map(String::as_str).collect();
            let built = name_filters(&names, MAX_ENCODED_FILTER);
            let page = usize::try_from(PAGE_LIMIT).expect("a page size");
            let expected = if built.len() > n.div_ceil(page) {
                vec![String::new()]
            } else {
                built
            };
            assert_eq!(Oracle::filters_for(&names, n), expected, "{n} names");
        }
    }

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(path_segment("or-100002"), "or-100002");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }
}
