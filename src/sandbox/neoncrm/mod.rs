//! The NeonCRM API v1 emulator (`docs/providers/neoncrm.md`, seed 004): what `orgform`'s
//! NeonCRM client calls, served under `/neonws/services/api` with v1's own wire contract. A
//! create's checks against the catalogs are in `checks.rs`, `listAccounts` in `search.rs`.
//!
//! The logic is plain Rust with no HTTP in it: [`NeonData::handle`] takes an endpoint, its
//! parameters in order (query string, then a form body) and the time, and returns the JSON body.
//! v1 answers everything with HTTP 200, failures included, so the body is the whole answer; the
//! routes at the end of this file only carry it. What it reproduces:
//!
//! - `common/login` with the sandbox's org id and API key ([`ORG_ID`], [`API_KEY`]) gives a
//!   `userSessionId`; a session lapses after [`NeonConfig::session_idle`] without use (10
//!   minutes, as a third-party client reports), or after [`NeonConfig::session_max_uses`]
//!   calls when that knob is set, and then every call answers FAIL code 4.
//! - `account/createOrganizationAccount` checks what the seed's error table names (10050 to
//!   10071) against small catalogs of organization types, sources, address types, states and
//!   countries, and **allows duplicate names**, as the real API does.
//! - `account/createIndividualAccount` [I: named like its organization sibling; not in seed
//!   004] holds a person, whose `organizationName` (where they work) may equal an organization's
//!   name, as the vendor's keyword-search example shows an individual result carrying one.
//! - `account/listAccounts` with output columns, `searches.search.*` (ANDed; EQUAL is
//!   case-insensitive; IN_RANGE takes `("a","b")`), 1-based pages of at most 200, sorted. It
//!   searches individuals and organizations alike, and names each column in an answer as the
//!   vendor's List Accounts example does (`Account Id` when asked `Account ID`), from
//!   `search::COLUMNS`, never by echoing the request.
//! - `account/retrieveOrganizationAccount` gives back what was created (never its password),
//!   each lookup (source, organization type, address type, state, country) with both its id
//!   (or code) and its name, as the vendor's example shows them, whichever one was sent.
//! - `account/updateOrganizationAccount` replaces an organization account whole, as documented
//!   (a parameter left out or blank clears its field), with the create's checks: how an
//!   account changes at NeonCRM behind orgform's back.
//! - Every one-element list is rendered as a bare object (`errors.error`, `nameValuePairs`,
//!   `nameValuePair`, `addresses.address`, ...), v1's XML-born quirk.
//!
//! Choices the sources leave open are marked [I] (inferred) where they are made.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::serve::{Call, LostAnswers, on_data};
use super::state::SandboxState;

mod checks;
mod index;
mod search;

use checks::{
    NAME_REQUIRED, PASSWORD_REQUIRED, SOURCE_INVALID, SOURCES, USERNAME_REQUIRED, USERNAME_TAKEN,
    check_addresses, check_custom_fields, check_organization_types, complete_lookups, lookup,
};

/// Where the real API lives under its host; the sandbox serves it at the same path.
pub const PATH_PREFIX: &str = "/neonws/services/api";

/// The paths this emulator owns at the sandbox.
pub(crate) const PREFIXES: &[&str] = &[PATH_PREFIX];

/// The credentials the emulator accepts live in the catalog, with the rest of NeonCRM's facts.
pub use crate::catalog::neoncrm::sandbox::{API_KEY, ORG_ID};

/// The documented page size limit of `listAccounts`.
pub(crate) const MAX_PAGE_SIZE: usize = 200;

/// [I] The page size when a request names none.
const DEFAULT_PAGE_SIZE: usize = 10;

/// The emulator's knobs.
#[derive(Clone, Debug)]
pub struct NeonConfig {
    /// How long a session lives without use (default 10 minutes).
    pub session_idle: Duration,
    /// When set, a session lapses after this many calls, whatever the time: a deterministic way
    /// to make a session lapse in the middle of a run.
    pub session_max_uses: Option<u32>,
    /// Answer 10051 to a create without organization types, as an organization configured to
    /// require them does.
    pub require_organization_type: bool,
    /// The first this many creates are committed, then answered with HTTP 502 instead of their
    /// account id, as a proxy that lost the upstream answer: the client cannot know whether
    /// they happened, and must look before it creates again.
    pub lose_create_answers: u32,
    /// The most accounts a `listAccounts` page holds ([`MAX_PAGE_SIZE`], as documented); 0
    /// for no cap.
    pub max_page_size: usize,
}

