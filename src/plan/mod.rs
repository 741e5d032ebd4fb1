//! THE PURE CORE: (specs, state, what the providers reported) -> [`Plan`].
//!
//! No I/O, no clock, no async: the time comes in as a value, so the same inputs always give the
//! same plan, in the same order. A plan is data: rendered as text, JSON or markdown from one
//! value, saved to a file, and checked for staleness before it is applied.

mod diff;
mod secrets;
mod target;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub(crate) use diff::{AttributeChange, attribute_changes, reported_agrees, reported_differences};
pub(crate) use secrets::{
    SecretUse, all_secrets, contacted_instances, login_secrets, secrets_needed,
};
pub use target::{TargetError, Targets, Unmatched, matches as target_matches};

use crate::model::packed::PackedTable;
use crate::model::{
    Address, InstanceName, InstanceReality, NaturalKey, ProviderType, Reality, RemoteOrg,
    RemoteStatus, Timestamp, Value,
};
use crate::spec::endpoints::EndpointWarning;
use crate::spec::{OrgSpec, Spec};
use crate::state::{Record, State, Status};

/// The plan format this version writes and reads.
pub(crate) const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub(crate) format_version: u32,
    /// Digest of the specs the plan was made from.
    pub(crate) specs_digest: String,
    /// The state it was made from; `apply PLANFILE` refuses the plan if either moved on.
    pub(crate) state_lineage: Option<String>,
    pub(crate) state_serial: u64,
    /// Digest of the state's records as the plan saw them (journal included), set when the plan
    /// is saved: a killed apply changes records through its journal without moving the serial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) state_digest: Option<String>,
    /// Whether remote reality was read (`--refresh=false` plans from specs and state alone).
    pub refreshed: bool,
    #[serde(with = "crate::time::rfc3339")]
    pub made_at: Timestamp,
    /// One entry per address, sorted by address.
    pub changes: Vec<Change>,
    /// Quota use, for provider instances that have a daily quota and creates in this plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) quotas: Vec<QuotaUse>,
    /// Hosts the specs send credentials to that are neither the vendor's nor loopback, when no
    /// allowed list is set (`spec::endpoints`): shown first, in every format. Filled in by the
    /// command, which knows the list; absent from plans saved before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) endpoint_warnings: Vec<EndpointWarning>,
    /// The `--target` patterns of a partial plan, as given: only the addresses they match are
    /// planned (and applied). Empty for a whole plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Declared, not in state, not found at the provider.
    Create,
    /// Declared, not in state (or pending), found at the provider: recorded, not created again.
    Adopt,
    /// Declared, in state, present at the provider, same digest.
    Unchanged,
    /// In state but gone at the provider: created again, flagged.
    Recreate,
    /// Declared attributes changed since creation, and the provider has no update call.
    Blocked,
    /// In state, no longer declared: left at the provider, reported.
    Orphan,
    /// A create whose outcome is not known yet: settled by a look-up.
    Pending,
    /// An address renamed in the specs: the state entry whose natural key the new address
    /// declares is renamed to it; no request.
    Move,
}

impl Action {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Adopt => "adopt",
            Action::Unchanged => "unchanged",
            Action::Recreate => "recreate",
            Action::Blocked => "blocked",
            Action::Orphan => "orphan",
            Action::Pending => "pending",
            Action::Move => "move",
        }
    }

    /// Whether `apply` sends a create for it.
    pub fn creates(self) -> bool {
        matches!(self, Action::Create | Action::Recreate)
    }
}

/// What happens to one address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub(crate) provider: InstanceName,
    pub(crate) provider_type: ProviderType,
    pub action: Action,
    pub(crate) natural_key: NaturalKey,
    /// The provider's id where known (from state or from the provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// Digest of the declared attributes (absent for orphans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) digest: Option<String>,
    /// Why this action, in one line. Most reasons are fixed text, which costs no allocation.
    pub reason: Cow<'static, str>,
    /// A create that the provider's daily quota can't take now: it waits for a later apply.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) deferred: bool,
    /// The declared attributes, secrets shown by reference only.
    #[serde(default)]
    pub(crate) attributes: DeclaredAttributes,
    /// For `blocked`: what changed since creation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<AttributeChange>,
    /// What the provider reported (for adopt and pending). Boxed: most changes have none, and
    /// a plan of a hundred thousand changes should not carry room for one in each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) remote: Option<Box<RemoteOrg>>,
    /// For `blocked`: the remote ids it could stand for and that orgform won't choose between
    /// (several organizations with its natural key, or one that another address holds). A
    /// boxed slice: no room taken in the many changes without any; absent from older plans.
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    pub matching_ids: Box<[String]>,
    /// For `move` (and a rename that is `blocked`): the address state records it under now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Address>,
}

impl Change {
    /// Whether apply does something for it: a create not waiting for quota, an adoption to
    /// record, a pending create to settle.
    pub(crate) fn is_work(&self) -> bool {
        match self.action {
            Action::Create | Action::Recreate => !self.deferred,
            Action::Adopt | Action::Pending | Action::Move => true,
            Action::Unchanged | Action::Blocked | Action::Orphan => false,
        }
    }
}

/// A change's declared attributes, as a plan shows and saves them (JSON, secrets by reference).
/// Made from the specs, they are the spec's own packed bytes, shared, and written out only when
/// the plan is printed, saved or digested: at a hundred thousand creates, JSON trees built up
/// front were most of an apply's memory, and apply itself never reads them.
#[derive(Clone, Debug, Default)]
pub(crate) enum DeclaredAttributes {
    /// None shown (an unchanged entry); written as `null`.
    #[default]
    None,
    /// The organization's declared table, shared with the spec.
    Packed(PackedTable),
    /// Read back from a saved plan, or what state recorded (an orphan). Boxed: a JSON value
    /// is 72 bytes, and every change has room for this.
    Json(Box<serde_json::Value>),
}

