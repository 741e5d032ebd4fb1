//! The NeonCRM API v1 emulator (providers.md §5.1, seed 004): what `orgform`'s NeonCRM client
//! calls, served under `/neonws/services/api` with v1's own wire contract.
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
//!   [`COLUMNS`], never by echoing the request.
//! - `account/retrieveOrganizationAccount` gives back what was created (never its password).
//! - Every one-element list is rendered as a bare object (`errors.error`, `nameValuePairs`,
//!   `nameValuePair`, `addresses.address`, ...), v1's XML-born quirk.
//!
//! Choices the sources leave open are marked [I] (inferred) where they are made.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::state::SandboxState;

/// Where the real API lives under its host; the sandbox serves it at the same path.
pub const PATH_PREFIX: &str = "/neonws/services/api";

/// The paths this emulator owns at the sandbox.
pub const PREFIXES: &[&str] = &[PATH_PREFIX];

/// The organization id the emulator's `common/login` accepts.
pub const ORG_ID: &str = "sandbox-neon-org";
/// The API key the emulator's `common/login` accepts.
pub const API_KEY: &str = "sandbox-neon-api-key";

/// The documented page size limit of `listAccounts`.
pub const MAX_PAGE_SIZE: usize = 200;

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
}

impl Default for NeonConfig {
    fn default() -> NeonConfig {
        NeonConfig {
            session_idle: Duration::from_secs(10 * 60),
            session_max_uses: None,
            require_organization_type: false,
            lose_create_answers: 0,
        }
    }
}

/// What the emulator keeps across restarts: its accounts and the next account id. Sessions
/// are not kept, as a restarted server would forget them too.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NeonData {
    pub accounts: Vec<Account>,
    pub next_account_id: u64,
    /// Live sessions by id; transient, never saved.
    #[serde(skip)]
    sessions: HashMap<String, Session>,
    /// How many create answers [`NeonConfig::lose_create_answers`] has lost so far; transient.
    #[serde(skip)]
    lost_answers: u32,
}

impl Default for NeonData {
    fn default() -> NeonData {
        NeonData {
            accounts: Vec::new(),
            next_account_id: 10_001,
            sessions: HashMap::new(),
            lost_answers: 0,
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
}

impl Endpoint {
    pub const ALL: [Endpoint; 6] = [
        Endpoint::Login,
        Endpoint::Logout,
        Endpoint::CreateOrganizationAccount,
        Endpoint::CreateIndividualAccount,
        Endpoint::ListAccounts,
        Endpoint::RetrieveOrganizationAccount,
    ];

    /// The path after [`PATH_PREFIX`], like `account/listAccounts`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Login => "common/login",
            Endpoint::Logout => "common/logout",
            Endpoint::CreateOrganizationAccount => "account/createOrganizationAccount",
            Endpoint::CreateIndividualAccount => "account/createIndividualAccount",
            Endpoint::ListAccounts => "account/listAccounts",
            Endpoint::RetrieveOrganizationAccount => "account/retrieveOrganizationAccount",
        }
    }

    /// The endpoint at a path after [`PATH_PREFIX`] (a leading or trailing `/` is ignored).
    pub fn from_path(path: &str) -> Option<Endpoint> {
        let path = path.trim_matches('/');
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
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
        }
    }

    /// Whether this is the call that creates an organization.
    pub fn creates(self) -> bool {
        self == Endpoint::CreateOrganizationAccount
    }

    /// Whether this call changes the data (and so is saved).
    fn mutates(self) -> bool {
        matches!(
            self,
            Endpoint::CreateOrganizationAccount | Endpoint::CreateIndividualAccount
        )
    }
}

