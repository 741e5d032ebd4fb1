//! The Commvault emulator: "Create Salesforce Organization" and what orgform's client needs
//! around it (`docs/providers/commvault_salesforce.md`, seed 000), served under
//! `/commandcenter/api` (and the older `/webconsole/api`), with paths matched without case as
//! Commvault's are.
//!
//! The logic is plain Rust with no HTTP in it: [`CommvaultData::handle`] takes an [`Endpoint`],
//! the `Authtoken` header, the body and the time, and returns an [`Answer`] (status and body);
//! the routes at the end of this file only carry it. What it reproduces:
//!
//! - `POST /Login` with [`USERNAME`] and the base64 of [`PASSWORD`] (unknown fields ignored)
//!   gives `token: "QSDK <hex>"`. **A refused login is HTTP 200** with `errList` and no token.
//! - Every other call needs `Authtoken`. A token lapses after [`CommvaultConfig::token_idle`]
//!   without use (30 minutes, or the login's `timeout` in minutes), or after
//!   [`CommvaultConfig::token_max_uses`] calls when that knob is set; then the call answers
//!   401 `{"errorCode":401,"errorMessage":"Unauthorized"}`. `POST /RenewLoginToken` and
//!   `POST /Logout` work as cvpysdk uses them.
//! - `POST /Salesforce/Organization` checks the seed's required fields and types and that every
//!   password and the consumer secret are base64 (400 `Invalid password encoding`), answers 409
//!   for a name already taken (without case), and 200 with `response.entity.clientId`. With
//!   [`CommvaultConfig::known_plans`] set, an unknown plan is refused the Commvault way: HTTP
//!   200 with a non-zero `response.errorCode`.
//! - `GET /Salesforce/Organization` lists everything (`{}` when there is nothing), and the
//!   generic client views `GET /Client` and `GET /Client/{id}` (or `byName(clientName='x')`)
//!   show the same clients.
//!
//! Invariant: **no secret a client sends is kept**: passwords, the consumer secret and the API
//! token are checked, then dropped from what is stored. Choices the sources leave open are
//! marked [I] (inferred). A create body's checks are in `checks.rs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::serve::{Call, LostAnswers, on_data};
use super::state::SandboxState;

mod checks;

use checks::check_create;

/// Where Command Center serves the API; what the sandbox serves too.
pub(crate) const PATH_PREFIX: &str = "/commandcenter/api";

/// The paths this emulator owns: Command Center's API root and the older web console's.
pub(crate) const PREFIXES: &[&str] = &[PATH_PREFIX, "/webconsole/api"];

/// The credentials the emulator accepts live in the catalog, with the rest of Commvault's facts.
pub use crate::catalog::commvault::sandbox::{PASSWORD, USERNAME};

/// The emulator's knobs.
#[derive(Clone, Debug)]
pub struct CommvaultConfig {
    /// How long a token lives without use (default 30 minutes, as documented); a login's own
    /// `timeout` (minutes) overrides it for that token.
    pub token_idle: Duration,
    /// When set, a token lapses after this many calls, whatever the time: a deterministic way
    /// to make a token lapse in the middle of a run, to exercise renewal.
    pub token_max_uses: Option<u32>,
    /// When set, the only plans (id, name) the Commcell has: a create naming another plan is
    /// refused with HTTP 200 and a non-zero `response.errorCode`. `None` accepts any plan.
    pub known_plans: Option<Vec<(i64, String)>>,
    /// The first this many creates are committed, then answered with HTTP 502 instead of their
    /// client id, as a proxy that lost the upstream answer: the client cannot know whether they
    /// happened, and must look before it creates again.
    pub lose_create_answers: u32,
}

impl Default for CommvaultConfig {
    fn default() -> CommvaultConfig {
        CommvaultConfig {
            token_idle: Duration::from_secs(30 * 60),
            token_max_uses: None,
            known_plans: None,
            lose_create_answers: 0,
        }
    }
}

