//! The SignupRequest object: the fields a create may set and those the system fills (with
//! their types and picklists, matched without case), a create's checks and the 400 errors they
//! give, the rules that decide how a sign-up ends (the module docs of `salesforce` list them),
//! and how a sign-up reads as a record on the clock.

use std::collections::BTreeMap;

use serde_json::{Value, json};

// The `Edition` picklist and the country codes are facts of the catalog's, which the validator
// reads too. The languages are not: the validator takes only the fully supported ones the seed
// names, while the picklist also holds the end-user languages.
use crate::catalog::salesforce::{
    COUNTRIES, DEVELOPER_EDITIONS, EDITIONS, SUBDOMAIN_MAX, SUBDOMAIN_MAX_DEVELOPER,
};
use crate::catalog::schema::Format;

use super::{
    Emulator, Outcome, OverQuota, Reply, Signup, api_error, signups_in_last_day, soql_datetime,
    status,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Type {
    Text,
    Bool,
    /// `TrialDays`: anyType, a number in practice.
    Number,
    Picklist(&'static [&'static str]),
}

/// The fields a create may set, by canonical name.
pub(super) const CREATABLE: &[(&str, Type)] = &[
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

/// The picklist: Salesforce's fully supported and end-user languages.
const LANGUAGES: &[&str] = &[
    "zh_CN", "zh_TW", "da", "nl_NL", "en_US", "fi", "fr", "de", "it", "ja", "ko", "no", "pt_BR",
    "ru", "es", "es_MX", "sv", "th", "ar", "bg", "hr", "cs", "en_GB", "el", "iw", "hu", "in", "pl",
    "pt_PT", "ro", "sk", "sl", "tr", "uk", "vi",
];

/// The fields younger than SignupRequest (27.0), with the API version seed 001 says each
/// appeared in. An older version does not know them: naming one in a query or a create is
/// `INVALID_FIELD`, as for any field the object does not have.
const NEWER: &[(&str, u32)] = &[
    ("AuthCode", 29),
    ("ConnectedAppCallbackUrl", 28),
    ("ConnectedAppConsumerKey", 28),
    ("CreatedOrgInstance", 29),
    ("Edition", 35),
    ("PreferredLanguage", 35),
    ("ResolvedTemplateId", 35),
    ("ShouldConnectToEnvHub", 35),
    ("SignupSource", 36),
    ("SuppressSignupEmails", 29),
];

/// The canonical name of a field SignupRequest has at API `version` (`60.0`), matched without
/// case.
pub(super) fn canonical(name: &str, version: &str) -> Option<&'static str> {
    CREATABLE
        .iter()
        .map(|(n, _)| *n)
        .chain(SYSTEM.iter().copied())
        .find(|n| n.eq_ignore_ascii_case(name))
        .filter(|n| exists_in(n, version))
}