// Catalogs a NeonCRM organization would configure; what the List ... requests would return.
const ORGANIZATION_TYPES: &[(u64, &str)] = &[
    (1, "Church"),
    (2, "Business"),
    (3, "Foundation"),
    (4, "Government"),
    (5, "Nonprofit"),
    (6, "School"),
];
const SOURCES: &[(u64, &str)] = &[
    (1, "Website"),
    (2, "Event"),
    (3, "Referral"),
    (4, "Import"),
    (43, "J. Starr"),
];
const ADDRESS_TYPES: &[(u64, &str)] = &[
    (1, "Home"),
    (2, "Business"),
    (3, "Billing"),
    (4, "Shipping"),
];
const COUNTRIES: &[(u64, &str)] = &[
    (1, "United States"),
    (2, "Canada"),
    (3, "United Kingdom"),
    (4, "Australia"),
    (5, "New Zealand"),
    (6, "Ireland"),
    (7, "Germany"),
    (8, "France"),
    (9, "Mexico"),
    (10, "India"),
];
const STATES: &[(&str, &str)] = &[
    ("AL", "ALABAMA"),
    ("AK", "ALASKA"),
    ("AZ", "ARIZONA"),
    ("AR", "ARKANSAS"),
    ("CA", "CALIFORNIA"),
    ("CO", "COLORADO"),
    ("CT", "CONNECTICUT"),
    ("DE", "DELAWARE"),
    ("DC", "DISTRICT OF COLUMBIA"),
    ("FL", "FLORIDA"),
    ("GA", "GEORGIA"),
    ("HI", "HAWAII"),
    ("ID", "IDAHO"),
    ("IL", "ILLINOIS"),
    ("IN", "INDIANA"),
    ("IA", "IOWA"),
    ("KS", "KANSAS"),
    ("KY", "KENTUCKY"),
    ("LA", "LOUISIANA"),
    ("ME", "MAINE"),
    ("MD", "MARYLAND"),
    ("MA", "MASSACHUSETTS"),
    ("MI", "MICHIGAN"),
    ("MN", "MINNESOTA"),
    ("MS", "MISSISSIPPI"),
    ("MO", "MISSOURI"),
    ("MT", "MONTANA"),
    ("NE", "NEBRASKA"),
    ("NV", "NEVADA"),
    ("NH", "NEW HAMPSHIRE"),
    ("NJ", "NEW JERSEY"),
    ("NM", "NEW MEXICO"),
    ("NY", "NEW YORK"),
    ("NC", "NORTH CAROLINA"),
    ("ND", "NORTH DAKOTA"),
    ("OH", "OHIO"),
    ("OK", "OKLAHOMA"),
    ("OR", "OREGON"),
    ("PA", "PENNSYLVANIA"),
    ("RI", "RHODE ISLAND"),
    ("SC", "SOUTH CAROLINA"),
    ("SD", "SOUTH DAKOTA"),
    ("TN", "TENNESSEE"),
    ("TX", "TEXAS"),
    ("UT", "UTAH"),
    ("VT", "VERMONT"),
    ("VA", "VIRGINIA"),
    ("WA", "WASHINGTON"),
    ("WV", "WEST VIRGINIA"),
    ("WI", "WISCONSIN"),
    ("WY", "WYOMING"),
    ("AB", "ALBERTA"),
    ("BC", "BRITISH COLUMBIA"),
    ("MB", "MANITOBA"),
    ("NB", "NEW BRUNSWICK"),
    ("NL", "NEWFOUNDLAND AND LABRADOR"),
    ("NS", "NOVA SCOTIA"),
    ("NT", "NORTHWEST TERRITORIES"),
    ("NU", "NUNAVUT"),
    ("ON", "ONTARIO"),
    ("PE", "PRINCE EDWARD ISLAND"),
    ("QC", "QUEBEC"),
    ("SK", "SASKATCHEWAN"),
    ("YT", "YUKON"),
];

/// The output columns and search keys `listAccounts` knows here, as an answer names them. A
/// request's names are matched without regard to case or surrounding blanks: the vendor's List
/// Accounts example asks for `Account ID` and its answer says `Account Id` [S: the example, as
/// quoted in issue 13]. Both names of an organization's name are accepted, as the sources
/// disagree on it [I]. `Account Type` (Individual | Organization, v1's `userType` values) is
/// inferred [I]: v1 documents `userType` on searches, not this column's name.
pub const COLUMNS: &[(Column, &str)] = &[
    (Column::AccountId, "Account Id"),
    (Column::Name, "Organization Name"),
    (Column::Name, "Company Name"),
    (Column::AccountType, "Account Type"),
];

