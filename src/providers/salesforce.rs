//! Salesforce Trialforce sign-ups: `SignupRequest` records (seed 001,
//! docs/providers/salesforce_signup.md).
//!
//! - Login: `POST {base}/services/oauth2/token`, form-encoded, with the username-password grant
//!   or the JWT bearer grant (an RS256 assertion signed with the connected app's key). The answer
//!   names the `instance_url` every later call goes to, with `Authorization: Bearer`. A session
//!   that lapses (401 `INVALID_SESSION_ID`) is renewed once per call, then the call is resent.
//! - Remote reality: SOQL over `GET /services/data/vXX.X/query`, many usernames per query
//!   (`Username IN (...)`), chunked so URLs stay short, following `nextRecordsUrl` to the end;
//!   or every sign-up, 2,000 a page, when that takes fewer requests (and always, for
//!   `list_all`). Each query of a read selects every declarable field the API version has, so
//!   what a read reports ([`reported_attributes`]) costs no request of its own; a look
//!   (`Provider::look`, what apply's polls read) selects the status fields alone.
//! - Create: `POST /services/data/vXX.X/sobjects/SignupRequest/` answers 201 `{id, success,
//!   errors}` at once; the sign-up itself runs asynchronously (`New` → `In Progress` → `Success`
//!   or `Error`), and apply polls it in rounds, all of an instance's sign-ups in one `look`.
//!   Validation errors are a top-level JSON array `[{message, errorCode, fields}]`; business
//!   errors (duplicate username, bad template, ...) only show later as `Status = Error` with an
//!   `ErrorCode`, whose meanings are in [`error_meaning`].
//!
//! The natural key is the username, lower-cased: SOQL compares strings without case, so the
//! lower-cased keys find every spelling. The access token only ever sits in a [`SecretString`]
//! and a header; errors carry Salesforce's messages and codes, never a credential.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use reqwest::header::ACCEPT;
use reqwest::{Method, RequestBuilder, StatusCode};
use ring::signature::RsaKeyPair;
use serde::Deserialize;

use super::http::{Effect, Http, check_transport, created_answer, read_body, short};
use super::login::LoginCell;
use super::wire::{Matched, MatchedSeed, create_body, from_wire};
use super::{ConnectOptions, CreateContext, Found, Provider, ProviderError, send_found};
use crate::model::{InstanceReality, NaturalKey, ProviderType, RemoteOrg, RemoteStatus, Reported};
use crate::secrets::{SecretResolver, SecretString};
use crate::spec::{OrgSpec, ProviderInstance};

/// The API version used when the provider table names none.
pub(crate) const DEFAULT_API_VERSION: &str = "60.0";

const TOKEN_PATH: &str = "/services/oauth2/token";

/// The fields every read selects besides the declarable ones, with the API version each
/// appeared in (seed 001): what settling a sign-up reads, and `CreatedDate` to pick the newest
/// of several failed attempts.
const SYSTEM_FIELDS: &[(&str, u32)] = &[
    ("Id", 27),
    ("Status", 27),
    ("CreatedOrgId", 27),
    ("CreatedOrgInstance", 29),
    ("ErrorCode", 27),
    ("CreatedDate", 27),
];

/// The query every read starts with, at `api_version`: the system fields of [`SYSTEM_FIELDS`]
/// and every declarable field (all of them are Filter fields in seed 001, so all selectable),
/// each only if the version has it: a field newer than the version is unknown to it, and
/// Salesforce refuses the whole query with `INVALID_FIELD`.
pub fn select(api_version: &str) -> String {
    select_of(api_version, true)
}

/// The query a look at sign-ups starts with: the system fields and `Username`, what settling a
/// sign-up reads ([`SignupRecord`]), without the declarable fields a plan compares: a look at
/// 100,000 sign-ups carries their statuses, not their declarations.
pub fn status_select(api_version: &str) -> String {
    select_of(api_version, false)
}

fn select_of(api_version: &str, declarable: bool) -> String {
    let major = api_version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        // The validator allows only `NN.N`; anything else gets every field.
        .unwrap_or(u32::MAX);
    let since = |name: &str| {
        crate::catalog::salesforce::FIELD_API_VERSIONS
            .iter()
            .find(|(field, _)| *field == name)
            .map_or(crate::catalog::salesforce::MIN_API_VERSION, |(_, v)| *v)
    };
    let fields: Vec<&str> = SYSTEM_FIELDS
        .iter()
        .filter(|(_, v)| *v <= major)
        .map(|(name, _)| *name)
        .chain(
            ProviderType::SalesforceSignup
                .schema()
                .org
                .iter()
                .filter(|f| (declarable || f.wire == "Username") && since(f.name) <= major)
                .map(|f| f.wire),
        )
        .collect();
    format!("SELECT {} FROM SignupRequest", fields.join(", "))
}

/// Longest URL-encoded SOQL statement per request. Salesforce refuses request lines over about
/// 16 KB; this leaves room for the host, the path and proxies that are stricter still.
pub(crate) const MAX_ENCODED_QUERY: usize = 8_000;

/// Usernames per query, as the catalog gives it.
pub(crate) const QUERY_PAGE: usize = crate::catalog::salesforce::QUERY_PAGE as usize;

/// Pages followed for one query before giving up: a guard against a `nextRecordsUrl` loop
/// (a million records at Salesforce's smallest batch size of 200).
const MAX_PAGES: usize = 5_000;

/// How long a JWT assertion is valid: Salesforce wants `exp` within a few minutes.
const JWT_LIFETIME_SECS: u64 = 300;

