//! From declared attributes (spec names) to the API's JSON (its own names), driven by the same
//! schema the validator uses, with secrets resolved at the last moment; and back again
//! (`from_wire`), for what a provider reports about an organization.

use crate::catalog::schema::{Field, Kind};
use crate::model::{Table, Value};
use crate::secrets::{SecretResolver, SecretString};
use crate::spec::OrgSpec;

use super::ProviderError;

/// How a secret goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretEncoding {
    Plain,
    /// Base64 of the UTF-8 text (Commvault's passwords and consumer secret).
    Base64,
}

/// The JSON body that creates `org`: its declared attributes under their API names, with
/// secrets resolved as they are (plain).
pub(crate) fn create_body(
    fields: &[Field],
    org: &OrgSpec,
    secrets: &SecretResolver,
) -> Result<serde_json::Map<String, serde_json::Value>, ProviderError> {
    to_json(fields, &org.attrs.unpack(), secrets, SecretEncoding::Plain)
}

/// Builds the JSON object for `attrs`, renaming each field to its `wire` name.
pub fn to_json(
    fields: &[Field],
    attrs: &Table,
    secrets: &SecretResolver,
    encoding: SecretEncoding,
) -> Result<serde_json::Map<String, serde_json::Value>, ProviderError> {
    let mut out = serde_json::Map::new();
    for (name, value) in attrs {
        let field = fields.iter().find(|f| f.name == name);
        let (wire, kind) = match field {
            Some(f) => (f.wire, Some(&f.kind)),
            None => (name.as_str(), None),
        };
        out.insert(
            wire.to_string(),
            value_to_json(kind, value, secrets, encoding)?,
        );
    }
    Ok(out)
}

fn value_to_json(
    kind: Option<&Kind>,
    value: &Value,
    secrets: &SecretResolver,
    encoding: SecretEncoding,
) -> Result<serde_json::Value, ProviderError> {
    Ok(match (kind, value) {
        (_, Value::Secret(r)) => serde_json::Value::String(encode(&secrets.resolve(r)?, encoding)),
        (Some(Kind::Object(fields)), Value::Table(t)) => {
            serde_json::Value::Object(to_json(fields, t, secrets, encoding)?)
        }
        (Some(Kind::Array(inner)), Value::Array(items)) => serde_json::Value::Array(
            items
                .iter()
                .map(|v| value_to_json(Some(inner), v, secrets, encoding))
                .collect::<Result<_, _>>()?,
        ),
        (Some(Kind::Map(inner)), Value::Table(t)) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), value_to_json(Some(inner), v, secrets, encoding)?)))
                .collect::<Result<_, ProviderError>>()?,
        ),
        (_, Value::Table(t)) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), value_to_json(None, v, secrets, encoding)?)))
                .collect::<Result<_, ProviderError>>()?,
        ),
        (_, Value::Array(items)) => serde_json::Value::Array(
            items
                .iter()
                .map(|v| value_to_json(None, v, secrets, encoding))
                .collect::<Result<_, _>>()?,
        ),
        (_, other) => other.public_json().unwrap_or(serde_json::Value::Null),
    })
}

fn encode(secret: &SecretString, encoding: SecretEncoding) -> String {
    use base64::Engine as _;
    match encoding {
        SecretEncoding::Plain => secret.expose().to_string(),
        SecretEncoding::Base64 => {
            base64::engine::general_purpose::STANDARD.encode(secret.expose().as_bytes())
        }
    }
}

/// What a provider reported, from the API's JSON (its own names) back to spec names: the
/// reverse of [`to_json`], driven by the same fields. A secret is never read back (an API that
/// echoes one is not believed, and the value must not reach a plan); keys the schema does not
/// know, nulls, and values of the wrong shape are left out, so what remains is what the provider
/// really said about a declarable field. Scalars arrive as vendors send them: a number where a
/// string is declared (NeonCRM's digits), a string where a number is (OCC's numbers as text),
/// and are read back to the declared kind.
pub(crate) fn from_wire(
    fields: &[Field],
    wire: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    fields
        .iter()
        .filter_map(|field| {
            let value = value_from_wire(&field.kind, wire.get(field.wire)?)?;
            Some((field.name.to_string(), value))
        })
        .collect()
}

/// [`from_wire`] of a wire object the caller gives up: each value moved, not copied, to its
/// spec name. For a list of thousands of organizations (Heron's one list call, with each
/// integration's whole config) it halves the work of reading reality.
pub(crate) fn from_wire_owned(
    fields: &[Field],
    mut wire: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    fields
        .iter()
        .filter_map(|field| {
            let value = value_from_wire_owned(&field.kind, wire.swap_remove(field.wire)?)?;
            Some((field.name.to_string(), value))
        })
        .collect()
}

