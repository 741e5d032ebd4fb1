//! Golden plans: each folder under `tests/plans/` holds specs, optionally a `state.json` and a
//! `reality.json` (what the providers reported; without it the plan is made with
//! `--refresh=false`), and the expected text and JSON renderings. One `check` drives them all:
//! adding a case adds a folder, no Rust.
//!
//! In `state.json`, `"@declared"` as a record's `digest` or `attributes` stands for the value
//! the specs declare now, so fixtures stay readable.

use std::collections::BTreeMap;
use std::path::Path;

use orgform::model::{InstanceReality, Reality, RemoteOrg};
use orgform::plan::{PlanContext, plan};
use orgform::spec::Spec;
use orgform::state::State;

use crate::golden::{cases, check, spec_files};

/// 2026-09-21T20:53:20Z: plans in fixtures are made at this instant.
pub const NOW: u64 = 1_790_024_000;

fn load_case(case: &Path) -> (Spec, State, Option<Reality>) {
    let spec = Spec::load(&spec_files(&case.join("specs")))
        .unwrap_or_else(|e| panic!("{}: specs invalid: {e:?}", case.display()));
    let state = match std::fs::read_to_string(case.join("state.json")) {
        Ok(text) => {
            let mut value: serde_json::Value = serde_json::from_str(&text).expect("state.json");
            if let Some(orgs) = value.get_mut("orgs").and_then(|o| o.as_object_mut()) {
                for (address, record) in orgs.iter_mut() {
                    let declared = spec.orgs.get(address);
                    for key in ["digest", "attributes"] {
                        if record[key] == "@declared" {
                            let org = declared
                                .unwrap_or_else(|| panic!("@declared for undeclared {address}"));
                            record[key] = match key {
                                "digest" => serde_json::Value::String(org.digest.clone()),
                                _ => org.public_attributes(),
                            };
                        }
                    }
                }
            }
            serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("{}: state.json: {e}", case.display()))
        }
        Err(_) => State::new("00000000-0000-4000-8000-000000000000".into()),
    };
    let reality = std::fs::read_to_string(case.join("reality.json"))
        .ok()
        .map(|text| {
            let per_instance: BTreeMap<String, Vec<RemoteOrg>> = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: reality.json: {e}", case.display()));
            Reality {
                instances: per_instance
                    .into_iter()
                    .map(|(name, orgs)| {
                        let mut read = InstanceReality::default();
                        for org in orgs {
                            read.insert(org);
                        }
                        (name, read)
                    })
                    .collect(),
            }
        });
    (spec, state, reality)
}

#[test]
fn golden_plans() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans");
    for case in cases(&root) {
        let (spec, state, reality) = load_case(&case);
        let made = plan(&spec, &state, reality.as_ref(), PlanContext { now: NOW });
        check(
            &case.join("expected.txt"),
            &orgform::output::plan_text(&made),
        );
        check(
            &case.join("expected.json"),
            &format!("{}\n", orgform::output::plan_json(&made)),
        );
        check(
            &case.join("expected.md"),
            &orgform::output::plan_markdown(&made),
        );
        // A plan is a value: the same inputs give the same plan.
        assert_eq!(
            made,
            plan(&spec, &state, reality.as_ref(), PlanContext { now: NOW })
        );
    }
}

#[test]
fn a_huge_plan_fits_a_pull_request_comment_with_its_summary() {
    let mut text = String::from("[provider.h]\ntype = \"heron\"\napi_key = { env = \"K\" }\n");
    for i in 0..5000 {
        text.push_str(&format!(
            "[org.org{i:05}]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://org{i:05}.my.salesforce.com\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nconfig = {{ default_id = {{ external_name = \"Account\" }} }}\n"
        ));
    }
    let spec = Spec::load(&[orgform::spec::SourceFile::new("big.toml", text)]).expect("valid");
    let state = State::new("l".into());
    let made = plan(&spec, &state, None, PlanContext { now: NOW });
    let md = orgform::output::plan_markdown(&made);
    assert!(
        md.len() <= orgform::output::MARKDOWN_BUDGET,
        "{} characters",
        md.len()
    );
    assert!(
        md.contains("**5000 to create.**") || md.contains("**5000 to create**"),
        "{}",
        &md[..300]
    );
    assert!(md.contains("Cut to fit a pull-request comment"));
    assert!(md.contains("JSON plan"));
    // Deterministic: the same plan renders the same comment.
    assert_eq!(md, orgform::output::plan_markdown(&made));
    // A small plan is not cut.
    let small = plan(&spec, &state, None, PlanContext { now: NOW });
    let mut small = small;
    small.changes.truncate(3);
    assert!(!orgform::output::plan_markdown(&small).contains("Cut to fit"));
}
