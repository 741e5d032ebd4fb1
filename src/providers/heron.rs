//! Heron Data: CRM integrations (docs/providers/heron.md).
//!
//! A static `x-api-key`, so login only checks the key. One `GET /api/crm_integrations` lists
//! everything (no paging); the natural key is (`provider`, `instance_url`). Create answers 201
//! with the object wrapped in `crm_integration` (PATCH answers unwrapped; orgform doesn't patch,
//! but the reader accepts both). Heron allows duplicates, so orgform's look-up is the guard.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::IntoDeserializer as _;
use serde::de::value::{BoolDeserializer, StrDeserializer};

use super::http::{
    Effect, Ending, Http, MOST_OF_A_LIST, broken_read, created_answer, read_body, read_up_to, short,
};
use super::json_array;
use super::wire::{ReportedReader, WireKey, create_body};
use super::{ConnectOptions, CreateContext, Provider, ProviderError};
use crate::model::{InstanceReality, NaturalKey, ProviderType, RemoteOrg, RemoteStatus, Reported};
use crate::secrets::{SecretResolver, SecretString};
use crate::spec::{OrgSpec, ProviderInstance};

const PATH: &str = "/api/crm_integrations";

pub struct Heron {
    http: Http,
    api_key: SecretString,
    secrets: SecretResolver,
}

/// A CRM integration as Heron returns it: what orgform matches on, and what it reports of the
/// declarable fields, read to spec names as the object is parsed.
#[derive(Debug)]
struct Integration {
    heron_id: String,
    provider: String,
    instance_url: String,
    is_enabled: Option<bool>,
    /// The declarable fields it reports, under spec names.
    attributes: Reported,
}

impl<'de> Deserialize<'de> for Integration {
    /// Read as one JSON object: the fields orgform matches on taken out, every other key read
    /// straight into the packed attributes by the schema (`ReportedReader`), so that no
    /// integration is held as a JSON tree (that was most of the time of reading a hundred
    /// thousand of them, and of the memory holding them).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Integration, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = Integration;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a CRM integration object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Integration, A::Error> {
                use serde::de::Error;
                let text = |key: &'static str, value: serde_json::Value| match value {
                    serde_json::Value::String(text) => Ok(text),
                    other => Err(A::Error::custom(format!(
                        "`{key}` is {}, not a string",
                        kind_of(&other)
                    ))),
                };
                let mut reported = ReportedReader::new(ProviderType::Heron.schema().org);
                let (mut heron_id, mut provider, mut instance_url) = (None, None, None);
                let mut is_enabled = None;
                while let Some(key) = map.next_key::<WireKey<'de>>()? {
                    match &*key.0 {
                        "heron_id" => heron_id = Some(text("heron_id", map.next_value()?)?),
                        "provider" => provider = Some(text("provider", map.next_value()?)?),
                        "instance_url" => {
                            instance_url = Some(text("instance_url", map.next_value()?)?);
                        }
                        "is_enabled" => {
                            is_enabled = match map.next_value()? {
                                serde_json::Value::Null => None,
                                serde_json::Value::Bool(enabled) => Some(enabled),
                                other => {
                                    return Err(A::Error::custom(format!(
                                        "`is_enabled` is {}, not a boolean",
                                        kind_of(&other)
                                    )));
                                }
                            };
                        }
                        other => reported.read(other, &mut map)?,
                    }
                }
                let heron_id = heron_id.ok_or_else(|| A::Error::missing_field("heron_id"))?;
                let provider = provider.ok_or_else(|| A::Error::missing_field("provider"))?;
                let instance_url =
                    instance_url.ok_or_else(|| A::Error::missing_field("instance_url"))?;
                // The keys taken out are declarable too: reported as read.
                let put = |reported: &mut ReportedReader, key: &str, value: &str| {
                    reported.put::<StrDeserializer<'_, A::Error>>(key, value.into_deserializer())
                };
                put(&mut reported, "provider", &provider)?;
                put(&mut reported, "instance_url", &instance_url)?;
                if let Some(enabled) = is_enabled {
                    reported.put::<BoolDeserializer<A::Error>>(
                        "is_enabled",
                        enabled.into_deserializer(),
                    )?;
                }
                Ok(Integration {
                    heron_id,
                    provider,
                    instance_url,
                    is_enabled,
                    attributes: reported.finish(),
                })
            }
        }
        deserializer.deserialize_map(Object)
    }
}

/// What kind of JSON value this is, for a message.
fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The list answer, `{"crm_integrations": [...]}`, read into the model one integration at a
/// time: no integration's whole object outlives its turn (twenty thousand of them held at once
/// were several times the answer's size).
struct List(InstanceReality);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<List, D::Error> {
        struct Answer;
        impl<'de> serde::de::Visitor<'de> for Answer {
            type Value = List;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object with `crm_integrations`")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<List, A::Error> {
                let mut found = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "crm_integrations" && found.is_none() {
                        found = Some(map.next_value_seed(Integrations)?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                found
                    .map(List)
                    .ok_or_else(|| serde::de::Error::missing_field("crm_integrations"))
            }
        }
        deserializer.deserialize_map(Answer)
    }
}

/// The `crm_integrations` array, each element into the model as soon as it is read.
struct Integrations;

impl<'de> serde::de::DeserializeSeed<'de> for Integrations {
    type Value = InstanceReality;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Integrations {
    type Value = InstanceReality;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of CRM integrations")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<InstanceReality, A::Error> {
        let mut reality = InstanceReality::default();
        while let Some(integration) = seq.next_element::<Integration>()? {
            reality.insert(Heron::to_remote(integration));
        }
        Ok(reality)
    }
}