/// [`value_from_wire`], moving what it keeps.
fn value_from_wire_owned(kind: &Kind, value: serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match (kind, value) {
        (Kind::Object(fields), J::Object(map)) => J::Object(from_wire_owned(fields, map)),
        (Kind::Array(inner), J::Array(items)) => J::Array(
            items
                .into_iter()
                .map(|item| value_from_wire_owned(inner, item))
                .collect::<Option<_>>()?,
        ),
        (Kind::Map(inner), J::Object(map)) => J::Object(
            map.into_iter()
                .filter_map(|(k, v)| Some((k, value_from_wire_owned(inner, v)?)))
                .collect(),
        ),
        (_, J::Null) | (Kind::Secret, _) => return None,
        (Kind::Any, other) => other,
        (Kind::String(_) | Kind::Enum(_), J::String(s)) => J::String(s),
        (Kind::Bool, J::Bool(b)) => J::Bool(b),
        (Kind::Float, J::Number(n)) => J::Number(n),
        // The conversions between kinds copy little: the borrowing reader's.
        (kind, other) => return value_from_wire(kind, &other),
    })
}

fn value_from_wire(kind: &Kind, value: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match (kind, value) {
        (_, J::Null) | (Kind::Secret, _) => return None,
        (Kind::Object(fields), J::Object(map)) => J::Object(from_wire(fields, map)),
        (Kind::Array(inner), J::Array(items)) => J::Array(
            items
                .iter()
                .map(|item| value_from_wire(inner, item))
                .collect::<Option<_>>()?,
        ),
        (Kind::Map(inner), J::Object(map)) => J::Object(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), value_from_wire(inner, v)?)))
                .collect(),
        ),
        (Kind::Any, other) => other.clone(),
        (Kind::String(_) | Kind::Enum(_), J::String(s)) => J::String(s.clone()),
        (Kind::String(_) | Kind::Enum(_), J::Number(n)) => J::String(n.to_string()),
        (Kind::Integer { .. } | Kind::IntEnum(_), J::Number(n)) => J::from(n.as_i64()?),
        (Kind::Integer { .. } | Kind::IntEnum(_), J::String(s)) => {
            J::from(s.trim().parse::<i64>().ok()?)
        }
        (Kind::Float, J::Number(n)) => J::Number(n.clone()),
        (Kind::Float, J::String(s)) => {
            J::Number(serde_json::Number::from_f64(s.trim().parse::<f64>().ok()?)?)
        }
        (Kind::Bool, J::Bool(b)) => J::Bool(*b),
        (Kind::Bool, J::String(s)) => J::Bool(s.trim().parse::<bool>().ok()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::schema::Text;

    static INNER: &[Field] = &[Field::new(
        "alias_name",
        "aliasName",
        Kind::String(Text::ANY),
    )];
    static FIELDS: &[Field] = &[
        Field::new("org_name", "orgName", Kind::String(Text::ANY)),
        Field::new(
            "count",
            "count",
            Kind::Integer {
                min: None,
                max: None,
            },
        ),
        Field::new("enabled", "isEnabled", Kind::Bool),
        Field::new("token", "token", Kind::Secret),
        Field::new("inner", "inner", Kind::Object(INNER)),
        Field::new("list", "list", Kind::Array(&Kind::Object(INNER))),
    ];

    #[test]
    fn reported_json_is_read_back_under_spec_names_without_secrets_or_strangers() {
        let wire = serde_json::json!({
            "orgName": 1905,
            "count": "42",
            "isEnabled": "true",
            "token": "s3cret",
            "inner": {"aliasName": "a", "extra": 1},
            "list": [{"aliasName": "x"}],
            "unknown": "dropped",
        });
        let serde_json::Value::Object(map) = wire else {
            unreachable!("a JSON object literal")
        };
        assert_eq!(
            serde_json::Value::Object(from_wire(FIELDS, &map)),
            serde_json::json!({
                "org_name": "1905",
                "count": 42,
                "enabled": true,
                "inner": {"alias_name": "a"},
                "list": [{"alias_name": "x"}],
            })
        ); // The reader that moves what it keeps reads the same.
        assert_eq!(
            from_wire_owned(FIELDS, map.clone()),
            from_wire(FIELDS, &map)
        );
    }
}