/// What the emulator keeps across restarts: its organizations and the next id. Tokens are not
/// kept, as a restarted Commcell would not know them either [I].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CommvaultData {
    pub organizations: Vec<Organization>,
    /// The next client id; ids grow monotonically and are never reused.
    pub(crate) next_client_id: u64,
    /// Live tokens by their hex part; transient, never saved.
    #[serde(skip)]
    tokens: HashMap<String, Token>,
    /// How many tokens were ever issued: part of new tokens, so they never repeat.
    #[serde(skip)]
    issued: u64,
    /// How many create answers [`CommvaultConfig::lose_create_answers`] has lost; transient.
    #[serde(skip)]
    lost_answers: LostAnswers,
    /// Where to find organizations by name and by id; transient, built again when needed.
    #[serde(skip)]
    index: Index,
}

/// Positions in [`CommvaultData::organizations`] by client name (trimmed, without ASCII case)
/// and by client id, so that a create's name check and a client's look-up cost one probe
/// rather than a scan. It only narrows where to look: each candidate is checked as a scan
/// would check it, so answers are the same.
#[derive(Clone, Debug, Default)]
struct Index {
    /// How many organizations are indexed: another count means they were replaced as a whole
    /// (a data file, a test's set-up), and the index is built again.
    indexed: Option<usize>,
    by_name: HashMap<String, Vec<usize>>,
    by_id: HashMap<u64, Vec<usize>>,
}

impl Index {
    fn name_key(name: &str) -> String {
        name.trim().to_ascii_lowercase()
    }

    fn refresh(&mut self, organizations: &[Organization]) {
        if self.indexed == Some(organizations.len()) {
            return;
        }
        *self = Index::default();
        for (position, organization) in organizations.iter().enumerate() {
            self.add(position, organization);
        }
        self.indexed = Some(organizations.len());
    }

    /// Indexes the organization just pushed at `position` (the last).
    fn add(&mut self, position: usize, organization: &Organization) {
        self.by_name
            .entry(Index::name_key(&organization.client_name))
            .or_default()
            .push(position);
        self.by_id
            .entry(organization.client_id)
            .or_default()
            .push(position);
        self.indexed = Some(position + 1);
    }

    /// Positions of the organizations whose trimmed name is `name`'s without ASCII case.
    fn named(&self, name: &str) -> &[usize] {
        self.by_name
            .get(&Index::name_key(name))
            .map_or(&[], Vec::as_slice)
    }

    fn with_id(&self, id: u64) -> &[usize] {
        self.by_id.get(&id).map_or(&[], Vec::as_slice)
    }
}

impl Default for CommvaultData {
    fn default() -> CommvaultData {
        CommvaultData {
            organizations: Vec::new(),
            next_client_id: 1001,
            tokens: HashMap::new(),
            issued: 0,
            lost_answers: LostAnswers::default(),
            index: Index::default(),
        }
    }
}

/// One protected Salesforce organization: a Commvault client with its instance, backup set
/// and subclient.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub(crate) client_id: u64,
    pub(crate) client_name: String,
    pub(crate) sf_org_id: String,
    pub(crate) endpoint: String,
    pub(crate) instance_id: u64,
    pub(crate) backupset_id: u64,
    pub(crate) subclient_id: u64,
    /// The create body as received, with every secret removed.
    pub(crate) request: Value,
}

#[derive(Clone, Debug)]
struct Token {
    last_used: Instant,
    idle: Duration,
    uses: u32,
}

/// The calls the emulator serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Login,
    Logout,
    RenewLoginToken,
    ListOrganizations,
    CreateOrganization,
    ListClients,
    /// `GET /Client/{id}` or `GET /Client/byName(clientName='x')`: the segment after `Client/`.
    GetClient(String),
}