/// Create's answer is wrapped; PATCH's is not. Accept either.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Created {
    Wrapped { crm_integration: Integration },
    Bare(Integration),
}

impl Heron {
    pub(crate) fn connect(
        instance: &ProviderInstance,
        options: &ConnectOptions,
    ) -> Result<Heron, ProviderError> {
        let api_key = options.secret(instance, "api_key")?;
        Ok(Heron {
            http: options.http(instance)?,
            api_key,
            secrets: options.secrets.clone(),
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, path)
            .header("x-api-key", self.api_key.expose())
            .header("accept", "application/json")
    }

    fn to_remote(integration: Integration) -> RemoteOrg {
        let mut detail = BTreeMap::new();
        if let Some(enabled) = integration.is_enabled {
            detail.insert("is_enabled".to_string(), enabled.to_string());
        }
        RemoteOrg {
            remote_id: integration.heron_id,
            natural_key: ProviderType::Heron
                .natural_key(&[&integration.provider, &integration.instance_url]),
            status: RemoteStatus::Ready,
            detail: detail.into(),
            attributes: integration.attributes,
        }
    }
}

/// Heron's error envelope: `{"code", "description", "name"}`, description a string or an object.
/// The list's body as bytes, in one buffer sized by its `Content-Length` (up to a bound): the
/// list is every integration at once (98 MB for 100,000), and reading it as text grew a buffer
/// chunk by chunk, then copied it twice (decoded, then owned) before the JSON was read;
/// `from_slice` checks the UTF-8 of what it reads. A list past [`MOST_OF_A_LIST`] is refused
/// rather than read on without end.
async fn list_body(response: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    match read_up_to(response, MOST_OF_A_LIST).await {
        (body, Ending::Whole) => Ok(body),
        (_, Ending::Cut) => Err(ProviderError::Protocol {
            message: format!(
                "the integration list is larger than {} MiB; orgform reads no more of one answer",
                MOST_OF_A_LIST >> 20
            ),
        }),
        (_, Ending::Broken(e)) => Err(Effect::Safe.lost(broken_read("the list", e))),
    }
}

/// The list answer read into the model: on every core when it is large and of the documented
/// shape, else (and for the error of one that does not read) on one.
fn parse_list(body: &[u8]) -> Result<InstanceReality, ProviderError> {
    let shares = json_array::sole_array(body, "crm_integrations").and_then(|elements| {
        json_array::fold_in_shares(elements, |reality: &mut InstanceReality, integration| {
            reality.insert(Heron::to_remote(integration));
        })
    });
    if let Some(shares) = shares {
        let mut shares = shares.into_iter();
        let mut reality = shares.next().unwrap_or_default();
        for later in shares {
            reality.merge(later);
        }
        return Ok(reality);
    }
    let List(reality) = serde_json::from_slice(body).map_err(|e| ProviderError::Protocol {
        message: format!("the integration list is not what Heron documents: {e}"),
    })?;
    Ok(reality)
}

fn describe_error(status: StatusCode, body: &str) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        description: serde_json::Value,
    }
    match serde_json::from_str::<Envelope>(body) {
        // Shortened like any body: a description may be megabytes, or quote a URL's query.
        Ok(Envelope {
            description: serde_json::Value::String(s),
        }) => short(&s),
        Ok(Envelope { description }) => short(&description.to_string()),
        Err(_) => format!("HTTP {status}: {}", short(body)),
    }
}

impl Provider for Heron {
    async fn login(&self) -> Result<(), ProviderError> {
        // A static key: there is no session to open, and the first request proves the key
        // (a plan's list call, an apply's look-up) without costing one of its own.
        Ok(())
    }

    async fn read(&self, _keys: &[NaturalKey]) -> Result<InstanceReality, ProviderError> {
        let response = self
            .http
            .send_retrying(|| self.request(Method::GET, PATH))
            .await?;
        let status = response.status();
        let body = list_body(response).await?;
        match status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(ProviderError::Unauthorized {
                    message: describe_error(status, &String::from_utf8_lossy(&body)),
                });
            }
            _ => {
                return Err(ProviderError::Protocol {
                    message: format!(
                        "listing integrations: {}",
                        describe_error(status, &String::from_utf8_lossy(&body))
                    ),
                });
            }
        }
        let reality = parse_list(&body)?;
        Ok(reality)
    }

    async fn list_all(&self) -> Result<InstanceReality, ProviderError> {
        // The one list call is everything, with every attribute Heron reports.
        self.read(&[]).await
    }

    async fn create(&self, org: &OrgSpec, _cx: CreateContext) -> Result<RemoteOrg, ProviderError> {
        let schema = ProviderType::Heron.schema();
        let body = create_body(schema.org, org, &self.secrets)?;
        let response = self
            .http
            .send(
                self.request(Method::POST, PATH).json(&body),
                Effect::Creates,
            )
            .await?;
        let status = response.status();
        let text = read_body(response, Effect::Creates, "the create answer").await?;
        match status {
            StatusCode::CREATED | StatusCode::OK => {
                let created: Created = created_answer(&text, "the create answer")?;
                let integration = match created {
                    Created::Wrapped { crm_integration } => crm_integration,
                    Created::Bare(i) => i,
                };
                Ok(Heron::to_remote(integration))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(ProviderError::Unauthorized {
                message: describe_error(status, &text),
            }),
            s if s.is_client_error() => Err(ProviderError::Rejected {
                status: s.as_u16(),
                message: describe_error(status, &text),
            }),
            s => Err(ProviderError::OutcomeUnknown {
                message: format!("unexpected HTTP {s}: {}", describe_error(status, &text)),
            }),
        }
    }
}
