//! [`PackedTable`]: an organization's declared attributes packed into one allocation of bytes,
//! the binary codec that writes them, and `Unpacker`, which reads them back.
//!
//! The bytes are made by [`PackedTable::pack`] and by nothing else, and are never sent; the spec
//! cache keeps them for the build that made them only (its key names the build, and
//! [`PackedTable::from_kept`] checks them whole), so the encoding may change between versions:
//! digests hash what a table holds (as canonical JSON, secret references by path), never these
//! bytes.

use std::fmt;
use std::sync::Arc;

use super::{SecretRef, Table, Value};

/// A [`Table`] packed into one allocation of bytes: how a spec holds the attributes of each
/// organization. Unpacked, a table of nested values is a score of small allocations; at a
/// hundred thousand organizations they were a third of a plan's memory, and a plan that finds
/// everything unchanged never looks at them. Shared, not copied: a plan's change and a state
/// record made from the spec hold the same bytes (a clone is a reference count).
#[derive(Clone, PartialEq, Eq)]
pub struct PackedTable(Arc<[u8]>);

/// The deepest nesting of tables and arrays [`PackedTable::from_kept`] reads back: far more than
/// any spec's; a deeper table is simply not kept, and read from its text each time.
const KEPT_DEPTH: usize = 128;

// The encoding: a tag byte, then the value. Lengths and counts are LEB128. What a provider
// reports (`reported::Reported`) is written in the same words, with two more JSON has.
pub(super) const TAG_FALSE: u8 = 0;
pub(super) const TAG_TRUE: u8 = 1;
pub(super) const TAG_INT: u8 = 2;
pub(super) const TAG_FLOAT: u8 = 3;
pub(super) const TAG_STRING: u8 = 4;
pub(super) const TAG_ARRAY: u8 = 5;
pub(super) const TAG_TABLE: u8 = 6;
const TAG_ENV: u8 = 7;
const TAG_FILE: u8 = 8;
/// JSON's `null`, inside a reported value of any kind (Heron's `static_data.value`).
pub(super) const TAG_NULL: u8 = 9;
/// An integer above `i64::MAX`, which only JSON can say.
pub(super) const TAG_UINT: u8 = 10;

