//! Property tests for the pure planner, over random mixes of declarations, state records and
//! remote reality: determinism, one entry per address, never a create for something the
//! provider already holds, and "apply, then plan again" converging to no work.

use orgform::model::{InstanceReality, NaturalKey, Reality, RemoteOrg, RemoteStatus};
use orgform::plan::{Action, PlanContext, Targets, plan, plan_targeted, target_matches};
use orgform::spec::{SourceFile, Spec};
use orgform::state::{Detail, Record, State, Status};
use proptest::prelude::*;

const NOW: u64 = 1_790_024_000;

#[derive(Clone, Debug)]
struct Case {
    declared: bool,
    /// None: not in state; Some((status, same_digest))
    in_state: Option<(Status, bool)>,
    /// None: absent; Some(true) ready; Some(false) in progress
    remote: Option<bool>,
    /// A second organization with the same natural key at the provider (NeonCRM, Heron and
    /// Oracle allow that).
    duplicate: bool,
    /// State records the remote organization (if any) under another address, `x{i}`, while
    /// `o{i}` is not in state.
    held_elsewhere: bool,
    /// State records the address under another natural key (re-keyed since creation).
    rekeyed: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop::option::of((
            prop::sample::select(vec![Status::Pending, Status::Created, Status::Failed]),
            any::<bool>(),
        )),
        prop::option::of(any::<bool>()),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(declared, in_state, remote, duplicate, held_elsewhere, rekeyed)| Case {
                declared,
                in_state,
                remote,
                duplicate,
                held_elsewhere,
                rekeyed,
            },
        )
}

fn url(i: usize) -> String {
    format!("https://org{i}.example.com")
}

fn key(i: usize) -> NaturalKey {
    NaturalKey::new(&["salesforce", &url(i)], false)
}