impl DeclaredAttributes {
    /// The attributes as a JSON tree, as they are written out.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            DeclaredAttributes::None => serde_json::Value::Null,
            DeclaredAttributes::Packed(packed) => {
                serde_json::to_value(DisplayView(&Value::Table(packed.unpack())))
                    .unwrap_or(serde_json::Value::Null)
            }
            DeclaredAttributes::Json(value) => (**value).clone(),
        }
    }
}

/// Equal when they read the same, whichever form holds them (a plan saved and read back holds
/// JSON where the plan it was made from held the spec's bytes).
impl PartialEq for DeclaredAttributes {
    fn eq(&self, other: &DeclaredAttributes) -> bool {
        match (self, other) {
            (DeclaredAttributes::Packed(a), DeclaredAttributes::Packed(b)) if a == b => true,
            _ => self.to_json() == other.to_json(),
        }
    }
}

impl Serialize for DeclaredAttributes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DeclaredAttributes::None => s.serialize_unit(),
            DeclaredAttributes::Packed(packed) => {
                DisplayView(&Value::Table(packed.unpack())).serialize(s)
            }
            DeclaredAttributes::Json(value) => value.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for DeclaredAttributes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DeclaredAttributes, D::Error> {
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => DeclaredAttributes::None,
            value => DeclaredAttributes::Json(Box::new(value)),
        })
    }
}

/// Serializes a [`Value`] as [`Value::display_json`] would make it (secrets as `(secret)
/// { env = "NAME" }` strings), without building the JSON tree first.
struct DisplayView<'a>(&'a Value);

impl Serialize for DisplayView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Secret(r) => s.collect_str(&format_args!("(secret) {r}")),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&DisplayView(item))?;
                }
                seq.end()
            }
            Value::Table(table) => {
                let mut map = s.serialize_map(Some(table.len()))?;
                for (k, v) in table {
                    map.serialize_entry(k, &DisplayView(v))?;
                }
                map.end()
            }
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) if x.is_finite() => s.serialize_f64(*x),
            Value::Float(_) => s.serialize_unit(),
            Value::String(text) => s.serialize_str(text),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QuotaUse {
    pub(crate) provider: InstanceName,
    /// Creates allowed in any rolling 24 hours.
    pub(crate) limit: u32,
    /// Creates already made in the last 24 hours: the higher of state's count and the
    /// provider's own (`provider_count`).
    pub(crate) used: u32,
    /// The provider's own count of creates in the last 24 hours, whoever sent them, where it
    /// was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provider_count: Option<u32>,
    /// Creates this plan sends now.
    pub(crate) planned: u32,
    /// Creates that wait for a later apply.
    pub(crate) deferred: u32,
}

/// Counts per action, plus deferred creates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub(crate) create: usize,
    pub(crate) adopt: usize,
    pub(crate) unchanged: usize,
    pub(crate) recreate: usize,
    pub(crate) blocked: usize,
    pub(crate) orphan: usize,
    pub(crate) pending: usize,
    #[serde(rename = "move")]
    pub(crate) moves: usize,
    pub(crate) deferred: usize,
}

impl Plan {
    pub(crate) fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            *match c.action {
                Action::Create => &mut s.create,
                Action::Adopt => &mut s.adopt,
                Action::Unchanged => &mut s.unchanged,
                Action::Recreate => &mut s.recreate,
                Action::Blocked => &mut s.blocked,
                Action::Orphan => &mut s.orphan,
                Action::Pending => &mut s.pending,
                Action::Move => &mut s.moves,
            } += 1;
            if c.deferred {
                s.deferred += 1;
            }
        }
        s
    }

    /// Whether anything differs from what is declared (the `--detailed-exitcode` question).
    pub(crate) fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Unchanged)
    }

    /// Whether `apply` would do anything: send a create, record an adoption, settle a pending.
    pub fn has_work(&self) -> bool {
        self.changes.iter().any(Change::is_work)
    }

    /// Whether `--target` limited it to some addresses.
    pub fn is_partial(&self) -> bool {
        !self.targets.is_empty()
    }

    /// The digest of what the plan says: what it was made from (specs digest, state lineage
    /// and serial, whether reality was read) and every change, quota, warning and target in
    /// it; not when it was made, nor whether it was saved. The plan reviewed in a pull request
    /// and the one made again after the merge have the same digest exactly when they say the
    /// same thing, which is what `apply --expect-digest` holds the applied plan to.
    pub fn content_digest(&self) -> String {
        #[derive(Serialize)]
        struct Content<'a> {
            format_version: u32,
            specs_digest: &'a str,
            state_lineage: Option<&'a str>,
            state_serial: u64,
            refreshed: bool,
            changes: &'a [Change],
            quotas: &'a [QuotaUse],
            endpoint_warnings: &'a [EndpointWarning],
            targets: &'a [String],
        }
        crate::digest::json_sha256(&Content {
            format_version: self.format_version,
            specs_digest: &self.specs_digest,
            state_lineage: self.state_lineage.as_deref(),
            state_serial: self.state_serial,
            refreshed: self.refreshed,
            changes: &self.changes,
            quotas: &self.quotas,
            endpoint_warnings: &self.endpoint_warnings,
            targets: &self.targets,
        })
    }
}

/// Inputs besides specs, state and reality.
#[derive(Clone, Copy, Debug)]
pub struct PlanContext {
    /// The time the plan is made at, for rolling quotas.
    pub now: Timestamp,
}

/// Makes the plan. `reality` is `None` when remote reality was not read; an instance missing
/// from it was not read either. Unread reality is "unknown", never "absent".
pub fn plan(spec: &Spec, state: &State, reality: Option<&Reality>, context: PlanContext) -> Plan {
    plan_targeted(spec, state, reality, context, None)
}

