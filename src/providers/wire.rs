//! From declared attributes (spec names) to the API's JSON (its own names), driven by the same
//! schema the validator uses, with secrets resolved at the last moment; and back again
//! (`from_wire`, `ReportedReader`, and `MatchedSeed` for a list's objects read both into what a
//! client decides with and what they report), for what a provider reports about an
//! organization: read straight from the wire into the packed [`Reported`], no JSON tree built
//! on the way.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::catalog::schema::{Field, Kind};
use crate::model::reported::{self, ArrayWriter, TableWriter};
use crate::model::{Reported, Table, Value};
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
/// and are read back to the declared kind. A value of any kind (`Kind::Any`) is kept as sent.
pub(crate) fn from_wire(
    fields: &'static [Field],
    wire: &serde_json::Map<String, serde_json::Value>,
) -> Reported {
    use serde::de::Deserializer as _;
    let mut reader = ReportedReader::new(fields);
    // A JSON tree always reads; were it not to, what it said so far stands.
    let _ = wire.deserialize_map(Entries(&mut reader));
    reader.finish()
}

/// Every entry of a wire object into a [`ReportedReader`].
struct Entries<'r>(&'r mut ReportedReader);

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key_seed(FieldKey(self.0.fields))? {
            self.0.value(field, &mut map)?;
        }
        Ok(())
    }
}

/// Reads what a provider reports about one organization straight from the wire object as it is
/// parsed, by the schema (the rules of [`from_wire`]), into [`Reported`]: no JSON tree is built
/// for it. A client's own deserializer takes the keys it needs itself (an id, the natural key)
/// and hands every key to [`ReportedReader::read`], or a value it took to
/// [`ReportedReader::put`].
pub(crate) struct ReportedReader {
    fields: &'static [Field],
    out: Vec<u8>,
    table: TableWriter<&'static str>,
}

impl ReportedReader {
    pub(crate) fn new(fields: &'static [Field]) -> ReportedReader {
        let out = Vec::with_capacity(256);
        ReportedReader {
            fields,
            table: TableWriter::begin(&out),
            out,
        }
    }

    /// Reads the value of the wire key `key` from `map`: into the attributes when a field is
    /// written so on the wire, skipped otherwise.
    pub(crate) fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let field = self.fields.iter().find(|f| f.wire == key);
        self.value(field, map)
    }

    fn value<'de, A: MapAccess<'de>>(
        &mut self,
        field: Option<&'static Field>,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match field {
            Some(field) => {
                let start = self.out.len();
                let kept = map.next_value_seed(ValueSeed {
                    kind: Some(&field.kind),
                    out: &mut self.out,
                })?;
                self.table.entry(&mut self.out, field.name, start, kept);
            }
            None => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    /// A value the caller took out of the wire object itself, under its wire name `key`.
    pub(crate) fn put<'de, D: serde::Deserializer<'de>>(
        &mut self,
        key: &str,
        value: D,
    ) -> Result<(), D::Error> {
        if let Some(field) = self.fields.iter().find(|f| f.wire == key) {
            let start = self.out.len();
            let kept = ValueSeed {
                kind: Some(&field.kind),
                out: &mut self.out,
            }
            .deserialize(value)?;
            self.table.entry(&mut self.out, field.name, start, kept);
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Reported {
        self.table.finish(&mut self.out);
        Reported::from_table_bytes(self.out)
    }
}

/// A wire object read once into both what a client decides with (`T`) and what it reports by
/// the schema (`reported`), for a list of many: no tree of the whole object is built. See
/// [`MatchedSeed`].
pub(crate) struct Matched<T> {
    pub(crate) item: T,
    pub(crate) reported: Reported,
}

/// Reads a [`Matched`]: the values of the keys `T` reads (`keys`) are kept as small JSON values
/// and `T` is deserialized from them alone at the end, so `T` reads them exactly as it read the
/// whole object (its defaults, its errors, the last of a repeated key); every value, those too,
/// goes by the schema `fields` into a [`ReportedReader`], the others straight from the wire.
/// Without `fields` (a look at statuses) the other keys are skipped unread.
pub(crate) struct MatchedSeed<T> {
    keys: &'static [&'static str],
    fields: Option<&'static [Field]>,
    item: std::marker::PhantomData<fn() -> T>,
}

impl<T> MatchedSeed<T> {
    pub(crate) fn new(
        keys: &'static [&'static str],
        fields: Option<&'static [Field]>,
    ) -> MatchedSeed<T> {
        MatchedSeed {
            keys,
            fields,
            item: std::marker::PhantomData,
        }
    }
}

impl<T> Clone for MatchedSeed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for MatchedSeed<T> {}