/// Writes a length as LEB128, the way every length in the packed bytes is written (the spec
/// cache's entries write theirs the same way, read back by [`Unpacker`]).
pub(crate) fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        #[expect(clippy::cast_possible_truncation, reason = "masked to seven bits")]
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Writes a string as its length, then its bytes.
pub(crate) fn put_text(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

impl PackedTable {
    pub fn pack(declared: &Table) -> PackedTable {
        use self::put_len as len;
        use self::put_text as text;
        fn table(out: &mut Vec<u8>, t: &Table) {
            len(out, t.len());
            for (k, v) in t {
                text(out, k);
                value(out, v);
            }
        }
        fn value(out: &mut Vec<u8>, v: &Value) {
            match v {
                Value::Bool(false) => out.push(TAG_FALSE),
                Value::Bool(true) => out.push(TAG_TRUE),
                Value::Int(i) => {
                    out.push(TAG_INT);
                    out.extend_from_slice(&i.to_le_bytes());
                }
                Value::Float(x) => {
                    out.push(TAG_FLOAT);
                    out.extend_from_slice(&x.to_bits().to_le_bytes());
                }
                Value::String(s) => {
                    out.push(TAG_STRING);
                    text(out, s);
                }
                Value::Array(items) => {
                    out.push(TAG_ARRAY);
                    len(out, items.len());
                    for item in items {
                        value(out, item);
                    }
                }
                Value::Table(t) => {
                    out.push(TAG_TABLE);
                    table(out, t);
                }
                Value::Secret(SecretRef::Env(name)) => {
                    out.push(TAG_ENV);
                    text(out, name);
                }
                Value::Secret(SecretRef::File(path)) => {
                    out.push(TAG_FILE);
                    text(out, path);
                }
            }
        }
        let mut out = Vec::with_capacity(128);
        table(&mut out, declared);
        PackedTable(Arc::from(out))
    }

    /// The packed bytes, for the spec cache to keep (`spec::checked`): read back only by
    /// [`PackedTable::from_kept`] of the same build, since the encoding may change.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Bytes [`PackedTable::as_bytes`] gave, as kept outside the process: `None` unless they
    /// are one whole table as `pack` writes it (every tag known, every length within the bytes,
    /// text UTF-8, keys in strictly ascending order), so that nothing kept, however damaged,
    /// can make [`PackedTable::unpack`] read a different table or stop short. Nesting deeper
    /// than [`KEPT_DEPTH`] is refused too (a miss for the cache, never a deep recursion).
    pub(crate) fn from_kept(bytes: &[u8]) -> Option<PackedTable> {
        fn table(bytes: &mut Unpacker<'_>, depth: usize) -> Option<()> {
            let depth = depth.checked_sub(1)?;
            let mut previous: Option<&str> = None;
            for _ in 0..bytes.len()? {
                let key = bytes.text()?;
                if previous.is_some_and(|p| p >= key) {
                    return None;
                }
                previous = Some(key);
                value(bytes, depth)?;
            }
            Some(())
        }
        fn value(bytes: &mut Unpacker<'_>, depth: usize) -> Option<()> {
            match bytes.byte()? {
                TAG_FALSE | TAG_TRUE => {}
                TAG_INT | TAG_FLOAT => {
                    bytes.take(8)?;
                }
                TAG_STRING | TAG_ENV | TAG_FILE => {
                    bytes.text()?;
                }
                TAG_ARRAY => {
                    let depth = depth.checked_sub(1)?;
                    for _ in 0..bytes.len()? {
                        value(bytes, depth)?;
                    }
                }
                TAG_TABLE => table(bytes, depth)?,
                _ => return None,
            }
            Some(())
        }
        let mut reader = Unpacker(bytes);
        table(&mut reader, KEPT_DEPTH)?;
        reader.0.is_empty().then(|| PackedTable(bytes.into()))
    }

    /// The table again. The bytes were made by [`PackedTable::pack`] and by nothing else, so
    /// they always read back whole.
    pub fn unpack(&self) -> Table {
        let mut bytes = Unpacker(&self.0);
        let table = bytes.table();
        debug_assert!(
            table.is_some() && bytes.0.is_empty(),
            "a packed table reads back"
        );
        table.unwrap_or_default()
    }

    /// Calls `found` with the dotted path (`auth.token`, `keys[0]`), the kind (`env` or `file`)
    /// and the name of every secret reference in the table, in key order, without unpacking it.
    pub fn each_secret(&self, mut found: impl FnMut(&[u8], &'static str, &str)) {
        type Found<'f> = &'f mut dyn FnMut(&[u8], &'static str, &str);
        fn walk(bytes: &mut Unpacker<'_>, path: &mut Vec<u8>, found: Found<'_>) -> Option<()> {
            match bytes.byte()? {
                TAG_FALSE | TAG_TRUE => {}
                TAG_INT | TAG_FLOAT => {
                    bytes.take(8)?;
                }
                TAG_STRING => {
                    bytes.raw_text()?;
                }
                TAG_ARRAY => {
                    for i in 0..bytes.len()? {
                        use std::io::Write as _;
                        let at = path.len();
                        let _ = write!(path, "[{i}]");
                        walk(bytes, path, found)?;
                        path.truncate(at);
                    }
                }
                TAG_TABLE => entries(bytes, path, false, found)?,
                TAG_ENV => found(path, "env", bytes.text()?),
                TAG_FILE => found(path, "file", bytes.text()?),
                _ => return None,
            }
            Some(())
        }
        fn entries(
            bytes: &mut Unpacker<'_>,
            path: &mut Vec<u8>,
            top: bool,
            found: Found<'_>,
        ) -> Option<()> {
            for _ in 0..bytes.len()? {
                // Written from text: only a secret's name, handed on as text, is checked.
                let key = bytes.raw_text()?;
                let at = path.len();
                if !top {
                    path.push(b'.');
                }
                path.extend_from_slice(key);
                walk(bytes, path, found)?;
                path.truncate(at);
            }
            Some(())
        }
        let mut path = Vec::with_capacity(64);
        let read = entries(&mut Unpacker(&self.0), &mut path, true, &mut found);
        debug_assert!(read.is_some(), "a packed table reads back");
    }
}

/// A value read in place from packed bytes (a spec's [`PackedTable`] or what a provider
/// reported), without allocating: tables and arrays are read as they are walked. Text (a
/// string, a key) is its bytes, as written from a `str`, so UTF-8 already: a comparison need
/// not check it again, and bytes order as their text does.
#[derive(Clone, Debug)]
pub(crate) enum Item<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Text(&'a [u8]),
    Array(Items<'a>),
    Table(Entries<'a>),
    /// A secret reference (declared only; never reported).
    Secret,
}

/// The head of a packed value ([`Unpacker::head`]): what it is, with a scalar's value; an
/// array's or a table's count, its items or entries still to read.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Head<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Text(&'a [u8]),
    Array(usize),
    Table(usize),
    /// A secret reference (declared only; never reported), its name read past.
    Secret,
}

/// The entries of a packed table, in key order.
#[derive(Clone, Debug)]
pub(crate) struct Entries<'a> {
    bytes: Unpacker<'a>,
    left: usize,
}

/// The items of a packed array, in order.
#[derive(Clone, Debug)]
pub(crate) struct Items<'a> {
    bytes: Unpacker<'a>,
    left: usize,
}

impl<'a> Entries<'a> {
    /// The entries of the table `bytes` start with (its count, then the entries).
    pub(super) fn of_table(bytes: &'a [u8]) -> Entries<'a> {
        let mut bytes = Unpacker(bytes);
        let left = bytes.len().unwrap_or(0);
        Entries { bytes, left }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a [u8], Item<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        let key = self.bytes.raw_text()?;
        Some((key, self.bytes.item()?))
    }
}

impl Items<'_> {
    /// How many items the array holds.
    pub(crate) fn remaining(&self) -> usize {
        self.left
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        self.bytes.item()
    }
}

impl fmt::Debug for PackedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.unpack().fmt(f)
    }
}