impl Endpoint {
    /// The endpoint for a method and a path after the prefix, matched without case, as
    /// Commvault's own docs mix `/salesforce/organization` and `/Salesforce/Organization`.
    ///
    /// # Errors
    /// The HTTP status for a path it does not serve (404) or a method that path does not
    /// take (405).
    pub fn route(method: &str, rest: &str) -> Result<Endpoint, StatusCode> {
        let path = rest.trim_matches('/');
        let lower = path.to_ascii_lowercase();
        let (endpoint, method_ok) = match lower.as_str() {
            "login" => (Endpoint::Login, method == "POST"),
            "logout" => (Endpoint::Logout, method == "POST"),
            "renewlogintoken" => (Endpoint::RenewLoginToken, method == "POST"),
            "salesforce/organization" => match method {
                "POST" => (Endpoint::CreateOrganization, true),
                _ => (Endpoint::ListOrganizations, method == "GET"),
            },
            "client" => (Endpoint::ListClients, method == "GET"),
            _ => match lower.strip_prefix("client/") {
                Some(id) if !id.is_empty() && !id.contains('/') => (
                    // The original case: a client name inside `byName(...)` keeps its own.
                    Endpoint::GetClient(path["client/".len()..].to_string()),
                    method == "GET",
                ),
                _ => return Err(StatusCode::NOT_FOUND),
            },
        };
        if method_ok {
            Ok(endpoint)
        } else {
            Err(StatusCode::METHOD_NOT_ALLOWED)
        }
    }

    /// Whether this call changes what is saved.
    pub(crate) fn creates(&self) -> bool {
        *self == Endpoint::CreateOrganization
    }
}

/// One answer: an HTTP status and its body.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub(crate) body: Body,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Body {
    Json(Value),
    /// A JSON answer already written as text: the list, written straight from the stored
    /// organizations rather than through a JSON tree made of them.
    Written(Vec<u8>),
    /// `POST /Logout` answers plain text [S: cvpysdk].
    Text(String),
}

impl Answer {
    fn json(status: StatusCode, body: Value) -> Answer {
        Answer {
            status,
            body: Body::Json(body),
        }
    }

    fn ok(body: Value) -> Answer {
        Answer::json(StatusCode::OK, body)
    }

    /// Commvault's 4xx shape, `{"errorMessage","errorCode"}`, with the HTTP status as the code
    /// [I: the documented example shows only `0`].
    fn error(status: StatusCode, message: impl Into<String>) -> Answer {
        Answer::json(
            status,
            json!({"errorMessage": message.into(), "errorCode": status.as_u16()}),
        )
    }

    /// The JSON body, if it is one (for tests).
    pub fn json_body(&self) -> Option<&Value> {
        match &self.body {
            Body::Json(v) => Some(v),
            Body::Written(_) | Body::Text(_) => None,
        }
    }
}

/// [I] The code and text of a refused login, from a third-party fixture.
const LOGIN_REFUSED: (i64, &str) = (1116, "Invalid Username or Password");

/// [I] The code of a create refused for an unknown plan.
const PLAN_NOT_FOUND: i64 = 2;