pub struct Salesforce {
    http: Http,
    credentials: Box<Credentials>,
    /// The JWT `aud`: a login host ([`jwt_audience`]), never the origin requests go to.
    audience: String,
    api_version: String,
    session: LoginCell<Session>,
    secrets: SecretResolver,
    instance_name: String,
    /// [`select`] at this instance's API version.
    select: String,
    /// [`status_select`] at this instance's API version.
    status_select: String,
}

enum Credentials {
    Password {
        username: SecretString,
        password: SecretString,
        client_id: SecretString,
        client_secret: SecretString,
    },
    Jwt {
        username: SecretString,
        client_id: SecretString,
        key: RsaKeyPair,
    },
}

/// A logged-in session: where the organization's API lives and the token for it.
struct Session {
    access_token: SecretString,
    /// `https://acme.my.salesforce.com`, without a trailing slash.
    instance_url: String,
}

/// The token endpoint's answer; only what orgform uses.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    instance_url: String,
}

/// The token endpoint's error: `{"error": "invalid_grant", "error_description": "..."}`.
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// One element of a REST error array.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiError {
    // Each key may be missing or `null`: the code must still be read when the others are not.
    #[serde(default, deserialize_with = "null_as_default")]
    message: String,
    #[serde(default, deserialize_with = "null_as_default")]
    error_code: String,
    #[serde(default, deserialize_with = "null_as_default")]
    fields: Vec<String>,
}

/// A `null` read as the type's default, as a missing key is.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `POST .../sobjects/SignupRequest/` → 201 `{"id": "...", "success": true, "errors": []}`.
#[derive(Deserialize)]
struct Created {
    id: String,
    #[serde(default = "yes")]
    success: bool,
}

fn yes() -> bool {
    true
}

/// One SignupRequest as a query returned it: what orgform decides with, and the attributes it
/// reports, read from the whole record as it arrives (a read's rows are held until its last
/// page; as JSON trees they were most of a refreshed plan's Salesforce memory).
struct Row {
    record: SignupRecord,
    attributes: Reported,
}

/// A SignupRequest as the query returns it: the fields orgform decides with (settling, which
/// of several stands for a username).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct SignupRecord {
    pub id: String,
    pub username: String,
    pub status: String,
    #[serde(default)]
    pub created_org_id: Option<String>,
    #[serde(default)]
    pub created_org_instance: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    /// `2024-06-10T12:00:00.000+0000`: always UTC, so it sorts as text.
    #[serde(default)]
    pub created_date: Option<String>,
}

impl Salesforce {
    pub fn connect(
        instance: &ProviderInstance,
        options: &ConnectOptions,
    ) -> Result<Salesforce, ProviderError> {
        let secret = |key: &str| options.secret(instance, key);
        let credentials = match instance.setting("auth").unwrap_or("password") {
            "jwt" => Credentials::Jwt {
                username: secret("username")?,
                client_id: secret("client_id")?,
                key: rsa_key_from_pem(secret("private_key")?.expose()).map_err(|why| {
                    ProviderError::Config {
                        message: format!("provider `{}`: `private_key` {why}", instance.name),
                    }
                })?,
            },
            _ => Credentials::Password {
                username: secret("username")?,
                password: secret("password")?,
                client_id: secret("client_id")?,
                client_secret: secret("client_secret")?,
            },
        };
        let api_version = instance
            .setting("api_version")
            .unwrap_or(DEFAULT_API_VERSION)
            .to_string();
        Ok(Salesforce {
            http: options.http(instance)?,
            // Boxed: an RSA key pair is large, and AnyProvider holds every client inline.
            credentials: Box::new(credentials),
            audience: jwt_audience(&instance.base_url, instance.setting("audience")),
            select: select(&api_version),
            status_select: status_select(&api_version),
            api_version,
            session: LoginCell::default(),
            secrets: options.secrets.clone(),
            instance_name: instance.name.clone(),
        })
    }

    /// The current session, logging in first if there is none.
    async fn session(&self) -> Result<Arc<Session>, ProviderError> {
        self.session.get(|| self.log_in()).await
    }

