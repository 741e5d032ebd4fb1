//! `orgform schema` against the spec corpus: every valid spec validates, and every invalid case
//! a JSON Schema can express is rejected. Cases a schema can't express (cross-file rules, TOML
//! syntax, rules across fields) carry a `schema-cannot-express` file saying why.

use std::path::Path;

use crate::golden::cases;

fn validator() -> jsonschema::Validator {
    let out = crate::harness::run(Path::new("."), &["schema"], &[]).expect(0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

/// Each TOML file of a folder as JSON, as an editor's TOML support would see it.
fn documents(dir: &Path) -> Vec<(String, Option<serde_json::Value>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            let json = toml::from_str::<toml::Value>(&text)
                .ok()
                .map(|v| to_json(&v));
            (p.display().to_string(), json)
        })
        .collect()
}

/// TOML as JSON the way editors' TOML support sees it: dates and times as strings.
fn to_json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::json!(f),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            serde_json::Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

#[test]
fn schema_accepts_every_valid_spec() {
    let validator = validator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = cases(&root.join("tests/specs/valid"));
    dirs.push(root.join("specs"));
    for dir in dirs {
        for (file, json) in documents(&dir) {
            let json = json.unwrap_or_else(|| panic!("{file} is not TOML"));
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{file} is valid but the schema rejects it:\n{}",
                errors.join("\n")
            );
        }
    }
}

#[test]
fn schema_rejects_what_it_can_express() {
    let validator = validator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for case in cases(&root.join("tests/specs/invalid")) {
        if case.join("schema-cannot-express").exists() {
            continue;
        }
        let rejected = documents(&case)
            .into_iter()
            .any(|(_, json)| json.is_none_or(|j| !validator.is_valid(&j)));
        assert!(
            rejected,
            "{}: invalid, but the schema accepts it",
            case.display()
        );
    }
}
