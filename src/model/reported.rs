//! [`Reported`]: the attributes a provider reported about one organization, under their spec
//! names, packed into one allocation in the codec of [`super::packed`] (plus JSON's `null` and
//! its integers above `i64::MAX`), and the writer that builds it.
//!
//! A refreshed plan holds one for every organization read (a hundred thousand), and compares
//! each with its declaration; as a `serde_json::Map` each was a score of allocations and a hash
//! table. Tables are kept in key order, as a spec's [`super::PackedTable`] is, so that the two
//! are compared by walking both at once (`plan::diff::reported_agrees`). Read as JSON again by
//! [`Reported::to_json`] where a tree is wanted (a diff's detail, `discover`, tests).

use std::fmt;

use super::packed::{
    Entries, Item, TAG_ARRAY, TAG_FALSE, TAG_FLOAT, TAG_INT, TAG_NULL, TAG_STRING, TAG_TABLE,
    TAG_TRUE, TAG_UINT, Unpacker, put_len, put_text,
};

/// What a provider reported about an organization's attributes: a table under spec names,
/// keys in order, never a secret (the reverse mapping leaves them out).
#[derive(Clone, PartialEq, Eq)]
pub struct Reported(Box<[u8]>);

/// An empty table: a count of zero.
const EMPTY: [u8; 1] = [0];

impl Default for Reported {
    fn default() -> Reported {
        Reported(Box::new(EMPTY))
    }
}

impl Reported {
    /// The bytes of one table as [`TableWriter::finish`] wrote them.
    pub(crate) fn from_table_bytes(bytes: Vec<u8>) -> Reported {
        Reported(bytes.into_boxed_slice())
    }

    /// A JSON object as it is (no schema): every key, in key order, the last of a repeated key.
    pub fn from_json(map: &serde_json::Map<String, serde_json::Value>) -> Reported {
        let mut out = Vec::with_capacity(64);
        put_json_table(&mut out, map);
        Reported::from_table_bytes(out)
    }

    /// The attributes as a JSON object, in key order.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        table_json(self.entries())
    }

    /// Whether nothing was reported.
    pub fn is_empty(&self) -> bool {
        *self.0 == EMPTY
    }

    /// The packed bytes: a table, as [`super::packed::Unpacker`] reads it.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The entries, read in place in key order.
    pub(crate) fn entries(&self) -> Entries<'_> {
        Entries::of_table(&self.0)
    }

    /// The same without the top-level `keys`.
    #[must_use]
    pub(crate) fn without(&self, keys: &[&str]) -> Reported {
        let mut out = Vec::with_capacity(self.0.len());
        let kept: Vec<(&str, &[u8])> = raw_entries(&self.0)
            .filter(|(k, _)| !keys.contains(k))
            .collect();
        put_len(&mut out, kept.len());
        for (k, v) in kept {
            put_text(&mut out, k);
            out.extend_from_slice(v);
        }
        Reported::from_table_bytes(out)
    }

    /// The top-level entries of both, `other`'s where both have a key (as `Map::extend`).
    #[must_use]
    pub(crate) fn extended(&self, other: &Reported) -> Reported {
        let mut out = Vec::with_capacity(self.0.len() + other.0.len());
        let mut table = TableWriter::begin(&out);
        for (k, v) in raw_entries(&self.0).chain(raw_entries(&other.0)) {
            let start = out.len();
            out.extend_from_slice(v);
            table.entry(&mut out, k, start, true);
        }
        table.finish(&mut out);
        Reported::from_table_bytes(out)
    }

    /// `{key: inner}`, or nothing when `inner` is empty.
    #[must_use]
    pub(crate) fn nested(key: &str, inner: &Reported) -> Reported {
        if inner.is_empty() {
            return Reported::default();
        }
        let mut out = Vec::with_capacity(inner.0.len() + key.len() + 3);
        put_len(&mut out, 1);
        put_text(&mut out, key);
        out.push(TAG_TABLE);
        out.extend_from_slice(&inner.0);
        Reported::from_table_bytes(out)
    }

    /// The same with every table that holds nothing left out, at every depth of tables (a
    /// table emptied so is left out too); arrays as they are.
    #[must_use]
    pub(crate) fn without_empty_tables(&self) -> Reported {
        fn table(out: &mut Vec<u8>, bytes: &[u8]) {
            let mut writer = TableWriter::begin(out);
            for (k, v) in raw_entries(bytes) {
                let start = out.len();
                let kept = match v.split_first() {
                    Some((&TAG_TABLE, inner)) => {
                        out.push(TAG_TABLE);
                        let at = out.len();
                        table(out, inner);
                        out[at..] != EMPTY
                    }
                    _ => {
                        out.extend_from_slice(v);
                        true
                    }
                };
                writer.entry(out, k, start, kept);
            }
            writer.finish(out);
        }
        let mut out = Vec::with_capacity(self.0.len());
        table(&mut out, &self.0);
        Reported::from_table_bytes(out)
    }
}

