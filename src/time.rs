//! Timestamps as state, plans and providers use them: seconds since the epoch in memory,
//! RFC 3339 in files and on the wire, so that a person reading a state file sees dates.
//!
//! [`now`] reads the clock; only the edges call it (commands, apply, providers). The planner
//! takes the time as an input and uses only the formats here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::Timestamp;

pub fn now() -> Timestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn format(t: Timestamp) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string()
}

pub(crate) fn parse(s: &str) -> Option<Timestamp> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

pub(crate) mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::Timestamp;

    #[expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "serde's `with` passes a reference"
    )]
    pub(crate) fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid time `{s}`")))
    }
}

pub(crate) mod opt_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::Timestamp;

    #[expect(clippy::ref_option, reason = "serde's `with` passes a reference")]
    pub(crate) fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format(*t)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            super::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid time `{s}`")))
        })
        .transpose()
    }
}

/// A map of lists of times (`creates_sent`), each time as RFC 3339.
pub(crate) mod rfc3339_lists {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::model::Timestamp;

    pub(crate) fn serialize<S: Serializer>(
        map: &BTreeMap<String, Vec<Timestamp>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let shown: BTreeMap<&String, Vec<String>> = map
            .iter()
            .map(|(k, v)| (k, v.iter().map(|t| super::format(*t)).collect()))
            .collect();
        shown.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<Timestamp>>, D::Error> {
        let raw = BTreeMap::<String, Vec<String>>::deserialize(d)?;
        raw.into_iter()
            .map(|(k, v)| {
                let mut times: Vec<Timestamp> = v
                    .iter()
                    .map(|s| {
                        super::parse(s)
                            .ok_or_else(|| serde::de::Error::custom(format!("invalid time `{s}`")))
                    })
                    .collect::<Result<_, _>>()?;
                // Oldest first, as `State::note_create_sent` keeps them: a quota is counted by
                // a binary search.
                times.sort_unstable();
                Ok((k, times))
            })
            .collect()
    }
}
