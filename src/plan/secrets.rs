//! Which secret references a run needs, from specs, state and the plan: pure, so that the edge
//! can resolve every one of them before the first request and report all that are missing.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Plan, Targets};
use crate::model::{Address, InstanceName, SecretRef, Value};
use crate::spec::Spec;
use crate::state::State;

/// Where a secret reference is used, for the message that names a missing one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SecretUse {
    /// A provider instance's setting (`api_key`): needed to log in.
    Provider { instance: InstanceName, key: String },
    /// An organization's attribute (`auth.client_secret`): needed to create it.
    Org { address: Address, path: String },
    /// The `[state]` table's `url`: needed to read team state at all.
    StateUrl,
}

impl std::fmt::Display for SecretUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::escape::Shown;
        match self {
            SecretUse::Provider { instance, key } => {
                write!(f, "provider {}, {}", Shown(instance), Shown(key))
            }
            SecretUse::Org { address, path } => {
                write!(f, "org {}, {}", Shown(address), Shown(path))
            }
            SecretUse::StateUrl => f.write_str("[state] url"),
        }
    }
}

/// The provider instances a run contacts: those the specs' organizations use, and those state
/// records name that the specs still declare (an instance only orphans use is not there). With
/// `--target`, only those the targeted addresses use: nothing is read, and no credential is
/// needed, where nothing is planned.
pub(crate) fn contacted_instances<'s>(
    spec: &'s Spec,
    state: &State,
    targets: Option<&Targets>,
) -> BTreeSet<&'s str> {
    let wanted = |address: &str| targets.is_none_or(|t| t.contains(address));
    let declared = spec
        .orgs
        .values()
        .filter(|o| wanted(&o.address))
        .map(|o| o.instance.as_str());
    let recorded = state
        .orgs
        .iter()
        .filter(|(address, _)| wanted(address))
        .map(|(_, r)| r.provider.as_str());
    // Inserted one by one into a set of a handful, the one just seen skipped: collected, the
    // names of a hundred thousand organizations were sorted first (2% of a plan's samples).
    let mut named: BTreeSet<&str> = BTreeSet::new();
    let mut last = None;
    for name in declared.chain(recorded) {
        if last != Some(name) {
            named.insert(name);
            last = Some(name);
        }
    }
    named
        .into_iter()
        .filter_map(|name| spec.providers.get_key_value(name).map(|(k, _)| k.as_str()))
        .collect()
}

/// The credentials of the named instances (those the specs declare), with where each is used.
pub(crate) fn login_secrets<'a>(
    spec: &Spec,
    instances: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<SecretRef, BTreeSet<SecretUse>> {
    let mut needed: BTreeMap<SecretRef, BTreeSet<SecretUse>> = BTreeMap::new();
    for name in instances {
        let Some(instance) = spec.providers.get(name) else {
            continue;
        };
        for (key, value) in &instance.settings {
            if let Value::Secret(reference) = value {
                needed
                    .entry(reference.clone())
                    .or_default()
                    .insert(SecretUse::Provider {
                        instance: name.to_string(),
                        key: key.clone(),
                    });
            }
        }
    }
    needed
}

/// Every secret reference the specs make, with where each is used: every instance's
/// credentials, every organization's secret attributes, and the `[state]` url. What a CI job
/// must provide for any run (`orgform secrets`).
pub(crate) fn all_secrets(spec: &Spec) -> BTreeMap<SecretRef, BTreeSet<SecretUse>> {
    let mut all = login_secrets(spec, spec.providers.keys().map(String::as_str));
    for org in spec.orgs.values() {
        org_secrets(org, &mut all);
    }
    if let Some(url) = &spec.state.url {
        all.entry(url.clone())
            .or_default()
            .insert(SecretUse::StateUrl);
    }
    all
}

/// Every secret reference a run needs, with where each is used: the credentials of every
/// instance it contacts, and, given a plan, the attributes of every organization the plan may
/// create (`create`, `recreate`, and `pending`, which creates when its look-up finds nothing).
/// Deferred creates count: the plan promises them to a later apply.
pub(crate) fn secrets_needed(
    spec: &Spec,
    state: &State,
    plan: Option<&Plan>,
    targets: Option<&Targets>,
) -> BTreeMap<SecretRef, BTreeSet<SecretUse>> {
    let mut needed = login_secrets(spec, contacted_instances(spec, state, targets));
    let creates = plan.into_iter().flat_map(|p| &p.changes).filter(|c| {
        matches!(
            c.action,
            Action::Create | Action::Recreate | Action::Pending
        )
    });
    for change in creates {
        let Some(org) = spec.orgs.get(&change.address) else {
            continue; // a saved plan's address the specs no longer declare: refused as stale
        };
        org_secrets(org, &mut needed);
    }
    needed
}

/// Adds the secret attributes `org` declares, each with its path, to `into`.
fn org_secrets(org: &crate::spec::OrgSpec, into: &mut BTreeMap<SecretRef, BTreeSet<SecretUse>>) {
    org.attrs.each_secret(|path, kind, name| {
        let reference = match kind {
            "env" => SecretRef::Env(name.to_string()),
            _ => SecretRef::File(name.to_string()),
        };
        into.entry(reference).or_default().insert(SecretUse::Org {
            address: org.address.clone(),
            path: String::from_utf8_lossy(path).into_owned(),
        });
    });
}