fn build(cases: &[Case]) -> (Spec, State, Reality) {
    let mut text = String::from("[provider.h]\ntype = \"heron\"\napi_key = { env = \"K\" }\n");
    for (i, _) in cases.iter().enumerate().filter(|(_, c)| c.declared) {
        text.push_str(&format!(
            "[org.o{i}]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\ninstance_url = \"{}\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nconfig = {{}}\n",
            url(i)
        ));
    }
    let spec = Spec::load(&[SourceFile::new("p.toml", text)]).expect("generated specs are valid");
    let mut state = State::new("lineage".into());
    state.serial = 1;
    let mut read = InstanceReality::default();
    for (i, c) in cases.iter().enumerate() {
        let address = format!("o{i}");
        if let Some((status, same)) = c.in_state {
            let digest = match spec.orgs.get(&address) {
                Some(org) if same => org.digest.clone(),
                _ => "0".repeat(64),
            };
            state.orgs.insert(
                address.clone(),
                Record {
                    provider: "h".into(),
                    provider_type: orgform::model::ProviderType::Heron,
                    remote_id: Some(format!("id{i}")),
                    natural_key: if c.rekeyed { key(i + 1000) } else { key(i) },
                    digest,
                    status,
                    attributes: orgform::state::Attributes::default(),
                    attempted_at: None,
                    updated_at: NOW - 60,
                    error: None,
                    detail: Detail::default(),
                },
            );
        }
        // Only for an address not in state itself: a state that already binds one id twice is
        // not something orgform writes (validate and the planner keep it from happening).
        if c.held_elsewhere && c.remote.is_some() && c.in_state.is_none() {
            state.orgs.insert(
                format!("x{i}"),
                Record {
                    provider: "h".into(),
                    provider_type: orgform::model::ProviderType::Heron,
                    remote_id: Some(format!("id{i}")),
                    natural_key: key(i),
                    digest: "0".repeat(64),
                    status: Status::Created,
                    attributes: orgform::state::Attributes::default(),
                    attempted_at: None,
                    updated_at: NOW - 60,
                    error: None,
                    detail: Detail::default(),
                },
            );
        }
        if c.duplicate {
            read.insert(RemoteOrg {
                remote_id: format!("dup{i}"),
                natural_key: key(i),
                status: RemoteStatus::Ready,
                detail: Default::default(),
                attributes: orgform::model::Reported::default(),
            });
        }
        if let Some(ready) = c.remote {
            read.insert(RemoteOrg {
                remote_id: format!("id{i}"),
                natural_key: key(i),
                status: if ready {
                    RemoteStatus::Ready
                } else {
                    RemoteStatus::InProgress {
                        phase: "New".into(),
                    }
                },
                detail: Default::default(),
                attributes: orgform::model::Reported::default(),
            });
        }
    }
    let mut reality = Reality::default();
    reality.instances.insert("h".into(), read);
    (spec, state, reality)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn plans_are_deterministic_complete_and_never_duplicate(cases in prop::collection::vec(case(), 0..24)) {
        let (spec, state, reality) = build(&cases);
        let ctx = PlanContext { now: NOW };
        let made = plan(&spec, &state, Some(&reality), ctx);
        prop_assert_eq!(&made, &plan(&spec, &state, Some(&reality), ctx));

        // One entry per declared or recorded address, in address order; a recorded address
        // renamed in the specs is its new address's entry (`from`), not an orphan besides it.
        let renamed: Vec<&String> = made.changes.iter().filter_map(|c| c.from.as_ref()).collect();
        let mut expected: Vec<String> = spec.orgs.keys().cloned().collect();
        expected.extend(
            state
                .orgs
                .keys()
                .filter(|a| !spec.orgs.contains_key(*a) && !renamed.contains(a))
                .cloned(),
        );
        expected.sort();
        let got: Vec<String> = made.changes.iter().map(|c| c.address.clone()).collect();
        prop_assert_eq!(got, expected);

        let mut bound = std::collections::BTreeMap::new();
        for change in &made.changes {
            let i: usize = change.address[1..].parse().unwrap();
            let case = &cases[i];
            // No two changes bind one remote id.
            if matches!(change.action, Action::Adopt | Action::Pending | Action::Unchanged)
                && let Some(id) = &change.remote_id
            {
                prop_assert!(
                    bound.insert(id.clone(), change.address.clone()).is_none(),
                    "{} bound twice: {:#?}", id, made.changes
                );
            }
            if change.address.starts_with('x') {
                prop_assert_eq!(change.action, Action::Orphan);
                continue;
            }
            // Never a create for an organization the provider holds and reports ready.
            if change.action.creates() {
                prop_assert!(case.remote != Some(true) && !case.duplicate, "create for an existing org: {:?}", change);
            }
            // Orphans exactly for recorded, undeclared addresses.
            prop_assert_eq!(change.action == Action::Orphan, !case.declared);
            // Never a silent pick: an address with several organizations under its key, none
            // of them recorded for it, is blocked with every id listed.
            let recorded_found = case.in_state.is_some() && case.remote.is_some();
            let rekeyed = case.rekeyed && case.in_state.is_some();
            // A rename (`x{i}` recorded, `o{i}` declared) knows its organization: state's.
            let renamed = change.from.is_some();
            if case.declared && case.duplicate && case.remote.is_some() && !recorded_found && !rekeyed && !renamed {
                prop_assert_eq!(change.action, Action::Blocked, "{:?}", change);
                prop_assert_eq!(
                    change.matching_ids.to_vec(),
                    vec![format!("dup{i}"), format!("id{i}")]
                );
            }
            // An id another address holds is never adopted.
            if case.held_elsewhere && case.in_state.is_none() && change.action == Action::Adopt {
                prop_assert!(change.remote_id != Some(format!("id{i}")), "{:?}", change);
            }
        }
    }

    #[test]
    fn every_blocked_change_says_what_to_do(cases in prop::collection::vec(case(), 0..24), refreshed in any::<bool>()) {
        let (spec, state, reality) = build(&cases);
        let made = plan(&spec, &state, refreshed.then_some(&reality), PlanContext { now: NOW });
        for change in made.changes.iter().filter(|c| c.action == Action::Blocked) {
            let reason = &change.reason;
            prop_assert!(
                reason.contains("orgform forget") || reason.contains("orgform import") || reason.contains("revert"),
                "blocked without a way out: {:?}", change
            );
            prop_assert!(reason.contains(&format!("`orgform forget {}`", change.address))
                || reason.contains(&format!("`orgform import {} ", change.address)),
                "blocked advice does not name its own address: {:?}", change);
            // Attributes changed since creation: the advice names the organization to import.
            if !change.diff.is_empty()
                && let Some(id) = &change.remote_id
            {
                prop_assert!(reason.contains(id.as_str()), "advice without the remote id: {:?}", change);
            }
        }
    }

    #[test]
    fn a_targeted_plan_holds_exactly_the_matching_addresses(
        cases in prop::collection::vec(case(), 0..24),
        pattern in prop::sample::select(vec!["*", "o1*", "x*", "*3", "o*2", "o0"]),
        refreshed in any::<bool>(),
    ) {
        let (spec, state, reality) = build(&cases);
        let reality = refreshed.then_some(&reality);
        let full = plan(&spec, &state, reality, PlanContext { now: NOW });
        let Ok(targets) = Targets::new(&[pattern.to_string()], &spec, &state) else {
            // Nothing to match: refused, never an empty plan.
            prop_assert!(!spec.orgs.keys().chain(state.orgs.keys()).any(|a| target_matches(pattern, a)));
            return Ok(());
        };
        let partial = plan_targeted(&spec, &state, reality, PlanContext { now: NOW }, Some(&targets));
        prop_assert_eq!(&partial.targets, &vec![pattern.to_string()]);
        // A rename is kept when either of its addresses matches.
        let want: Vec<&String> = full
            .changes
            .iter()
            .filter(|c| {
                target_matches(pattern, &c.address)
                    || c.from.as_ref().is_some_and(|f| target_matches(pattern, f))
            })
            .map(|c| &c.address)
            .collect();
        let got: Vec<&String> = partial.changes.iter().map(|c| &c.address).collect();
        prop_assert_eq!(got, want);
        if pattern == "*" {
            let mut all = partial.clone();
            all.targets.clear();
            prop_assert_eq!(all, full);
        }
    }

    #[test]
    fn without_remote_reads_nothing_is_adopted_or_recreated(cases in prop::collection::vec(case(), 0..24)) {
        let (spec, state, _) = build(&cases);
        let made = plan(&spec, &state, None, PlanContext { now: NOW });
        prop_assert!(!made.refreshed);
        for change in &made.changes {
            prop_assert!(!matches!(change.action, Action::Adopt | Action::Recreate), "{:?}", change);
        }
    }

    #[test]
    fn a_record_renamed_away_from_its_declaration_is_moved_back(cases in prop::collection::vec(case(), 0..24)) {
        // Renaming a record in state (`o{i}` -> `r{i}`) is a rename in the specs seen from the
        // other side: each address that was unchanged is now a move from `r{i}`, never an
        // orphan plus an adoption, and nothing else in the plan changes.
        let (spec, state, reality) = build(&cases);
        let before = plan(&spec, &state, Some(&reality), PlanContext { now: NOW });
        let mut renamed = state.clone();
        let mut expected = Vec::new();
        for change in before.changes.iter().filter(|c| c.action == Action::Unchanged) {
            let record = renamed.orgs.remove(&change.address).unwrap();
            renamed.orgs.insert(format!("r{}", &change.address[1..]), record);
            expected.push(change.address.clone());
        }
        let after = plan(&spec, &renamed, Some(&reality), PlanContext { now: NOW });
        prop_assert_eq!(after.changes.len(), before.changes.len());
        for (was, now) in before.changes.iter().zip(&after.changes) {
            prop_assert_eq!(&was.address, &now.address);
            if expected.contains(&was.address) {
                prop_assert_eq!(now.action, Action::Move, "{:?}", now);
                prop_assert_eq!(now.from.clone(), Some(format!("r{}", &was.address[1..])));
                prop_assert_eq!(&now.remote_id, &was.remote_id);
            } else {
                prop_assert_eq!(now.action, was.action, "{:?}", now);
            }
        }
    }

    #[test]
    fn apply_then_plan_has_no_work(cases in prop::collection::vec(case(), 0..24)) {
        let (spec, mut state, mut reality) = build(&cases);
        let first = plan(&spec, &state, Some(&reality), PlanContext { now: NOW });
        // What a successful apply leaves: every create, recreate, adoption and pending recorded
        // as created, and present at the provider.
        let read = reality.instances.get_mut("h").unwrap();
        for change in &first.changes {
            if change.action == Action::Move
                && let Some(record) = change.from.as_ref().and_then(|f| state.orgs.remove(f))
            {
                state.orgs.insert(change.address.clone(), record);
            }
            if matches!(change.action, Action::Create | Action::Recreate | Action::Adopt | Action::Pending) {
                let org = &spec.orgs[&change.address];
                let id = change.remote_id.clone().unwrap_or_else(|| format!("new-{}", change.address));
                read.orgs.insert(org.natural_key.clone(), vec![RemoteOrg {
                    remote_id: id.clone(),
                    natural_key: org.natural_key.clone(),
                    status: RemoteStatus::Ready,
                    detail: Default::default(),
                    attributes: orgform::model::Reported::default(),
                }]);
                state.orgs.insert(change.address.clone(), Record {
                    provider: "h".into(),
                    provider_type: orgform::model::ProviderType::Heron,
                    remote_id: Some(id),
                    natural_key: org.natural_key.clone(),
                    digest: org.digest.clone(),
                    status: Status::Created,
                    attributes: org.public_attributes_text(),
                    attempted_at: Some(NOW),
                    updated_at: NOW,
                    error: None,
                    detail: Detail::default(),
                });
            }
        }
        let second = plan(&spec, &state, Some(&reality), PlanContext { now: NOW });
        prop_assert!(!second.has_work(), "work left after apply: {:#?}", second.changes);
    }
}

