//! Commvault: protect a Salesforce organization (docs/providers/commvault_salesforce.md, seed
//! 000).
//!
//! Three calls, all under the instance's `base_url` (the customer's own Command Center, like
//! `https://cc.example.com/commandcenter/api`):
//!
//! - `POST /Login` with the user name and the base64 of the password gives a `token`, sent
//!   as the `Authtoken` header on every later call. **A refused login is HTTP 200** with
//!   `errList[].errLogMessage` and no token; it becomes [`ProviderError::Login`].
//! - `GET /Salesforce/Organization` lists every protected organization at once (`orgs[]`, or
//!   `accounts[]`, or `{}` when there is none): the remote reality of a plan, the look-up
//!   that settles a create, and what `discover` reads. Names match without case, as Commvault's
//!   client names do. Of the declarable fields it reports the name and `endPoint` (the
//!   Salesforce login endpoint), which adopt and drift compare with the declared ones.
//! - `POST /Salesforce/Organization` creates. 200 with `response.errorCode = 0` and the new
//!   `entity.clientId` is success; **200 with a non-zero `response.errorCode` is a refusal**;
//!   409 means the name is taken ([`ProviderError::AlreadyExists`], which apply adopts); 400 is
//!   a refusal of the body.
//!
//! Tokens lapse after 30 idle minutes: a 401 on any call logs in again once and resends that
//! call once (a 401 is a refusal before any work, so resending a create is safe); a second 401
//! is [`ProviderError::Unauthorized`].
//!
//! Secrets: the Commcell password, the Salesforce password, the consumer secret and the sync
//! database password are base64-encoded on the wire, as the seed says; the Salesforce API
//! `token` is sent as it is. The token of the session is a secret too. None of them is ever put
//! in an error: text that comes back from Commvault is scrubbed of every credential first.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::{Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::http::{Effect, Http, read_body, short};
use super::login::LoginCell;
use super::wire::{ReportedReader, SecretEncoding, WireKey, to_json};
use super::{ConnectOptions, CreateContext, Provider, ProviderError};
use crate::model::{InstanceReality, NaturalKey, ProviderType, RemoteOrg, RemoteStatus, Reported};
use crate::secrets::{SecretResolver, SecretString};
use crate::spec::{OrgSpec, ProviderInstance};

/// `POST {base}/Login`.
pub(crate) const LOGIN_PATH: &str = "/Login";
/// `GET` lists, `POST` creates.
pub(crate) const ORGANIZATIONS_PATH: &str = "/Salesforce/Organization";

/// The header that carries the session token.
pub(crate) const AUTH_HEADER: &str = "Authtoken";

/// The one secret of a create body that Commvault takes as it is, not base64-encoded: the
/// Salesforce user's API token (the seed documents base64 for passwords and the consumer
/// secret only).
const PLAIN_SECRETS: &[(&str, &str)] = &[("salesforce_account", "token")];

pub struct Commvault {
    http: Http,
    username: SecretString,
    password: SecretString,
    secrets: SecretResolver,
    /// The current `Authtoken`; a secret. Held across the login so that concurrent callers that
    /// find it lapsed log in once between them.
    token: LoginCell<SecretString>,
}

/// One organization as `GET /Salesforce/Organization` reports it: what orgform reads of
/// `orgs[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub client_id: String,
    pub client_name: String,
    /// `endPoint`, the Salesforce login endpoint the organization is reached at: the one
    /// declarable field the list reports besides the name. `None` when missing or empty.
    pub endpoint: Option<String>,
    /// Facts worth recording: the Salesforce org id, and the instance and backup set ids that
    /// Commvault's modify call would need.
    pub detail: BTreeMap<String, String>,
}