/// Removes the prefix from `path`, if it is one of [`PREFIXES`].
pub fn strip_prefix(path: &str) -> Option<&str> {
    PREFIXES.iter().find_map(|prefix| {
        path.strip_prefix(prefix)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

impl CommvaultData {
    /// How many organizations it holds (for `/_sandbox/stats`).
    pub(crate) fn organizations(&self) -> usize {
        self.organizations.len()
    }

    /// Forgets every organization and token (`POST /_sandbox/reset`).
    pub(crate) fn reset(&mut self) {
        *self = CommvaultData::default();
    }

    /// Serves one call. `authtoken` is the header as sent; `random` seeds a new token or
    /// Salesforce org id.
    pub fn handle(
        &mut self,
        config: &CommvaultConfig,
        endpoint: &Endpoint,
        authtoken: Option<&str>,
        body: &[u8],
        now: Instant,
        random: u64,
    ) -> Answer {
        let mut answer = self.answer(config, endpoint, authtoken, body, now, random);
        if let Body::Written(text) = &answer.body {
            answer.body = Body::Json(serde_json::from_slice(text).unwrap_or(Value::Null));
        }
        answer
    }

    /// [`CommvaultData::handle`], with the list's JSON written as text already.
    pub(crate) fn answer(
        &mut self,
        config: &CommvaultConfig,
        endpoint: &Endpoint,
        authtoken: Option<&str>,
        body: &[u8],
        now: Instant,
        random: u64,
    ) -> Answer {
        self.index.refresh(&self.organizations);
        match endpoint {
            Endpoint::Login => return self.login(config, body, now, random),
            Endpoint::RenewLoginToken => return self.renew(body, now, random),
            _ => {}
        }
        let Some(token) = self.authorize(config, authtoken, now) else {
            return Answer::error(StatusCode::UNAUTHORIZED, "Unauthorized");
        };
        match endpoint {
            Endpoint::Logout => {
                self.tokens.remove(&token);
                Answer {
                    status: StatusCode::OK,
                    body: Body::Text("User logged out".into()),
                }
            }
            Endpoint::ListOrganizations => self.list(),
            Endpoint::CreateOrganization => self.create(config, body, random),
            Endpoint::ListClients => self.clients(None),
            Endpoint::GetClient(which) => self.clients(Some(which)),
            Endpoint::Login | Endpoint::RenewLoginToken => {
                Answer::error(StatusCode::NOT_FOUND, "Not found")
            }
        }
    }

    /// The live token named by the header (`QSDK <hex>`, or the bare hex), counting this use;
    /// `None` if there is none or it lapsed (and is then forgotten).
    fn authorize(
        &mut self,
        config: &CommvaultConfig,
        header: Option<&str>,
        now: Instant,
    ) -> Option<String> {
        let key = token_key(header?)?;
        let token = self.tokens.get_mut(&key)?;
        let idle = now.saturating_duration_since(token.last_used) > token.idle;
        let used_up = config.token_max_uses.is_some_and(|max| token.uses >= max);
        if idle || used_up {
            self.tokens.remove(&key);
            return None;
        }
        token.last_used = now;
        token.uses += 1;
        Some(key)
    }

    fn issue(&mut self, idle: Duration, now: Instant, random: u64) -> String {
        self.issued += 1;
        let key = format!("{random:016x}{:08x}", self.issued);
        self.tokens.insert(
            key.clone(),
            Token {
                last_used: now,
                idle,
                uses: 0,
            },
        );
        format!("QSDK {key}")
    }

    fn login(
        &mut self,
        config: &CommvaultConfig,
        body: &[u8],
        now: Instant,
        random: u64,
    ) -> Answer {
        let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "The request body is not valid JSON",
            );
        };
        let username = request
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or("");
        let password = request
            .get("password")
            .and_then(Value::as_str)
            .and_then(decode_base64);
        if !username.eq_ignore_ascii_case(USERNAME) || password.as_deref() != Some(PASSWORD) {
            // The documented quirk: refused, with HTTP 200.
            return Answer::ok(json!({
                "errList": [{"errorCode": LOGIN_REFUSED.0, "errLogMessage": LOGIN_REFUSED.1}],
                "isAccountLocked": false,
                "remainingLockTime": 0,
            }));
        }
        let idle = match request.get("timeout").and_then(Value::as_u64) {
            Some(minutes) if minutes > 0 => Duration::from_secs(minutes.saturating_mul(60)),
            _ => config.token_idle,
        };
        let token = self.issue(idle, now, random);
        Answer::ok(json!({
            "aliasName": "1",
            "userGUID": format!("{:032X}", u128::from(random)),
            "loginAttempts": 0,
            "remainingLockTime": 0,
            "smtpAddress": "sandbox-admin@commvault.sandbox.invalid",
            "userName": USERNAME,
            "providerType": 1,
            "ccn": 0,
            "token": token,
            "capability": 4_328_650_366_975_u64,
            "forcePasswordChange": false,
            "isAccountLocked": false,
            "ownerOrganization": {"GUID": "", "providerId": 0, "providerDomainName": "Commcell"},
            "additionalResp": {"nameValues": [{"name": "USERNAME", "value": USERNAME}]},
            "providerOrganization": {"GUID": "", "providerId": 0, "providerDomainName": "Commcell"},
            "errList": [],
        }))
    }

    /// cvpysdk's `POST /RenewLoginToken` with `{"sessionId": "<Authtoken>"}`: a new token for a
    /// live one, which ends.
    fn renew(&mut self, body: &[u8], now: Instant, random: u64) -> Answer {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let old = request
            .get("sessionId")
            .and_then(Value::as_str)
            .and_then(token_key);
        let live = old.and_then(|key| self.tokens.remove(&key).map(|t| (key, t)));
        match live {
            Some((_, token)) if now.saturating_duration_since(token.last_used) <= token.idle => {
                let fresh = self.issue(token.idle, now, random);
                Answer::ok(json!({ "token": fresh }))
            }
            _ => Answer::ok(json!({"error": {"errLogMessage": "Invalid or expired session"}})),
        }
    }

    /// `GET /Salesforce/Organization`: the fields providers.md §1.4 shows, no more. `endPoint`
    /// is the create's `salesforceAccount.endpoint` as it was sent, or the seed's default when
    /// none was [I]; the data file is where a test changes it, as Commvault's modify call would.
    fn list(&self) -> Answer {
        if self.organizations.is_empty() {
            // cvpysdk copes with an empty Commcell answering `{}`.
            return Answer::ok(json!({}));
        }
        // Written from the organizations as they are stored, under the data's lock: no JSON
        // tree of a hundred thousand entries built first.
        let listed = ListedOrgs {
            orgs: self
                .organizations
                .iter()
                .map(|o| ListedEntry {
                    sf_org_id: &o.sf_org_id,
                    end_point: &o.endpoint,
                    backup_time: 0,
                    sf_subclient: ListedSubclient {
                        client_id: o.client_id,
                        client_name: &o.client_name,
                        backupset_id: o.backupset_id,
                        backupset_name: &o.client_name,
                        instance_id: o.instance_id,
                        subclient_id: o.subclient_id,
                        app_name: "Salesforce",
                    },
                })
                .collect(),
        };
        match serde_json::to_vec(&listed) {
            Ok(text) => Answer {
                status: StatusCode::OK,
                body: Body::Written(text),
            },
            // Never for these plain structs; said as Commvault says a failure, should it be.
            Err(_) => Answer::error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        }
    }

    /// `GET /Client` (every client) or one client by id or `byName(clientName='x')`.
    fn clients(&self, which: Option<&str>) -> Answer {
        let view = |o: &Organization| {
            json!({
                "client": {"clientEntity": {
                    "clientId": o.client_id,
                    "clientName": o.client_name,
                    "displayName": o.client_name,
                    "hostName": o.client_name,
                    "clientGUID": format!("{:08X}-SBX-{:012X}", o.client_id, o.instance_id),
                    "_type_": 3,
                }},
                "clientProps": {"IsDeletedClient": false},
            })
        };
        let Some(which) = which else {
            let all: Vec<Value> = self.organizations.iter().map(view).collect();
            return Answer::ok(json!({ "clientProperties": all }));
        };
        let at = |positions: &[usize]| -> Vec<&Organization> {
            positions
                .iter()
                .filter_map(|p| self.organizations.get(*p))
                .collect()
        };
        let found = match by_name(which) {
            Some(name) => at(self.index.named(&name))
                .into_iter()
                .find(|o| o.client_name.eq_ignore_ascii_case(&name)),
            None => which.parse::<u64>().ok().and_then(|id| {
                at(self.index.with_id(id))
                    .into_iter()
                    .find(|o| o.client_id == id)
            }),
        };
        match found {
            Some(o) => Answer::ok(json!({ "clientProperties": [view(o)] })),
            None => Answer::error(StatusCode::NOT_FOUND, format!("Client [{which}] not found")),
        }
    }

    fn create(&mut self, config: &CommvaultConfig, body: &[u8], random: u64) -> Answer {
        let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "The request body is not valid JSON",
            );
        };
        if let Err(answer) = check_create(&request) {
            return answer;
        }
        let name = request["organizationName"].as_str().unwrap_or("").trim();
        if let Some(known) = &config.known_plans {
            let id = request["plan"]["planId"].as_i64().unwrap_or(0);
            let plan_name = request["plan"]["planName"].as_str().unwrap_or("");
            if !known
                .iter()
                .any(|(i, n)| *i == id && n.eq_ignore_ascii_case(plan_name))
            {
                return Answer::ok(json!({
                    "processinginstructioninfo": {"attributes": [{"name": "exitval", "value": PLAN_NOT_FOUND.to_string()}]},
                    "response": {
                        "errorCode": PLAN_NOT_FOUND,
                        "errorString": format!("Plan [{plan_name}] with id [{id}] does not exist"),
                    },
                }));
            }
        }
        if self
            .index
            .named(name)
            .iter()
            .filter_map(|p| self.organizations.get(*p))
            .any(|o| o.client_name.trim().eq_ignore_ascii_case(name))
        {
            return Answer::error(
                StatusCode::CONFLICT,
                format!("Client with name [{name}] already exists"),
            );
        }
        let client_id = self.next_client_id;
        self.next_client_id += 1;
        let endpoint = request["salesforceAccount"]["endpoint"]
            .as_str()
            .unwrap_or("https://login.salesforce.com")
            .to_string();
        let organization = Organization {
            client_id,
            client_name: name.to_string(),
            sf_org_id: format!("00D{:012X}", random & 0xffff_ffff_ffff),
            endpoint,
            instance_id: client_id + 50_000,
            backupset_id: client_id + 60_000,
            subclient_id: client_id + 70_000,
            request: without_secrets(Value::Object(request.clone())),
        };
        self.index.add(self.organizations.len(), &organization);
        self.organizations.push(organization);
        Answer::ok(json!({
            "processinginstructioninfo": {"attributes": [{"name": "exitval", "value": "0"}]},
            "response": {
                "errorCode": 0,
                "entity": {"clientId": client_id, "clientName": name, "_type_": 3},
            },
        }))
    }
}