/// What a column of `listAccounts` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    AccountId,
    Name,
    AccountType,
}

/// The column a request names, and its documented name for the answer.
fn column(requested: &str) -> Option<(Column, &'static str)> {
    let requested = requested.trim();
    COLUMNS
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(requested))
        .copied()
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
const NAME_REQUIRED: ApiError = ("10050", "Organization name is required.");
const TYPE_REQUIRED: ApiError = ("10051", "Organization type is required.");
const TYPES_NOT_FOUND: ApiError = ("10052", "Available organization types cannot be found.");
const TYPE_ID_INVALID: ApiError = ("10053", "OrganizationType id is invalid.");
const ADDRESS_TYPE_INVALID: ApiError = ("10055", "Address type is invalid.");
const STATE_INVALID: ApiError = ("10056", "Address state is invalid.");
const COUNTRY_INVALID: ApiError = ("10057", "Address country is invalid.");
const TYPE_NAME_INVALID: ApiError = ("10058", "Organization type name is invalid.");
const TYPE_INVALID: ApiError = ("10059", "Organization type is invalid");
const USERNAME_REQUIRED: ApiError = ("10060", "Login username is required.");
const USERNAME_TAKEN: ApiError = ("10061", "Login username is already exist.");
const PASSWORD_REQUIRED: ApiError = ("10062", "Login password is required.");
const SOURCE_INVALID: ApiError = ("10063", "Source is invalid.");
const FIELD_ID_REQUIRED: ApiError = ("10064", "CustomField id is required.");
const FIELD_ID_INVALID: ApiError = ("10065", "CustomField id is invalid.");
const FIELD_VALUE_REQUIRED: ApiError = ("10067", "CustomField option value is required.");
const FIELD_OPTION_REQUIRED: ApiError = ("10068", "CustomField optionId is required.");
const TYPE_DUPLICATED: ApiError = ("10070", "Organizaiton type is duplicated.");
const FIELD_OPTION_INVALID: ApiError = ("10071", "CustomField optionId is invalid.");
// [I] Search errors: v2's documented search codes, which v1's "Querying" page describes in words.
const SORT_COLUMN_INVALID: ApiError = ("21", "Sort column is invalid.");
const SEARCH_KEY_REQUIRED: ApiError = ("22", "Search key is required.");
const SEARCH_KEY_INVALID: ApiError = ("23", "Search key is invalid.");
const SEARCH_VALUE_REQUIRED: ApiError = ("24", "Search value is required.");
const SEARCH_VALUE_INVALID: ApiError = ("25", "Search value is invalid.");
const OUTPUT_FIELD_INVALID: ApiError = ("26", "Output field is invalid.");
const OPERATOR_INVALID: ApiError = ("27", "Search operator is invalid.");
const CRITERIA_EMPTY: ApiError = ("28", "Search criteria is empty.");
const PAGE_INVALID: ApiError = ("29", "Page number is invalid.");
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
    pub fn reset(&mut self) {
        *self = NeonData::default();
    }

    /// Ends every session at once, as a server restart or a long pause would.
    pub fn expire_sessions(&mut self) {
        self.sessions.clear();
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
        Emulator {
            config,
            data: self,
            random,
        }
        .handle(endpoint, params, now, wall)
    }

    /// Whether the answer to the create just made is to be lost
    /// ([`NeonConfig::lose_create_answers`]); counts it when so.
    pub fn lose_this_answer(&mut self, config: &NeonConfig) -> bool {
        if self.lost_answers < config.lose_create_answers {
            self.lost_answers += 1;
            true
        } else {
            false
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
    ) -> Value {
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
                    Endpoint::ListAccounts => self.list(&params),
                    Endpoint::RetrieveOrganizationAccount | Endpoint::Login => {
                        self.retrieve(&params)
                    }
                },
            }
        };
        envelope(endpoint, result, wall)
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
        const ACCOUNT: &str = "organizationAccount.";
        let mut errors = Vec::new();
        let name = params.value("organizationAccount.organizationName");
        if name.is_none() {
            errors.push(NAME_REQUIRED);
        }

        let username = params.value("organizationAccount.login.username");
        let password = params.value("organizationAccount.login.password");
        match (username, password) {
            (Some(_), None) => errors.push(PASSWORD_REQUIRED),
            (None, Some(_)) => errors.push(USERNAME_REQUIRED),
            (Some(u), Some(_)) => {
                let taken = self.data.accounts.iter().any(|a| {
                    a.login_username
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

        if !errors.is_empty() {
            errors.dedup();
            return Err(errors);
        }
        let name = name.unwrap_or_default().to_string();
        let (account_id, mut object) = self.new_account(params, ACCOUNT);
        object.insert("createdBy".into(), json!("API User"));
        let blank_parameters = params
            .0
            .iter()
            .filter(|(n, v)| v.trim().is_empty() && !matches!(n.as_str(), "responseType"))
            .map(|(n, _)| n.clone())
            .collect();
        self.data.accounts.push(Account {
            account_id,
            organization_name: name,
            user_type: UserType::Organization,
            login_username: username.map(str::to_string),
            organization_account: Value::Object(object),
            blank_parameters,
        });
        Ok(json!({"responseMessage": "organization account created.", "accountId": account_id}))
    }

    /// The next account id, and the account's object from the parameters under `prefix`
    /// (`organizationAccount.`, `individualAccount.`) with its id in it. The password is never
    /// kept, nor shown by retrieve.
    fn new_account(&mut self, params: &Params<'_>, prefix: &str) -> (u64, Map<String, Value>) {
        let account_id = self.data.next_account_id;
        self.data.next_account_id += 1;
        let mut object = build_object(
            params
                .0
                .iter()
                .filter_map(|(n, v)| Some((n.strip_prefix(prefix)?, v.trim())))
                .filter(|(n, _)| *n != "login.password"),
        );
        object.insert("accountId".into(), json!(account_id));
        (account_id, object)
    }

    /// [I] A person with a first and last name and, optionally, the organization they work
    /// at; nothing else is checked, as orgform never creates one.
    fn create_individual(&mut self, params: &Params<'_>) -> Result<Value, Vec<ApiError>> {
        const ACCOUNT: &str = "individualAccount.";
        let (account_id, object) = self.new_account(params, ACCOUNT);
        self.data.accounts.push(Account {
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

    fn list(&self, params: &Params<'_>) -> Result<Value, Vec<ApiError>> {
        let requested = params.all("outputfields.idnamepair.name");
        let columns: Vec<(Column, &str)> = requested.iter().filter_map(|c| column(c)).collect();
        if columns.is_empty() || columns.len() != requested.len() {
            return Err(vec![OUTPUT_FIELD_INVALID]);
        }
        let keys = params.all("searches.search.key");
        let operators = params.all("searches.search.searchOperator");
        let values = params.all("searches.search.value");
        if keys.is_empty() {
            return Err(vec![CRITERIA_EMPTY]);
        }
        let mut searches = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if key.is_empty() {
                return Err(vec![SEARCH_KEY_REQUIRED]);
            }
            let Some((key, _)) = column(key) else {
                return Err(vec![SEARCH_KEY_INVALID]);
            };
            let operator = operators.get(i).copied().unwrap_or("");
            let value = values.get(i).copied().unwrap_or("");
            searches.push(Search::parse(key, operator, value)?);
        }

        let size = match params.value("page.pageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| vec![PAGE_INVALID])?
                .clamp(1, MAX_PAGE_SIZE),
        };
        let page = match params.value("page.currentPage") {
            None => 1,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(vec![PAGE_INVALID]),
            },
        };
        let descending = match params.value("page.sortDirection") {
            None | Some("ASC") => false,
            Some("DESC") => true,
            Some(_) => return Err(vec![SORT_COLUMN_INVALID]),
        };
        let sort = match params.value("page.sortColumn") {
            None => None,
            Some(asked) => match column(asked) {
                Some((c, _)) if columns.iter().any(|(have, _)| *have == c) => Some(c),
                _ => return Err(vec![SORT_COLUMN_INVALID]),
            },
        };

        let mut found: Vec<&Account> = self
            .data
            .accounts
            .iter()
            .filter(|a| searches.iter().all(|s| s.matches(a)))
            .collect();
        match sort {
            Some(Column::Name) => found.sort_by(|a, b| {
                a.organization_name
                    .to_lowercase()
                    .cmp(&b.organization_name.to_lowercase())
                    .then(a.account_id.cmp(&b.account_id))
            }),
            _ => found.sort_by_key(|a| a.account_id),
        }
        if descending {
            found.reverse();
        }
        let total = found.len();
        let rows: Vec<Value> = found
            .into_iter()
            .skip((page - 1).saturating_mul(size))
            .take(size)
            .map(|account| {
                let pairs = columns
                    .iter()
                    .map(|(c, name)| {
                        let value = match c {
                            Column::AccountId => json!(account.account_id),
                            Column::Name => json!(account.organization_name),
                            Column::AccountType => json!(account.user_type.name()),
                        };
                        json!({"name": name, "value": value})
                    })
                    .collect();
                json!({"nameValuePair": v1_list(pairs)})
            })
            .collect();
        let search_results = if rows.is_empty() {
            json!({})
        } else {
            json!({"nameValuePairs": v1_list(rows)})
        };
        Ok(json!({
            "page": {
                "currentPage": page,
                "pageSize": size,
                "totalPage": total.div_ceil(size),
                "totalResults": total,
            },
            "searchResults": search_results,
        }))
    }

    fn retrieve(&self, params: &Params<'_>) -> Result<Value, Vec<ApiError>> {
        let account = params
            .value("accountId")
            .and_then(|id| id.parse::<u64>().ok())
            .and_then(|id| {
                self.data
                    .accounts
                    .iter()
                    .find(|a| a.account_id == id && a.user_type == UserType::Organization)
            })
            .ok_or_else(|| vec![ACCOUNT_ID_INVALID])?;
        Ok(json!({"organizationAccount": render(&account.organization_account)}))
    }
}

/// Organization types (10051 to 10059, 10070): each by an id or a name of the catalog, none
/// twice; groups are paired by position.
fn check_organization_types(params: &Params<'_>, required: bool, errors: &mut Vec<ApiError>) {
    const GROUP: &str = "organizationAccount.organizationTypes.organizationType";
    let ids = params.all(&format!("{GROUP}.id"));
    let names = params.all(&format!("{GROUP}.name"));
    let count = ids.len().max(names.len());
    if count == 0 {
        if required {
            errors.push(TYPE_REQUIRED);
        }
        return;
    }
    if ORGANIZATION_TYPES.is_empty() {
        errors.push(TYPES_NOT_FOUND);
        return;
    }
    let mut seen = Vec::new();
    for i in 0..count {
        let id = ids.get(i).copied().filter(|s| !s.is_empty());
        let name = names.get(i).copied().filter(|s| !s.is_empty());
        let found = match (id, name) {
            (None, None) => {
                errors.push(TYPE_INVALID);
                continue;
            }
            (Some(id), _) => {
                let found = lookup(ORGANIZATION_TYPES, Some(id), None);
                if found.is_none() {
                    errors.push(TYPE_ID_INVALID);
                }
                found
            }
            (None, Some(name)) => {
                let found = lookup(ORGANIZATION_TYPES, None, Some(name));
                if found.is_none() {
                    errors.push(TYPE_NAME_INVALID);
                }
                found
            }
        };
        if let Some(id) = found {
            if seen.contains(&id) {
                errors.push(TYPE_DUPLICATED);
            }
            seen.push(id);
        }
    }
}

/// Whether a lookup object named by its two keys (id or code, and name) is in a catalog.
type Known = dyn Fn(Option<&str>, Option<&str>) -> bool;

/// Address types, states and countries of every address (10055 to 10057).
fn check_addresses(params: &Params<'_>, errors: &mut Vec<ApiError>) {
    const GROUP: &str = "organizationAccount.primaryContact.addresses.address";
    let field = |leaf: &str| params.all(&format!("{GROUP}.{leaf}"));
    let mut check = |a: &str, b: &str, known: &Known, error| {
        let (firsts, seconds) = (field(a), field(b));
        for i in 0..firsts.len().max(seconds.len()) {
            let first = firsts.get(i).copied().filter(|s| !s.is_empty());
            let second = seconds.get(i).copied().filter(|s| !s.is_empty());
            if (first.is_some() || second.is_some()) && !known(first, second) {
                errors.push(error);
            }
        }
    };
    check(
        "addressType.id",
        "addressType.name",
        &|id, name| lookup(ADDRESS_TYPES, id, name).is_some(),
        ADDRESS_TYPE_INVALID,
    );
    check(
        "state.code",
        "state.name",
        &|code, name| {
            STATES.iter().any(|(c, n)| {
                code.is_none_or(|x| x.eq_ignore_ascii_case(c))
                    && name.is_none_or(|x| x.eq_ignore_ascii_case(n))
            })
        },
        STATE_INVALID,
    );
    check(
        "country.id",
        "country.name",
        &|id, name| lookup(COUNTRIES, id, name).is_some(),
        COUNTRY_INVALID,
    );
}

/// Custom field triplets (10064 to 10071): all three parameters sent for each field, paired by
/// position; an id, and an option id or a value. Any positive id is a configured field here.
fn check_custom_fields(params: &Params<'_>, errors: &mut Vec<ApiError>) {
    const GROUP: &str = "organizationAccount.customFieldDataList.customFieldData";
    let ids = params.all(&format!("{GROUP}.fieldId"));
    let options = params.all(&format!("{GROUP}.fieldOptionId"));
    let values = params.all(&format!("{GROUP}.fieldValue"));
    let count = ids.len().max(options.len()).max(values.len());
    for i in 0..count {
        match ids.get(i).copied().filter(|s| !s.is_empty()) {
            None => errors.push(FIELD_ID_REQUIRED),
            Some(id) if !positive(id) => errors.push(FIELD_ID_INVALID),
            Some(_) => {}
        }
        let (Some(option), Some(value)) = (options.get(i), values.get(i)) else {
            if options.get(i).is_none() {
                errors.push(FIELD_OPTION_REQUIRED);
            }
            if values.get(i).is_none() {
                errors.push(FIELD_VALUE_REQUIRED);
            }
            continue;
        };
        if !option.is_empty() && !positive(option) {
            errors.push(FIELD_OPTION_INVALID);
        } else if option.is_empty() && value.is_empty() {
            errors.push(FIELD_VALUE_REQUIRED);
        }
    }
}

fn positive(s: &str) -> bool {
    s.parse::<u64>().is_ok_and(|n| n > 0)
}

/// The id of a catalog entry named by id, by name (case-insensitive), or both (which must
/// agree).
fn lookup(catalog: &[(u64, &str)], id: Option<&str>, name: Option<&str>) -> Option<u64> {
    let id = match id {
        Some(s) => Some(s.parse::<u64>().ok()?),
        None => None,
    };
    catalog
        .iter()
        .find(|(i, n)| id.is_none_or(|x| x == *i) && name.is_none_or(|x| x.eq_ignore_ascii_case(n)))
        .map(|(i, _)| *i)
}

/// One `searches.search` group: a column, an operator and its values.
struct Search(Column, Operator, Vec<String>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equal,
    NotEqual,
    Contain,
    InRange,
    NotInRange,
    Blank,
    NotBlank,
}

impl Search {
    fn parse(key: Column, operator: &str, value: &str) -> Result<Search, Vec<ApiError>> {
        let operator = match operator {
            "EQUAL" => Operator::Equal,
            "NOT_EQUAL" => Operator::NotEqual,
            "CONTAIN" => Operator::Contain,
            "IN_RANGE" => Operator::InRange,
            "NOT_IN_RANGE" => Operator::NotInRange,
            "BLANK" => Operator::Blank,
            "NOT_BLANK" => Operator::NotBlank,
            _ => return Err(vec![OPERATOR_INVALID]),
        };
        let values = match operator {
            Operator::Blank | Operator::NotBlank => Vec::new(),
            _ if value.is_empty() => return Err(vec![SEARCH_VALUE_REQUIRED]),
            Operator::InRange | Operator::NotInRange => {
                parse_range(value).ok_or_else(|| vec![SEARCH_VALUE_INVALID])?
            }
            _ => vec![value.to_string()],
        };
        Ok(Search(key, operator, values))
    }

    fn matches(&self, account: &Account) -> bool {
        let Search(column, operator, values) = self;
        let operator = *operator;
        let have = match column {
            Column::AccountId => account.account_id.to_string(),
            Column::Name => account.organization_name.clone(),
            Column::AccountType => account.user_type.name().to_string(),
        };
        // [I] Text comparisons ignore case and surrounding blanks, as a SQL search would.
        let have = have.trim().to_lowercase();
        let is = |v: &String| v.trim().to_lowercase() == have;
        match operator {
            Operator::Equal | Operator::InRange => values.iter().any(is),
            Operator::NotEqual | Operator::NotInRange => !values.iter().any(is),
            Operator::Contain => values
                .iter()
                .any(|v| have.contains(&v.trim().to_lowercase())),
            Operator::Blank => have.is_empty(),
            Operator::NotBlank => !have.is_empty(),
        }
    }
}

/// An IN_RANGE value, `("a","b")`, or unquoted `(a,b)`.
fn parse_range(value: &str) -> Option<Vec<String>> {
    let inner = value.trim().strip_prefix('(')?.strip_suffix(')')?;
    let mut items = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (item, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start())
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            (rest[..end].trim(), &rest[end..])
        };
        items.push(item.to_string());
        rest = match after.strip_prefix(',') {
            Some(next) => next.trim_start(),
            None if after.is_empty() => after,
            None => return None,
        };
    }
    (!items.is_empty()).then_some(items)
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
    if (leaf == "id" || leaf.ends_with("Id"))
        && let Ok(n) = value.parse::<u64>()
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
pub fn routes(_state: &SandboxState) -> Router<SandboxState> {
    Endpoint::ALL
        .into_iter()
        .fold(Router::new(), |router, endpoint| {
            let serve =
                move |State(state): State<SandboxState>,
                      RawQuery(query): RawQuery,
                      headers: HeaderMap,
                      body: Bytes| { serve(state, endpoint, query, headers, body) };
            router.route(
                &format!("{PATH_PREFIX}/{}", endpoint.path()),
                get(serve).post(serve),
            )
        })
}

/// One call: parameters from the query string and a form body, in that order, then the logic.
/// A create changes the data (saved); everything else only touches sessions (not saved).
async fn serve(
    state: SandboxState,
    endpoint: Endpoint,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        params.extend(url::form_urlencoded::parse(&body).into_owned());
    }
    let config = &state.config().neoncrm;
    let random = state.random();
    let (now, wall) = (Instant::now(), SystemTime::now());
    if endpoint.mutates() {
        let (answer, lost) = state
            .mutate(|data| {
                let answer = data
                    .neoncrm
                    .handle(config, endpoint, &params, now, wall, random);
                let created = answer[endpoint.wrapper()]["operationResult"] == "SUCCESS";
                // Only orgform's own create has its answer lost; a test's set-up never does.
                let lost = created && endpoint.creates() && data.neoncrm.lose_this_answer(config);
                (answer, lost)
            })
            .await;
        if lost {
            return status_error(&state, StatusCode::BAD_GATEWAY);
        }
        return Json(answer).into_response();
    }
    let answer = state.touch(|data| {
        data.neoncrm
            .handle(config, endpoint, &params, now, wall, random)
    });
    Json(answer).into_response()
}

/// A bare HTTP error (injected faults, unknown paths) as NeonCRM's servlet container shows it:
/// an HTML page, not v1's JSON [I].
pub fn status_error(_state: &SandboxState, status: StatusCode) -> Response {
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