/// A number or a string that holds one (ids arrive both ways across Commvault's APIs).
fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// Reads the body of `GET /Salesforce/Organization`. The list is `orgs`, or `accounts` when
/// there is no `orgs` (Commvault's own MCP server reads both, providers.md §1.4); `{}` and a
/// `null` list are an empty Commcell, as cvpysdk reads them. An entry without a client id or
/// name can't be matched to anything and is skipped.
///
/// Read straight from the text, entry by entry, with no JSON tree of the list (that was most of
/// the time and memory of reading a hundred thousand organizations); a body that is not of the
/// documented shape in every part it reads is read again as a JSON tree
/// ([`parse_list_tree`]), which says the same of the documented shape and judges the rest.
pub fn parse_list(body: &str) -> Result<Vec<Listed>, String> {
    match serde_json::from_str::<StreamedList>(body) {
        Ok(StreamedList(listed)) => Ok(listed),
        Err(_) => parse_list_tree(body),
    }
}

/// [`parse_list`], from a JSON tree of the whole body.
pub fn parse_list_tree(body: &str) -> Result<Vec<Listed>, String> {
    let json: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(object) = json.as_object() else {
        return Err("not a JSON object".into());
    };
    if let Some(message) = embedded_error(&json) {
        return Err(message);
    }
    let listed = ["orgs", "accounts"]
        .into_iter()
        .find_map(|key| object.get(key).filter(|v| !v.is_null()).map(|v| (key, v)));
    let orgs = match listed {
        None => return Ok(Vec::new()),
        Some((_, Value::Array(orgs))) => orgs,
        Some((key, _)) => return Err(format!("`{key}` is not a list")),
    };
    Ok(orgs
        .iter()
        .filter_map(|org| {
            let sub = &org["sfSubclient"];
            listed_entry(&EntryFields {
                client_id: sub.get("clientId"),
                client_name: sub.get("clientName"),
                instance_id: sub.get("instanceId"),
                backupset_id: sub.get("backupsetId"),
                sf_org_id: sf_org_id(org),
                endpoint: org.get("endPoint"),
            })
        })
        .collect())
}

/// What orgform reads of one entry of the list, wherever it was found.
struct EntryFields<'a> {
    client_id: Option<&'a Value>,
    client_name: Option<&'a Value>,
    instance_id: Option<&'a Value>,
    backupset_id: Option<&'a Value>,
    sf_org_id: Option<&'a Value>,
    endpoint: Option<&'a Value>,
}

/// One entry of the list as orgform keeps it; `None` without a client id and name.
fn listed_entry(entry: &EntryFields<'_>) -> Option<Listed> {
    let (Some(client_id), Some(client_name)) = (
        id_text(entry.client_id),
        entry.client_name.and_then(Value::as_str),
    ) else {
        tracing::debug!("skipping a listed organization without a client id and name");
        return None;
    };
    let mut detail = BTreeMap::new();
    for (key, value) in [
        ("sf_org_id", entry.sf_org_id),
        ("instance_id", entry.instance_id),
        ("backupset_id", entry.backupset_id),
    ] {
        if let Some(text) = id_text(value) {
            detail.insert(key.to_string(), text);
        }
    }
    let endpoint = entry
        .endpoint
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string);
    Some(Listed {
        client_id,
        client_name: client_name.to_string(),
        endpoint,
        detail,
    })
}

/// The list read from its text: the keys [`parse_list_tree`] reads of the top object (the two
/// lists, and the error fields), every other skipped. An error, or a list that is neither an
/// array nor `null`, is no success to read so, and the tree judges it.
struct StreamedList(Vec<Listed>);

impl<'de> Deserialize<'de> for StreamedList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StreamedList, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = StreamedList;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the organization list")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StreamedList, A::Error> {
                let (mut orgs, mut accounts) = (None, None);
                let mut errors = serde_json::Map::new();
                while let Some(WireKey(key)) = map.next_key()? {
                    match &*key {
                        // `None` inside: `null`, no list.
                        "orgs" => orgs = Some(map.next_value::<Option<Entries>>()?),
                        "accounts" => accounts = Some(map.next_value::<Option<Entries>>()?),
                        "errorCode" | "errorMessage" | "errorString" => {
                            errors.insert(key.into_owned(), map.next_value()?);
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                if embedded_error(&Value::Object(errors)).is_some() {
                    return Err(A::Error::custom("an error"));
                }
                let listed = orgs.flatten().or(accounts.flatten());
                Ok(StreamedList(listed.map(|Entries(e)| e).unwrap_or_default()))
            }
        }
        deserializer.deserialize_map(Top)
    }
}