/// Makes the plan of only the addresses `targets` matches (all of them with `None`), as
/// `--target` asks. Everything else is left out before bindings and quotas are counted, so a
/// partial plan spends the quota only on its own creates, and applying it does exactly what it
/// shows.
pub fn plan_targeted(
    spec: &Spec,
    state: &State,
    reality: Option<&Reality>,
    context: PlanContext,
    targets: Option<&Targets>,
) -> Plan {
    let read = |instance: &str| reality.and_then(|r| r.instances.get(instance));
    let wanted = |address: &str| targets.is_none_or(|t| t.contains(address));
    let agreed = agreements(spec, reality);
    let agrees = |i: usize| agreed.get(i).copied().flatten();
    // The specs' digest, on a thread of its own while the organizations are walked.
    let (changes, specs_digest) = std::thread::scope(|scope| {
        let digest = scope.spawn(|| spec.digest());
        let changes = walk(spec, state, read, agrees);
        let digest = digest
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (changes, digest)
    });
    let mut changes = changes;

    // A rename pairs two addresses, so renames are found over every address before `--target`
    // narrows the plan; a move (or a blocked rename) stays when either address is targeted.
    pair_renames(spec, state, &mut changes);
    if targets.is_some() {
        changes.retain(|c| wanted(&c.address) || c.from.as_deref().is_some_and(wanted));
    }
    guard_bindings(state, &mut changes);
    let quotas = apply_quotas(spec, state, reality, &mut changes, context.now);

    Plan {
        format_version: PLAN_FORMAT_VERSION,
        specs_digest,
        state_lineage: (state.serial > 0).then(|| state.lineage.clone()),
        state_serial: state.serial,
        refreshed: reality.is_some(),
        made_at: context.now,
        changes,
        quotas,
        state_digest: None,
        endpoint_warnings: Vec::new(),
        targets: targets.map(|t| t.patterns().to_vec()).unwrap_or_default(),
    }
}

/// The plan's changes, one per declared or recorded address, in address order.
fn walk<'r>(
    spec: &Spec,
    state: &State,
    read: impl Fn(&str) -> Option<&'r InstanceReality>,
    agrees: impl Fn(usize) -> Option<bool>,
) -> Vec<Change> {
    // Both maps are sorted by address: one walk down the two together pairs each declaration
    // with its record and finds the orphans, already in the plan's order, with no look-ups.
    let mut changes = Vec::with_capacity(spec.orgs.len() + state.orgs.len());
    let mut declared = spec.orgs.iter().peekable();
    // The index of the next declaration in the specs' order.
    let mut n = 0;
    let mut recorded = state.orgs.iter().peekable();
    loop {
        let order = match (declared.peek(), recorded.peek()) {
            (Some((a, _)), Some((b, _))) => a.cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => break,
        };
        match order {
            std::cmp::Ordering::Less => {
                let Some((_, org)) = declared.next() else {
                    break;
                };
                changes.push(plan_declared(org, None, read(&org.instance), agrees(n)));
                n += 1;
            }
            std::cmp::Ordering::Equal => {
                let (Some((_, org)), record) = (declared.next(), recorded.next()) else {
                    break;
                };
                let record = record.map(|(_, r)| r);
                changes.push(plan_declared(org, record, read(&org.instance), agrees(n)));
                n += 1;
            }
            std::cmp::Ordering::Greater => {
                let Some((address, record)) = recorded.next() else {
                    break;
                };
                changes.push(orphan(address, record));
            }
        }
    }

    changes
}

/// For each declared organization (in the specs' order) whose natural key the provider reports
/// exactly once, whether what it reports agrees with what is declared ([`reported_agrees`]);
/// `None` for the others. Worked out on every core before the walk, which is one by one: for a
/// hundred thousand organizations found in place, this is most of a plan's work, and each
/// answer is the one [`drift`] would find for that organization.
fn agreements(spec: &Spec, reality: Option<&Reality>) -> Vec<Option<bool>> {
    let Some(reality) = reality else {
        return Vec::new();
    };
    let orgs: Vec<&OrgSpec> = spec.orgs.values().collect();
    let parts: Vec<&[&OrgSpec]> = orgs.chunks(1024).collect();
    crate::parallel::each(&parts, |_, part| {
        part.iter()
            .map(|org| {
                let [remote] = reality.instances.get(&org.instance)?.find(&org.natural_key) else {
                    return None;
                };
                let schema = org.provider_type.schema();
                Some(reported_agrees(
                    &remote.attributes,
                    &org.attrs,
                    schema.org,
                    schema.key_fields,
                ))
            })
            .collect::<Vec<_>>()
    })
    .concat()
}

fn change(org: &OrgSpec, action: Action, reason: impl Into<Cow<'static, str>>) -> Change {
    Change {
        address: org.address.clone(),
        provider: org.instance.clone(),
        provider_type: org.provider_type,
        action,
        natural_key: org.natural_key.clone(),
        remote_id: None,
        digest: Some(org.digest.clone()),
        reason: reason.into(),
        deferred: false,
        // Unchanged entries carry their digest only: at a hundred thousand organizations the
        // attributes of everything would dominate the plan, and nobody reviews them.
        attributes: if action == Action::Unchanged {
            DeclaredAttributes::None
        } else {
            DeclaredAttributes::Packed(org.attrs.clone())
        },
        diff: Vec::new(),
        remote: None,
        matching_ids: Box::default(),
        from: None,
    }
}