impl fmt::Debug for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_json().fmt(f)
    }
}

/// A table's entries as their keys and the bytes of each value (tag and all).
fn raw_entries(bytes: &[u8]) -> impl Iterator<Item = (&str, &[u8])> {
    let mut reader = Unpacker(bytes);
    let mut left = reader.len().unwrap_or(0);
    std::iter::from_fn(move || {
        left = left.checked_sub(1)?;
        let key = reader.text()?;
        let rest = reader.0;
        reader.skip()?;
        Some((key, &rest[..rest.len() - reader.0.len()]))
    })
}

fn table_json(entries: Entries<'_>) -> serde_json::Map<String, serde_json::Value> {
    entries
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), item_json(v)))
        .collect()
}

fn item_json(item: Item<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match item {
        // A secret is never reported; were one there, it would show as nothing.
        Item::Null | Item::Secret => J::Null,
        Item::Bool(b) => J::Bool(b),
        Item::Int(i) => J::from(i),
        Item::Uint(u) => J::from(u),
        Item::Float(x) => serde_json::Number::from_f64(x).map_or(J::Null, J::Number),
        Item::Text(s) => J::String(String::from_utf8_lossy(s).into_owned()),
        Item::Array(items) => J::Array(items.map(item_json).collect()),
        Item::Table(entries) => J::Object(table_json(entries)),
    }
}

fn put_json_table(out: &mut Vec<u8>, map: &serde_json::Map<String, serde_json::Value>) {
    let mut table = TableWriter::begin(out);
    for (k, v) in map {
        let start = out.len();
        put_json(out, v);
        table.entry(out, k.as_str(), start, true);
    }
    table.finish(out);
}

fn put_json(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value as J;
    match value {
        J::Null => put_null(out),
        J::Bool(b) => put_bool(out, *b),
        J::Number(n) => put_number(out, n),
        J::String(s) => put_string(out, s),
        J::Array(items) => {
            out.push(TAG_ARRAY);
            put_len(out, items.len());
            for item in items {
                put_json(out, item);
            }
        }
        J::Object(map) => {
            out.push(TAG_TABLE);
            put_json_table(out, map);
        }
    }
}

pub(crate) fn put_null(out: &mut Vec<u8>) {
    out.push(TAG_NULL);
}

pub(crate) fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { TAG_TRUE } else { TAG_FALSE });
}

pub(crate) fn put_int(out: &mut Vec<u8>, i: i64) {
    out.push(TAG_INT);
    out.extend_from_slice(&i.to_le_bytes());
}

/// A JSON number as JSON holds it: an integer (signed, or above `i64::MAX`) or a float, so that
/// it reads back as the same `serde_json::Number`.
pub(crate) fn put_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        put_int(out, i);
    } else if let Some(u) = n.as_u64() {
        out.push(TAG_UINT);
        out.extend_from_slice(&u.to_le_bytes());
    } else {
        out.push(TAG_FLOAT);
        out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_bits().to_le_bytes());
    }
}

pub(crate) fn put_string(out: &mut Vec<u8>, s: &str) {
    out.push(TAG_STRING);
    put_text(out, s);
}

/// Writes an array whose items are written one by one before their count is known: begun at
/// the tag, its count put in front of the items when done.
pub(crate) struct ArrayWriter {
    items_at: usize,
    count: usize,
}

impl ArrayWriter {
    pub(crate) fn begin(out: &mut Vec<u8>) -> ArrayWriter {
        out.push(TAG_ARRAY);
        ArrayWriter {
            items_at: out.len(),
            count: 0,
        }
    }

    /// One more item was written.
    pub(crate) fn item(&mut self) {
        self.count += 1;
    }

    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        let mut count = Vec::with_capacity(2);
        put_len(&mut count, self.count);
        out.splice(self.items_at..self.items_at, count);
    }
}

