//! From declared attributes (spec names) to the API's JSON (its own names), driven by the same
//! schema the validator uses, with secrets resolved at the last moment.

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