/// A list of entries, each read into a [`Listed`] as it comes (entries that name no client
/// skipped, as the tree skips them).
struct Entries(Vec<Listed>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entries, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Entries;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of organizations")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(Entry(entry)) = seq.next_element()? {
                    out.extend(entry);
                }
                Ok(Entries(out))
            }
        }
        deserializer.deserialize_seq(List)
    }
}

/// One entry: the keys [`parse_list_tree`] reads, the last of a repeated key (as a JSON map
/// keeps it); anything but an object names no client.
struct Entry(Option<Listed>);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entry, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Entry;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an organization")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                let mut sub = Subclient::default();
                let (mut sf_org_id, mut props, mut endpoint) = (None, None, None);
                while let Some(WireKey(key)) = map.next_key()? {
                    match &*key {
                        "sfSubclient" => sub = map.next_value()?,
                        "sfOrgId" => sf_org_id = Some(map.next_value::<Value>()?),
                        "salesforceProps" => props = Some(map.next_value::<Value>()?),
                        "endPoint" => endpoint = Some(map.next_value::<Value>()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                // As `sf_org_id` reads it: `sfOrgId`, or else the legacy path.
                let legacy = props
                    .as_ref()
                    .and_then(|p| p.get("salesforceAccount")?.get("organizationId"));
                Ok(Entry(listed_entry(&EntryFields {
                    client_id: sub.client_id.as_ref(),
                    client_name: sub.client_name.as_ref(),
                    instance_id: sub.instance_id.as_ref(),
                    backupset_id: sub.backupset_id.as_ref(),
                    sf_org_id: sf_org_id.as_ref().filter(|v| !v.is_null()).or(legacy),
                    endpoint: endpoint.as_ref(),
                })))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Entry(None))
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Entry, E> {
                Ok(Entry(None))
            }

            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Entry, E> {
                Ok(Entry(None))
            }

            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Entry, E> {
                Ok(Entry(None))
            }

            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Entry, E> {
                Ok(Entry(None))
            }

            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Entry, E> {
                Ok(Entry(None))
            }

            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Entry, E> {
                Ok(Entry(None))
            }
        }
        deserializer.deserialize_any(Object)
    }
}

/// `sfSubclient`: the ids and the name; anything but an object holds none of them.
#[derive(Default)]
struct Subclient {
    client_id: Option<Value>,
    client_name: Option<Value>,
    instance_id: Option<Value>,
    backupset_id: Option<Value>,
}

impl<'de> Deserialize<'de> for Subclient {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Subclient, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Subclient;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a subclient")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Subclient, A::Error> {
                let mut sub = Subclient::default();
                while let Some(WireKey(key)) = map.next_key()? {
                    let slot = match &*key {
                        "clientId" => &mut sub.client_id,
                        "clientName" => &mut sub.client_name,
                        "instanceId" => &mut sub.instance_id,
                        "backupsetId" => &mut sub.backupset_id,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(sub)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Subclient, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Subclient::default())
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Subclient, E> {
                Ok(Subclient::default())
            }

            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Subclient, E> {
                Ok(Subclient::default())
            }

            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Subclient, E> {
                Ok(Subclient::default())
            }

            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Subclient, E> {
                Ok(Subclient::default())
            }

            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Subclient, E> {
                Ok(Subclient::default())
            }

            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Subclient, E> {
                Ok(Subclient::default())
            }
        }
        deserializer.deserialize_any(Object)
    }
}

/// The Salesforce org id of a listed organization: `sfOrgId`, or the legacy
/// `salesforceProps.salesforceAccount.organizationId` (providers.md §1.4).
fn sf_org_id(org: &Value) -> Option<&Value> {
    org.get("sfOrgId").filter(|v| !v.is_null()).or_else(|| {
        org.get("salesforceProps")?
            .get("salesforceAccount")?
            .get("organizationId")
    })
}

