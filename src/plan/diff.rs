//! What changed between the attributes an organization was created with and those declared now,
//! as leaf paths: the diff a `blocked` action shows.

use serde::{Deserialize, Serialize};

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