/// What a look-up by natural key found for a record or a declaration.
#[derive(Debug)]
pub(crate) enum Match<'a> {
    None,
    One(&'a RemoteOrg),
    /// Several live organizations hold the key and none is the one state records: their ids,
    /// sorted. orgform never picks one of them (NeonCRM, Heron and Oracle allow duplicates).
    Many(Vec<String>),
}

/// The remote organization that stands for a record or a declaration: the one with the recorded
/// id if it is there; else the only live one with the natural key (a failed asynchronous
/// create is not an organization); else, when all failed, the first failure.
pub(crate) fn matching<'a>(found: &'a [RemoteOrg], remote_id: Option<&str>) -> Match<'a> {
    if let Some(id) = remote_id
        && let Some(recorded) = found.iter().find(|o| o.remote_id == id)
    {
        return Match::One(recorded);
    }
    let live = |o: &&RemoteOrg| !matches!(o.status, RemoteStatus::Failed { .. });
    let mut alive = found.iter().filter(live);
    match (alive.next(), alive.next()) {
        (Some(one), None) => Match::One(one),
        (Some(_), Some(_)) => {
            let mut ids: Vec<String> = found
                .iter()
                .filter(live)
                .map(|o| o.remote_id.clone())
                .collect();
            ids.sort();
            ids.dedup();
            Match::Many(ids)
        }
        (None, _) => found.first().map_or(Match::None, Match::One),
    }
}

/// `blocked`: several organizations at the provider have the address's natural key.
/// `created`: state records it as created, so import needs a `forget` first.
fn ambiguous(org: &OrgSpec, ids: Vec<String>, why: &str, created: bool) -> Change {
    let forget = if created {
        format!("`orgform forget {}` then ", org.address)
    } else {
        String::new()
    };
    let mut c = change(
        org,
        Action::Blocked,
        format!(
            "{why}; {} organizations at the provider have its natural key ({}): orgform won't choose. Choose one with {forget}`orgform import {} REMOTE_ID`, or remove the others at the provider",
            ids.len(),
            ids.join(", "),
            org.address
        ),
    );
    c.matching_ids = ids.into_boxed_slice();
    c
}

/// `agrees`: [`agreements`]' answer for `org`, when the provider reports its key exactly once
/// (so that any remote found for it is that one).
fn plan_declared(
    org: &OrgSpec,
    record: Option<&Record>,
    read: Option<&InstanceReality>,
    agrees: Option<bool>,
) -> Change {
    let found = |key: &NaturalKey| read.map(|r| r.find(key));

    let Some(record) = record else {
        return match found(&org.natural_key).map(|f| matching(f, None)) {
            None => change(org, Action::Create, "not in state (remote not read)"),
            Some(Match::None) => change(
                org,
                Action::Create,
                "not in state, not found at the provider",
            ),
            Some(Match::One(remote)) => from_remote(org, remote, "not in state", true, agrees),
            Some(Match::Many(ids)) => ambiguous(org, ids, "not in state", false),
        };
    };

    // Moved to another provider instance, or re-keyed: a different organization altogether,
    // which orgform can't make from this one without an update call.
    if record.provider != org.instance || record.natural_key != org.natural_key {
        let mut c = change(org, Action::Blocked, blocked_identity_reason(org, record));
        c.remote_id.clone_from(&record.remote_id);
        c.diff = attribute_changes(&record.attributes.to_value(), &org.public_attributes());
        return c;
    }

    match record.status {
        Status::Pending => {
            let Some(found) = found(&org.natural_key) else {
                let mut c = change(
                    org,
                    Action::Pending,
                    "create outcome not known yet (remote not read)",
                );
                c.remote_id.clone_from(&record.remote_id);
                return c;
            };
            match matching(found, record.remote_id.as_deref()) {
                Match::One(remote) => match &remote.status {
                    // This run's own create was refused later (an administrator rejected the
                    // request): recorded as failed, never asked again without a changed
                    // declaration.
                    RemoteStatus::Failed { code, message } => {
                        let mut c = change(
                            org,
                            Action::Pending,
                            format!(
                                "pending in state, failed at the provider ({code}: {message}): recorded as failed, not created again"
                            ),
                        );
                        c.remote_id = Some(remote.remote_id.clone());
                        c.remote = Some(Box::new(remote.clone()));
                        c
                    }
                    // This run's own create (or an interrupted one): settled as the provider holds it;
                    // a difference shows as drift in the plans after.
                    _ => from_remote(org, remote, "pending in state", false, agrees),
                },
                Match::None => change(
                    org,
                    Action::Create,
                    "pending in state, not found at the provider: the create never happened",
                ),
                Match::Many(ids) => {
                    let mut c = ambiguous(org, ids, "pending in state", false);
                    c.remote_id.clone_from(&record.remote_id);
                    c
                }
            }
        }
        Status::Failed => {
            // A failed create may have been made good since (by hand, or by another run):
            // whatever the provider holds now wins over creating again.
            let live = found(&org.natural_key).map(|f| match matching(f, None) {
                Match::One(o) if matches!(o.status, RemoteStatus::Failed { .. }) => Match::None,
                other => other,
            });
            if let Some(Match::One(remote)) = live {
                from_remote(org, remote, "failed in state", true, agrees)
            } else if let Some(Match::Many(ids)) = live {
                let mut c = ambiguous(org, ids, "failed in state", false);
                c.remote_id.clone_from(&record.remote_id);
                c
            } else if record.digest == org.digest {
                let mut c = change(org, Action::Blocked, failed_reason(org, record));
                c.remote_id.clone_from(&record.remote_id);
                c
            } else {
                change(
                    org,
                    Action::Create,
                    "the last create failed and the declaration changed since: trying again",
                )
            }
        }
        Status::Created => {
            // The key's organizations, looked up once for both questions.
            let here = found(&org.natural_key);
            if let (Some(reality), Some(here)) = (read, here)
                && let Some(c) = recorded_elsewhere(org, record, reality, here)
            {
                return c;
            }
            let present = match here.map(|found| matching(found, record.remote_id.as_deref())) {
                Some(Match::Many(ids)) => {
                    let mut c = ambiguous(
                        org,
                        ids,
                        "in state, but its recorded organization is gone at the provider",
                        true,
                    );
                    c.remote_id.clone_from(&record.remote_id);
                    return c;
                }
                Some(Match::One(o)) => Some(Some(o)),
                Some(Match::None) => Some(None),
                None => None,
            };
            match present {
                Some(None) => {
                    let mut c = change(
                        org,
                        Action::Recreate,
                        "in state but gone at the provider (drift): it will be created again",
                    );
                    c.remote_id.clone_from(&record.remote_id);
                    c
                }
                Some(Some(_)) | None if record.digest != org.digest => {
                    let mut c = change(org, Action::Blocked, changed_reason(org, record));
                    c.remote_id.clone_from(&record.remote_id);
                    c.diff =
                        attribute_changes(&record.attributes.to_value(), &org.public_attributes());
                    c
                }
                Some(Some(remote)) => {
                    let drift = drift(org, remote, agrees);
                    let mut c = if drift.is_empty() {
                        change(org, Action::Unchanged, "in state, present at the provider")
                    } else {
                        let mut c = change(org, Action::Blocked, DRIFT_REASON);
                        c.diff = drift;
                        c
                    };
                    c.remote_id.clone_from(&record.remote_id);
                    c
                }
                None => {
                    let mut c = change(org, Action::Unchanged, "in state (remote not read)");
                    c.remote_id.clone_from(&record.remote_id);
                    c
                }
            }
        }
    }
}