    async fn log_in(&self) -> Result<Session, ProviderError> {
        let form: Vec<(&str, String)> = match self.credentials.as_ref() {
            Credentials::Password {
                username,
                password,
                client_id,
                client_secret,
            } => vec![
                ("grant_type", "password".into()),
                ("client_id", client_id.expose().into()),
                ("client_secret", client_secret.expose().into()),
                ("username", username.expose().into()),
                ("password", password.expose().into()),
            ],
            Credentials::Jwt {
                username,
                client_id,
                key,
            } => {
                let assertion = jwt_assertion(
                    client_id.expose(),
                    username.expose(),
                    &self.audience,
                    key,
                    crate::time::now(),
                )?;
                vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                    ),
                    ("assertion", assertion),
                ]
            }
        };
        let (status, body) = self
            .http
            .fetch("the login answer", || {
                self.http
                    .request(Method::POST, TOKEN_PATH)
                    .header(ACCEPT, "application/json")
                    .form(&form)
            })
            .await?;
        if status != StatusCode::OK {
            let message = match serde_json::from_str::<OAuthError>(&body) {
                Ok(OAuthError {
                    error,
                    error_description: Some(d),
                }) => format!("{error}: {d}"),
                Ok(OAuthError { error, .. }) => error,
                Err(_) => format!("HTTP {status}: {}", short(&body)),
            };
            return Err(ProviderError::Login { message });
        }
        // Not serde's message: on a malformed answer it could quote the token.
        let answer: TokenAnswer =
            serde_json::from_str(&body).map_err(|_| ProviderError::Protocol {
                message: "the login answer has no access_token and instance_url".into(),
            })?;
        let instance_url = answer.instance_url.trim_end_matches('/').to_string();
        // The token goes wherever instance_url says: only over HTTPS (or to loopback).
        check_transport(&instance_url)?;
        tracing::debug!(provider = %self.instance_name, instance_url = %instance_url, "logged in to Salesforce");
        Ok(Session {
            access_token: SecretString::new(answer.access_token),
            instance_url,
        })
    }

    fn data_path(&self, rest: &str) -> String {
        format!("/services/data/v{}{rest}", self.api_version)
    }

    /// A request to `path_and_query` on the session's instance, with its token.
    fn api(&self, session: &Session, method: Method, path_and_query: &str) -> RequestBuilder {
        self.http
            .request(method, &format!("{}{path_and_query}", session.instance_url))
            .bearer_auth(session.access_token.expose())
            .header(ACCEPT, "application/json")
    }

    /// Sends a request built for the current session. A 401 renews the session and sends again
    /// (the request was refused, so nothing happened): this call logs in at most once, and may
    /// also take up a session another call renewed meanwhile, a few times at most. Reads are
    /// retried on transient failures; creates are sent once per session, and what a lost answer
    /// means is the caller's concern.
    async fn call<F>(&self, effect: Effect, build: F) -> Result<(StatusCode, String), ProviderError>
    where
        F: Fn(&Session) -> RequestBuilder,
    {
        const MAX_SESSIONS: usize = 4;
        let session = self.session().await?;
        let build = &build;
        self.session
            .send_until_accepted(
                session,
                MAX_SESSIONS,
                || self.log_in(),
                |session| async move {
                    let request = || self.send_once(build(&session), effect);
                    self.http.as_allowed(effect, request).await
                },
                describe_errors,
            )
            .await
    }

    async fn send_once(
        &self,
        request: RequestBuilder,
        effect: Effect,
    ) -> Result<(StatusCode, String), ProviderError> {
        let response = self.http.send(request, effect).await?;
        let status = response.status();
        let body = read_body(response, effect, "the answer").await?;
        // The org's daily API quota: refused before any work, so sending again later is safe.
        if status == StatusCode::FORBIDDEN
            && error_codes(&body).any(|c| c == "REQUEST_LIMIT_EXCEEDED")
        {
            return Err(ProviderError::RateLimited {
                retry_after: None,
                message: describe_errors(status, &body),
            });
        }
        Ok((status, body))
    }

    /// Runs one SOQL query to the end, following `nextRecordsUrl`, handing each record to `each`
    /// as its page is read. `fields`: each row keeps the attributes the record reports (a read);
    /// without, only what [`SignupRecord`] holds, so that a look at 100,000 sign-ups holds their
    /// statuses and no more. A page's records are read while the next page is on its way: the
    /// next page's request leaves once this one's `nextRecordsUrl` is known, one request at a
    /// time, as the locator is followed.
    async fn query_each(
        &self,
        soql: &str,
        fields: bool,
        mut each: impl FnMut(Row) + Send,
    ) -> Result<(), ProviderError> {
        let first = format!(
            "{}?q={}",
            self.data_path("/query"),
            url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
        );
        let mut body = self.query_page(&first).await?;
        let mut pages = 1;
        loop {
            let head = page_head(&body).map_err(|e| ProviderError::Protocol {
                message: format!("the query answer is not what Salesforce documents: {e}"),
            })?;
            let next = if head.done {
                None
            } else {
                let url = head
                    .next_records_url
                    .ok_or_else(|| ProviderError::Protocol {
                        message: "the query answer says it is not done but has no nextRecordsUrl"
                            .into(),
                    })?;
                Some(next_page_path(&url)?)
            };
            let Some(next) = next else {
                return records_of(&body, fields, &mut each);
            };
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ProviderError::Protocol {
                    message: format!("the query did not finish after {MAX_PAGES} pages"),
                });
            }
            let read = async {
                // The next page's request was handed to its connection's task, which waits
                // behind this one on this worker: let it go first, or the request leaves only
                // once this page is read, and nothing overlaps.
                tokio::task::yield_now().await;
                records_of(&body, fields, &mut each)
            };
            let (fetched, read) = futures_util::future::join(self.query_page(&next), read).await;
            read?;
            body = fetched?;
        }
    }

    /// One page of a query: its body, answered 200.
    async fn query_page(&self, path: &str) -> Result<String, ProviderError> {
        let (status, body) = self
            .call(Effect::Safe, |s| self.api(s, Method::GET, path))
            .await?;
        if status != StatusCode::OK {
            return Err(read_error(status, &body));
        }
        Ok(body)
    }

    /// Runs `queries` and keeps, per username, the sign-up that stands for it ([`preferred`]),
    /// with the attributes it reports.
    async fn reality_of(&self, queries: Vec<String>) -> Result<InstanceReality, ProviderError> {
        let mut by_username: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for soql in queries {
            self.query_each(&soql, true, |row| {
                by_username
                    .entry(row.record.username.to_lowercase())
                    .or_default()
                    .push(row);
            })
            .await?;
        }
        let mut reality = InstanceReality::default();
        for rows in by_username.into_values() {
            // `preferred`'s choice (the first of equals), taken rather than copied.
            if let Some(best) = rows
                .into_iter()
                .min_by(|a, b| stands_before(&a.record, &b.record))
            {
                let mut remote = to_remote(&best.record);
                remote.attributes = best.attributes;
                reality.insert(remote);
            }
        }
        Ok(reality)
    }
}