impl Default for NeonConfig {
    fn default() -> NeonConfig {
        NeonConfig {
            session_idle: Duration::from_secs(10 * 60),
            session_max_uses: None,
            require_organization_type: false,
            lose_create_answers: 0,
            max_page_size: MAX_PAGE_SIZE,
        }
    }
}

/// What the emulator keeps across restarts: its accounts and the next account id. Sessions
/// are not kept, as a restarted server would forget them too.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NeonData {
    pub accounts: Vec<Account>,
    pub(crate) next_account_id: u64,
    /// Live sessions by id; transient, never saved.
    #[serde(skip)]
    sessions: HashMap<String, Session>,
    /// How many create answers [`NeonConfig::lose_create_answers`] has lost so far; transient.
    #[serde(skip)]
    lost_answers: LostAnswers,
    /// Where to find accounts by id, name and username; transient, built again when needed.
    #[serde(skip)]
    index: index::Index,
}

impl Default for NeonData {
    fn default() -> NeonData {
        NeonData {
            accounts: Vec::new(),
            next_account_id: 10_001,
            sessions: HashMap::new(),
            lost_answers: LostAnswers::default(),
            index: index::Index::default(),
        }
    }
}

/// What kind of account it is: v1's `userType` (Individual | Organization, per the
/// SearchCriteria doc).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum UserType {
    Individual,
    #[default]
    Organization,
}

impl UserType {
    fn name(self) -> &'static str {
        match self {
            UserType::Individual => "Individual",
            UserType::Organization => "Organization",
        }
    }
}

/// One account, as created: an organization, or an individual (whose `organization_name` is
/// where they work, possibly blank).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub account_id: u64,
    pub organization_name: String,
    /// Data saved before individuals existed holds organizations only.
    #[serde(default)]
    pub user_type: UserType,
    /// For 10061 (login username taken); the password is never kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_username: Option<String>,
    /// The `organizationAccount` object that `retrieveOrganizationAccount` answers, with lists
    /// kept as arrays (the one-element quirk is applied when it is rendered).
    pub organization_account: Value,
    /// The parameters of the create that came blank, in order, kept for tests (the data file
    /// shows them): NeonCRM reads a blank as a value (an update documents that a blank clears
    /// a field), so a client must not send a field it leaves unset. The custom field triplet's
    /// blanks are the seed's own rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blank_parameters: Vec<String>,
}

/// The v1 methods the emulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Login,
    Logout,
    CreateOrganizationAccount,
    CreateIndividualAccount,
    ListAccounts,
    RetrieveOrganizationAccount,
    UpdateOrganizationAccount,
}

impl Endpoint {
    pub(crate) const ALL: [Endpoint; 7] = [
        Endpoint::Login,
        Endpoint::Logout,
        Endpoint::CreateOrganizationAccount,
        Endpoint::CreateIndividualAccount,
        Endpoint::ListAccounts,
        Endpoint::RetrieveOrganizationAccount,
        Endpoint::UpdateOrganizationAccount,
    ];

    /// The path after [`PATH_PREFIX`], like `account/listAccounts`.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Login => "common/login",
            Endpoint::Logout => "common/logout",
            Endpoint::CreateOrganizationAccount => "account/createOrganizationAccount",
            Endpoint::CreateIndividualAccount => "account/createIndividualAccount",
            Endpoint::ListAccounts => "account/listAccounts",
            Endpoint::RetrieveOrganizationAccount => "account/retrieveOrganizationAccount",
            Endpoint::UpdateOrganizationAccount => "account/updateOrganizationAccount",
        }
    }

    /// The name of the answer's wrapper object, like `listAccountsResponse`.
    fn wrapper(self) -> &'static str {
        match self {
            Endpoint::Login => "loginResponse",
            Endpoint::Logout => "logoutResponse",
            Endpoint::CreateOrganizationAccount => "createOrganizationAccountResponse",
            Endpoint::CreateIndividualAccount => "createIndividualAccountResponse",
            Endpoint::ListAccounts => "listAccountsResponse",
            Endpoint::RetrieveOrganizationAccount => "retrieveOrganizationAccountResponse",
            Endpoint::UpdateOrganizationAccount => "updateOrganizationAccountResponse",
        }
    }

    /// Whether this is the call that creates an organization.
    pub(crate) fn creates(self) -> bool {
        self == Endpoint::CreateOrganizationAccount
    }

    /// Whether this call changes the data (and so is saved).
    fn mutates(self) -> bool {
        matches!(
            self,
            Endpoint::CreateOrganizationAccount
                | Endpoint::CreateIndividualAccount
                | Endpoint::UpdateOrganizationAccount
        )
    }
}

