//! Golden plans: each folder under `tests/plans/` holds specs, optionally a `state.json` and a
//! `reality.json` (what the providers reported; without it the plan is made with
//! `--refresh=false`), and the expected text, JSON and markdown renderings. One `check_case`
//! drives them all, one `#[test]` per case (listed in `golden_plans!`, so that each failing case
//! is reported on its own): adding a case adds a folder and its name to the list, and a test
//! fails until the list and the folders agree.
//!
//! A `targets.txt` (one pattern a line) makes the plan partial, as `--target` does.
//!
//! In `state.json`, `"@declared"` as a record's `digest` or `attributes` stands for the value
//! the specs declare now, so fixtures stay readable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use orgform::model::{InstanceReality, Reality, RemoteOrg};
use orgform::plan::{PlanContext, Targets, plan, plan_targeted};
use orgform::spec::Spec;
use orgform::state::State;

use crate::golden::{cases, check, spec_files};

/// 2026-09-21T20:53:20Z: plans in fixtures are made at this instant.
pub const NOW: u64 = 1_790_024_000;

/// A case's `targets.txt`, one `--target` pattern a line, if it has one.
fn load_targets(case: &Path, spec: &Spec, state: &State) -> Option<Targets> {
    let text = std::fs::read_to_string(case.join("targets.txt")).ok()?;
    let patterns: Vec<String> = text.lines().map(str::to_string).collect();
    Some(
        Targets::new(&patterns, spec, state)
            .unwrap_or_else(|e| panic!("{}: targets.txt: {e}", case.display())),
    )
}

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

fn plans_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans")
}

/// Plans the case in `tests/plans/<name>` and compares its three renderings.
fn check_case(name: &str) {
    let case = plans_root().join(name);
    let (spec, state, reality) = load_case(&case);
    let targets = load_targets(&case, &spec, &state);
    let made = plan_targeted(
        &spec,
        &state,
        reality.as_ref(),
        PlanContext { now: NOW },
        targets.as_ref(),
    );
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
        plan_targeted(
            &spec,
            &state,
            reality.as_ref(),
            PlanContext { now: NOW },
            targets.as_ref()
        )
    );
}

/// One `#[test]` per folder of `tests/plans/`, named after it, and the list of their names.
macro_rules! golden_plans {
    ($($case:ident),* $(,)?) => {
        /// The golden cases, one test each.
        mod golden {
            $(
                #[test]
                fn $case() {
                    super::check_case(stringify!($case));
                }
            )*
        }

        const CASES: &[&str] = &[$(stringify!($case)),*];
    };
}

golden_plans! {
    blocked_by_duplicate_keys,
    blocked_changed_attributes,
    commvault_names_without_case,
    create_adopt_unchanged,
    empty,
    failed_create,
    hostile_values,
    move_renamed_address,
    neoncrm_exact_names_and_duplicates,
    no_refresh,
    oracle_requests_await_approval,
    orphan_no_longer_declared,
    pending_settled_by_lookup,
    quota_defers_creates,
    recreate_after_drift,
    renamed_or_replaced_at_provider,
    salesforce_signups_settle,
    target_spends_quota_on_targets_only,
}

/// The list above and the folders agree: a new folder without its test, or a test without its
/// folder, fails here.
#[test]
fn every_golden_case_folder_has_its_test() {
    let folders: BTreeSet<String> = cases(&plans_root())
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = CASES.iter().map(|c| (*c).to_string()).collect();
    assert_eq!(
        folders.difference(&listed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "folders in tests/plans/ without a test: add them to golden_plans! in plans.rs"
    );
    assert_eq!(
        listed.difference(&folders).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "cases in golden_plans! without a folder in tests/plans/"
    );
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
