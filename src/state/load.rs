//! Reading a state document fast: a large state's records parsed on every core, and each
//! record's declared attributes kept as a place in the document's text (shared by all the
//! records), neither copied nor parsed until a diff needs them.
//!
//! orgform writes state pretty-printed, one record per key indented four spaces, and a JSON
//! string never holds a raw line break, so a line break, four spaces and a quote is a place
//! where a record may start. The records between such places are parsed apart, in parallel; the
//! rest of the document (format, lineage, serial, quota use) is parsed on its own, with an empty
//! `"orgs": {}` where the records were. That is only taken as the document when every part
//! parses whole (each piece a run of `"address": record` members, the comma between two pieces
//! ending the first) and the rest is a state whose `orgs` is that empty map: then the document
//! is exactly those records in that place. Anything else (a file formatted by hand, or a broken
//! one) is read in one pass from the start, which also says what is wrong.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Attributes, Detail, Record, RecordError, State, Status};
use crate::model::{Address, InstanceName, NaturalKey, ProviderType, Timestamp};

/// Below this many bytes of records, one pass costs less than starting threads.
const SPLIT_ABOVE: usize = 1 << 20;

/// Where the records' map opens in a state orgform wrote.
const ORGS_OPEN: &str = "\n  \"orgs\": {";
/// Where a record may start in it.
const RECORD_START: &str = "\n    \"";

/// Parses the state document `text` (held whole afterwards: the records' attributes point
/// into it).
pub(super) fn read(text: &Arc<String>) -> Result<State, serde_json::Error> {
    match read_split(text) {
        Some(state) => Ok(state),
        None => read_whole(text),
    }
}

/// The document read in one pass from the start.
fn read_whole(text: &Arc<String>) -> Result<State, serde_json::Error> {
    let mut document: Document<'_> = serde_json::from_str(text)?;
    let orgs = std::mem::take(&mut document.orgs)
        .into_iter()
        .map(|(address, loaded)| (address, loaded.into_record(text)))
        .collect();
    Ok(document.into_state(orgs))
}

/// The document read in parts, or `None` when it isn't laid out as orgform writes it (or
/// doesn't parse): then it is read in one pass.
fn read_split(text: &Arc<String>) -> Option<State> {
    let whole = text.as_str();
    let open = whole.find(ORGS_OPEN)? + ORGS_OPEN.len();
    let close = orgs_close(whole)?;
    let body = whole.get(open..close)?;
    if body.len() < SPLIT_ABOVE {
        return None;
    }
    let mut rest = String::with_capacity(whole.len() - body.len());
    rest.push_str(&whole[..open]);
    rest.push_str(&whole[close..]);
    // The map emptied must be the state's own `orgs`: anywhere else (inside a record's
    // attributes, say), the records around it would be in this one.
    let document: Document<'_> = serde_json::from_str(&rest).ok()?;
    if !document.orgs.is_empty() {
        return None;
    }
    let pieces = pieces(body);
    let last = pieces.len() - 1;
    let parsed = crate::parallel::each(&pieces, |i, &(start, end)| {
        members(&body[start..end], i == last, text)
    });
    if parsed.iter().any(Option::is_none) {
        return None;
    }
    let orgs = parsed.into_iter().flatten().flatten().collect();
    Some(document.into_state(orgs))
}

/// Where the `}` that closes the records' map is, found from the end (the records are nearly
/// all of the text): the document's last member, or the one before the quota use.
fn orgs_close(whole: &str) -> Option<usize> {
    let mut lines = lines_back(whole.trim_end());
    if lines.next()?.1 != "}" {
        return None;
    }
    let (at, line) = lines.next()?;
    if line != "  }" {
        return None;
    }
    let (_, mut before) = lines.next()?;
    if before == "    }" {
        // The last record's end.
        return Some(at + 2);
    }
    // The quota use: lists of times under its instances, then its own key.
    while before.starts_with("    ") {
        before = lines.next()?.1;
    }
    if before != "  \"creates_sent\": {" {
        return None;
    }
    let (at, line) = lines.next()?;
    (line == "  },").then_some(at + 2)
}

/// The lines of `text` from its last, each with where it starts.
fn lines_back(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut end = Some(text.len());
    std::iter::from_fn(move || {
        let stop = end?;
        let start = text[..stop].rfind('\n').map_or(0, |i| i + 1);
        end = start.checked_sub(1);
        Some((start, &text[start..stop]))
    })
}

/// The byte ranges of `body` to parse apart: about two per core, each starting where a record
/// may start.
fn pieces(body: &str) -> Vec<(usize, usize)> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let wanted = (threads * 2).max(2);
    let mut cuts = vec![0];
    for k in 1..wanted {
        let target = body.len() / wanted * k;
        let Some(found) = body[target..].find(RECORD_START) else {
            break;
        };
        let cut = target + found;
        if cut > cuts[cuts.len() - 1] {
            cuts.push(cut);
        }
    }
    cuts.push(body.len());
    cuts.windows(2).map(|w| (w[0], w[1])).collect()
}