/// A v1 error: code and text.
type ApiError = (&'static str, &'static str);

const SESSION_REQUIRED: ApiError = ("3", "User session ID is required.");
const SESSION_INVALID: ApiError = ("4", "User session id is invalid.");
// [I] v1 documents no code for a refused login; this one says what happened.
const LOGIN_INVALID: ApiError = (
    "6",
    "Login failed: the API key or organization id is invalid.",
);
// [I] No code is documented for an unknown account id.
const ACCOUNT_ID_INVALID: ApiError = ("10010", "Account id is invalid.");

#[derive(Clone, Debug)]
struct Session {
    last_used: Instant,
    uses: u32,
}

/// One call being served: the knobs, the data, and a random number for a new session id.
struct Emulator<'a> {
    config: &'a NeonConfig,
    data: &'a mut NeonData,
    random: u64,
}

/// Parameters in the order they came, as v1 pairs repeated groups by position.
struct Params<'a>(&'a [(String, String)]);

impl Params<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    }

    /// A parameter that is present and not blank.
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .collect()
    }
}

impl NeonData {
    /// How many organization accounts it holds (for `/_sandbox/stats`).
    pub fn organizations(&self) -> usize {
        self.accounts
            .iter()
            .filter(|a| a.user_type == UserType::Organization)
            .count()
    }

    /// Forgets every account and session (`POST /_sandbox/reset`).
    pub(crate) fn reset(&mut self) {
        *self = NeonData::default();
    }

    /// Serves one call; `random` seeds a new session id. Always HTTP 200 at the real API: the
    /// body says whether it succeeded.
    pub fn handle(
        &mut self,
        config: &NeonConfig,
        endpoint: Endpoint,
        params: &[(String, String)],
        now: Instant,
        wall: SystemTime,
        random: u64,
    ) -> Value {
        self.answer(config, endpoint, params, now, wall, random)
            .into_value()
    }

    /// [`NeonData::handle`], with a retrieve's answer as JSON text already.
    pub(crate) fn answer(
        &mut self,
        config: &NeonConfig,
        endpoint: Endpoint,
        params: &[(String, String)],
        now: Instant,
        wall: SystemTime,
        random: u64,
    ) -> Answer {
        self.index.refresh(&self.accounts);
        Emulator {
            config,
            data: self,
            random,
        }
        .handle(endpoint, params, now, wall)
    }
}

/// What a call answers: a JSON value, or (for a retrieve, the one answer as large as an
/// account) the JSON text already, written straight from the stored account rather than
/// through a copy of it made for the answer.
pub(crate) enum Answer {
    Value(Value),
    Text(Vec<u8>),
}

impl Answer {
    /// Whether the call succeeded, for a create (a retrieve is no create).
    fn succeeded(&self, endpoint: Endpoint) -> bool {
        match self {
            Answer::Value(answer) => answer[endpoint.wrapper()]["operationResult"] == "SUCCESS",
            Answer::Text(_) => true,
        }
    }

    /// The answer as a JSON value.
    fn into_value(self) -> Value {
        match self {
            Answer::Value(answer) => answer,
            Answer::Text(text) => serde_json::from_slice(&text).unwrap_or(Value::Null),
        }
    }
}

