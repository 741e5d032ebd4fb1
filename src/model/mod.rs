//! The domain vocabulary shared by every layer: provider types (what each one is lives in
//! `catalog`), addresses, natural keys, declared values, secret references and what a provider reported.
//!
//! Everything here is plain data with no I/O, so the pure planner and the I/O edges can both
//! depend on it without depending on each other. How a spec holds its organizations' attributes
//! compactly (a binary codec) is [`packed`]; what a provider reports of them, in the same codec,
//! [`reported`].

mod detail;
pub mod packed;
pub mod reported;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use self::detail::Detail;
pub use self::reported::Reported;

/// The five provider APIs orgform drives. Closed on purpose: adding a sixth makes the compiler
/// list every place that must learn about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderType {
    CommvaultSalesforce,
    SalesforceSignup,
    OracleCommerce,
    Heron,
    Neoncrm,
}

impl ProviderType {
    pub(crate) const ALL: [ProviderType; 5] = [
        ProviderType::CommvaultSalesforce,
        ProviderType::SalesforceSignup,
        ProviderType::OracleCommerce,
        ProviderType::Heron,
        ProviderType::Neoncrm,
    ];

    /// Every type's name, in the order of `ALL`: the values `type` may take.
    pub(crate) const NAMES: [&'static str; 5] = {
        let mut names = [""; 5];
        let mut i = 0;
        while i < ProviderType::ALL.len() {
            names[i] = ProviderType::ALL[i].name();
            i += 1;
        }
        names
    };

    /// The name used in specs (`type = "heron"`), state and plans.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            ProviderType::CommvaultSalesforce => "commvault_salesforce",
            ProviderType::SalesforceSignup => "salesforce_signup",
            ProviderType::OracleCommerce => "oracle_commerce",
            ProviderType::Heron => "heron",
            ProviderType::Neoncrm => "neoncrm",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<ProviderType> {
        ProviderType::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for ProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The address of a declared organization: the `NAME` of `[org.NAME]`, unique across the specs.
pub(crate) type Address = String;

/// The name of a provider instance: the `NAME` of `[provider.NAME]`.
pub(crate) type InstanceName = String;

/// The value an organization is matched by at its provider (a username, an organization name,
/// a provider and instance URL pair), already normalised for comparison.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NaturalKey(pub String);

impl NaturalKey {
    /// Builds a key from its parts, folding case where the provider compares without it.
    pub fn new(parts: &[&str], case_insensitive: bool) -> NaturalKey {
        let joined = parts.join(" | ");
        NaturalKey(if case_insensitive {
            joined.to_lowercase()
        } else {
            joined
        })
    }
}

impl fmt::Display for NaturalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a secret comes from. The value itself never enters the model: it is read at the edge,
/// just before a request needs it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretRef {
    Env(String),
    File(String),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "{{ env = \"{name}\" }}"),
            SecretRef::File(path) => write!(f, "{{ file = \"{path}\" }}"),
        }
    }
}

/// A declared value after validation. Tables are ordered so that digests and output are stable.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Array(Vec<Value>),
    Table(Table),
    Secret(SecretRef),
}

/// A table of declared values, ordered by key: a vector kept sorted, because specs hold many
/// small tables (a hundred thousand organizations with a handful of keys each) and a `BTreeMap`
/// allocates a node of eleven slots for even one key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table(Vec<(String, Value)>);

impl Table {
    pub(crate) fn with_capacity(n: usize) -> Table {
        Table(Vec::with_capacity(n))
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    /// The table under `key`, when there is one.
    pub(crate) fn table(&self, key: &str) -> Option<&Table> {
        self.get(key).and_then(Value::as_table)
    }

    /// The tables of the array under `key`; none when there is no array.
    pub(crate) fn tables(&self, key: &str) -> Vec<&Table> {
        match self.get(key) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_table).collect(),
            _ => Vec::new(),
        }
    }

    /// The string under `key`, when there is one.
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The integer under `key`, when there is one.
    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// Sets `key`, returning the value it replaces.
    pub(crate) fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).ok().map(|i| self.0.remove(i).1)
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> TableIter<'_> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// Iterator over a [`Table`]'s entries, in key order.
pub(crate) type TableIter<'a> = std::iter::Map<
    std::slice::Iter<'a, (String, Value)>,
    fn(&'a (String, Value)) -> (&'a String, &'a Value),
>;

impl<'a> IntoIterator for &'a Table {
    type Item = (&'a String, &'a Value);
    type IntoIter = TableIter<'a>;

    fn into_iter(self) -> TableIter<'a> {
        self.iter()
    }
}

