//! A large JSON array's elements read on every core. A list answer with no paging (Heron's: 98
//! MB for 100,000 integrations) is otherwise one core's work while the others wait.
//!
//! The elements are cut into shares near equal sizes, each at a `,` between a `}` and a `{`
//! (whitespace allowed) from which one element reads whole. Such a comma need not be between
//! two elements: it can sit in a string or a nested array (whose objects seldom read as an
//! element, which is why a cut is tried that way first). So each share is read element by
//! element from its cut, and must end exactly on the next cut: the first share starts at the array's true start, so a share that
//! ends on the next cut proves that cut a boundary, and the shares after it are read from true
//! boundaries too. Anything else (a cut that was no boundary, an element that does not read, a
//! body not of the expected shape) gives `None`, and the caller reads the body the one-core
//! way, which also gives the error its reader would.

use serde::Deserialize;

/// A share smaller than this isn't worth a thread.
const SHARE_AT_LEAST: usize = 1 << 20;

/// The bytes between `[` and `]` when `body` is exactly `{"KEY": [...]}` (whitespace allowed),
/// as far as its ends tell; the shares' reading proves the middle.
pub(crate) fn sole_array<'b>(body: &'b [u8], key: &str) -> Option<&'b [u8]> {
    let mut at = skip_ws(body, 0);
    let expect = |token: &[u8], at: &mut usize| {
        let rest = body.get(*at..)?;
        rest.starts_with(token)
            .then(|| *at = skip_ws(body, *at + token.len()))
    };
    expect(b"{", &mut at)?;
    expect(b"\"", &mut at)?;
    // The key is plain ASCII here; one with escapes is read the one-core way.
    let quoted = body.get(at..at + key.len() + 1)?;
    if &quoted[..key.len()] != key.as_bytes() || quoted[key.len()] != b'"' {
        return None;
    }
    at = skip_ws(body, at + key.len() + 1);
    expect(b":", &mut at)?;
    expect(b"[", &mut at)?;
    let mut end = body.len();
    for close in [b'}', b']'] {
        end = trim_ws_end(body, end);
        if end <= at || body[end - 1] != close {
            return None;
        }
        end -= 1;
    }
    Some(&body[at..end])
}

/// Reads every element of `elements` (the bytes between an array's brackets) as a `T`, folding
/// each share's into an `A` on its own core: the shares' folds in order, or `None` when the
/// elements can't be read this way (see the module's opening).
pub(crate) fn fold_in_shares<'de, T, A>(
    elements: &'de [u8],
    fold: impl Fn(&mut A, T) + Sync,
) -> Option<Vec<A>>
where
    T: Deserialize<'de>,
    A: Default + Send,
{
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let shares = cores.min(elements.len() / SHARE_AT_LEAST);
    if shares < 2 {
        return None;
    }
    let mut cuts = vec![0];
    for share in 1..shares {
        let near = elements.len() / shares * share;
        let cut = next_cut::<T>(elements, near.max(*cuts.last()?))?;
        if cut < elements.len() {
            cuts.push(cut);
        }
    }
    cuts.push(elements.len());
    let ranges: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    let folds = crate::parallel::each(&ranges, |_, &(from, to)| {
        read_share(elements, from, to, &fold)
    });
    let folds: Option<Vec<A>> = folds.into_iter().collect();
    match &folds {
        Some(folds) => tracing::debug!(
            "a list of {} bytes read in {} shares",
            elements.len(),
            folds.len()
        ),
        None => tracing::debug!(
            "a list of {} bytes read on one core: its shares did not meet",
            elements.len()
        ),
    }
    folds
}

/// Folds the elements from `from` (the start of one, whitespace allowed) until the one that
/// ends with its comma exactly at `to`, or with the elements at `to` when that is their end.
fn read_share<'de, T: Deserialize<'de>, A: Default>(
    elements: &'de [u8],
    from: usize,
    to: usize,
    fold: &impl Fn(&mut A, T),
) -> Option<A> {
    let mut folded = A::default();
    let mut at = from;
    loop {
        let mut stream = serde_json::Deserializer::from_slice(elements.get(at..)?).into_iter::<T>();
        let element = stream.next()?.ok()?;
        at += stream.byte_offset();
        fold(&mut folded, element);
        at = skip_ws(elements, at);
        if at == elements.len() {
            return (to == at).then_some(folded);
        }
        if elements[at] != b',' {
            return None;
        }
        at += 1;
        if at >= to {
            return (at == to).then_some(folded);
        }
    }
}

/// The position just after the first `,` from `near` that sits between a `}` and a `{`, and
/// after which a `T` reads whole, followed by a `,` or the end.
fn next_cut<'de, T: Deserialize<'de>>(elements: &'de [u8], near: usize) -> Option<usize> {
    let mut from = near;
    loop {
        let comma = from + memchr::memchr(b',', elements.get(from..)?)?;
        let before = trim_ws_end(elements, comma);
        let after = skip_ws(elements, comma + 1);
        if before > 0
            && elements[before - 1] == b'}'
            && elements.get(after) == Some(&b'{')
            && reads_whole::<T>(elements, after)
        {
            return Some(comma + 1);
        }
        from = comma + 1;
    }
}