impl Emulator<'_> {
    fn handle(
        &mut self,
        endpoint: Endpoint,
        params: &[(String, String)],
        now: Instant,
        wall: SystemTime,
    ) -> Answer {
        let params = Params(params);
        let result = if endpoint == Endpoint::Login {
            self.login(&params, now)
        } else {
            match self.check_session(&params, now) {
                Err(e) => Err(vec![e]),
                Ok(session) => match endpoint {
                    Endpoint::Logout => {
                        self.data.sessions.remove(&session);
                        Ok(json!({"responseMessage": "User logged out."}))
                    }
                    Endpoint::CreateOrganizationAccount => self.create(&params),
                    Endpoint::CreateIndividualAccount => self.create_individual(&params),
                    Endpoint::ListAccounts => match self.list(&params) {
                        Ok(listed) => return listed.answer(wall),
                        Err(errors) => Err(errors),
                    },
                    Endpoint::UpdateOrganizationAccount => self.update(&params),
                    Endpoint::RetrieveOrganizationAccount | Endpoint::Login => {
                        match self.retrieve(&params) {
                            Ok(account) => return retrieved(account, wall),
                            Err(errors) => Err(errors),
                        }
                    }
                },
            }
        };
        Answer::Value(envelope(endpoint, result, wall))
    }

    fn login(&mut self, params: &Params<'_>, now: Instant) -> Result<Value, Vec<ApiError>> {
        if params.get("login.apiKey") != Some(API_KEY) || params.get("login.orgid") != Some(ORG_ID)
        {
            return Err(vec![LOGIN_INVALID]);
        }
        // Like the documented `T1356492402097`: a T and thirteen digits.
        let id = format!("T{}", 1_000_000_000_000 + self.random % 9_000_000_000_000);
        self.data.sessions.insert(
            id.clone(),
            Session {
                last_used: now,
                uses: 0,
            },
        );
        Ok(json!({"responseMessage": "User logged in.", "userSessionId": id}))
    }

    /// The session of a call, touched; or why it is refused (3 missing, 4 unknown or lapsed).
    fn check_session(&mut self, params: &Params<'_>, now: Instant) -> Result<String, ApiError> {
        let Some(id) = params.value("userSessionId") else {
            return Err(SESSION_REQUIRED);
        };
        let Some(session) = self.data.sessions.get_mut(id) else {
            return Err(SESSION_INVALID);
        };
        let idle = now.saturating_duration_since(session.last_used);
        let used_up = self
            .config
            .session_max_uses
            .is_some_and(|max| session.uses >= max);
        if idle > self.config.session_idle || used_up {
            self.data.sessions.remove(id);
            return Err(SESSION_INVALID);
        }
        session.last_used = now;
        session.uses += 1;
        Ok(id.to_string())
    }

    fn create(&mut self, params: &Params<'_>) -> Result<Value, Vec<ApiError>> {
        let errors = self.check_account(params, None);
        if !errors.is_empty() {
            return Err(errors);
        }
        let account_id = self.data.next_account_id;
        self.data.next_account_id += 1;
        let mut object = account_object(params, ORGANIZATION_ACCOUNT, account_id);
        object.insert("createdBy".into(), json!("API User"));
        let blank_parameters = params
            .0
            .iter()
            .filter(|(n, v)| v.trim().is_empty() && !matches!(n.as_str(), "responseType"))
            .map(|(n, _)| n.clone())
            .collect();
        self.push(Account {
            account_id,
            organization_name: organization_name(params),
            user_type: UserType::Organization,
            login_username: login_username(params),
            organization_account: Value::Object(object),
            blank_parameters,
        });
        Ok(json!({"responseMessage": "organization account created.", "accountId": account_id}))
    }

    /// Adds an account, and indexes it.
    fn push(&mut self, account: Account) {
        let position = self.data.accounts.len();
        self.data.index.add(position, &account);
        self.data.accounts.push(account);
    }

    /// The position of the organization account with this id, if there is one.
    fn organization_at(&self, id: u64) -> Option<usize> {
        self.data.index.with_id(id).iter().copied().find(|p| {
            self.data
                .accounts
                .get(*p)
                .is_some_and(|a| a.account_id == id && a.user_type == UserType::Organization)
        })
    }

    /// What the seed's error table refuses in an organization account's parameters (10050 to
    /// 10071), for a create or for an update of account `updating` (whose own login username is
    /// not taken by itself).
    fn check_account(&self, params: &Params<'_>, updating: Option<u64>) -> Vec<ApiError> {
        let mut errors = Vec::new();
        if params
            .value("organizationAccount.organizationName")
            .is_none()
        {
            errors.push(NAME_REQUIRED);
        }

        let username = params.value("organizationAccount.login.username");
        let password = params.value("organizationAccount.login.password");
        match (username, password) {
            (Some(_), None) => errors.push(PASSWORD_REQUIRED),
            (None, Some(_)) => errors.push(USERNAME_REQUIRED),
            (Some(u), Some(_)) => {
                let taken = self.data.index.with_username(u).iter().any(|p| {
                    let Some(a) = self.data.accounts.get(*p) else {
                        return false;
                    };
                    Some(a.account_id) != updating
                        && a.login_username
                            .as_deref()
                            .is_some_and(|t| t.eq_ignore_ascii_case(u))
                });
                if taken {
                    errors.push(USERNAME_TAKEN);
                }
            }
            (None, None) => {}
        }

        check_organization_types(params, self.config.require_organization_type, &mut errors);

        let source = (
            params.value("organizationAccount.source.id"),
            params.value("organizationAccount.source.name"),
        );
        if (source.0.is_some() || source.1.is_some())
            && lookup(SOURCES, source.0, source.1).is_none()
        {
            errors.push(SOURCE_INVALID);
        }

        check_addresses(params, &mut errors);
        check_custom_fields(params, &mut errors);
        errors.dedup();
        errors
    }

    /// `updateOrganizationAccount` [S: "Update Organization Account"]: the account named by
    /// `organizationAccount.accountId` replaced whole by the parameters, so that one left out
    /// or blank clears its field, as documented; checked as a create is. Its creation stamp
    /// stays.
    fn update(&mut self, params: &Params<'_>) -> Result<Value, Vec<ApiError>> {
        let index = params
            .value("organizationAccount.accountId")
            .and_then(|id| id.parse::<u64>().ok())
            .and_then(|id| self.organization_at(id))
            .ok_or_else(|| vec![ACCOUNT_ID_INVALID])?;
        let account_id = self.data.accounts[index].account_id;
        let errors = self.check_account(params, Some(account_id));
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut object = account_object(params, ORGANIZATION_ACCOUNT, account_id);
        let account = &mut self.data.accounts[index];
        if let Some(by) = account.organization_account.get("createdBy") {
            object.insert("createdBy".into(), by.clone());
        }
        let old = account.clone();
        account.organization_name = organization_name(params);
        account.login_username = login_username(params);
        account.organization_account = Value::Object(object);
        self.data.index.replace(index, &old, account);
        Ok(json!({"responseMessage": "Organization account updated successfully."}))
    }

    /// [I] A person with a first and last name and, optionally, the organization they work
    /// at; nothing else is checked, as orgform never creates one.
    fn create_individual(&mut self, params: &Params<'_>) -> Result<Value, Vec<ApiError>> {
        let account_id = self.data.next_account_id;
        self.data.next_account_id += 1;
        let object = account_object(params, "individualAccount.", account_id);
        self.push(Account {
            account_id,
            organization_name: params
                .value("individualAccount.organizationName")
                .unwrap_or_default()
                .to_string(),
            user_type: UserType::Individual,
            login_username: None,
            organization_account: Value::Object(object),
            blank_parameters: Vec::new(),
        });
        Ok(json!({"responseMessage": "individual account created.", "accountId": account_id}))
    }

    /// The organization account a retrieve names.
    fn retrieve(&self, params: &Params<'_>) -> Result<&Account, Vec<ApiError>> {
        params
            .value("accountId")
            .and_then(|id| id.parse::<u64>().ok())
            .and_then(|id| self.organization_at(id))
            .and_then(|p| self.data.accounts.get(p))
            .ok_or_else(|| vec![ACCOUNT_ID_INVALID])
    }
}