/// A top-level `{"errorCode": n, "errorMessage": "..."}` with a non-zero code, which some
/// Commvault endpoints send with HTTP 200.
fn embedded_error(json: &Value) -> Option<String> {
    let code = json.get("errorCode").and_then(Value::as_i64)?;
    (code != 0).then(|| {
        let message = json
            .get("errorMessage")
            .or_else(|| json.get("errorString"))
            .and_then(Value::as_str)
            .unwrap_or("no message");
        format!("error {code}: {message}")
    })
}

/// What a create's HTTP 200 says.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateAnswer {
    /// `response.errorCode` 0 and the new client.
    Created {
        client_id: String,
        client_name: Option<String>,
    },
    /// A non-zero `response.errorCode`: refused, nothing created.
    Refused { code: i64, message: String },
    /// Success without an id, or a body that can't be read: it may exist, only a look-up can
    /// tell.
    Unclear(String),
}

/// Reads the body of a create's HTTP 200. `response` is an object on create (and an array on
/// Commvault's modify call; the first element is read if one comes here).
pub fn parse_create(body: &str) -> CreateAnswer {
    let json: Value = match serde_json::from_str(body) {
        Ok(json) => json,
        Err(e) => return CreateAnswer::Unclear(format!("the answer is not JSON: {e}")),
    };
    if let Some(code) = json.get("errorCode").and_then(Value::as_i64)
        && code != 0
        && json.get("response").is_none()
    {
        return CreateAnswer::Refused {
            code,
            message: error_text(&json),
        };
    }
    let response = match &json["response"] {
        Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    let code = response
        .get("errorCode")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if code != 0 {
        return CreateAnswer::Refused {
            code,
            message: error_text(&response),
        };
    }
    let entity = &response["entity"];
    match id_text(entity.get("clientId")) {
        Some(client_id) => CreateAnswer::Created {
            client_id,
            client_name: entity
                .get("clientName")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        None => CreateAnswer::Unclear(format!(
            "the answer has no response.entity.clientId: {}",
            short(body)
        )),
    }
}

/// The message of a Commvault error object, under whichever name it uses.
fn error_text(object: &Value) -> String {
    [
        "errorMessage",
        "errorString",
        "errLogMessage",
        "warningMessage",
    ]
    .iter()
    .find_map(|k| object.get(*k).and_then(Value::as_str))
    .map(str::trim)
    .filter(|m| !m.is_empty())
    .map_or_else(|| "no message".to_string(), short)
}

/// An error answer (`{"errorMessage","errorCode"}` on 4xx) in words.
pub fn describe_error(status: StatusCode, body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(json) if json.is_object() => {
            let text = error_text(&json);
            match json.get("errorCode").and_then(Value::as_i64) {
                Some(code) if text != "no message" => {
                    format!("HTTP {}: {text} (error {code})", status.as_u16())
                }
                _ if text != "no message" => format!("HTTP {}: {text}", status.as_u16()),
                _ => format!("HTTP {}: {}", status.as_u16(), short(body)),
            }
        }
        _ => format!("HTTP {}: {}", status.as_u16(), short(body)),
    }
}

/// What a refused login says: `errList[].errLogMessage`, and a lock when there is one.
pub fn describe_login_failure(json: &Value) -> String {
    let mut parts: Vec<String> = json["errList"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let text = error_text(e);
            match e.get("errorCode").and_then(Value::as_i64) {
                Some(code) => format!("{text} (error {code})"),
                None => text,
            }
        })
        .collect();
    if parts.is_empty()
        && let Some(message) = json["error"]["errLogMessage"].as_str()
    {
        parts.push(short(message));
    }
    if parts.is_empty() {
        parts.push("Commvault answered without a token and without saying why".into());
    }
    if json["isAccountLocked"].as_bool() == Some(true) {
        let wait = json["remainingLockTime"].as_i64().unwrap_or(0);
        let seconds = if wait == 1 { "second" } else { "seconds" };
        parts.push(format!("the account is locked for {wait} more {seconds}"));
    }
    parts.join("; ")
}

