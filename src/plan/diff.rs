//! What changed between the attributes an organization was created with and those declared now,
//! as leaf paths: the diff a `blocked` action shows; and whether what a provider reports agrees
//! with what is declared, first walked over both packed forms at once without building either
//! as JSON ([`reported_agrees`]), the detailed diff only where they may not.

use serde::{Deserialize, Serialize};

use crate::catalog::schema::{Field, Format, Kind};
use crate::model::Reported;
use crate::model::packed::{Head, PackedTable, Unpacker};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeChange {
    /// Dotted path, with `[i]` for array items.
    pub(crate) path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) before: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) after: Option<serde_json::Value>,
}

/// The leaf-level differences from `before` to `after`, in path order.
pub(crate) fn attribute_changes(
    before: &serde_json::Value,
    after: &serde_json::Value,
) -> Vec<AttributeChange> {
    let mut out = Vec::new();
    walk("", Some(before), Some(after), &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn walk(
    path: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
    out: &mut Vec<AttributeChange>,
) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, after) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            for (k, v) in a {
                walk(&join(k), Some(v), b.get(k), out);
            }
            for (k, v) in b {
                if !a.contains_key(k) {
                    walk(&join(k), None, Some(v), out);
                }
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(&format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        (a, b) if a != b => out.push(AttributeChange {
            path: if path.is_empty() {
                "(all)".into()
            } else {
                path.to_string()
            },
            before: a.cloned(),
            after: b.cloned(),
        }),
        _ => {}
    }
}

/// Where what a provider reports about an organization differs from what is declared: `before`
/// is the provider's value, `after` the declared one. Only keys present on both sides count: a
/// provider reports what it reports (write-only fields, secrets, fields its list leaves out),
/// and a key the spec leaves out is the provider's to default. The natural key's fields
/// (`key_fields`, dotted) are left out too: they matched already, by the provider's own rule.
/// Numbers compare by value, so `1` and `1.0` are the same; e-mail addresses (by the schema,
/// `fields`) regardless of case, as vendors keep them folded (Salesforce stores e-mail fields
/// in lower case).
pub(crate) fn reported_differences(
    reported: &serde_json::Map<String, serde_json::Value>,
    declared: &serde_json::Value,
    fields: &[Field],
    key_fields: &[&str],
) -> Vec<AttributeChange> {
    let mut out = Vec::new();
    let Some(declared) = declared.as_object() else {
        return out;
    };
    let walk = Walk { key_fields };
    for (key, value) in declared {
        if let Some(remote) = reported.get(key) {
            walk.compare(key, remote, value, field_kind(fields, key), &mut out);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Whether `reported` certainly agrees with `declared` by the rules of
/// [`reported_differences`] (which would then find nothing): walked over the packed bytes of
/// both, in key order, allocating nothing but the path. `false` means they may differ, and
/// [`reported_differences`] tells how (a declared array holding a secret, whose indices the
/// public JSON shifts, is left to it too). For a hundred thousand organizations found unchanged
/// this is the whole cost of the drift check.
pub(crate) fn reported_agrees(
    reported: &Reported,
    declared: &PackedTable,
    fields: &[Field],
    key_fields: &[&str],
) -> bool {
    let mut agree = Agree {
        key_fields,
        path: Vec::with_capacity(64),
    };
    let mut r = Unpacker(reported.as_bytes());
    let mut d = Unpacker(declared.as_bytes());
    let (Some(r_count), Some(d_count)) = (r.len(), d.len()) else {
        return false;
    };
    agree
        .tables(&mut r, r_count, &mut d, d_count, Within::Fields(fields))
        .unwrap_or(false)
}

/// What the kinds of a table's values are known from.
#[derive(Clone, Copy)]
enum Within<'f> {
    Fields(&'f [Field]),
    /// A map: every value of this kind.
    Values(&'f Kind),
    Unknown,
}

impl<'f> Within<'f> {
    fn kind(self, key: &[u8]) -> Option<&'f Kind> {
        match self {
            Within::Fields(fields) => fields
                .iter()
                .find(|f| f.name.as_bytes() == key)
                .map(|f| &f.kind),
            Within::Values(kind) => Some(kind),
            Within::Unknown => None,
        }
    }

    fn of(kind: Option<&'f Kind>) -> Within<'f> {
        match kind {
            Some(Kind::Object(fields)) => Within::Fields(fields),
            Some(Kind::Map(inner)) => Within::Values(inner),
            _ => Within::Unknown,
        }
    }
}

/// The walk over both packed forms at once, each read forward once (a value's head, then its
/// items or entries): where they agree, both readers end past the values compared; where they
/// may not, the walk stops there (`Some(false)`). `None` is bytes that do not read back, which
/// is "may differ" too.
struct Agree<'a> {
    key_fields: &'a [&'a str],
    /// Where the walk is, spelt as [`reported_differences`] spells a path (its UTF-8 bytes).
    path: Vec<u8>,
}

impl Agree<'_> {
    /// Each declared key, but a secret's, against the reported one if there is one; both are in
    /// key order, so the reported side is walked once. The readers are past the tables' counts.
    fn tables<'r>(
        &mut self,
        r: &mut Unpacker<'r>,
        mut r_left: usize,
        d: &mut Unpacker<'_>,
        d_count: usize,
        within: Within<'_>,
    ) -> Option<bool> {
        // The reported key whose value is next to read.
        let mut next_key = |r: &mut Unpacker<'r>| -> Option<Option<&'r [u8]>> {
            if r_left == 0 {
                return Some(None);
            }
            r_left -= 1;
            r.raw_text().map(Some)
        };
        let mut r_key = next_key(r)?;
        for _ in 0..d_count {
            let key = d.raw_text()?;
            let value = d.head()?;
            while let Some(k) = r_key
                && k < key
            {
                r.skip()?;
                r_key = next_key(r)?;
            }
            if r_key != Some(key) || matches!(value, Head::Secret) {
                d.skip_rest(&value)?;
                continue;
            }
            let remote = r.head()?;
            let at = self.path.len();
            if at > 0 {
                self.path.push(b'.');
            }
            self.path.extend_from_slice(key);
            let agrees = self.values(r, remote, d, value, within.kind(key))?;
            self.path.truncate(at);
            if !agrees {
                return Some(false);
            }
            r_key = next_key(r)?;
        }
        while r_key.is_some() {
            r.skip()?;
            r_key = next_key(r)?;
        }
        Some(true)
    }

    /// The values whose heads were just read from each side; on agreement, both readers end
    /// past them.
    fn values(
        &mut self,
        r: &mut Unpacker<'_>,
        reported: Head<'_>,
        d: &mut Unpacker<'_>,
        declared: Head<'_>,
        kind: Option<&Kind>,
    ) -> Option<bool> {
        if self.key_fields.iter().any(|k| k.as_bytes() == self.path) {
            r.skip_rest(&reported)?;
            d.skip_rest(&declared)?;
            return Some(true);
        }
        Some(match (reported, declared) {
            (Head::Table(r_count), Head::Table(d_count)) => {
                self.tables(r, r_count, d, d_count, Within::of(kind))?
            }
            (Head::Array(r_count), Head::Array(d_count)) => {
                if r_count != d_count {
                    return Some(false);
                }
                let inner = match kind {
                    Some(Kind::Array(inner)) => Some(*inner),
                    _ => None,
                };
                let at = self.path.len();
                for i in 0..d_count {
                    let (remote, value) = (r.head()?, d.head()?);
                    // A declared array holding a secret is left to the diff, whose paths
                    // skip the secret.
                    if matches!(value, Head::Secret) {
                        return Some(false);
                    }
                    let _ = std::io::Write::write_fmt(&mut self.path, format_args!("[{i}]"));
                    let agrees = self.values(r, remote, d, value, inner)?;
                    self.path.truncate(at);
                    if !agrees {
                        return Some(false);
                    }
                }
                true
            }
            (Head::Text(r), Head::Text(d)) => {
                r == d
                    || matches!(kind, Some(Kind::String(text)) if text.format == Some(Format::Email))
                        && r.eq_ignore_ascii_case(d)
            }
            (Head::Bool(r), Head::Bool(d)) => r == d,
            // Numbers by value, as `serde_json::Number::as_f64` compares them.
            #[expect(clippy::float_cmp, reason = "the same comparison the diff makes")]
            (r, d) => match (number(r), number(d)) {
                (Some(r), Some(d)) => r == d,
                _ => false,
            },
        })
    }
}

/// A number's value as `serde_json::Number::as_f64` gives it.
#[expect(clippy::cast_precision_loss, reason = "as serde_json compares numbers")]
fn number(head: Head<'_>) -> Option<f64> {
    match head {
        Head::Int(i) => Some(i as f64),
        Head::Uint(u) => Some(u as f64),
        Head::Float(x) => Some(x),
        _ => None,
    }
}

fn field_kind<'f>(fields: &'f [Field], name: &str) -> Option<&'f Kind> {
    fields.iter().find(|f| f.name == name).map(|f| &f.kind)
}