/// The parameters of an organization account start with this.
const ORGANIZATION_ACCOUNT: &str = "organizationAccount.";

/// The account's object from the parameters under `prefix` (`organizationAccount.`,
/// `individualAccount.`) with its id in it. The password is never kept, nor shown by retrieve.
fn account_object(params: &Params<'_>, prefix: &str, account_id: u64) -> Map<String, Value> {
    let mut object = build_object(
        params
            .0
            .iter()
            .filter_map(|(n, v)| Some((n.strip_prefix(prefix)?, v.trim())))
            .filter(|(n, _)| *n != "login.password"),
    );
    object.insert("accountId".into(), json!(account_id));
    complete_lookups(&mut object);
    object
}

fn organization_name(params: &Params<'_>) -> String {
    params
        .value("organizationAccount.organizationName")
        .unwrap_or_default()
        .to_string()
}

fn login_username(params: &Params<'_>) -> Option<String> {
    params
        .value("organizationAccount.login.username")
        .map(str::to_string)
}

/// The repeated groups of `organizationAccount`, whose elements are paired by position.
const GROUPS: &[&str] = &[
    "primaryContact.addresses.address",
    "customFieldDataList.customFieldData",
    "organizationTypes.organizationType",
];

/// The `organizationAccount` object from its dotted parameters (blank ones left out): the i-th
/// occurrence of a parameter inside a repeated group belongs to the group's i-th element.
fn build_object<'a>(params: impl Iterator<Item = (&'a str, &'a str)>) -> Map<String, Value> {
    let mut object = Map::new();
    let mut groups: Vec<Vec<Map<String, Value>>> = vec![Vec::new(); GROUPS.len()];
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (name, value) in params {
        let group = GROUPS
            .iter()
            .position(|g| name.strip_prefix(g).is_some_and(|r| r.starts_with('.')));
        match group {
            Some(g) => {
                let leaf = &name[GROUPS[g].len() + 1..];
                let index = seen.entry(name).or_insert(0);
                let items = &mut groups[g];
                while items.len() <= *index {
                    items.push(Map::new());
                }
                if !value.is_empty() {
                    insert_path(&mut items[*index], leaf, typed(leaf, value));
                }
                *index += 1;
            }
            None if !value.is_empty() => insert_path(&mut object, name, typed(name, value)),
            None => {}
        }
    }
    for (g, items) in groups.into_iter().enumerate() {
        let items: Vec<Value> = items
            .into_iter()
            .filter(|i| !i.is_empty())
            .map(Value::Object)
            .collect();
        if !items.is_empty() {
            insert_path(&mut object, GROUPS[g], Value::Array(items));
        }
    }
    object
}