/// The token a login answer carries: `token` (`QSDK ...`, used as it is, as cvpysdk does), or the
/// SaaS variant's `data.authToken`, which is a bearer token.
pub fn login_token(json: &Value) -> Option<String> {
    if let Some(token) = json["token"].as_str().map(str::trim)
        && !token.is_empty()
    {
        return Some(token.to_string());
    }
    let token = json["data"]["authToken"].as_str().map(str::trim)?;
    if token.is_empty() {
        None
    } else if token.starts_with("Bearer ") {
        Some(token.to_string())
    } else {
        Some(format!("Bearer {token}"))
    }
}

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

impl Commvault {
    pub(crate) fn connect(
        instance: &ProviderInstance,
        options: &ConnectOptions,
    ) -> Result<Commvault, ProviderError> {
        Ok(Commvault {
            http: options.http(instance)?,
            username: options.secret(instance, "username")?,
            password: options.secret(instance, "password")?,
            secrets: options.secrets.clone(),
            token: LoginCell::default(),
        })
    }

    /// The body of a create for declared attributes, with secrets resolved: every password and
    /// the consumer secret base64-encoded, the API token as it is.
    pub fn create_body(
        org: &OrgSpec,
        secrets: &SecretResolver,
    ) -> Result<serde_json::Map<String, Value>, ProviderError> {
        let schema = ProviderType::CommvaultSalesforce.schema();
        let attrs = org.attrs.unpack();
        let mut body = to_json(schema.org, &attrs, secrets, SecretEncoding::Base64)?;
        // `wire` encodes every secret of a body one way; the few Commvault takes plain are put
        // back as they are.
        for (object, key) in PLAIN_SECRETS {
            let declared = attrs
                .get(object)
                .and_then(crate::model::Value::as_table)
                .and_then(|t| t.get(key));
            let Some(crate::model::Value::Secret(reference)) = declared else {
                continue;
            };
            let field = schema.org.iter().find(|f| f.name == *object);
            let inner = match field.map(|f| &f.kind) {
                Some(crate::catalog::schema::Kind::Object(fields)) => fields,
                _ => continue,
            };
            let (Some(outer), Some(wire)) = (
                field.map(|f| f.wire),
                inner.iter().find(|f| f.name == *key).map(|f| f.wire),
            ) else {
                continue;
            };
            if let Some(Value::Object(target)) = body.get_mut(outer) {
                let plain = secrets.resolve(reference)?;
                target.insert(wire.to_string(), Value::String(plain.expose().to_string()));
            }
        }
        Ok(body)
    }

    /// Text from Commvault, with every credential this client holds taken out: a server may echo
    /// what it was sent.
    fn scrub(&self, text: String) -> String {
        let mut text = text;
        let password = self.password.expose();
        for secret in [self.username.expose(), password, base64(password).as_str()] {
            if secret.len() >= 3 && text.contains(secret) {
                text = text.replace(secret, "***");
            }
        }
        text
    }

    /// The session token, logging in first if there is none.
    async fn token(&self) -> Result<Arc<SecretString>, ProviderError> {
        self.token.get(|| self.log_in()).await
    }

    /// `POST /Login`: the user name and the base64 of the password in, a token out.
    async fn log_in(&self) -> Result<SecretString, ProviderError> {
        let body = json!({
            "username": self.username.expose(),
            "password": base64(self.password.expose()),
        });
        let (status, text) = self
            .http
            .fetch("the login answer", || {
                self.http
                    .request(Method::POST, LOGIN_PATH)
                    .header("accept", "application/json")
                    .json(&body)
            })
            .await?;
        let failed = |message: String| ProviderError::Login {
            message: self.scrub(message),
        };
        if !status.is_success() {
            return Err(failed(format!(
                "Commvault refused the login: {}",
                describe_error(status, &text)
            )));
        }
        let json: Value = serde_json::from_str(&text).map_err(|e| {
            failed(format!(
                "the login answer is not JSON ({e}); is `base_url` Commvault's API root, like https://HOST/commandcenter/api?"
            ))
        })?;
        match login_token(&json) {
            Some(token) => Ok(SecretString::new(token)),
            // The documented quirk: a refused login is HTTP 200 with `errList` and no token.
            None => Err(failed(format!(
                "Commvault refused this username and password: {}",
                describe_login_failure(&json)
            ))),
        }
    }

