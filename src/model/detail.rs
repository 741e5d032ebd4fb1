//! [`Detail`]: the provider facts kept beside an organization (Salesforce's `CreatedOrgId`,
//! Oracle's organization id, Heron's `is_enabled`), in what a provider reports and in state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An organization's provider facts, by key: a pair or two, in a vector kept sorted. A
/// `BTreeMap` allocates a node with room for eleven pairs for even one (540 bytes), and state
/// and each read of a provider hold one per organization: 54 MB of a hundred thousand Heron
/// records, for `is_enabled = true` each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detail(Box<[(String, String)]>);

impl Detail {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn values(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub(crate) fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

impl From<&BTreeMap<String, String>> for Detail {
    fn from(map: &BTreeMap<String, String>) -> Detail {
        // A map iterates in key order, without repeats: already what a `Detail` holds.
        Detail(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

impl From<BTreeMap<String, String>> for Detail {
    fn from(map: BTreeMap<String, String>) -> Detail {
        Detail(map.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, String); N]> for Detail {
    fn from(pairs: [(String, String); N]) -> Detail {
        Detail::from(&BTreeMap::from(pairs))
    }
}

impl<'a> IntoIterator for &'a Detail {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Detail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Detail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Detail, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = Detail;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of strings")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Detail, A::Error> {
                // Straight into the vector (a map per record, only to be copied out, cost a
                // node's allocation each); a key given twice keeps its last value, as a map would.
                let mut pairs: Vec<(String, String)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(1).min(16));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                let mut kept: Vec<(String, String)> = Vec::with_capacity(pairs.len());
                for pair in pairs {
                    match kept.last_mut() {
                        Some(last) if last.0 == pair.0 => *last = pair,
                        _ => kept.push(pair),
                    }
                }
                Ok(Detail(kept.into_boxed_slice()))
            }
        }
        d.deserialize_map(Pairs)
    }
}