fn insert_path(object: &mut Map<String, Value>, path: &str, value: Value) {
    let mut at = object;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            at.insert(part.to_string(), value);
            return;
        }
        let next = at
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(map) = next else { return };
        at = map;
    }
}

/// Values as retrieve shows them: ids as numbers, flags as booleans, the rest as text.
fn typed(name: &str, value: &str) -> Value {
    let leaf = name.rsplit('.').next().unwrap_or(name);
    if value == "true" || value == "false" {
        return Value::Bool(value == "true");
    }
    // Digits that a number would not give back (a leading zero) stay text.
    if (leaf == "id" || leaf.ends_with("Id"))
        && let Ok(n) = value.parse::<u64>()
        && n.to_string() == value
    {
        return json!(n);
    }
    Value::String(value.to_string())
}

/// v1's rendering of a list: one element is a bare object, several an array [S: example].
fn v1_list(mut items: Vec<Value>) -> Value {
    if items.len() == 1 {
        items.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(items)
    }
}

/// A stored object with every list rendered the v1 way.
fn render(value: &Value) -> Value {
    match value {
        Value::Array(items) => v1_list(items.iter().map(render).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), render(v))).collect())
        }
        other => other.clone(),
    }
}

/// A retrieve's whole answer, as [`envelope`] would make it of the account [`render`]ed, written
/// as JSON text straight from the stored account: no copy of it is made (a read per
/// organization is what `discover` sends NeonCRM, twenty thousand of them).
fn retrieved(account: &Account, wall: SystemTime) -> Answer {
    #[derive(Serialize)]
    struct Whole<'a> {
        #[serde(rename = "retrieveOrganizationAccountResponse")]
        response: Body<'a>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        operation_result: &'static str,
        response_date_time: String,
        organization_account: Rendered<'a>,
    }
    let whole = Whole {
        response: Body {
            operation_result: "SUCCESS",
            response_date_time: humantime::format_rfc3339_millis(wall).to_string(),
            organization_account: Rendered(&account.organization_account),
        },
    };
    match serde_json::to_vec(&whole) {
        Ok(text) => Answer::Text(text),
        // Never for a `Value`; the copy, should it ever be.
        Err(_) => Answer::Value(envelope(
            Endpoint::RetrieveOrganizationAccount,
            Ok(json!({"organizationAccount": render(&account.organization_account)})),
            wall,
        )),
    }
}