/// What a provider reports about one organization, against what is declared: the same values
/// (some keys left out, others the provider adds), or one declared leaf changed.
#[derive(Clone, Debug)]
struct Reported {
    channel: String,
    object: String,
    /// Leave `failure_notification_channel` out of the report (a provider that does not say).
    omit_channel: bool,
    /// Keys the provider adds that the spec does not declare (defaults): never a difference.
    extra: bool,
    /// Change this leaf at the provider: 0 none, 1 the channel, 2 `config.default_id.external_name`.
    changed: u8,
    in_state: bool,
}

fn reported() -> impl Strategy<Value = Reported> {
    (
        "[a-z#-]{1,12}",
        "[A-Za-z]{1,10}",
        any::<bool>(),
        any::<bool>(),
        0u8..3,
        any::<bool>(),
    )
        .prop_map(
            |(channel, object, omit_channel, extra, changed, in_state)| Reported {
                channel,
                object,
                omit_channel,
                extra,
                changed,
                in_state,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// An organization found with what it declares (whatever the provider leaves out or adds)
    /// is adopted, or unchanged when recorded; one whose reported value differs in a leaf both
    /// sides have is blocked with exactly that leaf in the diff, provider -> declared.
    #[test]
    fn reported_attributes_block_exactly_what_differs(r in reported()) {
        let text = format!(
            "[provider.h]\ntype = \"heron\"\napi_key = {{ env = \"K\" }}\n[org.o]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\ninstance_url = \"{}\"\nauth = {{}}\nsecret = {{ env = \"S\" }}\nfailure_notification_channel = \"{}\"\nconfig = {{ default_id = {{ external_name = \"{}\" }} }}\n",
            url(0), r.channel, r.object
        );
        let spec = Spec::load(&[SourceFile::new("p.toml", text)]).expect("valid");
        let org = &spec.orgs["o"];
        let serde_json::Value::Object(mut attributes) = org.public_attributes() else {
            panic!("an object")
        };
        if r.omit_channel {
            attributes.remove("failure_notification_channel");
        }
        if r.extra {
            attributes.insert("is_enabled".into(), true.into());
            attributes["config"]["child_file_filtering_enabled"] = true.into();
        }
        let changed_path = match r.changed {
            1 if !r.omit_channel => {
                attributes.insert("failure_notification_channel".into(), format!("{}x", r.channel).into());
                Some("failure_notification_channel")
            }
            2 => {
                attributes["config"]["default_id"]["external_name"] = format!("{}x", r.object).into();
                Some("config.default_id.external_name")
            }
            _ => None,
        };
        let mut state = State::new("lineage".into());
        if r.in_state {
            state.orgs.insert("o".into(), Record {
                provider: "h".into(),
                provider_type: orgform::model::ProviderType::Heron,
                remote_id: Some("id0".into()),
                natural_key: org.natural_key.clone(),
                digest: org.digest.clone(),
                status: Status::Created,
                attributes: org.public_attributes_text(),
                attempted_at: None,
                updated_at: NOW - 60,
                error: None,
                detail: Detail::default(),
            });
        }
        let mut read = InstanceReality::default();
        read.insert(RemoteOrg {
            remote_id: "id0".into(),
            natural_key: org.natural_key.clone(),
            status: RemoteStatus::Ready,
            detail: Default::default(),
            attributes: orgform::model::Reported::from_json(&attributes),
        });
        let mut reality = Reality::default();
        reality.instances.insert("h".into(), read);
        let made = plan(&spec, &state, Some(&reality), PlanContext { now: NOW });
        let change = &made.changes[0];
        match changed_path {
            None => prop_assert_eq!(
                change.action,
                if r.in_state { Action::Unchanged } else { Action::Adopt },
                "{:?}", change
            ),
            Some(path) => {
                prop_assert_eq!(change.action, Action::Blocked, "{:?}", change);
                prop_assert_eq!(change.diff.len(), 1, "{:?}", change.diff);
                let json = serde_json::to_value(&change.diff[0]).expect("json");
                prop_assert_eq!(json["path"].as_str(), Some(path));
                prop_assert!(json["before"].as_str().is_some_and(|b| b.ends_with('x')), "{}", json);
            }
        }
    }
}