    fn request(&self, method: Method, path: &str, token: &SecretString) -> RequestBuilder {
        self.http
            .request(method, path)
            .header(AUTH_HEADER, token.expose())
            .header("accept", "application/json")
    }

    /// Sends one call with the token, logging in again once if Commvault answers 401. Returns
    /// the status and body of any other answer.
    async fn send(
        &self,
        call: Effect,
        make: impl Fn(&SecretString) -> RequestBuilder,
    ) -> Result<(StatusCode, String), ProviderError> {
        // A 401 is a refusal before any work, so even a create may be sent again: once, with a
        // fresh token.
        let token = self.token().await?;
        let make = &make;
        self.token
            .send_until_accepted(
                token,
                2,
                || self.log_in(),
                |token| async move {
                    let response = self.http.send_as(call, || make(&token)).await?;
                    let status = response.status();
                    let body = read_body(response, call, "the answer").await?;
                    Ok((status, body))
                },
                |status, body| {
                    self.scrub(format!(
                        "Commvault refused a fresh token too: {}",
                        describe_error(status, body)
                    ))
                },
            )
            .await
    }

    /// Every Salesforce organization the Commcell protects, in one request.
    async fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        let (status, body) = self
            .send(Effect::Safe, |token| {
                self.request(Method::GET, ORGANIZATIONS_PATH, token)
            })
            .await?;
        match status {
            StatusCode::OK => {}
            StatusCode::FORBIDDEN => {
                return Err(ProviderError::Unauthorized {
                    message: self.scrub(format!(
                        "this Commcell user may not list Salesforce organizations: {}",
                        describe_error(status, &body)
                    )),
                });
            }
            _ => {
                return Err(ProviderError::Protocol {
                    message: self.scrub(format!(
                        "listing Salesforce organizations: {}",
                        describe_error(status, &body)
                    )),
                });
            }
        }
        parse_list(&body).map_err(|why| ProviderError::Protocol {
            message: self.scrub(format!(
                "the Salesforce organization list is not what Commvault documents: {why}"
            )),
        })
    }
}

/// What Commvault reports of an organization's declarable fields, under spec names: its name
/// (`sfSubclient.clientName`, or a create answer's `entity.clientName`) as `organization_name`,
/// and the list's `endPoint` as `salesforce_account.endpoint` (Commvault's MCP server reads it
/// as "the Salesforce login endpoint URL", which is what the create's
/// `salesforceAccount.endpoint` sets). Nothing else the answers hold is a field of the create
/// body (providers.md §1.4; docs/providers/commvault_salesforce.md).
pub(crate) fn reported(client_name: Option<&str>, endpoint: Option<&str>) -> Reported {
    // Values in memory always read.
    read_reported::<serde::de::value::Error>(client_name, endpoint).unwrap_or_default()
}

/// [`reported`], read by the schema straight into the packed attributes.
fn read_reported<E: serde::de::Error>(
    client_name: Option<&str>,
    endpoint: Option<&str>,
) -> Result<Reported, E> {
    use serde::de::IntoDeserializer as _;
    use serde::de::value::{MapDeserializer, StrDeserializer};
    let mut reader = ReportedReader::new(ProviderType::CommvaultSalesforce.schema().org);
    if let Some(name) = client_name {
        reader.put::<StrDeserializer<'_, E>>("organizationName", name.into_deserializer())?;
    }
    if let Some(endpoint) = endpoint {
        reader.put(
            "salesforceAccount",
            MapDeserializer::<_, E>::new(std::iter::once(("endpoint", endpoint))),
        )?;
    }
    Ok(reader.finish())
}

fn to_remote(listed: Listed) -> RemoteOrg {
    RemoteOrg {
        natural_key: ProviderType::CommvaultSalesforce.natural_key(&[&listed.client_name]),
        attributes: reported(Some(&listed.client_name), listed.endpoint.as_deref()),
        remote_id: listed.client_id,
        status: RemoteStatus::Ready,
        detail: listed.detail.into(),
    }
}