/// Whether a `T` reads from `at`, followed by a `,` or the end of the elements.
fn reads_whole<'de, T: Deserialize<'de>>(elements: &'de [u8], at: usize) -> bool {
    let mut stream = serde_json::Deserializer::from_slice(&elements[at..]).into_iter::<T>();
    if !matches!(stream.next(), Some(Ok(_))) {
        return false;
    }
    let end = skip_ws(elements, at + stream.byte_offset());
    end == elements.len() || elements[end] == b','
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

fn trim_ws_end(bytes: &[u8], mut end: usize) -> usize {
    while end > 0 && bytes[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        id: u32,
        #[serde(default)]
        note: String,
        #[serde(default)]
        nested: Vec<serde_json::Value>,
    }

    fn ids(body: &[u8]) -> Option<Vec<u32>> {
        let elements = sole_array(body, "items")?;
        let shares = fold_in_shares(elements, |ids: &mut Vec<u32>, item: Item| ids.push(item.id))?;
        Some(shares.concat())
    }

    /// `{"items":[...]}` of `n` items, each `filler` long in a string, with `decoy` inside
    /// every item's note and nested array.
    fn body(n: u32, filler: usize, decoy: &str) -> Vec<u8> {
        let items: Vec<String> = (0..n)
            .map(|id| {
                format!(
                    r#"{{"id":{id},"note":"{decoy}{}","nested":[{{"a":1}},{{"b":2}}]}}"#,
                    "x".repeat(filler)
                )
            })
            .collect();
        format!(r#"{{"items":[{}]}}"#, items.join(",")).into_bytes()
    }

    #[test]
    fn shares_read_every_element_in_order() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let text = body(6000, 600, "");
        let read = ids(&text);
        if cores < 2 {
            assert_eq!(read, None, "one core reads the one-core way");
            return;
        }
        assert_eq!(read, Some((0..6000).collect::<Vec<_>>()));
    }

    #[test]
    fn a_cut_that_is_no_boundary_is_refused_not_trusted() {
        // Every item's note holds `},{"id":` text and its nested array `},{`: a cut can land
        // inside either, and must then give `None`, never a wrong list.
        let text = body(6000, 600, r#"},{\"id\":999999},{"#);
        let read = ids(&text);
        assert!(
            read.is_none() || read == Some((0..6000).collect::<Vec<_>>()),
            "a wrong list was trusted"
        );
        // With the filler all decoys, the cut lands in a note or a nested array.
        let decoys = r#"},{\"id\":7},{"#.repeat(60);
        let text = body(3000, 0, &decoys);
        let read = ids(&text);
        assert!(read.is_none() || read == Some((0..3000).collect::<Vec<_>>()));
    }

    #[test]
    fn a_share_must_end_on_its_cut() {
        let text = body(10, 0, r#"},{\"id\":7},{"#);
        let elements = sole_array(&text, "items").expect("the shape");
        let decoy = 1 + memchr::memchr(b',', elements).expect("a comma");
        assert!(
            !elements[decoy..].starts_with(br#"{"id":"#),
            "the first comma is the note's, not a boundary"
        );
        assert!(next_cut::<Item>(elements, 0).is_some_and(|cut| cut != decoy));
        let fold = |ids: &mut Vec<u32>, item: Item| ids.push(item.id);
        assert_eq!(read_share(elements, 0, decoy, &fold), None);
        let boundary = memchr::memmem::find(elements, br#"},{"id":1,"#).expect("item 1") + 2;
        assert_eq!(read_share(elements, 0, boundary, &fold), Some(vec![0]));
        assert_eq!(
            read_share(elements, boundary, elements.len(), &fold),
            Some((1..10).collect::<Vec<_>>())
        );
    }

    #[test]
    fn only_the_documented_shape_is_read_in_shares() {
        assert_eq!(
            sole_array(br#"{"items":[1,2]}"#, "items"),
            Some(&b"1,2"[..])
        );
        assert_eq!(
            sole_array(b" {\n \"items\" :\n [ 1 ] \n}\n", "items"),
            Some(&b"1 "[..])
        );
        assert_eq!(sole_array(br#"{"other":[1]}"#, "items"), None);
        assert_eq!(sole_array(br#"{"items":[1],"x":2}"#, "items"), None);
        assert_eq!(sole_array(br#"{"items_x":[1]}"#, "items"), None);
        assert_eq!(sole_array(br#"{"items":{}}"#, "items"), None);
        assert_eq!(sole_array(b"", "items"), None);
        // A key after the array ends in `]}` too: the shares' reading refuses it.
        let mut text = body(6000, 600, "");
        text.truncate(text.len() - 1);
        text.extend_from_slice(br#","x":[{"id":1}]}"#);
        assert_eq!(ids(&text), None);
    }

    #[test]
    fn an_element_that_does_not_read_gives_none() {
        let mut text = body(6000, 600, "");
        let at = text.len() * 3 / 4;
        let id = text[at..]
            .windows(5)
            .position(|w| w == b"\"id\":")
            .expect("an id")
            + at;
        text[id + 5] = b'"';
        assert_eq!(ids(&text), None);
    }
}