/// Writes a table whose entries arrive in any order (a wire object's), possibly a key more than
/// once: each value is written as it comes, then [`TableWriter::finish`] puts them in key order
/// behind their keys, the last of a repeated key winning (as a JSON map's does), in place.
pub(crate) struct TableWriter<K> {
    values_at: usize,
    spans: Vec<Span<K>>,
}

struct Span<K> {
    key: K,
    start: usize,
    end: usize,
    kept: bool,
}

impl<K: AsRef<str>> TableWriter<K> {
    /// A table whose values are written from here on.
    pub(crate) fn begin(out: &[u8]) -> TableWriter<K> {
        TableWriter {
            values_at: out.len(),
            spans: Vec::new(),
        }
    }

    /// A table as a value (its tag written here), whose values are written from here on.
    pub(crate) fn nested(out: &mut Vec<u8>) -> TableWriter<K> {
        out.push(TAG_TABLE);
        TableWriter::begin(out)
    }

    /// The value of `key` was written from `start`; when not `kept` (a value left out), what
    /// was written from `start` is dropped, and the key stays out unless given again later.
    pub(crate) fn entry(&mut self, out: &mut Vec<u8>, key: K, start: usize, kept: bool) {
        if !kept {
            out.truncate(start);
        }
        self.spans.push(Span {
            key,
            start,
            end: out.len(),
            kept,
        });
    }

    /// Rewrites what was written since [`TableWriter::begin`] as the table: its count, then each
    /// key and value in key order.
    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        let mut spans = self.spans;
        // Stable: among equal keys the last stays last, and only it is kept.
        spans.sort_by(|a, b| a.key.as_ref().cmp(b.key.as_ref()));
        let mut last: Vec<&Span<K>> = Vec::with_capacity(spans.len());
        for span in &spans {
            match last.last_mut() {
                Some(previous) if previous.key.as_ref() == span.key.as_ref() => *previous = span,
                _ => last.push(span),
            }
        }
        last.retain(|span| span.kept);
        let written = out.len();
        put_len(out, last.len());
        for span in last {
            put_text(out, span.key.as_ref());
            out.extend_from_within(span.start..span.end);
        }
        out.copy_within(written.., self.values_at);
        out.truncate(self.values_at + (out.len() - written));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        }
    }

    #[test]
    fn json_reads_back_as_it_was_in_key_order() {
        let map = object(json!({
            "z": [1, -2, 18_446_744_073_709_551_615_u64, 1.5, 2.0, null, "s", true, false],
            "a": {"y": {}, "x": [{"k": "v"}], "n": null},
            "m": "",
        }));
        let reported = Reported::from_json(&map);
        let back = reported.to_json();
        assert_eq!(back, map);
        assert_eq!(back.keys().collect::<Vec<_>>(), ["a", "m", "z"]);
        assert_eq!(
            serde_json::to_string(&back["z"]).ok().as_deref(),
            Some(r#"[1,-2,18446744073709551615,1.5,2.0,null,"s",true,false]"#)
        );
        assert!(Reported::default().is_empty());
        assert!(Reported::from_json(&serde_json::Map::new()).is_empty());
        assert!(!reported.is_empty());
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_and_a_dropped_one_drops_it() {
        let mut out = Vec::new();
        let mut table = TableWriter::begin(&out);
        for (key, value, kept) in [
            ("b", 1, true),
            ("a", 2, true),
            ("b", 3, true),
            ("a", 4, false),
        ] {
            let start = out.len();
            put_int(&mut out, value);
            table.entry(&mut out, key, start, kept);
        }
        table.finish(&mut out);
        let reported = Reported::from_table_bytes(out);
        assert_eq!(reported.to_json(), object(json!({"b": 3})));
    }

    #[test]
    fn tables_are_edited_in_place() {
        let a = Reported::from_json(&object(json!({"a": 1, "b": {"c": {}, "d": []}, "e": {}})));
        let b = Reported::from_json(&object(json!({"b": 2, "f": 3})));
        assert_eq!(
            a.extended(&b).to_json(),
            object(json!({"a": 1, "b": 2, "e": {}, "f": 3}))
        );
        assert_eq!(
            a.without(&["b", "x"]).to_json(),
            object(json!({"a": 1, "e": {}}))
        );
        assert_eq!(
            a.without_empty_tables().to_json(),
            object(json!({"a": 1, "b": {"d": []}}))
        );
        assert_eq!(
            Reported::nested("o", &b).to_json(),
            object(json!({"o": {"b": 2, "f": 3}}))
        );
        assert!(Reported::nested("o", &Reported::default()).is_empty());
    }
}