/// `blocked` for a created record whose organization the natural key no longer leads to, where
/// creating it again would be wrong: its recorded id is at the provider under another key
/// (renamed there: drift, and a create would make a second one), or it is gone and another
/// organization holds the key (never taken for it silently). `None` where the key still leads
/// to the recorded id, or where it leads nowhere and the id is gone too (`recreate`). `here`:
/// what the provider reports under the record's key.
fn recorded_elsewhere(
    org: &OrgSpec,
    record: &Record,
    reality: &InstanceReality,
    here: &[RemoteOrg],
) -> Option<Change> {
    let id = record.remote_id.as_deref()?;
    if here.iter().any(|o| o.remote_id == id) {
        return None;
    }
    let shown = crate::escape::Shown;
    let reason = if let Some(key) = reality.key_of(id) {
        format!(
            "in state, but its organization {} now reports the natural key `{}` at the provider (renamed there: drift); rename it back at the provider, or declare what it now holds and `orgform forget {}`: the next plan adopts it",
            shown(id),
            shown(&key.0),
            org.address
        )
    } else {
        let mut others: Vec<&str> = here
            .iter()
            .filter(|o| !matches!(o.status, RemoteStatus::Failed { .. }))
            .map(|o| o.remote_id.as_str())
            .collect();
        others.sort_unstable();
        others.dedup();
        // None: `recreate`. Several: `blocked` as ambiguous, by the caller.
        let [other] = others[..] else {
            return None;
        };
        format!(
            "in state, but its organization {} is gone at the provider, and another ({}) holds its natural key; orgform never takes one organization for another: `orgform forget {}` and the next plan adopts it",
            shown(id),
            shown(other),
            org.address,
        )
    };
    let mut c = change(org, Action::Blocked, reason);
    c.remote_id = Some(id.to_string());
    Some(c)
}

/// Where what the provider reports of `org` differs from what is declared (nothing, the common
/// case, found by walking both packed forms; the diff built as JSON only when they may differ).
/// `agrees`, when known already, is [`reported_agrees`]' answer for these two.
fn drift(org: &OrgSpec, remote: &RemoteOrg, agrees: Option<bool>) -> Vec<AttributeChange> {
    let schema = org.provider_type.schema();
    if agrees.unwrap_or_else(|| {
        reported_agrees(
            &remote.attributes,
            &org.attrs,
            schema.org,
            schema.key_fields,
        )
    }) {
        return Vec::new();
    }
    reported_differences(
        &remote.attributes.to_json(),
        &org.public_attributes(),
        schema.org,
        schema.key_fields,
    )
}

/// Why a managed organization is `blocked` when the provider reports attributes that differ
/// from the declared ones (which are still those it was created with).
const DRIFT_REASON: &str = "changed at the provider since creation (drift), shown as provider -> declared; \
orgform has no update call: change it back at the provider, or declare what it holds, \
`orgform forget` the address and plan again to adopt it as it is";

/// An organization found at the provider for an address without a settled record. With
/// `compare`, one whose reported attributes differ from the declared ones is `blocked` with the
/// diff, never adopted as if it held what is declared.
fn from_remote(
    org: &OrgSpec,
    remote: &RemoteOrg,
    why: &str,
    compare: bool,
    agrees: Option<bool>,
) -> Change {
    let differences = if compare && remote.status == RemoteStatus::Ready {
        drift(org, remote, agrees)
    } else {
        Vec::new()
    };
    if !differences.is_empty() {
        let mut c = change(
            org,
            Action::Blocked,
            format!(
                "{why}, found at the provider by its natural key, but the provider reports other attributes \
                 (shown as provider -> declared): not adopted. Declare what it holds (or change it at the \
                 provider) and plan again"
            ),
        );
        c.remote_id = Some(remote.remote_id.clone());
        c.diff = differences;
        return c;
    }
    let (action, reason) = match &remote.status {
        RemoteStatus::Ready => (
            Action::Adopt,
            format!("{why}, found at the provider by its natural key: recorded, not created again"),
        ),
        RemoteStatus::InProgress { phase } => (
            Action::Pending,
            format!("{why}, found at the provider still in progress ({phase})"),
        ),
        RemoteStatus::Failed { code, message } => (
            Action::Create,
            format!(
                "{why}; an earlier create failed at the provider ({code}: {message}): creating again"
            ),
        ),
    };
    let mut c = change(org, action, reason);
    c.remote_id = Some(remote.remote_id.clone());
    c.remote = Some(Box::new(remote.clone()));
    c
}

