//! The seed's rules for a "Create Salesforce Organization" body: required fields and their
//! types (the plan, access nodes, the Salesforce account and its credentials, the download
//! cache, the sync database), every password and the consumer secret base64, each refused
//! first problem first as a 400 naming the field.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::{Answer, decode_base64};

/// What a field must be.
#[derive(Clone, Copy)]
enum Want {
    /// A string that is not blank.
    Text,
    /// A string, possibly empty.
    AnyText,
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// A non-blank string that decodes as base64.
    Base64,
    Object,
    Array,
}

/// Checks one field of `object`, at `path` for messages.
fn check_field(
    object: &Map<String, Value>,
    parent: &str,
    key: &str,
    want: Want,
    required: bool,
) -> Result<(), Answer> {
    let path = if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    };
    let bad = |what: &str| {
        Answer::error(
            StatusCode::BAD_REQUEST,
            format!("Invalid value for {path}: {what}"),
        )
    };
    let Some(value) = object.get(key).filter(|v| !v.is_null()) else {
        return if required {
            Err(Answer::error(
                StatusCode::BAD_REQUEST,
                format!("Missing required field {path}"),
            ))
        } else {
            Ok(())
        };
    };
    match want {
        Want::Text => match value.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(()),
            Some(_) if required => Err(Answer::error(
                StatusCode::BAD_REQUEST,
                format!("Missing required field {path}"),
            )),
            Some(_) => Ok(()),
            None => Err(bad("expected a string")),
        },
        Want::AnyText if value.is_string() => Ok(()),
        Want::AnyText => Err(bad("expected a string")),
        Want::Int { min, max } => match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            Some(n) => Err(bad(&format!("{n} is not between {min} and {max}"))),
            None => Err(bad("expected an integer")),
        },
        Want::Bool if value.is_boolean() => Ok(()),
        Want::Bool => Err(bad("expected true or false")),
        Want::Base64 => match value.as_str() {
            Some(s) if !s.trim().is_empty() && decode_base64(s).is_some() => Ok(()),
            Some(s) if s.trim().is_empty() && required => Err(Answer::error(
                StatusCode::BAD_REQUEST,
                format!("Missing required field {path}"),
            )),
            Some(_) => Err(Answer::error(
                StatusCode::BAD_REQUEST,
                format!("Invalid password encoding: {path} must be base64-encoded"),
            )),
            None => Err(bad("expected a base64-encoded string")),
        },
        Want::Object if value.is_object() => Ok(()),
        Want::Object => Err(bad("expected an object")),
        Want::Array if value.is_array() => Ok(()),
        Want::Array => Err(bad("expected a list")),
    }
}

/// The seed's rules for a create body, first problem first, as a 400.
pub(super) fn check_create(request: &Map<String, Value>) -> Result<(), Answer> {
    const ID: Want = Want::Int {
        min: 1,
        max: i64::MAX,
    };
    const ID0: Want = Want::Int {
        min: 0,
        max: i64::MAX,
    };
    let object = |parent: &Map<String, Value>, key: &str| -> Map<String, Value> {
        parent
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    check_field(request, "", "organizationName", Want::Text, true)?;

    // A plan is what makes the organization protected; the seed requires its name and id.
    check_field(request, "", "plan", Want::Object, true)?;
    let plan = object(request, "plan");
    check_field(&plan, "plan", "planName", Want::Text, true)?;
    check_field(&plan, "plan", "planId", ID, true)?;
    check_field(&plan, "plan", "entityInfo", Want::Object, false)?;
    if plan.contains_key("entityInfo") {
        let entity = object(&plan, "entityInfo");
        check_field(&entity, "plan.entityInfo", "companyId", ID0, true)?;
        check_field(
            &entity,
            "plan.entityInfo",
            "companyName",
            Want::AnyText,
            false,
        )?;
        check_field(&entity, "plan.entityInfo", "multiCommcellId", ID0, false)?;
    }

    check_field(request, "", "accessNodes", Want::Array, false)?;
    let nodes = request
        .get("accessNodes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, node) in nodes.iter().enumerate() {
        let at = format!("accessNodes[{i}]");
        let Some(node) = node.as_object() else {
            return Err(Answer::error(
                StatusCode::BAD_REQUEST,
                format!("Invalid value for {at}: expected an object"),
            ));
        };
        check_field(node, &at, "client", Want::Object, false)?;
        if node.contains_key("client") {
            let client = object(node, "client");
            let at = format!("{at}.client");
            check_field(&client, &at, "clientId", ID, true)?;
            check_field(&client, &at, "clientName", Want::Text, true)?;
            check_field(&client, &at, "_type_", ID0, false)?;
        }
        check_field(node, &at, "clientGroupName", Want::AnyText, false)?;
        check_field(node, &at, "clientGroupId", ID, false)?;
    }

    check_field(request, "", "salesforceAccount", Want::Object, true)?;
    let account = object(request, "salesforceAccount");
    let at = "salesforceAccount";
    check_field(
        &account,
        at,
        "environmentType",
        Want::Int { min: 0, max: 1 },
        false,
    )?;
    check_field(
        &account,
        at,
        "authenticationType",
        Want::Int { min: 1, max: 2 },
        true,
    )?;
    check_field(&account, at, "userCredentials", Want::Object, true)?;
    let credentials = object(&account, "userCredentials");
    let creds_at = "salesforceAccount.userCredentials";
    check_field(&credentials, creds_at, "userName", Want::Text, true)?;
    check_field(&credentials, creds_at, "password", Want::Base64, true)?;
    check_field(&account, at, "consumerId", Want::Text, true)?;
    check_field(&account, at, "consumerSecret", Want::Base64, true)?;
    check_field(&account, at, "endpoint", Want::AnyText, false)?;
    check_field(&account, at, "token", Want::AnyText, false)?;

    check_field(request, "", "downloadCachePath", Want::Text, true)?;

    check_field(request, "", "syncDatabase", Want::Object, false)?;
    if request.contains_key("syncDatabase") {
        let db = object(request, "syncDatabase");
        let at = "syncDatabase";
        check_field(&db, at, "dbEnabled", Want::Bool, true)?;
        for key in ["dbType", "dbHost", "dbPort", "dbName"] {
            check_field(&db, at, key, Want::Text, true)?;
        }
        check_field(&db, at, "dbUserPassword", Want::Object, false)?;
        if db.contains_key("dbUserPassword") {
            let user = object(&db, "dbUserPassword");
            let at = "syncDatabase.dbUserPassword";
            check_field(&user, at, "userName", Want::Text, true)?;
            check_field(&user, at, "password", Want::Base64, true)?;
        }
        check_field(&db, at, "dbInstance", Want::AnyText, false)?;
    }
    check_field(request, "", "useResourcePoolInfo", Want::Bool, false)?;
    Ok(())
}