impl IntoIterator for Table {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<(String, Value)> for Table {
    /// Later entries win over earlier ones with the same key, as in a map.
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Table {
        let mut entries: Vec<(String, Value)> = iter.into_iter().collect();
        // Stable, so that among equal keys the last one stays last, then keep only it.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, Value)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        out.shrink_to_fit();
        Table(out)
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_table(&self) -> Option<&Table> {
        match self {
            Value::Table(t) => Some(t),
            _ => None,
        }
    }

    /// Follows a dotted path of table keys (`profile.email`).
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        path.split('.')
            .try_fold(self, |value, key| value.as_table()?.get(key))
    }

    /// The value as JSON with every secret left out: what is digested, stored in state and shown
    /// in plans. A table left empty by the removal is kept, so the shape stays recognisable.
    pub(crate) fn public_json(&self) -> Option<serde_json::Value> {
        Some(match self {
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().filter_map(Value::public_json).collect())
            }
            Value::Table(table) => serde_json::Value::Object(
                table
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.public_json()?)))
                    .collect(),
            ),
            Value::Secret(_) => return None,
        })
    }

    /// A view of the value that serializes as [`Value::public_json`] would, without building
    /// the JSON tree first: how digests are computed for a hundred thousand organizations.
    pub(crate) fn public_view(&self) -> PublicView<'_> {
        PublicView(self)
    }

    /// The value as JSON with secrets shown by reference (`{ env = "NAME" }`), for display.
    pub(crate) fn display_json(&self) -> serde_json::Value {
        match self {
            Value::Secret(r) => serde_json::Value::String(format!("(secret) {r}")),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Value::display_json).collect())
            }
            Value::Table(table) => serde_json::Value::Object(
                table
                    .iter()
                    .map(|(k, v)| (k.clone(), v.display_json()))
                    .collect(),
            ),
            other => other.public_json().unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Serializes a [`Value`] with its secrets left out; see [`Value::public_view`].
pub(crate) struct PublicView<'a>(&'a Value);

impl Serialize for PublicView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) if x.is_finite() => s.serialize_f64(*x),
            Value::Float(_) => s.serialize_unit(),
            Value::String(text) => s.serialize_str(text),
            Value::Array(items) => {
                let public: Vec<&Value> = items
                    .iter()
                    .filter(|v| !matches!(v, Value::Secret(_)))
                    .collect();
                let mut seq = s.serialize_seq(Some(public.len()))?;
                for item in public {
                    seq.serialize_element(&PublicView(item))?;
                }
                seq.end()
            }
            Value::Table(table) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in table.iter().filter(|(_, v)| !matches!(v, Value::Secret(_))) {
                    map.serialize_entry(k, &PublicView(v))?;
                }
                map.end()
            }
            // Never reached through a table or an array; a bare secret shows as nothing.
            Value::Secret(_) => s.serialize_unit(),
        }
    }
}

/// What a provider reported about one organization it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteOrg {
    /// The provider's id for it (Heron's `heron_id`, Commvault's `clientId`, ...).
    pub remote_id: String,
    pub natural_key: NaturalKey,
    pub status: RemoteStatus,
    /// Provider-specific facts worth recording (Salesforce's `CreatedOrgId`, Oracle's
    /// organization id once a request is approved). Never a secret.
    #[serde(default, skip_serializing_if = "Detail::is_empty")]
    pub detail: Detail,
    /// The organization's attributes as the provider reported them, under their spec names
    /// (`wire::from_wire`), packed: what `adopt` and drift compare with the declared ones, and
    /// what `discover` writes (`Reported::to_json`). Only what the provider reports; never a
    /// secret. Not kept in state or saved plans: it is re-read with reality.
    #[serde(skip)]
    pub attributes: Reported,
}

/// Where an organization stands at its provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RemoteStatus {
    /// It exists and is usable.
    Ready,
    /// An asynchronous create that has not finished (Salesforce `New`/`In Progress`, Oracle
    /// `new`/`review`).
    InProgress { phase: String },
    /// An asynchronous create that ended in failure (Salesforce `Error`, Oracle `rejected`).
    Failed { code: String, message: String },
}