fn blocked_identity_reason(org: &OrgSpec, record: &Record) -> String {
    let kept = match &record.remote_id {
        Some(id) => format!(" (the recorded one, {id}, stays at the provider)"),
        None => String::new(),
    };
    if record.provider == org.instance {
        format!(
            "its natural key changed from `{}` to `{}`: that is another organization; revert the spec, or `orgform forget {}` first to create it{kept}",
            record.natural_key, org.natural_key, org.address
        )
    } else {
        format!(
            "it moved from provider `{}` to `{}`: revert the spec, or `orgform forget {}` first to create it there{kept}",
            record.provider, org.instance, org.address
        )
    }
}

/// Turns each rename in the specs into a `move`: an orphan (a record no longer declared) and a
/// new address (declared, not in state) on the same provider instance with the same natural
/// key are one organization under a new name, so the record is renamed rather than the old
/// address orphaned and the new one adopted (which would record one remote id twice).
///
/// Only a `created` record moves: a `pending` one has a create in flight that apply settles
/// under its own address, and a `failed` one holds no organization, so both keep today's
/// behaviour (orphan, and a create or adoption that `guard_bindings` checks). Where either side
/// has several candidates nothing is paired: orgform never picks one of several.
fn pair_renames(spec: &Spec, state: &State, changes: &mut Vec<Change>) {
    use std::collections::HashMap;
    type Key<'a> = (&'a str, &'a NaturalKey);
    let mut orphans: HashMap<Key, Vec<usize>> = HashMap::new();
    let mut newcomers: HashMap<Key, Vec<usize>> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        // Every orphan counts as a candidate, so a pending or failed record under the same key
        // makes the rename ambiguous rather than leaving the created one to be picked.
        let side = if c.action == Action::Orphan {
            &mut orphans
        } else if !state.orgs.contains_key(&c.address) {
            &mut newcomers
        } else {
            continue;
        };
        side.entry((c.provider.as_str(), &c.natural_key))
            .or_default()
            .push(i);
    }
    let pairs: Vec<(usize, usize)> = orphans
        .iter()
        .filter_map(
            |(key, olds)| match (olds.as_slice(), newcomers.get(key)?.as_slice()) {
                ([old], [new])
                    if state
                        .orgs
                        .get(&changes[*old].address)
                        .is_some_and(|r| r.status == Status::Created) =>
                {
                    Some((*old, *new))
                }
                _ => None,
            },
        )
        .collect();
    if pairs.is_empty() {
        return;
    }
    let mut renamed = vec![false; changes.len()];
    for &(old, new) in &pairs {
        let from = changes[old].address.clone();
        let (Some(record), Some(org)) =
            (state.orgs.get(&from), spec.orgs.get(&changes[new].address))
        else {
            continue;
        };
        changes[new] = moved(org, &from, record);
        renamed[old] = true;
    }
    let mut index = 0;
    changes.retain(|_| {
        let keep = !renamed[index];
        index += 1;
        keep
    });
}

/// `move` from `from` to `org`'s address; `blocked` if the declared attributes changed since
/// the record was created, since a rename can't carry a change the provider can't make.
fn moved(org: &OrgSpec, from: &Address, record: &Record) -> Change {
    let mut c = if record.digest == org.digest {
        change(
            org,
            Action::Move,
            format!(
                "renamed in the specs from `{from}` (same provider and natural key): the state entry is renamed, no request"
            ),
        )
    } else {
        let mut c = change(
            org,
            Action::Blocked,
            format!(
                "renamed in the specs from `{from}`, and its declared attributes changed since creation: {} has no update call. Revert the attributes (the diff) and apply to move it alone; or `orgform state mv {from} {address}`, then change {id} at the provider by hand to match and run `orgform forget {address}` then `orgform import {address} {id}`",
                org.provider_type,
                address = org.address,
                id = record.remote_id.as_deref().unwrap_or("REMOTE_ID"),
            ),
        );
        c.diff = attribute_changes(&record.attributes.to_value(), &org.public_attributes());
        c
    };
    c.remote_id.clone_from(&record.remote_id);
    c.from = Some(from.clone());
    c
}

/// `blocked`: declared attributes changed since creation, and the provider has no update call.
/// Forgetting alone won't do: the organization still has the natural key, so the next plan would
/// adopt it as it is.
fn changed_reason(org: &OrgSpec, record: &Record) -> String {
    let address = &org.address;
    let id = record.remote_id.as_deref().unwrap_or("REMOTE_ID");
    format!(
        "declared attributes changed since creation and {} has no update call: revert the spec to what was created (the diff), or change {id} at the provider by hand to match and run `orgform forget {address}` then `orgform import {address} {id}`; or delete {id} at the provider, then `orgform forget {address}` and apply to create it anew",
        org.provider_type
    )
}

fn failed_reason(org: &OrgSpec, record: &Record) -> String {
    let what = match &record.error {
        Some(e) => format!(
            "the create failed at the provider ({}: {})",
            e.code, e.message
        ),
        None => "the create failed at the provider".into(),
    };
    format!(
        "{what}: fix the declaration and apply to try again, or `orgform forget {}` and apply to try it unchanged",
        org.address
    )
}