/// `GET /Salesforce/Organization`'s answer, borrowing the organizations it lists.
#[derive(Serialize)]
struct ListedOrgs<'a> {
    orgs: Vec<ListedEntry<'a>>,
}

/// One entry of the list: the fields providers.md §1.4 shows, in its order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedEntry<'a> {
    sf_org_id: &'a str,
    end_point: &'a str,
    backup_time: u64,
    sf_subclient: ListedSubclient<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedSubclient<'a> {
    client_id: u64,
    client_name: &'a str,
    backupset_id: u64,
    backupset_name: &'a str,
    instance_id: u64,
    subclient_id: u64,
    app_name: &'static str,
}

/// The hex part of a token as sent in `Authtoken` (`QSDK <hex>`) or in a renewal body.
fn token_key(header: &str) -> Option<String> {
    let header = header.trim();
    let key = header.strip_prefix("QSDK ").unwrap_or(header).trim();
    (!key.is_empty()).then(|| key.to_string())
}

/// The name in `byName(clientName='x')`, if that is the form.
fn by_name(which: &str) -> Option<String> {
    let inner = which
        .strip_prefix("byName(")
        .or_else(|| which.strip_prefix("byname("))?
        .strip_suffix(')')?;
    let (key, value) = inner.split_once('=')?;
    if !key.trim().eq_ignore_ascii_case("clientName") {
        return None;
    }
    Some(value.trim().trim_matches('\'').to_string())
}