/// What was read from one provider instance: every organization found, by natural key.
/// Providers that allow duplicates may report several for one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceReality {
    pub orgs: BTreeMap<NaturalKey, Vec<RemoteOrg>>,
    /// Creates made on this account in the last 24 hours by the provider's own count, whoever
    /// sent them (another state, a person, another tool), where the provider can tell and the
    /// instance has a daily quota; `None` otherwise. The planner takes the higher of this and
    /// what state counts.
    pub(crate) creates_last_day: Option<u32>,
    /// Each remote id's natural key, built the first time the planner asks for an id no key
    /// reports (a managed organization renamed at the provider, or gone): never in a plan
    /// where every record is found where it was.
    by_id: IdIndex,
}

/// A lazily built index of an [`InstanceReality`]: derived from its organizations, so it takes
/// no part in comparing or cloning one.
#[derive(Default)]
struct IdIndex(std::sync::OnceLock<std::collections::HashMap<String, NaturalKey>>);

impl Clone for IdIndex {
    fn clone(&self) -> IdIndex {
        IdIndex::default()
    }
}

impl PartialEq for IdIndex {
    fn eq(&self, _: &IdIndex) -> bool {
        true
    }
}

impl Eq for IdIndex {}

impl fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdIndex")
    }
}

impl InstanceReality {
    /// The natural key the organization with `remote_id` reports, if the provider reported it.
    pub(crate) fn key_of(&self, remote_id: &str) -> Option<&NaturalKey> {
        self.by_id
            .0
            .get_or_init(|| {
                self.orgs
                    .iter()
                    .flat_map(|(key, orgs)| {
                        orgs.iter().map(move |o| (o.remote_id.clone(), key.clone()))
                    })
                    .collect()
            })
            .get(remote_id)
    }

    pub fn insert(&mut self, org: RemoteOrg) {
        // Room for exactly the one a key nearly always has: a vector's first push makes room
        // for four (520 bytes of a Commvault read's 20,000, three of them empty).
        match self.orgs.entry(org.natural_key.clone()) {
            std::collections::btree_map::Entry::Vacant(entry) => {
                entry.insert(vec![org]);
            }
            std::collections::btree_map::Entry::Occupied(mut entry) => entry.get_mut().push(org),
        }
    }

    /// Adds what `later` read, after what this holds: the same as inserting its organizations
    /// one by one, in order.
    pub fn merge(&mut self, later: InstanceReality) {
        for (key, mut orgs) in later.orgs {
            // A key new here takes the vector as `insert` sized it; appended to an empty one,
            // it would be given room for four again.
            match self.orgs.entry(key) {
                std::collections::btree_map::Entry::Vacant(entry) => {
                    entry.insert(orgs);
                }
                std::collections::btree_map::Entry::Occupied(mut entry) => {
                    entry.get_mut().append(&mut orgs);
                }
            }
        }
    }

    pub fn find(&self, key: &NaturalKey) -> &[RemoteOrg] {
        self.orgs.get(key).map_or(&[], Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.orgs.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty()
    }
}

/// What the providers reported, per instance. An instance missing from the map was not read
/// (`--refresh=false`), which the planner treats as "unknown", never as "absent".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reality {
    pub instances: BTreeMap<InstanceName, InstanceReality>,
}

/// Seconds since the Unix epoch. The planner takes the time as an input instead of reading a
/// clock, so that plans are reproducible.
pub(crate) type Timestamp = u64;

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str, key: &str) -> RemoteOrg {
        RemoteOrg {
            remote_id: id.into(),
            natural_key: NaturalKey(key.into()),
            status: RemoteStatus::Ready,
            detail: Detail::default(),
            attributes: Reported::default(),
        }
    }

    #[test]
    fn shares_merged_are_the_organizations_inserted_in_order_each_key_sized_for_what_it_holds() {
        let all = [("1", "a"), ("2", "b"), ("3", "a"), ("4", "c"), ("5", "b")];
        let mut one_by_one = InstanceReality::default();
        for (id, key) in all {
            one_by_one.insert(org(id, key));
        }
        let mut first = InstanceReality::default();
        let mut second = InstanceReality::default();
        for (id, key) in &all[..2] {
            first.insert(org(id, key));
        }
        for (id, key) in &all[2..] {
            second.insert(org(id, key));
        }
        first.merge(second);
        assert_eq!(first, one_by_one);
        // `c` came only from the later share: its vector moved in as `insert` made it.
        let c = first.orgs.get(&NaturalKey("c".into())).map(Vec::capacity);
        assert_eq!(c, Some(1));
    }
}