/// A [`SignupRecord`] but its username (the look's key for it) in one allocation, for a look
/// that holds one per username until its last page: each field its length in decimal, then
/// `:` and its text, or `-` when absent.
struct Packed(Box<str>);

impl Packed {
    fn pack(record: &SignupRecord) -> Packed {
        let mut text = String::new();
        for field in [
            Some(&record.id),
            Some(&record.status),
            record.created_org_id.as_ref(),
            record.created_org_instance.as_ref(),
            record.error_code.as_ref(),
            record.created_date.as_ref(),
        ] {
            match field {
                Some(value) => {
                    text.push_str(&value.len().to_string());
                    text.push(':');
                    text.push_str(value);
                }
                None => text.push('-'),
            }
        }
        Packed(text.into_boxed_str())
    }

    fn unpack(&self, username: &str) -> SignupRecord {
        let mut rest: &str = &self.0;
        let mut next = || -> Option<String> {
            if let Some(after) = rest.strip_prefix('-') {
                rest = after;
                return None;
            }
            let (len, after) = rest.split_once(':')?;
            let len: usize = len.parse().ok()?;
            let value = after.get(..len)?;
            rest = after.get(len..)?;
            Some(value.to_string())
        };
        let id = next().unwrap_or_default();
        let status = next().unwrap_or_default();
        SignupRecord {
            id,
            username: username.to_string(),
            status,
            created_org_id: next(),
            created_org_instance: next(),
            error_code: next(),
            created_date: next(),
        }
    }
}

/// A query page's own fields, its records skipped: what tells whether another page follows.
#[derive(Debug, PartialEq)]
struct PageHead {
    done: bool,
    next_records_url: Option<String>,
}

/// A page's [`PageHead`], read only as far as its records where they come after it, as
/// Salesforce writes a page (`totalSize`, `done`, `nextRecordsUrl`, `records`): the next page
/// is asked for before this one's records are read, not after a first pass over them (half a
/// page's cost again, 50 times over for 100,000 sign-ups). Fields anywhere else are found by
/// reading on past the records. The records are read, and the whole page checked, after.
fn page_head(body: &str) -> Result<PageHead, serde_json::Error> {
    let mut head = None;
    let mut de = serde_json::Deserializer::from_str(body);
    let read = serde::Deserializer::deserialize_map(&mut de, HeadVisitor { head: &mut head });
    match (read, head) {
        // Stopped at the records with the head read: the error only ends the read early.
        (_, Some(head)) => Ok(head),
        (Err(e), None) => Err(e),
        (Ok(()), None) => Err(serde::de::Error::missing_field("done")),
    }
}

struct HeadVisitor<'h> {
    head: &'h mut Option<PageHead>,
}

impl<'de> serde::de::Visitor<'de> for HeadVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a query answer object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::Error as _;
        let mut done: Option<bool> = None;
        let mut next: Option<Option<String>> = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "done" if done.is_some() => return Err(A::Error::duplicate_field("done")),
                "done" => done = Some(map.next_value()?),
                "nextRecordsUrl" if next.is_some() => {
                    return Err(A::Error::duplicate_field("nextRecordsUrl"));
                }
                "nextRecordsUrl" => next = Some(map.next_value()?),
                "records" if done == Some(true) || done.is_some() && next.is_some() => {
                    *self.head = Some(PageHead {
                        done: done.unwrap_or(false),
                        next_records_url: next.flatten(),
                    });
                    // Not an error in the page: the read stops here, the head in hand.
                    return Err(A::Error::custom("records follow"));
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let done = done.ok_or_else(|| A::Error::missing_field("done"))?;
        *self.head = Some(PageHead {
            done,
            next_records_url: next.flatten(),
        });
        Ok(())
    }
}

/// The keys a [`SignupRecord`] reads.
const RECORD_KEYS: &[&str] = &[
    "Id",
    "Username",
    "Status",
    "CreatedOrgId",
    "CreatedOrgInstance",
    "ErrorCode",
    "CreatedDate",
];

/// The records of one query page, each handed to `each` (see [`Salesforce::query_each`]) as it
/// is parsed: its [`SignupRecord`] and, with `fields`, what it reports read straight from the
/// wire ([`MatchedSeed`]), no record held as a JSON tree.
fn records_of(body: &str, fields: bool, each: &mut impl FnMut(Row)) -> Result<(), ProviderError> {
    let seed = MatchedSeed::<SignupRecord>::new(
        RECORD_KEYS,
        fields.then(|| ProviderType::SalesforceSignup.schema().org),
    );
    let mut de = serde_json::Deserializer::from_str(body);
    serde::Deserializer::deserialize_map(&mut de, PageRecords { seed, each })
        .and_then(|()| de.end())
        .map_err(|e| ProviderError::Protocol {
            message: format!("the query answer is not what Salesforce documents: {e}"),
        })
}

/// A query page's `records`, each to `each`; its other keys skipped.
struct PageRecords<'e, F> {
    seed: MatchedSeed<SignupRecord>,
    each: &'e mut F,
}

impl<'de, F: FnMut(Row)> serde::de::Visitor<'de> for PageRecords<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a query answer object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut read = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key != "records" {
                map.next_value::<serde::de::IgnoredAny>()?;
            } else if read {
                return Err(serde::de::Error::duplicate_field("records"));
            } else {
                map.next_value_seed(Records {
                    seed: self.seed,
                    each: &mut *self.each,
                })?;
                read = true;
            }
        }
        if read {
            Ok(())
        } else {
            Err(serde::de::Error::missing_field("records"))
        }
    }
}

/// The `records` array, each element to `each` as soon as it is read.
struct Records<'e, F> {
    seed: MatchedSeed<SignupRecord>,
    each: &'e mut F,
}