/// A stored value serialized as [`render`] makes it, without making it.
struct Rendered<'a>(&'a Value);

impl Serialize for Rendered<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Array(items) if items.len() == 1 => Rendered(&items[0]).serialize(serializer),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Rendered(item))?;
                }
                seq.end()
            }
            Value::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key, &Rendered(value))?;
                }
                map.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// The whole answer: `{"<method>Response": {operationResult, responseDateTime, ...}}`.
fn envelope(endpoint: Endpoint, result: Result<Value, Vec<ApiError>>, wall: SystemTime) -> Value {
    let mut body = Map::new();
    let time = humantime::format_rfc3339_millis(wall).to_string();
    match result {
        Ok(Value::Object(fields)) => {
            body.insert("operationResult".into(), json!("SUCCESS"));
            body.insert("responseDateTime".into(), json!(time));
            body.extend(fields);
        }
        Ok(_) => {
            body.insert("operationResult".into(), json!("SUCCESS"));
            body.insert("responseDateTime".into(), json!(time));
        }
        Err(errors) => {
            let errors = errors
                .into_iter()
                .map(|(code, message)| json!({"errorCode": code, "errorMessage": message}))
                .collect();
            body.insert("operationResult".into(), json!("FAIL"));
            body.insert("responseDateTime".into(), json!(time));
            body.insert("errors".into(), json!({"error": v1_list(errors)}));
        }
    }
    json!({ endpoint.wrapper(): body })
}

/// Every v1 method at its real path, by GET (as documented) and by form POST [I].
pub(crate) fn routes(_state: &SandboxState) -> Router<SandboxState> {
    Endpoint::ALL
        .into_iter()
        .fold(Router::new(), |router, endpoint| {
            let serve =
                move |State(state): State<SandboxState>, call: Call| serve(state, endpoint, call);
            router.route(
                &format!("{PATH_PREFIX}/{}", endpoint.path()),
                get(serve).post(serve),
            )
        })
}

/// One call: parameters from the query string and a form body, in that order, then the logic.
/// A create changes the data (saved); everything else only touches sessions (not saved).
async fn serve(state: SandboxState, endpoint: Endpoint, call: Call) -> Response {
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(call.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let form = call
        .header(header::CONTENT_TYPE.as_str())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        params.extend(url::form_urlencoded::parse(&call.body).into_owned());
    }
    let config = &state.config().neoncrm;
    let random = state.random();
    let (now, wall) = (Instant::now(), SystemTime::now());
    let (answer, lost) = on_data(&state, endpoint.mutates(), |data| {
        let answer = data
            .neoncrm
            .answer(config, endpoint, &params, now, wall, random);
        let created = answer.succeeded(endpoint);
        // Only orgform's own create has its answer lost; a test's set-up never does.
        let lost = created
            && endpoint.creates()
            && data.neoncrm.lost_answers.lose(config.lose_create_answers);
        (answer, lost)
    })
    .await;
    if lost {
        return status_error(&state, StatusCode::BAD_GATEWAY);
    }
    match answer {
        Answer::Value(answer) => Json(answer).into_response(),
        Answer::Text(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
    }
}

/// A bare HTTP error (injected faults, unknown paths) as NeonCRM's servlet container shows it:
/// an HTML page, not v1's JSON [I].
pub(crate) fn status_error(_state: &SandboxState, status: StatusCode) -> Response {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><title>HTTP Status {code} \u{2013} {reason}</title></head>\
         <body><h1>HTTP Status {code} \u{2013} {reason}</h1></body></html>"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html;charset=utf-8")],
        page,
    )
        .into_response()
}