impl<'de, T: serde::de::DeserializeOwned> DeserializeSeed<'de> for MatchedSeed<T> {
    type Value = Matched<T>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Matched<T>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: serde::de::DeserializeOwned> Visitor<'de> for MatchedSeed<T> {
    type Value = Matched<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Matched<T>, A::Error> {
        use serde::de::Error as _;
        let mut taken = serde_json::Map::new();
        let mut reader = self.fields.map(ReportedReader::new);
        while let Some(WireKey(key)) = map.next_key::<WireKey<'de>>()? {
            if self.keys.contains(&key.as_ref()) {
                let value: serde_json::Value = map.next_value()?;
                if let Some(reader) = &mut reader {
                    reader.put(&key, &value).map_err(A::Error::custom)?;
                }
                taken.insert(key.into_owned(), value);
            } else if let Some(reader) = &mut reader {
                reader.read(&key, &mut map)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let item = T::deserialize(serde_json::Value::Object(taken)).map_err(A::Error::custom)?;
        Ok(Matched {
            item,
            reported: reader.map(ReportedReader::finish).unwrap_or_default(),
        })
    }
}

/// A wire object's key, as the field of `fields` it names on the wire (`None`: no field's).
struct FieldKey(&'static [Field]);

impl<'de> DeserializeSeed<'de> for FieldKey {
    type Value = Option<&'static Field>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldKey {
    type Value = Option<&'static Field>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().find(|f| f.wire == key))
    }
}

/// A key kept as text (a map's), borrowed from the input where it can be: serde's own `Cow`
/// always copies.
pub(crate) struct WireKey<'de>(pub(crate) Cow<'de, str>);

impl AsRef<str> for WireKey<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for WireKey<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = WireKey<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                s: &'de str,
            ) -> Result<WireKey<'de>, E> {
                Ok(WireKey(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<WireKey<'de>, E> {
                Ok(WireKey(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<WireKey<'de>, E> {
                Ok(WireKey(Cow::Owned(s)))
            }
        }
        d.deserialize_str(Text)
    }
}

/// One wire value written to `out` as the field's `kind` reads it back (`None`: inside a value
/// of any kind, kept as sent, nulls and all). `false` when it is left out: a null, a secret, a
/// value of the wrong shape (the caller drops what was written).
struct ValueSeed<'o> {
    kind: Option<&'static Kind>,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        if matches!(self.kind, Some(Kind::Secret)) {
            IgnoredAny::deserialize(d)?;
            return Ok(false);
        }
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn number(self, n: &serde_json::Number) -> bool {
        match self.kind {
            None | Some(Kind::Any | Kind::Float) => reported::put_number(self.out, n),
            Some(Kind::String(_) | Kind::Enum(_)) => reported::put_string(self.out, &n.to_string()),
            Some(Kind::Integer { .. } | Kind::IntEnum(_)) => match n.as_i64() {
                Some(i) => reported::put_int(self.out, i),
                None => return false,
            },
            Some(_) => return false,
        }
        true
    }
}