impl<'de, F: FnMut(Row)> serde::de::DeserializeSeed<'de> for Records<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Row)> serde::de::Visitor<'de> for Records<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(Matched { item, reported }) = seq.next_element_seed(self.seed)? {
            (self.each)(Row {
                record: item,
                attributes: reported,
            });
        }
        Ok(())
    }
}

impl Provider for Salesforce {
    async fn login(&self) -> Result<(), ProviderError> {
        self.session().await.map(|_| ())
    }

    async fn read(&self, keys: &[NaturalKey]) -> Result<InstanceReality, ProviderError> {
        self.reality_of(queries_for(&self.select, keys)).await
    }

    /// The sign-ups' statuses alone, in the same queries as `read`. Which of several sign-ups
    /// stands for a username ([`preferred`]) is known only once every page is read (a query
    /// without `ORDER BY` has no order), so the one standing so far is kept per username asked
    /// (its status record, packed), and all are handed over after the last page.
    async fn look(&self, keys: &[NaturalKey], found: &Found) -> Result<(), ProviderError> {
        // Usernames asked, lower-cased (a key already is: borrowed), with their slot, in order.
        let mut asked: Vec<(Cow<'_, str>, usize)> = keys
            .iter()
            .enumerate()
            .map(|(slot, k)| {
                let lower = k.0.to_lowercase();
                let name = if lower == k.0 {
                    Cow::Borrowed(k.0.as_str())
                } else {
                    Cow::Owned(lower)
                };
                (name, slot)
            })
            .collect();
        asked.sort();
        let mut standing: Vec<Option<Packed>> = Vec::new();
        standing.resize_with(keys.len(), || None);
        for soql in queries_for(&self.status_select, keys) {
            self.query_each(&soql, false, |row| {
                let username = row.record.username.to_lowercase();
                let Ok(at) = asked.binary_search_by(|(name, _)| name.as_ref().cmp(&username))
                else {
                    return;
                };
                let Some(held) = asked.get(at).and_then(|(_, slot)| standing.get_mut(*slot)) else {
                    return;
                };
                let stands = match held {
                    None => true,
                    Some(packed) => {
                        stands_before(&row.record, &packed.unpack(&row.record.username)).is_lt()
                    }
                };
                if stands {
                    *held = Some(Packed::pack(&row.record));
                }
            })
            .await?;
        }
        drop(asked);
        send_found(
            found,
            standing
                .into_iter()
                .enumerate()
                .filter_map(move |(slot, packed)| {
                    Some(to_remote(&packed?.unpack(&keys.get(slot)?.0)))
                }),
        )
        .await
    }

    /// Every sign-up: one query without `WHERE`, 2,000 records a page (Salesforce's default
    /// batch), followed through `nextRecordsUrl`. The query selects every declarable field, so
    /// no sign-up is read again.
    async fn list_all(&self) -> Result<InstanceReality, ProviderError> {
        self.reality_of(vec![self.select.clone()]).await
    }

    /// One `SELECT COUNT()` of the sign-ups created in the last 24 hours, over `queryAll`: a
    /// sign-up whose request record was deleted still made its trial organization, so it
    /// still counts against the day's 20 (seed 001). `CreatedDate > <date-time>` is exact to
    /// the second, where `LAST_N_DAYS:1` would count from yesterday's midnight. SOQL has no
    /// way to select a count beside records, so this is a request of its own.
    async fn creates_in_last_day(&self) -> Result<Option<u32>, ProviderError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Count {
            total_size: u64,
        }
        let since =
            crate::time::format(crate::time::now().saturating_sub(crate::state::DAY.as_secs()));
        let path = format!(
            "{}?q={}",
            self.data_path("/queryAll"),
            url::form_urlencoded::byte_serialize(creates_since_query(&since).as_bytes())
                .collect::<String>()
        );
        let (status, body) = self
            .call(Effect::Safe, |s| self.api(s, Method::GET, &path))
            .await?;
        if status != StatusCode::OK {
            return Err(read_error(status, &body));
        }
        let count: Count = serde_json::from_str(&body).map_err(|e| ProviderError::Protocol {
            message: format!("the count answer is not what Salesforce documents: {e}"),
        })?;
        Ok(Some(u32::try_from(count.total_size).unwrap_or(u32::MAX)))
    }