impl Provider for Commvault {
    async fn login(&self) -> Result<(), ProviderError> {
        self.token().await.map(|_| ())
    }

    async fn list_all(&self) -> Result<InstanceReality, ProviderError> {
        // The one list call is everything; no documented read of one client returns more of
        // what a create declares (docs/providers/commvault_salesforce.md, "What reads report").
        self.read(&[]).await
    }

    async fn read(&self, _keys: &[NaturalKey]) -> Result<InstanceReality, ProviderError> {
        let mut reality = InstanceReality::default();
        for listed in self.list().await? {
            reality.insert(to_remote(listed));
        }
        Ok(reality)
    }

    async fn create(&self, org: &OrgSpec, _cx: CreateContext) -> Result<RemoteOrg, ProviderError> {
        let body = Commvault::create_body(org, &self.secrets)?;
        let (status, text) = self
            .send(Effect::Creates, |token| {
                self.request(Method::POST, ORGANIZATIONS_PATH, token)
                    .json(&body)
            })
            .await?;
        let scrubbed = |message: String| self.scrub(message);
        match status {
            StatusCode::OK | StatusCode::CREATED => match parse_create(&text) {
                CreateAnswer::Created {
                    client_id,
                    client_name,
                } => Ok(RemoteOrg {
                    remote_id: client_id,
                    // The declared name is what the next plan looks for; Commvault keeps it.
                    natural_key: org.natural_key.clone(),
                    status: RemoteStatus::Ready,
                    detail: crate::model::Detail::default(),
                    // The answer's `entity` holds the name only; the endpoint comes with the
                    // next list.
                    attributes: reported(client_name.as_deref(), None),
                }),
                CreateAnswer::Refused { code, message } => Err(ProviderError::Rejected {
                    status: status.as_u16(),
                    message: scrubbed(format!("Commvault answered error {code}: {message}")),
                }),
                CreateAnswer::Unclear(why) => Err(ProviderError::OutcomeUnknown {
                    message: scrubbed(why),
                }),
            },
            StatusCode::CONFLICT => Err(ProviderError::AlreadyExists {
                message: scrubbed(describe_error(status, &text)),
            }),
            StatusCode::FORBIDDEN => Err(ProviderError::Unauthorized {
                message: scrubbed(format!(
                    "this Commcell user may not create Salesforce organizations: {}",
                    describe_error(status, &text)
                )),
            }),
            // Refused before any work: nothing was created.
            s if s.is_client_error() => Err(ProviderError::Rejected {
                status: s.as_u16(),
                message: scrubbed(describe_error(status, &text)),
            }),
            s => Err(ProviderError::OutcomeUnknown {
                message: scrubbed(format!("unexpected answer: {}", describe_error(s, &text))),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_reports_the_name_and_the_login_endpoint_under_spec_names() {
        let listed = parse_list(
            r#"{"orgs": [
                {"sfOrgId": "00D1", "endPoint": "https://test.salesforce.com", "backupTime": 0,
                 "sfSubclient": {"clientId": 1042, "clientName": "Acme", "backupsetName": "Acme",
                                 "backupsetId": 61042, "appName": "Salesforce"}},
                {"endPoint": "", "sfSubclient": {"clientId": 1043, "clientName": "beta"}}
            ]}"#,
        )
        .unwrap_or_default();
        let remotes: Vec<RemoteOrg> = listed.into_iter().map(to_remote).collect();
        assert_eq!(
            Value::Object(remotes[0].attributes.to_json()),
            json!({
                "organization_name": "Acme",
                "salesforce_account": {"endpoint": "https://test.salesforce.com"},
            })
        );
        // An empty `endPoint` says nothing: it is not reported as a value to compare or write.
        assert_eq!(
            Value::Object(remotes[1].attributes.to_json()),
            json!({"organization_name": "beta"})
        );
    }

    #[test]
    fn the_list_streamed_reads_what_the_json_tree_reads() {
        let extra = r#""extra": {"deep": [1, {"x": null}]}"#;
        let streamed = [
            format!(
                r#"{{"orgs": [
                {{"sfOrgId": "00D1", "endPoint": " https://test.salesforce.com ", "backupTime": 0, {extra},
                 "sfSubclient": {{"clientId": 1042, "clientName": "Acme", "backupsetName": "Acme",
                                 "backupsetId": 61042, "instanceId": "51042", "appName": "Salesforce", {extra}}}}},
                {{"endPoint": "", "sfSubclient": {{"clientId": "1043", "clientName": "beta \"q\" \u00e9"}}}},
                {{"sfOrgId": null, "salesforceProps": {{"salesforceAccount": {{"organizationId": "00D2"}}}},
                 "sfSubclient": {{"clientId": 1044, "clientName": "gamma"}}}},
                {{"salesforceProps": {{"salesforceAccount": {{"organizationId": 7}}}}, "sfOrgId": "00D3",
                 "sfSubclient": {{"clientId": 1045, "clientName": "delta"}}, "endPoint": 5}},
                {{"sfSubclient": {{"clientId": " ", "clientName": "no id"}}}},
                {{"sfSubclient": {{"clientId": 1046}}}},
                {{"sfSubclient": [1]}}, {{"sfSubclient": "x"}}, [1], "text", null, 3,
                {{"sfSubclient": {{"clientId": 1, "clientName": "first"}}, "sfSubclient": {{"clientId": 1047, "clientName": "last"}}}}
            ], "other": {{"orgs": 1}}, {extra}}}"#
            ),
            r#"{"accounts": [{"sfSubclient": {"clientId": 1, "clientName": "a"}}]}"#.to_string(),
            r#"{"orgs": null, "accounts": [{"sfSubclient": {"clientId": 1, "clientName": "a"}}]}"#
                .to_string(),
            r#"{"orgs": [], "accounts": [{"sfSubclient": {"clientId": 1, "clientName": "a"}}]}"#
                .to_string(),
            r"{}".to_string(),
            r#"{"orgs": null}"#.to_string(),
            r#"{"errorCode": 0, "errorMessage": "fine", "orgs": []}"#.to_string(),
        ];
        for body in &streamed {
            assert!(
                serde_json::from_str::<StreamedList>(body).is_ok(),
                "not streamed: {body}"
            );
            let tree = parse_list_tree(body);
            assert!(tree.is_ok(), "{body}");
            assert_eq!(parse_list(body), tree, "{body}");
        }
        assert_eq!(
            parse_list(&streamed[0]).map(|l| l.len()),
            Ok(5),
            "the entries without a client id and name are skipped"
        );
        // Left to the tree: errors, and lists that are not lists.
        let left = [
            r#"{"errorCode": 5, "errorMessage": "no"}"#,
            r#"{"orgs": 1}"#,
            r#"{"orgs": [], "accounts": 1}"#,
            r"[]",
            r#"{"orgs": []} trailing"#,
            r"not JSON",
        ];
        for body in left {
            assert!(
                serde_json::from_str::<StreamedList>(body).is_err(),
                "streamed: {body}"
            );
            assert_eq!(parse_list(body), parse_list_tree(body), "{body}");
        }
        assert_eq!(parse_list(left[0]), Err("error 5: no".to_string()));
        assert_eq!(parse_list(left[2]), Ok(Vec::new()), "`orgs` wins");
    }

    #[test]
    fn what_is_reported_is_what_the_wire_json_said() {
        for (name, endpoint) in [
            (Some("Acme"), Some("https://test.salesforce.com")),
            (Some(""), None),
            (None, Some("")),
            (None, None),
        ] {
            let mut wire = serde_json::Map::new();
            if let Some(name) = name {
                wire.insert("organizationName".into(), name.into());
            }
            if let Some(endpoint) = endpoint {
                wire.insert("salesforceAccount".into(), json!({ "endpoint": endpoint }));
            }
            let by_json = super::super::wire::from_wire(
                ProviderType::CommvaultSalesforce.schema().org,
                &wire,
            );
            assert_eq!(reported(name, endpoint), by_json, "{name:?} {endpoint:?}");
        }
    }
}