fn orphan(address: &Address, record: &Record) -> Change {
    Change {
        address: address.clone(),
        provider: record.provider.clone(),
        provider_type: record.provider_type,
        action: Action::Orphan,
        natural_key: record.natural_key.clone(),
        remote_id: record.remote_id.clone(),
        digest: None,
        reason: Cow::Owned(format!(
            "in state, no longer declared: left at the provider; `orgform forget {address}` drops it from state"
        )),
        deferred: false,
        attributes: DeclaredAttributes::Json(Box::new(record.attributes.to_value())),
        diff: Vec::new(),
        remote: None,
        matching_ids: Box::default(),
        from: None,
    }
}

/// Marks creates beyond each instance's rolling daily quota as deferred, in address order. The
/// quota used is the higher of what state counts and what the provider counts: creates another
/// state (or a person) made use the same quota, and state's own may not show at the provider
/// yet.
fn apply_quotas(
    spec: &Spec,
    state: &State,
    reality: Option<&Reality>,
    changes: &mut [Change],
    now: Timestamp,
) -> Vec<QuotaUse> {
    let mut quotas: BTreeMap<&str, QuotaUse> = BTreeMap::new();
    for change in changes.iter_mut().filter(|c| c.action.creates()) {
        let Some(instance) = spec.providers.get(&change.provider) else {
            continue;
        };
        let Some(limit) = instance.limits.creates_per_day else {
            continue;
        };
        let quota = quotas.entry(&instance.name).or_insert_with(|| {
            let provider_count = reality
                .and_then(|r| r.instances.get(&instance.name))
                .and_then(|r| r.creates_last_day);
            QuotaUse {
                provider: instance.name.clone(),
                limit,
                used: state
                    .creates_in_last_day(&instance.name, now)
                    .max(provider_count.unwrap_or(0)),
                provider_count,
                planned: 0,
                deferred: 0,
            }
        });
        if quota.used.saturating_add(quota.planned) < quota.limit {
            quota.planned += 1;
        } else {
            quota.deferred += 1;
            change.deferred = true;
            let counted = match quota.provider_count {
                Some(n) if n == quota.used => {
                    format!(" ({n} in the last 24 hours by the provider's count)")
                }
                _ => String::new(),
            };
            change.reason = Cow::Owned(format!(
                "{}; waits: the daily quota of {} is used up for now{counted}",
                change.reason,
                crate::text::plural(quota.limit as usize, "create")
            ));
        }
    }
    quotas.into_values().collect()
}

/// Re-checks the creates of a plan made earlier (a saved plan, or one made without remote
/// reads) against reality read just before applying: a create whose organization exists by now
/// becomes an adoption (or a pending settlement), so a stale view never makes a duplicate.
pub(crate) fn recheck_creates(plan: &mut Plan, reality: &Reality) {
    for c in plan.changes.iter_mut().filter(|c| c.action.creates()) {
        let Some(read) = reality.instances.get(&c.provider) else {
            continue;
        };
        let remote = match matching(read.find(&c.natural_key), None) {
            Match::None => continue,
            Match::One(remote) => remote,
            Match::Many(ids) => {
                c.action = Action::Blocked;
                c.deferred = false;
                c.reason = format!(
                    "when apply checked again, {} organizations at the provider had its natural key ({}): orgform won't choose. Choose one with `orgform import {} REMOTE_ID`, or remove the others at the provider",
                    ids.len(),
                    ids.join(", "),
                    c.address
                )
                .into();
                c.remote_id = None;
                c.remote = None;
                c.matching_ids = ids.into_boxed_slice();
                continue;
            }
        };
        let action = match remote.status {
            RemoteStatus::Ready => Action::Adopt,
            RemoteStatus::InProgress { .. } => Action::Pending,
            RemoteStatus::Failed { .. } => continue,
        };
        c.action = action;
        c.deferred = false;
        c.reason =
            "found at the provider when apply checked again: recorded, not created again".into();
        c.remote_id = Some(remote.remote_id.clone());
        c.remote = Some(Box::new(remote.clone()));
    }
    recheck_quotas(plan, reality);
}

/// Re-counts each quota against the provider's count read just before applying: a plan made
/// without it (`--refresh=false`) or a while ago may promise creates that sign-ups made
/// elsewhere since have used up. The creates beyond what is left wait, the last in address
/// order first; none is ever un-deferred here.
fn recheck_quotas(plan: &mut Plan, reality: &Reality) {
    for quota in &mut plan.quotas {
        let Some(count) = reality
            .instances
            .get(&quota.provider)
            .and_then(|r| r.creates_last_day)
        else {
            continue;
        };
        quota.provider_count = Some(count);
        if count <= quota.used {
            continue;
        }
        quota.used = count;
        let mut left = quota.limit.saturating_sub(count);
        for c in plan
            .changes
            .iter_mut()
            .filter(|c| c.provider == quota.provider && c.action.creates() && !c.deferred)
        {
            if left > 0 {
                left -= 1;
                continue;
            }
            c.deferred = true;
            c.reason = Cow::Owned(format!(
                "{}; waits: the daily quota of {} is used up for now ({count} in the last 24 hours by the provider's count)",
                c.reason,
                crate::text::plural(quota.limit as usize, "create")
            ));
            quota.planned = quota.planned.saturating_sub(1);
            quota.deferred += 1;
        }
    }
}