struct Walk<'a> {
    key_fields: &'a [&'a str],
}

impl Walk<'_> {
    fn compare(
        &self,
        path: &str,
        reported: &serde_json::Value,
        declared: &serde_json::Value,
        kind: Option<&Kind>,
        out: &mut Vec<AttributeChange>,
    ) {
        use serde_json::Value;
        if self.key_fields.contains(&path) {
            return;
        }
        match (reported, declared) {
            (Value::Object(r), Value::Object(d)) => {
                for (k, v) in d {
                    if let Some(rv) = r.get(k) {
                        let inner = match kind {
                            Some(Kind::Object(fields)) => field_kind(fields, k),
                            Some(Kind::Map(inner)) => Some(*inner),
                            _ => None,
                        };
                        self.compare(&format!("{path}.{k}"), rv, v, inner, out);
                    }
                }
            }
            (Value::Array(r), Value::Array(d)) if r.len() == d.len() => {
                let inner = match kind {
                    Some(Kind::Array(inner)) => Some(*inner),
                    _ => None,
                };
                for (i, (rv, dv)) in r.iter().zip(d).enumerate() {
                    self.compare(&format!("{path}[{i}]"), rv, dv, inner, out);
                }
            }
            (Value::Number(r), Value::Number(d)) if r.as_f64() == d.as_f64() => {}
            (Value::String(r), Value::String(d))
                if matches!(kind, Some(Kind::String(text)) if text.format == Some(Format::Email))
                    && r.eq_ignore_ascii_case(d) => {}
            (r, d) if r == d => {}
            (r, d) => out.push(AttributeChange {
                path: path.to_string(),
                before: Some(r.clone()),
                after: Some(d.clone()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::schema::Text;
    use crate::model::{SecretRef, Table, Value};
    use serde_json::json;

    static INNER: &[Field] = &[Field::new(
        "mail",
        "mail",
        Kind::String(Text::format(Format::Email)),
    )];
    static FIELDS: &[Field] = &[
        Field::new("name", "name", Kind::String(Text::ANY)),
        Field::new("contact", "contact", Kind::Object(INNER)),
        Field::new("contacts", "contacts", Kind::Array(&Kind::Object(INNER))),
        Field::new(
            "mails",
            "mails",
            Kind::Map(&Kind::String(Text::format(Format::Email))),
        ),
    ];

    fn table(entries: Vec<(&str, Value)>) -> Value {
        Value::Table(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    fn text(s: &str) -> Value {
        Value::String(s.to_string())
    }

    /// The fast walk says "agree" exactly when the detailed diff finds nothing, but where it
    /// leaves a case to the diff (`conservative`: then it says "may differ").
    #[test]
    fn the_packed_walk_agrees_exactly_when_the_diff_is_empty() {
        let secret = || Value::Secret(SecretRef::Env("S".into()));
        let declared = table(vec![
            ("name", text("Acme")),
            ("tier", Value::Int(2)),
            ("ratio", Value::Float(0.5)),
            ("on", Value::Bool(true)),
            ("token", secret()),
            (
                "contact",
                table(vec![("mail", text("A@X.io")), ("key", secret())]),
            ),
            (
                "contacts",
                Value::Array(vec![table(vec![("mail", text("b@x.io"))])]),
            ),
            ("mails", table(vec![("ops", text("Ops@x.io"))])),
            ("tags", Value::Array(vec![text("a"), text("b")])),
            (
                "extra",
                table(vec![("deep", table(vec![("n", Value::Int(1))]))]),
            ),
        ]);
        let Value::Table(declared_table) = &declared else {
            unreachable!("a table")
        };
        let packed = PackedTable::pack(declared_table);
        let public = declared.public_json().unwrap_or_default();
        let cases: Vec<(serde_json::Value, bool, bool)> = vec![
            // (reported, agrees, conservative)
            (json!({}), true, false),
            (public.clone(), true, false),
            (
                json!({"name": "Acme", "tier": 2.0, "ratio": 0.5, "on": true, "more": [1]}),
                true,
                false,
            ),
            (json!({"name": "ACME"}), false, false),
            (json!({"tier": 3}), false, false),
            (json!({"tier": "2"}), false, false),
            (json!({"on": false}), false, false),
            (json!({"ratio": 0.25}), false, false),
            (
                json!({"contact": {"mail": "a@x.IO", "other": 1}}),
                true,
                false,
            ),
            (json!({"contact": {"mail": "a@y.io"}}), false, false),
            (json!({"contact": "A@X.io"}), false, false),
            (json!({"contacts": [{"mail": "B@X.IO"}]}), true, false),
            (
                json!({"contacts": [{"mail": "b@x.io"}, {"mail": "c@x.io"}]}),
                false,
                false,
            ),
            (json!({"contacts": [{"mail": "c@x.io"}]}), false, false),
            (
                json!({"mails": {"ops": "ops@X.io", "dev": "d@x.io"}}),
                true,
                false,
            ),
            (json!({"mails": {"ops": "dev@x.io"}}), false, false),
            (json!({"tags": ["a", "b"]}), true, false),
            (json!({"tags": ["b", "a"]}), false, false),
            (json!({"tags": ["a"]}), false, false),
            (json!({"extra": {"deep": {"n": 1.0}}}), true, false),
            (json!({"extra": {"deep": {"n": 2}}}), false, false),
            (json!({"extra": {"deep": null}}), false, false),
            (json!({"token": "s3cret"}), true, false),
        ];
        for (reported, agrees, conservative) in cases {
            let serde_json::Value::Object(map) = &reported else {
                unreachable!("an object")
            };
            let packed_reported = Reported::from_json(map);
            let fast = reported_agrees(&packed_reported, &packed, FIELDS, &[]);
            let diff = reported_differences(map, &public, FIELDS, &[]);
            assert_eq!(fast, agrees, "{reported}");
            if !conservative {
                assert_eq!(fast, diff.is_empty(), "{reported}: {diff:?}");
            }
        }
        // The natural key's fields are left out by both.
        let renamed = Reported::from_json(&serde_json::Map::from_iter([(
            "name".to_string(),
            json!("Other"),
        )]));
        assert!(!reported_agrees(&renamed, &packed, FIELDS, &[]));
        assert!(reported_agrees(&renamed, &packed, FIELDS, &["name"]));
        let nested = Reported::from_json(&serde_json::Map::from_iter([(
            "extra".to_string(),
            json!({"deep": {"n": 5}}),
        )]));
        assert!(reported_agrees(&nested, &packed, FIELDS, &["extra.deep.n"]));
        assert!(!reported_agrees(
            &nested,
            &packed,
            FIELDS,
            &["extra.deep.m"]
        ));
    }

    /// A declared array holding a secret is left to the diff, whose paths skip the secret.
    #[test]
    fn an_array_with_a_secret_is_left_to_the_diff() {
        let declared: Table = [(
            "keys".to_string(),
            Value::Array(vec![Value::Secret(SecretRef::Env("S".into())), text("a")]),
        )]
        .into_iter()
        .collect();
        let public = Value::Table(declared.clone())
            .public_json()
            .unwrap_or_default();
        let reported = serde_json::Map::from_iter([("keys".to_string(), json!(["a"]))]);
        assert!(reported_differences(&reported, &public, &[], &[]).is_empty());
        assert!(!reported_agrees(
            &Reported::from_json(&reported),
            &PackedTable::pack(&declared),
            &[],
            &[]
        ));
    }

    #[test]
    fn only_keys_on_both_sides_and_outside_the_natural_key_are_compared() {
        let reported = json!({
            "name": "ACME",
            "tier": 2,
            "config": {"region": "eu", "extra": true},
            "tags": ["a", "b"],
            "only_remote": 1,
        });
        let declared = json!({
            "name": "acme",
            "tier": 2.0,
            "config": {"region": "us"},
            "tags": ["a", "c"],
            "only_declared": 1,
        });
        let serde_json::Value::Object(reported) = reported else {
            unreachable!("a JSON object literal")
        };
        let diff = reported_differences(&reported, &declared, &[], &["name"]);
        let paths: Vec<&str> = diff.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["config.region", "tags[1]"]);
        assert_eq!(diff[0].before, Some(json!("eu")));
        assert_eq!(diff[0].after, Some(json!("us")));
    }
}