fn decode_base64(text: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The secrets of a create body, by path: never stored.
const SECRETS: &[&[&str]] = &[
    &["salesforceAccount", "userCredentials", "password"],
    &["salesforceAccount", "consumerSecret"],
    &["salesforceAccount", "token"],
    &["syncDatabase", "dbUserPassword", "password"],
];

fn without_secrets(mut body: Value) -> Value {
    for path in SECRETS {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let parent = parents
            .iter()
            .try_fold(&mut body, |at, part| at.get_mut(*part));
        if let Some(Value::Object(object)) = parent {
            object.remove(*last);
        }
    }
    body
}

/// Every path under both prefixes. The documented spellings are routes of their own, so that
/// stats name them; any other spelling reaches the catch-all and is matched without case.
pub(crate) fn routes(_state: &SandboxState) -> Router<SandboxState> {
    PREFIXES.iter().fold(Router::new(), |router, prefix| {
        [
            "Login",
            "Logout",
            "RenewLoginToken",
            "Salesforce/Organization",
            "Client",
            "Client/{client}",
            "{*path}",
        ]
        .iter()
        .fold(router, |router, path| {
            router.route(&format!("{prefix}/{path}"), any(serve))
        })
    })
}

/// One call: route it without case, then run the logic. A create changes the data (saved);
/// everything else only touches tokens (not saved).
async fn serve(State(state): State<SandboxState>, call: Call) -> Response {
    let Some(rest) = strip_prefix(call.uri.path()) else {
        return status_error(&state, StatusCode::NOT_FOUND);
    };
    let endpoint = match Endpoint::route(call.method.as_str(), rest) {
        Ok(endpoint) => endpoint,
        Err(status) => return status_error(&state, status),
    };
    let token = call.header("authtoken");
    let config = &state.config().commvault;
    let (now, random) = (Instant::now(), state.random());
    let (answer, lost) = on_data(&state, endpoint.creates(), |data| {
        let commvault = &mut data.commvault_salesforce;
        let answer = commvault.answer(config, &endpoint, token, &call.body, now, random);
        let created = endpoint.creates()
            && answer.status == StatusCode::OK
            && answer
                .json_body()
                .is_some_and(|b| b["response"]["errorCode"] == 0);
        let lost = created && commvault.lost_answers.lose(config.lose_create_answers);
        (answer, lost)
    })
    .await;
    if lost {
        return status_error(&state, StatusCode::BAD_GATEWAY);
    }
    respond(answer)
}

fn respond(answer: Answer) -> Response {
    match answer.body {
        Body::Json(body) => (answer.status, axum::Json(body)).into_response(),
        Body::Written(text) => (
            answer.status,
            [(header::CONTENT_TYPE, "application/json")],
            text,
        )
            .into_response(),
        Body::Text(text) => (
            answer.status,
            [(header::CONTENT_TYPE, "text/plain;charset=utf-8")],
            text,
        )
            .into_response(),
    }
}

/// A bare HTTP error (injected faults, unknown paths) in Commvault's `{"errorMessage",
/// "errorCode"}` shape [I].
pub(crate) fn status_error(_state: &SandboxState, status: StatusCode) -> Response {
    let message = status.canonical_reason().unwrap_or("Error");
    (
        status,
        axum::Json(json!({"errorMessage": message, "errorCode": status.as_u16()})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list is written as text straight from the organizations: exactly the text its JSON
    /// tree was, key order included.
    #[test]
    fn the_list_is_the_text_its_json_was() {
        let mut data = CommvaultData::default();
        for (client_id, name, endpoint) in [
            (1001, "Acme", "https://login.salesforce.com"),
            (1002, "Beta \"q\" \u{e9}", ""),
        ] {
            data.organizations.push(Organization {
                client_id,
                client_name: name.to_string(),
                sf_org_id: format!("00D{client_id}"),
                endpoint: endpoint.to_string(),
                instance_id: client_id + 50_000,
                backupset_id: client_id + 60_000,
                subclient_id: client_id + 70_000,
                request: Value::Null,
            });
        }
        let expected: Vec<Value> = data
            .organizations
            .iter()
            .map(|o| {
                json!({
                    "sfOrgId": o.sf_org_id,
                    "endPoint": o.endpoint,
                    "backupTime": 0,
                    "sfSubclient": {
                        "clientId": o.client_id,
                        "clientName": o.client_name,
                        "backupsetId": o.backupset_id,
                        "backupsetName": o.client_name,
                        "instanceId": o.instance_id,
                        "subclientId": o.subclient_id,
                        "appName": "Salesforce",
                    },
                })
            })
            .collect();
        let listed = data.list();
        assert_eq!(listed.status, StatusCode::OK);
        let Body::Written(text) = &listed.body else {
            panic!("not written as text: {listed:?}");
        };
        assert_eq!(
            String::from_utf8_lossy(text),
            json!({ "orgs": expected }).to_string()
        );
    }
}