/// A piece of the records' map as `"address": record` members, with commas between them and,
/// unless it is the `last` piece, after the last one (the comma before the next piece).
/// `None` unless the whole piece reads so.
fn members(piece: &str, last: bool, text: &Arc<String>) -> Option<Vec<(Address, Record)>> {
    let bytes = piece.as_bytes();
    let skip = |mut at: usize| {
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        at
    };
    let mut records = Vec::new();
    let mut at = 0;
    loop {
        let (address, used) = value::<Address>(&piece[at..])?;
        at = skip(at + used);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        let (loaded, used) = value::<Loaded<'_>>(&piece[at + 1..])?;
        records.push((address, loaded.into_record(text)));
        at = skip(at + 1 + used);
        if at == bytes.len() {
            return last.then_some(records);
        }
        if bytes[at] != b',' {
            return None;
        }
        at = skip(at + 1);
        if at == bytes.len() {
            return (!last).then_some(records);
        }
    }
}

/// The JSON value at the start of `text` (after any whitespace), and the bytes it took.
fn value<'a, T: Deserialize<'a>>(text: &'a str) -> Option<(T, usize)> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<T>();
    let found = stream.next()?.ok()?;
    Some((found, stream.byte_offset()))
}

/// A state document as read: the records borrow their attributes from its text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document<'a> {
    version: u32,
    lineage: String,
    serial: u64,
    #[serde(default, borrow, deserialize_with = "in_order")]
    orgs: Vec<(Address, Loaded<'a>)>,
    #[serde(default, deserialize_with = "crate::time::rfc3339_lists::deserialize")]
    creates_sent: BTreeMap<InstanceName, Vec<Timestamp>>,
}

impl Document<'_> {
    /// The state, with `orgs` for records (this document's own are left out).
    fn into_state(self, orgs: BTreeMap<Address, Record>) -> State {
        State {
            version: self.version,
            lineage: self.lineage,
            serial: self.serial,
            orgs,
            creates_sent: self.creates_sent,
        }
    }
}

/// A [`Record`] as a state document holds it, its attributes left where they are in the text.
/// The same fields, with the same rules, as `Record`'s own reading (a test holds them together).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Loaded<'a> {
    provider: InstanceName,
    provider_type: ProviderType,
    #[serde(default)]
    remote_id: Option<String>,
    natural_key: NaturalKey,
    digest: String,
    status: Status,
    #[serde(default, borrow, deserialize_with = "raw")]
    attributes: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "optional_time")]
    attempted_at: Option<Timestamp>,
    #[serde(deserialize_with = "time")]
    updated_at: Timestamp,
    #[serde(default)]
    error: Option<Box<RecordError>>,
    #[serde(default)]
    detail: Detail,
}

impl Loaded<'_> {
    fn into_record(self, text: &Arc<String>) -> Record {
        Record {
            provider: self.provider,
            provider_type: self.provider_type,
            remote_id: self.remote_id,
            natural_key: self.natural_key,
            digest: self.digest,
            status: self.status,
            attributes: self
                .attributes
                .map_or_else(Attributes::default, |raw| Attributes::within(text, raw)),
            attempted_at: self.attempted_at,
            updated_at: self.updated_at,
            error: self.error,
            detail: self.detail,
        }
    }
}

/// The records as a list in the document's order (a map built from it at once costs no search
/// per key: orgform writes them sorted).
fn in_order<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(Address, Loaded<'de>)>, D::Error> {
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(Address, Loaded<'de>)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of addresses to records")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    d.deserialize_map(Entries)
}

/// Any JSON value, `null` included, as its text.
fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// An RFC 3339 time, read without a copy of its text.
fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    d.deserialize_str(Time)
}

fn optional_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    d.deserialize_option(OptionalTime)
}

struct Time;

impl Visitor<'_> for Time {
    type Value = Timestamp;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an RFC 3339 time")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Timestamp, E> {
        crate::time::parse(s).ok_or_else(|| E::custom(format!("invalid time `{s}`")))
    }
}

struct OptionalTime;

impl<'de> Visitor<'de> for OptionalTime {
    type Value = Option<Timestamp>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an RFC 3339 time or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        time(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateOp;

    /// `T` read from JSON text the ordinary way.
    fn plain<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_json::from_str(text).expect("parses")
    }

    fn record(i: usize, attributes: serde_json::Value) -> Record {
        Record {
            provider: "heron_prod".into(),
            provider_type: ProviderType::Heron,
            remote_id: (!i.is_multiple_of(3)).then(|| format!("crm_{i}")),
            natural_key: NaturalKey(format!("salesforce | https://a-{i}.example.com")),
            digest: format!("{i:064x}"),
            status: if i.is_multiple_of(5) {
                Status::Pending
            } else {
                Status::Created
            },
            attributes: Attributes::from_value(&attributes),
            attempted_at: i.is_multiple_of(2).then_some(1_700_000_000 + i as u64),
            updated_at: 1_700_000_000,
            error: i.is_multiple_of(7).then(|| {
                Box::new(RecordError {
                    code: "E".into(),
                    message: "failed \"badly\"\nat once".into(),
                })
            }),
            detail: Detail::from([("is_enabled".to_string(), "true".to_string())]),
        }
    }