/// Whether the field `canonical` exists at API `version` (one the router let through).
pub(super) fn exists_in(canonical: &str, version: &str) -> bool {
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(u32::MAX);
    NEWER
        .iter()
        .find(|(n, _)| *n == canonical)
        .is_none_or(|(_, since)| *since <= major)
}
impl Emulator<'_> {
    // ---- SignupRequest ----

    pub(super) fn create(&mut self, body: &[u8], version: &str, now_ms: u64) -> Reply {
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
            let Some(canon) = canonical(name, version) else {
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
                // An e-mail field is kept in lower case, whatever case it was sent in
                // (docs/providers/salesforce_signup.md, "What reads report").
                Ok(Value::String(email)) if canon == "SignupEmail" => {
                    fields.insert(canon.to_string(), json!(email.to_lowercase()));
                }
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
        let signup = Signup {
            id: id.clone(),
            fields,
            created_ms: now_ms,
            outcome,
            deleted: false,
        };
        self.data.index.add(self.data.signups.len(), &signup);
        self.data.signups.push(signup);
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
        if country.len() != 2 || !COUNTRIES.contains(&country) {
            return Some("S-2006");
        }
        if !is_address(text("SignupEmail")) || !is_address(text("Username")) {
            return Some("S-1006");
        }
        // Whether a sign-up that succeeded has `value` in `field`, compared without case.
        let taken = |field: &str, value: &str| {
            let signups = &self.data.signups;
            self.data
                .index
                .with_field(field, value)
                .unwrap_or_else(|| (0..signups.len()).collect())
                .into_iter()
                .filter_map(|p| signups.get(p))
                .filter(|s| matches!(s.outcome, Outcome::Success { .. }))
                .any(|s| {
                    s.fields
                        .get(field)
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.eq_ignore_ascii_case(value))
                })
        };
        if taken("Username", text("Username")) {
            return Some("C-1007");
        }
        if fields.contains_key("ConnectedAppConsumerKey")
            != fields.contains_key("ConnectedAppCallbackUrl")
        {
            return Some("C-1016");
        }
        let subdomain = text("Subdomain");
        if !subdomain.is_empty() {
            let developer = DEVELOPER_EDITIONS.contains(&text("Edition"));
            let max = if developer {
                SUBDOMAIN_MAX_DEVELOPER
            } else {
                SUBDOMAIN_MAX
            };
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
            if taken("Subdomain", subdomain) {
                return Some("C-1019");
            }
        }
        over_quota.then_some("C-9999")
    }

    fn status(&self, signup: &Signup, now_ms: u64) -> &'static str {
        status(self.config, signup, now_ms)
    }

    /// Every field of a sign-up as it stands now, by canonical name.
    pub(super) fn render(&self, signup: &Signup, now_ms: u64) -> BTreeMap<&'static str, Value> {
        let reading = self.reading(signup, now_ms);
        CREATABLE
            .iter()
            .map(|(name, _)| *name)
            .chain(SYSTEM.iter().copied())
            .map(|name| (name, reading.field(name)))
            .collect()
    }

    /// A sign-up as it stands now, to be read a field at a time: a query renders the fields it
    /// selects or compares, not every field of every sign-up it looks at.
    pub(super) fn reading<'s>(&self, signup: &'s Signup, now_ms: u64) -> Reading<'s> {
        let status = self.status(signup, now_ms);
        let finished_ms = signup.created_ms
            + u64::try_from((self.config.new_for + self.config.in_progress_for).as_millis())
                .unwrap_or(0);
        Reading {
            signup,
            status,
            done: matches!(status, "Success" | "Error"),
            finished_ms,
        }
    }
}

/// A sign-up at one moment ([`Emulator::reading`]).
pub(super) struct Reading<'s> {
    signup: &'s Signup,
    status: &'static str,
    /// Whether it has ended (`Success` or `Error`).
    done: bool,
    /// When it ended, or will.
    finished_ms: u64,
}

impl Reading<'_> {
    /// The field `name` (canonical) as it reads now; `null` for a field it does not have.
    pub(super) fn field(&self, name: &str) -> Value {
        let signup = self.signup;
        let outcome = match (&signup.outcome, self.status) {
            (outcome @ Outcome::Success { .. }, "Success")
            | (outcome @ Outcome::Error { .. }, "Error") => Some(outcome),
            _ => None,
        };
        match name {
            "Id" => json!(signup.id),
            "Status" => json!(self.status),
            "IsDeleted" => json!(signup.deleted),
            "CreatedDate" => json!(soql_datetime(signup.created_ms)),
            "LastModifiedDate" => json!(soql_datetime(if self.done {
                self.finished_ms
            } else {
                signup.created_ms
            })),
            "CreatedOrgId" => match outcome {
                Some(Outcome::Success { org_id, .. }) => json!(org_id),
                _ => Value::Null,
            },
            "CreatedOrgInstance" => match outcome {
                Some(Outcome::Success { org_instance, .. }) => json!(org_instance),
                _ => Value::Null,
            },
            "AuthCode" => match outcome {
                Some(Outcome::Success { auth_code, .. }) => json!(auth_code),
                _ => Value::Null,
            },
            "ErrorCode" => match outcome {
                Some(Outcome::Error { code }) => json!(code),
                _ => Value::Null,
            },
            "ResolvedTemplateId" if self.done => self.stored("TemplateId"),
            "TrialSourceOrgId" if self.done && !self.stored("TemplateId").is_null() => {
                json!("00DSB0000000002")
            }
            "ShouldConnectToEnvHub" => match self.stored(name) {
                Value::Null => json!(false),
                other => other,
            },
            "TrialDays" if self.done => match self.stored(name) {
                Value::Null => json!(30),
                other => other,
            },
            name if CREATABLE.iter().any(|(n, _)| *n == name) => self.stored(name),
            _ => Value::Null,
        }
    }

    /// A create-able field as the create stored it.
    fn stored(&self, name: &str) -> Value {
        self.signup.fields.get(name).cloned().unwrap_or(Value::Null)
    }
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

/// An address in the `local@domain.tld` shape both `SignupEmail` and `Username` must have: the
/// catalog's one e-mail rule, which the validator applies too.
fn is_address(value: &str) -> bool {
    Format::Email.check(value).is_ok()
}
