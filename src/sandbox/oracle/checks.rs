//! The seed's rules for what a client sends: an organization's fields (strings, the
//! `customerType` and `type` enumerations, a nine-digit DUNS number, secondary addresses) and a
//! registering profile (e-mail, first and last name), each refused with OCC's 400 and a message
//! naming the field.

use serde_json::{Map, Value};

// `organization.customerType` and `organization.type`: the catalog's, as the seed lists them.
use crate::catalog::oracle::{CUSTOMER_TYPES, ORGANIZATION_TYPES};
use crate::catalog::schema::Format;

use super::{Reply, invalid};

/// The organization object's fields as OCC takes them (the seed's names), checked; `at` prefixes
/// field names in messages.
pub(super) fn check_organization(
    object: &Map<String, Value>,
    at: &str,
) -> Result<Map<String, Value>, Reply> {
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
pub(super) fn check_profile(profile: &Map<String, Value>) -> Result<Map<String, Value>, Reply> {
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
    // The catalog's one e-mail rule, which the validator applies too.
    if Format::Email.check(email).is_err() {
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