/// Reads the rest of a sequence or map that is left out.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<bool, A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(false)
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(match self.kind {
            None => {
                reported::put_null(self.out);
                true
            }
            Some(_) => false,
        })
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<bool, E> {
        self.visit_unit()
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<bool, E> {
        Ok(match self.kind {
            None | Some(Kind::Any | Kind::Bool) => {
                reported::put_bool(self.out, b);
                true
            }
            Some(_) => false,
        })
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<bool, E> {
        Ok(self.number(&i.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<bool, E> {
        Ok(self.number(&u.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<bool, E> {
        Ok(serde_json::Number::from_f64(x).is_some_and(|n| self.number(&n)))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<bool, E> {
        match self.kind {
            None | Some(Kind::Any | Kind::String(_) | Kind::Enum(_)) => {
                reported::put_string(self.out, s);
            }
            Some(Kind::Integer { .. } | Kind::IntEnum(_)) => match s.trim().parse::<i64>() {
                Ok(i) => reported::put_int(self.out, i),
                Err(_) => return Ok(false),
            },
            Some(Kind::Float) => match s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Some(n) => reported::put_number(self.out, &n),
                None => return Ok(false),
            },
            Some(Kind::Bool) => match s.trim().parse::<bool>() {
                Ok(b) => reported::put_bool(self.out, b),
                Err(_) => return Ok(false),
            },
            Some(_) => return Ok(false),
        }
        Ok(true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let inner = match self.kind {
            None | Some(Kind::Any) => None,
            Some(Kind::Array(inner)) => Some(*inner),
            Some(_) => return drain_seq(seq),
        };
        let mut array = ArrayWriter::begin(self.out);
        loop {
            let item = ValueSeed {
                kind: inner,
                out: &mut *self.out,
            };
            match seq.next_element_seed(item)? {
                Some(true) => array.item(),
                // One item that does not read makes the whole array unread, as it would be
                // wrong by a place for every item after it.
                Some(false) => return drain_seq(seq),
                None => break,
            }
        }
        array.finish(self.out);
        Ok(true)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let out = self.out;
        match self.kind {
            Some(Kind::Object(fields)) => {
                let mut table = TableWriter::nested(out);
                while let Some(field) = map.next_key_seed(FieldKey(fields))? {
                    match field {
                        Some(field) => {
                            let start = out.len();
                            let kept = map.next_value_seed(ValueSeed {
                                kind: Some(&field.kind),
                                out: &mut *out,
                            })?;
                            table.entry(out, field.name, start, kept);
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                table.finish(out);
            }
            Some(Kind::Map(_) | Kind::Any) | None => {
                let inner = match self.kind {
                    Some(Kind::Map(inner)) => Some(*inner),
                    _ => None,
                };
                let mut table = TableWriter::nested(out);
                while let Some(WireKey(key)) = map.next_key::<WireKey<'de>>()? {
                    let start = out.len();
                    let kept = map.next_value_seed(ValueSeed {
                        kind: inner,
                        out: &mut *out,
                    })?;
                    table.entry(out, WireKey(key), start, kept);
                }
                table.finish(out);
            }
            Some(_) => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(false);
            }
        }
        Ok(true)
    }
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
        Field::new("ratio", "ratio", Kind::Float),
        Field::new("any", "any", Kind::Any),
        Field::new("mapping", "mapping", Kind::Map(&Kind::Any)),
        Field::new("keys", "keys", Kind::Map(&Kind::Secret)),
        Field::new("numbers", "numbers", Kind::Array(&Kind::IntEnum(&[1, 2]))),
        Field::new("tier", "tier", Kind::Enum(&["a", "b"])),
    ];

    /// What `from_wire` was when it built JSON trees: the reference the packed reader must match.
    fn reference(kind: &Kind, value: &serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value as J;
        let object = |fields: &[Field], map: &serde_json::Map<String, J>| {
            fields
                .iter()
                .filter_map(|f| Some((f.name.to_string(), reference(&f.kind, map.get(f.wire)?)?)))
                .collect::<serde_json::Map<_, _>>()
        };
        Some(match (kind, value) {
            (_, J::Null) | (Kind::Secret, _) => return None,
            (Kind::Object(fields), J::Object(map)) => J::Object(object(fields, map)),
            (Kind::Array(inner), J::Array(items)) => J::Array(
                items
                    .iter()
                    .map(|item| reference(inner, item))
                    .collect::<Option<_>>()?,
            ),
            (Kind::Map(inner), J::Object(map)) => J::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), reference(inner, v)?)))
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

    /// Reads `text` as a client's deserializer does: straight from the text, every key to the
    /// reader.
    fn streamed(text: &str) -> Reported {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Reported;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Reported, A::Error> {
                let mut reader = ReportedReader::new(FIELDS);
                while let Some(WireKey(key)) = map.next_key()? {
                    reader.read(&key, &mut map)?;
                }
                Ok(reader.finish())
            }
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let read = serde::Deserializer::deserialize_map(&mut de, Object);
        assert!(de.end().is_ok(), "the whole text is read");
        read.unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn the_packed_reader_reads_what_the_json_reader_did() {
        let cases = [
            r#"{"orgName": "a", "count": 3, "isEnabled": true, "ratio": 1.5, "tier": "b"}"#,
            r#"{"orgName": 7, "count": "  12 ", "isEnabled": "false", "ratio": "2", "tier": 1}"#,
            r#"{"orgName": 1.25, "count": 1.5, "isEnabled": 1, "ratio": "x", "tier": null}"#,
            r#"{"orgName": null, "count": 18446744073709551615, "ratio": 18446744073709551615}"#,
            r#"{"count": -4, "ratio": -0.5, "token": "s3cret", "keys": {"a": "b"}}"#,
            r#"{"any": {"b": null, "a": [1, "x", {"z": null}], "c": 1e3}, "mapping": {"y": null, "x": {"k": [null]}}}"#,
            r#"{"any": null, "mapping": [1], "inner": "text", "list": {"aliasName": "x"}}"#,
            r#"{"inner": {"aliasName": 5, "extra": [1]}, "list": [{"aliasName": "x"}, {"aliasName": null}]}"#,
            r#"{"list": [{"aliasName": "x"}, null], "numbers": [1, "2", 3]}"#,
            r#"{"list": [], "numbers": [1, "x"], "inner": {}}"#,
            r#"{"orgName": "first", "orgName": "last", "count": 1, "count": null}"#,
            r#"{"any": "é\u00e9\n", "orgName": "a\"b", "mapping": {"k\u00e9": "v", "b": 1, "a": 2}}"#,
            r#"{"unknown": {"deep": [1, 2, {"x": null}]}, "also": null}"#,
        ];
        for text in cases {
            let tree: serde_json::Value = serde_json::from_str(text).expect("JSON");
            let serde_json::Value::Object(map) = &tree else {
                unreachable!("an object")
            };
            let expected = reference(&Kind::Object(FIELDS), &tree)
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            let from_tree = from_wire(FIELDS, map);
            // Equal as JSON is: numbers exactly (an integer stays one, a float one).
            assert_eq!(from_tree.to_json(), expected, "{text}");
            assert_eq!(streamed(text), from_tree, "{text}");
        }
    }

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
            serde_json::Value::Object(from_wire(FIELDS, &map).to_json()),
            serde_json::json!({
                "org_name": "1905",
                "count": 42,
                "enabled": true,
                "inner": {"alias_name": "a"},
                "list": [{"alias_name": "x"}],
            })
        );
    }
}