    /// A state large enough to be read in parts, as orgform writes it.
    fn large() -> State {
        let mut state = State::new("lineage".into());
        state.version = 2;
        state.serial = 7;
        state.note_create_sent("heron_prod", 1_700_000_000);
        for i in 0..6_000 {
            let attributes = serde_json::json!({
                "name": format!("Org {i} with \"quotes\" and \\ and \n"),
                "orgs": { "nested": [i, "  \"orgs\": {"] },
                "pad": "x".repeat(200),
            });
            state.apply(&StateOp::Put {
                address: format!("org_{i:05}"),
                record: Box::new(record(i, attributes)),
            });
        }
        state
    }

    fn pretty(state: &State) -> String {
        serde_json::to_string_pretty(state).expect("serializes")
    }

    #[test]
    fn a_large_state_read_in_parts_is_the_state_read_whole() {
        let mut without_quota = large();
        without_quota.creates_sent.clear();
        for state in [large(), without_quota] {
            // As the file store writes it: a line break at the end.
            let text = Arc::new(pretty(&state) + "\n");
            assert!(text.len() > 2 * SPLIT_ABOVE, "{}", text.len());
            let split = read_split(&text).expect("read in parts");
            assert_eq!(split, state);
            let whole = read_whole(&text).expect("read whole");
            assert_eq!(split, whole);
            // Written again, the shared attributes give the same text.
            assert_eq!(pretty(&split) + "\n", *text);
        }
    }

    #[test]
    fn a_state_laid_out_otherwise_is_read_whole() {
        let state = large();
        // Compact: no line to cut at.
        let compact = Arc::new(serde_json::to_string(&state).expect("serializes"));
        assert!(read_split(&compact).is_none());
        assert_eq!(read(&compact).expect("reads"), state);
        // The state's own map opened on the line before, and a record's attributes that open
        // a map named `orgs` on a line of their own: not taken for the state's records.
        let mut odd = state.clone();
        if let Some(first) = odd.orgs.values_mut().next() {
            let nested = "{\n  \"orgs\": {\n    \"x\": {\"a\": 1}\n  }\n}";
            first.attributes = Attributes(crate::state::Held::Text(
                RawValue::from_string(nested.to_string()).expect("JSON"),
            ));
        }
        let odd = Arc::new(pretty(&odd).replacen("\n  \"orgs\": {", " \"orgs\": {", 1));
        let whole = read_whole(&odd);
        assert!(whole.is_ok(), "{whole:?}");
        assert!(read_split(&odd).is_none());
        assert_eq!(read(&odd).ok(), whole.ok());
    }

    #[test]
    fn a_broken_piece_or_rest_is_never_taken() {
        let text = pretty(&large());
        // A member's value broken in the middle of the records.
        let middle = text.len() / 2;
        let at = text[middle..].find("\"status\": \"").expect("status") + middle;
        let mut broken = text.clone();
        broken.replace_range(at..at + 11, "\"status\": 3");
        let broken = Arc::new(broken);
        assert!(read_split(&broken).is_none());
        assert!(read(&broken).is_err());
        // The comma between two pieces dropped.
        let comma = text[middle..].find("},\n    \"").expect("comma") + middle + 1;
        let mut joined = text.clone();
        joined.remove(comma);
        let joined = Arc::new(joined);
        assert!(read_split(&joined).is_none());
        assert!(read(&joined).is_err());
        // An unknown field beside the records.
        let unknown = Arc::new(text.replacen("\"serial\": 7,", "\"serial\": 7, \"x\": 1,", 1));
        assert!(read(&unknown).is_err());
    }

    #[test]
    fn a_record_reads_as_record_reads_it() {
        for i in [0, 1, 2, 5, 7, 35] {
            let r = record(i, serde_json::json!({"a": [1, {"b": null}]}));
            let text = Arc::new(serde_json::to_string(&r).expect("serializes"));
            let loaded: Loaded<'_> = serde_json::from_str(&text).expect("reads");
            assert_eq!(loaded.into_record(&text), plain::<Record>(&text));
        }
        let null = Arc::new(
            r#"{"provider":"p","provider_type":"heron","natural_key":"k","digest":"d","status":"created","attributes":null,"attempted_at":null,"updated_at":"2026-01-01T00:00:00Z"}"#
                .to_string(),
        );
        let loaded: Loaded<'_> = serde_json::from_str(&null).expect("reads");
        let loaded = loaded.into_record(&null);
        assert_eq!(loaded, plain::<Record>(&null));
        assert_eq!(loaded.attributes.to_value(), serde_json::Value::Null);
        let bad_time = null.replace("2026-01-01T00:00:00Z", "yesterday");
        let error = serde_json::from_str::<Loaded<'_>>(&bad_time)
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("invalid time `yesterday`")),
            "{error:?}"
        );
    }
}