    async fn create(&self, org: &OrgSpec, _cx: CreateContext) -> Result<RemoteOrg, ProviderError> {
        let schema = ProviderType::SalesforceSignup.schema();
        let body = create_body(schema.org, org, &self.secrets)?;
        let path = self.data_path("/sobjects/SignupRequest/");
        let (status, text) = self
            .call(Effect::Creates, |s| {
                self.api(s, Method::POST, &path).json(&body)
            })
            .await?;
        match status {
            StatusCode::CREATED | StatusCode::OK => {
                // Created, whatever else the answer says; if its id can't be read, the look-up
                // by username finds it.
                let created: Created = created_answer(&text, "the create answer")?;
                if !created.success {
                    return Err(ProviderError::OutcomeUnknown {
                        message: format!(
                            "the create answer says success = false: {}",
                            short(&text)
                        ),
                    });
                }
                Ok(RemoteOrg {
                    remote_id: created.id,
                    natural_key: org.natural_key.clone(),
                    status: RemoteStatus::InProgress {
                        phase: "New".into(),
                    },
                    detail: crate::model::Detail::default(),
                    attributes: Reported::default(),
                })
            }
            // Refused before anything was created: validation (400), permissions (403), a
            // wrong API version or path (404), method or media type (405, 415).
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

/// The statements that read `keys`, each `select` with a `WHERE`, or `select` alone. Usernames
/// in IN lists cost a query per ~8 KB of URL (a few hundred usernames). When that is more
/// queries than N records fill pages of 2,000, reading every sign-up takes fewer, for as long as
/// most sign-ups on this trial management org are orgform's.
fn queries_for(select: &str, keys: &[NaturalKey]) -> Vec<String> {
    let usernames: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    // Given up as soon as they outnumber the pages: a hundred thousand usernames' statements
    // (quoted, encoded, joined) were built only to be thrown away, before the first request.
    username_queries_at_most(
        select,
        &usernames,
        MAX_ENCODED_QUERY,
        usernames.len().div_ceil(QUERY_PAGE),
    )
    .unwrap_or_else(|| vec![select.to_string()])
}

/// A read that did not answer 200.
fn read_error(status: StatusCode, body: &str) -> ProviderError {
    let message = format!("querying SignupRequest: {}", describe_errors(status, body));
    match status {
        StatusCode::FORBIDDEN => ProviderError::Unauthorized { message },
        _ => ProviderError::Protocol { message },
    }
}

/// The codes in a REST error array, if the body is one.
fn error_codes(body: &str) -> impl Iterator<Item = String> {
    serde_json::from_str::<Vec<ApiError>>(body)
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.error_code)
}

/// A REST error array in words: `REQUIRED_FIELD_MISSING: Required fields are missing:
/// [LastName] (LastName)`, one per element; anything else as its status and first characters.
pub fn describe_errors(status: StatusCode, body: &str) -> String {
    match serde_json::from_str::<Vec<ApiError>>(body) {
        Ok(errors) if !errors.is_empty() => errors
            .iter()
            .map(|e| {
                let mut line = format!("{}: {}", e.error_code, e.message.trim());
                if !e.fields.is_empty() {
                    line.push_str(&format!(" ({})", e.fields.join(", ")));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => format!("HTTP {status}: {}", short(body)),
    }
}

/// The path of the next page. Salesforce hands out a path on the same instance; an absolute
/// URL elsewhere would take the bearer token with it, so it is refused.
fn next_page_path(url: &str) -> Result<String, ProviderError> {
    if url.starts_with('/') && !url.starts_with("//") {
        Ok(url.to_string())
    } else {
        Err(ProviderError::Protocol {
            message: "the query answer's nextRecordsUrl is not a path on this instance".into(),
        })
    }
}

/// The production login host: the JWT audience for every production organization, My Domain
/// hosts included (docs/providers/salesforce_signup.md, "Login and session renewal").
pub(crate) const LOGIN_HOST: &str = "https://login.salesforce.com";
/// The sandbox login host: the audience for sandbox organizations.
pub(crate) const TEST_LOGIN_HOST: &str = "https://test.salesforce.com";

/// The JWT `aud` for an instance: the audience the spec states (`audience`, for a community
/// URL), else the login host of `base_url`'s kind of organization. Salesforce documents
/// `https://login.salesforce.com`, `https://test.salesforce.com` or a community URL as the
/// audience (docs/providers/salesforce_signup.md) and refuses the My Domain host a token request
/// is sent to ("audience is invalid"), so the origin of `base_url` is never it. Sandbox
/// organizations are `test.salesforce.com` and My Domain hosts under
/// `.sandbox.my.salesforce.com` (inferred from Salesforce's My Domain host formats; the seed
/// does not cover login).
pub fn jwt_audience(base_url: &str, stated: Option<&str>) -> String {
    if let Some(stated) = stated {
        return stated.trim_end_matches('/').to_string();
    }
    let host = url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let host = host.trim_end_matches('.');
    if host == "test.salesforce.com" || host.ends_with(".sandbox.my.salesforce.com") {
        TEST_LOGIN_HOST.to_string()
    } else {
        LOGIN_HOST.to_string()
    }
}

/// The SOQL count of sign-ups created after `since`, an RFC 3339 UTC date-time
/// (`2024-06-10T12:00:00Z`), which SOQL takes unquoted as a date-time literal.
pub(crate) fn creates_since_query(since: &str) -> String {
    format!("SELECT COUNT() FROM SignupRequest WHERE CreatedDate > {since}")
}

/// A string literal in SOQL: quoted, with backslash escapes for the quote, the backslash and
/// the control characters SOQL names. `%` and `_` only mean something after LIKE, never here.
pub fn soql_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The SOQL statements that look `usernames` up, each `select` (a [`select`]) with a `WHERE`:
/// as many per statement as fit in `budget` URL-encoded bytes (one per statement if a single
/// username is longer), in the given order, without repeats. No usernames, no statements.
pub fn username_queries(select: &str, usernames: &[&str], budget: usize) -> Vec<String> {
    username_queries_at_most(select, usernames, budget, usize::MAX).unwrap_or_default()
}

/// [`username_queries`], or `None` once they would be more than `most`.
fn username_queries_at_most(
    select: &str,
    usernames: &[&str],
    budget: usize,
    most: usize,
) -> Option<Vec<String>> {
    let encoded = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .map(str::len)
            .sum::<usize>()
    };
    let prefix = format!("{select} WHERE Username IN (");
    let fixed = encoded(&prefix) + encoded(")");
    let mut seen = std::collections::BTreeSet::new();
    let mut statements = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = fixed;
    for username in usernames {
        if !seen.insert(username.to_lowercase()) {
            continue;
        }
        let literal = soql_quote(username);
        // A separator ", " in front of every literal but the first.
        let cost = encoded(&literal) + if current.is_empty() { 0 } else { encoded(", ") };
        if !current.is_empty() && size + cost > budget {
            if statements.len() == most {
                return None;
            }
            statements.push(format!("{prefix}{})", current.join(", ")));
            current.clear();
            size = fixed;
        }
        size += if current.is_empty() {
            encoded(&literal)
        } else {
            cost
        };
        current.push(literal);
    }
    if !current.is_empty() {
        if statements.len() == most {
            return None;
        }
        statements.push(format!("{prefix}{})", current.join(", ")));
    }
    Some(statements)
}

/// Of several sign-ups for one username (a failed one, then another try), the one that stands
/// for it: a success, else one still in progress, else the newest failure.
pub fn preferred(records: &[SignupRecord]) -> Option<&SignupRecord> {
    preferred_by(records, |r| r)
}

/// [`preferred`] over anything that holds a record.
fn preferred_by<T>(items: &[T], record: impl Fn(&T) -> &SignupRecord) -> Option<&T> {
    items
        .iter()
        .min_by(|a, b| stands_before(record(a), record(b)))
}

/// Which of two sign-ups for one username stands for it: `Less` when `a` does ([`preferred`]'s
/// order).
fn stands_before(a: &SignupRecord, b: &SignupRecord) -> std::cmp::Ordering {
    let rank = |r: &SignupRecord| match r.status.as_str() {
        "Success" => 0,
        "Error" => 2,
        // New, In Progress, or a status this version doesn't know: not finished.
        _ => 1,
    };
    rank(a)
        .cmp(&rank(b))
        // Newest first within a rank: compare b to a.
        .then_with(|| b.created_date.cmp(&a.created_date))
        .then_with(|| b.id.cmp(&a.id))
}

/// A SignupRequest as orgform's model sees it.
pub fn to_remote(record: &SignupRecord) -> RemoteOrg {
    let mut detail = BTreeMap::new();
    let status = match record.status.as_str() {
        "Success" => {
            if let Some(id) = &record.created_org_id {
                detail.insert("created_org_id".to_string(), id.clone());
            }
            if let Some(instance) = &record.created_org_instance {
                detail.insert("created_org_instance".to_string(), instance.clone());
            }
            RemoteStatus::Ready
        }
        "Error" => {
            let code = record
                .error_code
                .clone()
                .unwrap_or_else(|| "unknown".to_string());
            let message = error_meaning(&code).to_string();
            RemoteStatus::Failed { code, message }
        }
        // `New`, `In Progress`; an unknown status is treated as not finished, so that orgform
        // waits rather than signing the username up again.
        phase => RemoteStatus::InProgress {
            phase: phase.to_string(),
        },
    };
    RemoteOrg {
        remote_id: record.id.clone(),
        natural_key: ProviderType::SalesforceSignup.natural_key(&[&record.username]),
        status,
        detail: detail.into(),
        attributes: Reported::default(),
    }
}

/// The attributes a sign-up reports, under their spec names: every declarable field the query
/// returned, as Salesforce holds it. Nothing updates a SignupRequest (seed 001: no `update()`),
/// so these are what its create sent, with Salesforce's defaults for what it left out
/// (`ShouldConnectToEnvHub` false, `TrialDays` the template's); `null`s are left out.
pub fn reported_attributes(fields: &serde_json::Map<String, serde_json::Value>) -> Reported {
    from_wire(ProviderType::SalesforceSignup.schema().org, fields)
}

/// What a sign-up `ErrorCode` means: the seed's table of the most important codes.
pub fn error_meaning(code: &str) -> &'static str {
    match code {
        "C-1007" => "duplicate username",
        "C-1015" => {
            "error while establishing the new organization's My Domain settings; contact Salesforce support"
        }
        "C-1016" => {
            "error while configuring the OAuth connected app for Proxy Signup; check the connected app's consumer key, callback URL and certificate"
        }
        "C-1018" => "invalid subdomain value",
        "C-1019" => "subdomain in use; choose another subdomain",
        "C-9999" => "generic fatal error; contact Salesforce support",
        "S-1006" => "invalid e-mail address",
        "S-2006" => "invalid country code",
        "T-0001" => "template id not valid (not in the format 0TTxxxxxxxxxxxx)",
        "T-0002" => {
            "template not found: it doesn't exist (it may have been deleted) or not at the appropriate version"
        }
        "T-0003" => "template not approved for use by Salesforce",
        _ => "an error code Salesforce does not document; contact Salesforce support",
    }
}

/// The DER of a PEM `PRIVATE KEY` (PKCS#8), as an RSA key pair ring can sign with. The error
/// says what is wrong with the key without quoting any of it.
pub fn rsa_key_from_pem(pem: &str) -> Result<RsaKeyPair, String> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        return Err("is a PKCS#1 key (BEGIN RSA PRIVATE KEY); convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`".into());
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err("is encrypted; orgform needs an unencrypted PKCS#8 key (`openssl pkcs8 -topk8 -nocrypt`)".into());
    }
    let body = pem
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(body, _)| body)
        .ok_or(
            "is not a PEM private key (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----)",
        )?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "is not valid base64 between its PEM lines".to_string())?;
    RsaKeyPair::from_pkcs8(&der).map_err(|e| format!("is not a usable RSA key: {e}"))
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The JWT bearer assertion: `{"alg":"RS256"}` and the claims Salesforce checks (`iss` the
/// consumer key, `sub` the username, `aud` the login host, `exp` a few minutes ahead), signed
/// with RSASSA-PKCS1-v1_5 and SHA-256.
pub fn jwt_assertion(
    client_id: &str,
    username: &str,
    audience: &str,
    key: &RsaKeyPair,
    now: u64,
) -> Result<String, ProviderError> {
    let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": username,
        "aud": audience,
        "exp": now + JWT_LIFETIME_SECS,
    });
    let signing_input = format!("{header}.{}", b64url(claims.to_string().as_bytes()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| ProviderError::Config {
        message: "signing the JWT bearer assertion failed".into(),
    })?;
    Ok(format!("{signing_input}.{}", b64url(&signature)))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize as _;

    use super::{PageHead, SignupRecord, page_head, select, status_select};

    /// The head is read up to the records where they follow it, and found past them where
    /// they do not; a page without `done` is refused either way.
    #[test]
    fn a_page_head_is_read_where_it_is() {
        let head = |done, next: Option<&str>| PageHead {
            done,
            next_records_url: next.map(str::to_string),
        };
        let next = Some("/services/data/v60.0/query/01g-2000");
        for (body, expected) in [
            (
                r#"{"totalSize":3,"done":false,"nextRecordsUrl":"/services/data/v60.0/query/01g-2000","records":[{"Id":"a"}]}"#,
                head(false, next),
            ),
            (
                r#"{"totalSize":1,"done":true,"records":[{"Id":"a"}]}"#,
                head(true, None),
            ),
            (
                r#"{"records":[{"Id":"a"}],"done":false,"nextRecordsUrl":"/services/data/v60.0/query/01g-2000"}"#,
                head(false, next),
            ),
            (
                r#"{"done":false,"records":[],"nextRecordsUrl":"/services/data/v60.0/query/01g-2000"}"#,
                head(false, next),
            ),
            (
                r#"{"nextRecordsUrl":"/services/data/v60.0/query/01g-2000","records":[],"done":true}"#,
                head(true, next),
            ),
        ] {
            assert_eq!(page_head(body).ok(), Some(expected), "{body}");
        }
        assert!(page_head(r#"{"totalSize":1,"records":[]}"#).is_err());
        assert!(page_head(r#"{"done":true,"done":false,"records":[]}"#).is_err());
        assert!(page_head("[]").is_err());
    }

    #[test]
    fn a_packed_record_unpacks_as_it_was() {
        let records = [
            SignupRecord {
                id: "0TR1".into(),
                username: "a:b-1@x.example".into(),
                status: "Success".into(),
                created_org_id: Some("00D1".into()),
                created_org_instance: Some(String::new()),
                error_code: None,
                created_date: Some("2024-06-10T12:00:00.000+0000".into()),
            },
            SignupRecord {
                id: String::new(),
                username: "-".into(),
                status: "Error".into(),
                created_org_id: None,
                created_org_instance: None,
                error_code: Some("C-1007".into()),
                created_date: None,
            },
        ];
        for record in records {
            assert_eq!(
                super::Packed::pack(&record).unpack(&record.username),
                record
            );
        }
    }

    /// A page's records read as they stream in are what each record's whole JSON tree gave.
    #[test]
    fn records_streamed_from_a_page_are_what_their_trees_read() {
        let records = serde_json::json!([
            {"attributes": {"type": "SignupRequest", "url": "/x"}, "Id": "0TR1", "Username": "A@x.example",
             "Status": "Success", "CreatedOrgId": "00D1", "CreatedOrgInstance": null, "ErrorCode": null,
             "CreatedDate": "2024-06-10T12:00:00.000+0000", "Company": "Acme", "TrialDays": 30,
             "ShouldConnectToEnvHub": false, "Country": null, "Unknown": {"deep": [1]}},
            {"Id": "0TR2", "Username": "b@x.example", "Status": "Error", "ErrorCode": "C-1007",
             "Company": 7, "Username": "c@x.example", "TrialDays": "14"},
            {"Id": "0TR3", "Username": "d@x.example", "Status": "New"}
        ]);
        let body =
            serde_json::json!({"totalSize": 3, "done": true, "records": records}).to_string();
        for fields in [true, false] {
            let mut streamed = Vec::new();
            super::records_of(&body, fields, &mut |row: super::Row| {
                streamed.push((row.record, row.attributes));
            })
            .expect("a page Salesforce documents");
            let expected: Vec<_> = records
                .as_array()
                .into_iter()
                .flatten()
                .map(|value| {
                    let record = SignupRecord::deserialize(value).expect("a record");
                    let attributes = match value {
                        serde_json::Value::Object(whole) if fields => {
                            super::reported_attributes(whole)
                        }
                        _ => crate::model::Reported::default(),
                    };
                    (record, attributes)
                })
                .collect();
            assert_eq!(streamed, expected, "fields: {fields}");
        }
        for bad in [
            r#"{"done": true}"#,
            r#"{"done": true, "records": [1]}"#,
            r#"{"done": true, "records": [{"Username": "a@x.example", "Status": "New"}]}"#,
            r#"{"done": true, "records": [{"Id": 5, "Username": "a@x.example", "Status": "New"}]}"#,
            r#"{"done": true, "records": []} x"#,
        ] {
            assert!(super::records_of(bad, true, &mut |_| {}).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_look_selects_what_settles_a_sign_up_and_no_declaration() {
        let look = status_select("60.0");
        assert_eq!(
            look,
            "SELECT Id, Status, CreatedOrgId, CreatedOrgInstance, ErrorCode, CreatedDate, Username FROM SignupRequest"
        );
        // Older versions lack fields: a look leaves them out as a read does.
        assert!(!status_select("28.0").contains("CreatedOrgInstance"));
        let read = select("60.0");
        assert!(
            read.contains("Company") && !look.contains("Company"),
            "{read}"
        );
    }
}