/// Reads what [`PackedTable::pack`] (or [`put_len`] and [`put_text`]) wrote; every read is
/// `None` past the end or on bytes that are not what was written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unpacker<'a>(pub(crate) &'a [u8]);

impl<'a> Unpacker<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    pub(crate) fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub(crate) fn len(&mut self) -> Option<usize> {
        let mut n = 0usize;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// A text's bytes, not checked as UTF-8: for walks over bytes this codec wrote from text.
    pub(crate) fn raw_text(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    pub(crate) fn text(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn eight(&mut self) -> Option<[u8; 8]> {
        self.take(8)?.try_into().ok()
    }

    /// One value's head, this reader moved past it: a scalar whole, a secret's name, an
    /// array's or a table's count only, its items or entries next (see [`Unpacker::skip_rest`]),
    /// for a walk that reads each byte once. ([`Unpacker::item`] moves past the whole value,
    /// so a walk through nested tables with it reads each byte once per level.)
    pub(crate) fn head(&mut self) -> Option<Head<'a>> {
        Some(match self.byte()? {
            TAG_NULL => Head::Null,
            TAG_FALSE => Head::Bool(false),
            TAG_TRUE => Head::Bool(true),
            TAG_INT => Head::Int(i64::from_le_bytes(self.eight()?)),
            TAG_UINT => Head::Uint(u64::from_le_bytes(self.eight()?)),
            TAG_FLOAT => Head::Float(f64::from_bits(u64::from_le_bytes(self.eight()?))),
            TAG_STRING => Head::Text(self.raw_text()?),
            TAG_ENV | TAG_FILE => {
                self.raw_text()?;
                Head::Secret
            }
            TAG_ARRAY => Head::Array(self.len()?),
            TAG_TABLE => Head::Table(self.len()?),
            _ => return None,
        })
    }

    /// Moves past what is left of the value `head` began: an array's items, a table's entries.
    pub(crate) fn skip_rest(&mut self, head: &Head<'_>) -> Option<()> {
        match *head {
            Head::Array(n) => {
                for _ in 0..n {
                    self.skip()?;
                }
            }
            Head::Table(n) => {
                for _ in 0..n {
                    self.raw_text()?;
                    self.skip()?;
                }
            }
            _ => {}
        }
        Some(())
    }

    /// Moves past one value, whatever it holds.
    pub(crate) fn skip(&mut self) -> Option<()> {
        match self.byte()? {
            TAG_FALSE | TAG_TRUE | TAG_NULL => {}
            TAG_INT | TAG_FLOAT | TAG_UINT => {
                self.take(8)?;
            }
            TAG_STRING | TAG_ENV | TAG_FILE => {
                self.raw_text()?;
            }
            TAG_ARRAY => {
                for _ in 0..self.len()? {
                    self.skip()?;
                }
            }
            TAG_TABLE => {
                for _ in 0..self.len()? {
                    self.raw_text()?;
                    self.skip()?;
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// One value read in place, this reader moved past it.
    pub(super) fn item(&mut self) -> Option<Item<'a>> {
        let head = self.head()?;
        // An array's or a table's items start here; this reader moves past them all, and the
        // nested reader walks them when asked.
        let inner = *self;
        self.skip_rest(&head)?;
        Some(match head {
            Head::Null => Item::Null,
            Head::Bool(b) => Item::Bool(b),
            Head::Int(i) => Item::Int(i),
            Head::Uint(u) => Item::Uint(u),
            Head::Float(x) => Item::Float(x),
            Head::Text(t) => Item::Text(t),
            Head::Secret => Item::Secret,
            Head::Array(left) => Item::Array(Items { bytes: inner, left }),
            Head::Table(left) => Item::Table(Entries { bytes: inner, left }),
        })
    }

    fn table(&mut self) -> Option<Table> {
        let n = self.len()?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let key = self.text()?.to_string();
            entries.push((key, self.value()?));
        }
        // Packed from a table, so in key order and without repeats already.
        Some(Table(entries))
    }

    fn value(&mut self) -> Option<Value> {
        Some(match self.byte()? {
            TAG_FALSE => Value::Bool(false),
            TAG_TRUE => Value::Bool(true),
            TAG_INT => Value::Int(i64::from_le_bytes(self.eight()?)),
            TAG_FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(self.eight()?))),
            TAG_STRING => Value::String(self.text()?.to_string()),
            TAG_ARRAY => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value()?);
                }
                Value::Array(items)
            }
            TAG_TABLE => Value::Table(self.table()?),
            TAG_ENV => Value::Secret(SecretRef::Env(self.text()?.to_string())),
            TAG_FILE => Value::Secret(SecretRef::File(self.text()?.to_string())),
            _ => return None,
        })
    }
}