/// One remote organization is never two addresses: an adoption or a pending settlement whose
/// remote id state records for another address (of the same provider instance), or that another
/// change of this plan takes too, becomes `blocked`, naming the other address. Run by the planner
/// and again by `apply` on a saved plan, whose file is not to be trusted further than the state.
/// Costs nothing when no change binds a new id, as in a plan where everything is unchanged.
pub(crate) fn guard_bindings(state: &State, changes: &mut [Change]) {
    use std::collections::HashMap;
    let binds_new = |c: &Change| {
        matches!(c.action, Action::Adopt | Action::Pending)
            && c.remote_id.as_deref().is_some_and(|id| {
                state
                    .orgs
                    .get(&c.address)
                    .is_none_or(|r| r.provider != c.provider || r.remote_id.as_deref() != Some(id))
            })
    };
    let candidates: Vec<usize> = (0..changes.len())
        .filter(|&i| binds_new(&changes[i]))
        .collect();
    if candidates.is_empty() {
        return;
    }
    // Who holds each (instance, remote id): every record in state, and every candidate.
    let mut holders: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for (address, record) in &state.orgs {
        if let Some(id) = &record.remote_id {
            holders
                .entry((record.provider.as_str(), id.as_str()))
                .or_default()
                .push(address.as_str());
        }
    }
    for &i in &candidates {
        let c = &changes[i];
        if let Some(id) = &c.remote_id {
            holders
                .entry((c.provider.as_str(), id.as_str()))
                .or_default()
                .push(c.address.as_str());
        }
    }
    let mut blocked: Vec<(usize, String, Vec<String>)> = Vec::new();
    for &i in &candidates {
        let c = &changes[i];
        let Some(id) = &c.remote_id else { continue };
        let mut others: Vec<String> = holders
            .get(&(c.provider.as_str(), id.as_str()))
            .into_iter()
            .flatten()
            .filter(|a| **a != c.address)
            .map(|a| (*a).to_string())
            .collect();
        others.sort();
        others.dedup();
        if !others.is_empty() {
            blocked.push((i, id.clone(), others));
        }
    }
    for (i, id, others) in blocked {
        let c = &mut changes[i];
        let names = others
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let first = others.first().map_or("OTHER", String::as_str);
        c.reason = format!(
            "found at the provider by its natural key as {id}, which is already taken by {names}: one organization is never two addresses. If `{addr}` is {names} renamed, `orgform forget {first}` then `orgform import {addr} {id}`; otherwise give `{addr}` its own natural key",
            addr = c.address
        )
        .into();
        c.action = Action::Blocked;
        c.deferred = false;
        c.remote_id = None;
        c.remote = None;
        c.matching_ids = vec![id].into_boxed_slice();
    }
}

/// The safety rails a plan must pass before apply sends anything: at most `max_creates` creates
/// in all (when given), and at most each provider instance's `max_creates`. Returns one line
/// per rail broken.
pub(crate) fn check_limits(plan: &Plan, spec: &Spec, max_creates: Option<u32>) -> Vec<String> {
    let mut per_instance: BTreeMap<&str, u32> = BTreeMap::new();
    for c in plan
        .changes
        .iter()
        .filter(|c| c.action.creates() && !c.deferred)
    {
        *per_instance.entry(&c.provider).or_default() += 1;
    }
    let total: u32 = per_instance.values().sum();
    let mut broken = Vec::new();
    if let Some(max) = max_creates
        && total > max
    {
        broken.push(format!(
            "the plan creates {}, more than --max-creates {max}",
            crate::text::plural(total as usize, "organization")
        ));
    }
    for (name, n) in per_instance {
        if let Some(max) = spec.providers.get(name).and_then(|p| p.limits.max_creates)
            && n > max
        {
            broken.push(format!(
                "the plan creates {} on `{name}`, more than its max_creates = {max}",
                crate::text::plural(n as usize, "organization")
            ));
        }
    }
    broken
}

/// Why a saved plan file can't be applied as it is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SavedPlanError {
    #[error("it is not a plan file: {0}")]
    NotJson(String),
    #[error("it is not a plan file: it has no format_version")]
    NoVersion,
    #[error(
        "it is a plan of format {0}; this orgform reads format {PLAN_FORMAT_VERSION}. Make the plan again with this version"
    )]
    OtherVersion(u64),
    #[error("it is not a valid plan: {0}")]
    Invalid(String),
}

/// Reads a saved plan (`plan --out`), refusing anything malformed or of another format.
pub fn parse_saved(text: &str) -> Result<Plan, SavedPlanError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| SavedPlanError::NotJson(e.to_string()))?;
    match value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v == u64::from(PLAN_FORMAT_VERSION) => {}
        Some(v) => return Err(SavedPlanError::OtherVersion(v)),
        None => return Err(SavedPlanError::NoVersion),
    }
    serde_json::from_value(value).map_err(|e| SavedPlanError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SecretRef, Table};

    #[test]
    fn packed_attributes_are_written_as_their_display_json() {
        let table: Table = [
            ("name".to_string(), Value::String("Acme".into())),
            (
                "token".to_string(),
                Value::Secret(SecretRef::Env("T".into())),
            ),
            ("ratio".to_string(), Value::Float(0.25)),
            ("bad".to_string(), Value::Float(f64::NAN)),
            ("n".to_string(), Value::Int(7)),
            (
                "keys".to_string(),
                Value::Array(vec![Value::Secret(SecretRef::File("k".into()))]),
            ),
        ]
        .into_iter()
        .collect();
        let expected = Value::Table(table.clone()).display_json();
        let packed = DeclaredAttributes::Packed(PackedTable::pack(&table));
        assert_eq!(
            serde_json::to_string(&packed).unwrap_or_default(),
            serde_json::to_string(&expected).unwrap_or_default()
        );
        assert_eq!(packed.to_json(), expected);
        // Read back from a saved plan, it is the same.
        let saved: DeclaredAttributes =
            serde_json::from_str(&serde_json::to_string(&packed).unwrap_or_default())
                .unwrap_or_default();
        assert!(matches!(saved, DeclaredAttributes::Json(_)));
        assert_eq!(saved, packed);
        assert_eq!(
            serde_json::to_string(&DeclaredAttributes::None).unwrap_or_default(),
            "null"
        );
    }
}
