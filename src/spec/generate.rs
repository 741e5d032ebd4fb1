//! Spec text for organizations that exist at a provider and that no spec or state holds: what
//! `orgform discover` writes. Pure: what the provider reported in, TOML text out.
//!
//! The reverse of the wire mapping is done already (`RemoteOrg::attributes` holds spec names);
//! this module adds what a valid spec needs beyond what was reported, each addition commented in
//! the file: secrets as `{ env = "..." }` references (a provider never reports one), and a
//! placeholder for a required key no documented read returns. Addresses come from natural keys:
//! valid names, unique across the specs, and the same for the same organization on every run.
//!
//! The text is written directly, one organization at a time, already in `orgform fmt`'s
//! canonical form (each table's keys in schema order, its tables where they were added): a
//! `toml_edit` document of twenty thousand tables, rendered and then parsed again to be
//! formatted, was most of a `discover`'s time and memory. Only the leaves (a value, a key that
//! needs quotes) are rendered by `toml_edit`, as `fmt` would render them.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use toml_edit::Value;

use crate::catalog::schema::{Field, Format, Kind, ORG_KEYS, Rule};
use crate::model::packed::{Entries, Item};
use crate::model::{NaturalKey, ProviderType, RemoteOrg};
use crate::spec::format::sort_value;
use crate::spec::valid_name;

/// One generated spec file.
#[derive(Debug)]
pub(crate) struct Generated {
    pub(crate) text: String,
    /// The addresses written, in file order.
    pub(crate) addresses: Vec<String>,
    /// Secret references written, each a variable to set before the organization is ever created.
    pub(crate) secrets: Vec<String>,
    /// Keys written with a placeholder because the provider reported nothing for them.
    pub(crate) placeholders: usize,
    /// Where each organization's tables start in `text` (its comment line), in file order.
    pub(crate) starts: Vec<usize>,
}

/// The spec file for `orgs` (found on instance `instance`, of type `provider_type`), with an
/// address for each that is not in `taken`; the addresses given are added to `taken`.
#[cfg(test)]
pub(crate) fn spec_file(
    instance: &str,
    provider_type: ProviderType,
    orgs: &[&RemoteOrg],
    taken: &mut BTreeSet<String>,
) -> Generated {
    let mut sorted: Vec<&RemoteOrg> = orgs.to_vec();
    let addresses = addresses(&mut sorted, taken);
    spec_text(instance, provider_type, &sorted, &addresses)
}

/// Puts `orgs` in the order their file lists them (by natural key, then remote id) and gives
/// each an address not in `taken`, in that order; the addresses given are added to `taken`.
/// Cheap next to the text, and all that depends on the files made before: the text of each
/// file can then be written at the same time as the others' ([`spec_text`]).
pub(crate) fn addresses<O: std::borrow::Borrow<RemoteOrg>>(
    orgs: &mut [O],
    taken: &mut BTreeSet<String>,
) -> Vec<String> {
    orgs.sort_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        (&a.natural_key, &a.remote_id).cmp(&(&b.natural_key, &b.remote_id))
    });
    orgs.iter()
        .map(|org| {
            let org = org.borrow();
            address_for(&org.natural_key, &org.remote_id, taken)
        })
        .collect()
}

/// The spec file for `orgs` (found on instance `instance`, of type `provider_type`), in the
/// order given, each at the address beside it (see [`addresses`]).
pub(crate) fn spec_text<O: std::borrow::Borrow<RemoteOrg>>(
    instance: &str,
    provider_type: ProviderType,
    orgs: &[O],
    addresses: &[String],
) -> Generated {
    let schema = provider_type.schema();
    let mut generated = Generated {
        text: String::new(),
        addresses: Vec::new(),
        secrets: Vec::new(),
        placeholders: 0,
        starts: Vec::new(),
    };
    let mut body = String::new();
    let mut path = vec!["org".to_string(), String::new()];
    let provider = Entry::Text(Value::from(instance).to_string());
    for (i, (org, address)) in orgs.iter().zip(addresses).enumerate() {
        let org = org.borrow();
        let mut table = Node::default();
        let mut fill = Fill {
            env_prefix: env_name(address),
            secrets: &mut generated.secrets,
            placeholders: &mut generated.placeholders,
        };
        let reported = Reported::of(org.attributes.entries());
        fill.table(&mut table, schema.org, &reported, "", true);
        fill.rules(&mut table, schema.org, schema.org_rules);
        path[1] = key_text(address);
        let prefix = format!("\n# {provider_type} id {}\n", one_line(&org.remote_id));
        // After the blank line that parts it from the one before.
        generated.starts.push(body.len() + 1);
        write_table(
            &mut body,
            Some(&prefix),
            &mut path,
            false,
            &table,
            Some(&provider),
        );
        generated.addresses.push(address.clone());
        if i == 0 {
            // The others are about as long: one allocation, not a copy at every doubling.
            body.reserve(body.len().saturating_mul(orgs.len()) / 8 * 9);
        }
    }
    let header = file_header(instance, provider_type, &generated);
    for start in &mut generated.starts {
        *start += header.len();
    }
    let mut text = String::with_capacity(header.len() + body.len());
    text.push_str(&header);
    text.push_str(&body);
    generated.text = text;
    generated
}

/// One table as it is filled: its fields in the order they were added (a field is added once),
/// each with its place among the table's fields (`rank`), the order `orgform fmt` gives values.
#[derive(Default)]
struct Node {
    entries: Vec<(Slot, Entry)>,
}

/// A field of a table as it is filled: which field, and where the schema lists it.
#[derive(Clone, Copy)]
struct Slot {
    field: &'static Field,
    rank: usize,
}

enum Entry {
    Value(Value),
    /// A value's TOML text, as `toml_edit` would write it.
    Text(String),
    /// A table of its own, with the comment lines written above its header, if any.
    Table(Option<String>, Node),
    /// An array of tables, `[[...]]`.
    Tables(Vec<Node>),
}

impl Node {
    fn insert(&mut self, slot: Slot, entry: Entry) {
        self.entries.push((slot, entry));
    }

    fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(slot, _)| slot.field.name == key)
    }
}

/// Writes `node` as the table at `path` (keys already as TOML writes them), then the tables
/// under it in the order they were added, as `orgform fmt` leaves a document: each table's
/// values in the order of the schema's fields (`provider`, an organization's first, when
/// given), a blank line before each header unless `prefix` says what comes before it.
/// The comment a generated file opens with: where its organizations were found, and what its
/// `# secret` and `# placeholder` marks mean where it has any.
fn file_header(instance: &str, provider_type: ProviderType, generated: &Generated) -> String {
    let mut header = format!(
        "# Organizations found at provider `{instance}` ({provider_type}) that no spec or state holds,\n\
         # written by `orgform discover`. Review them and keep this file in the specs folder: the next\n\
         # plan adopts each one (no create is sent) when what it declares matches what the provider\n\
         # reports.\n"
    );
    if !generated.secrets.is_empty() {
        header.push_str(
            "# `# secret`: a provider never reports a secret; each is a reference to a variable that is\n\
             # read only if the organization is ever created again.\n",
        );
    }
    if generated.placeholders > 0 {
        header.push_str(&format!(
            "# `# placeholder`: required by the spec format, but no read of {provider_type} returns it.\n\
             # Never compared; sent only if the organization is ever created again. Set what it holds.\n"
        ));
    }
    header
}

fn write_table(
    out: &mut String,
    prefix: Option<&str>,
    path: &mut Vec<String>,
    array: bool,
    node: &Node,
    provider: Option<&Entry>,
) {
    out.push_str(prefix.unwrap_or("\n"));
    out.push_str(if array { "[[" } else { "[" });
    for (i, key) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(key);
    }
    out.push_str(if array { "]]\n" } else { "]\n" });
    let mut values: Vec<(Slot, &Entry)> = node
        .entries
        .iter()
        .filter(|(_, entry)| matches!(entry, Entry::Value(_) | Entry::Text(_)))
        .map(|(slot, entry)| (*slot, entry))
        .collect();
    // Filled in the schema's order but for the placeholders of rules across fields, added last.
    if !values.is_sorted_by_key(|(slot, _)| slot.rank) {
        values.sort_by_key(|(slot, _)| slot.rank);
    }
    let provider = provider.map(|entry| (PROVIDER, entry));
    for (slot, entry) in provider.into_iter().chain(values) {
        push_key(out, slot.field.name);
        out.push_str(" = ");
        match entry {
            Entry::Text(text) => out.push_str(text),
            Entry::Value(value) if needs_sorting(value) => {
                let mut value = value.clone();
                sort_value(&mut value, &slot.field.kind);
                out.push_str(&value.to_string());
            }
            Entry::Value(value) => out.push_str(&value.to_string()),
            Entry::Table(..) | Entry::Tables(_) => {}
        }
        out.push('\n');
    }
    for (slot, entry) in &node.entries {
        match entry {
            Entry::Value(_) | Entry::Text(_) => continue,
            Entry::Table(comment, table) => {
                path.push(key_text(slot.field.name));
                write_table(out, comment.as_deref(), path, false, table, None);
            }
            Entry::Tables(tables) => {
                path.push(key_text(slot.field.name));
                for table in tables {
                    write_table(out, None, path, true, table, None);
                }
            }
        }
        path.pop();
    }
}

/// An organization's `provider`, the first of its keys.
const PROVIDER: Slot = Slot {
    field: &ORG_KEYS[0],
    rank: 0,
};

/// A key as TOML writes it: bare where it may be, quoted otherwise.
fn key_text(key: &str) -> String {
    let mut text = String::new();
    push_key(&mut text, key);
    text
}

fn push_key(out: &mut String, key: &str) {
    // Field names and addresses are bare keys; `toml_edit` quotes the rest (a map's keys).
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        out.push_str(key);
    } else if key.chars().any(crate::escape::is_unsafe) {
        // `toml_edit` leaves bidirectional controls and separators raw in a quoted key: in a
        // file meant to be reviewed and committed, every one is written as an escape.
        out.push_str(&basic_string(key));
    } else {
        out.push_str(&toml_edit::Key::new(key).display_repr());
    }
}

/// Whether `value` holds an inline table, the only value `sort_value` may change.
fn needs_sorting(value: &Value) -> bool {
    match value {
        Value::InlineTable(_) => true,
        Value::Array(items) => items.iter().any(needs_sorting),
        _ => false,
    }
}

/// A valid address for the organization with this natural key, not in `taken` (and added to
/// it): the key's letters and digits in lower case, `_` between words. Two keys that make the
/// same name are told apart by a short hash of the key and remote id, so that an address never
/// depends on which other organizations exist.
pub(crate) fn address_for(
    key: &NaturalKey,
    remote_id: &str,
    taken: &mut BTreeSet<String>,
) -> String {
    let mut slug = String::new();
    // A URL's scheme says nothing about the organization (Heron's key is a CRM and a URL).
    let text = key.0.replace("https://", "").replace("http://", "");
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let mut slug = slug.trim_matches('_').to_string();
    if !slug.starts_with(|c: char| c.is_ascii_alphabetic()) {
        slug.insert_str(0, "org_");
    }
    slug.truncate(48);
    let slug = slug.trim_end_matches('_').to_string();
    let address = if taken.contains(&slug) {
        let mut hasher = Sha256::new();
        hasher.update(key.0.as_bytes());
        hasher.update([0]);
        hasher.update(remote_id.as_bytes());
        let hash = hasher.finalize();
        let mut name = format!("{slug}_");
        for byte in &hash[..4] {
            name.push_str(&format!("{byte:02x}"));
        }
        // A clash of hashes too (or a key made only of what was dropped): count up.
        let mut n = 2;
        let base = name.clone();
        while taken.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        name
    } else {
        slug
    };
    debug_assert!(valid_name(&address), "{address}");
    taken.insert(address.clone());
    address
}

/// `ORGFORM_` and the address in upper case, `-` as `_`: the start of its secrets' variables.
fn env_name(address: &str) -> String {
    let mut name = String::from("ORGFORM_");
    name.extend(address.chars().map(|c| {
        if c == '-' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    name
}

/// Text for a one-line comment: no line break, control or bidi character from a provider's answer.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || crate::escape::is_unsafe(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// What a provider reported for one table, read in place: its entries, looked up by key (a
/// table holds a few, so a scan is cheapest; the last of a key repeated, as a JSON object's).
#[derive(Default)]
struct Reported<'a>(Vec<(&'a [u8], Item<'a>)>);

impl<'a> Reported<'a> {
    fn of(entries: Entries<'a>) -> Reported<'a> {
        Reported(entries.collect())
    }

    fn get(&self, key: &str) -> Option<&Item<'a>> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, item)| item)
    }
}

/// What one organization's table is filled with beyond what was reported.
struct Fill<'a> {
    env_prefix: String,
    secrets: &'a mut Vec<String>,
    placeholders: &'a mut usize,
}

impl Fill<'_> {
    /// Writes `reported` (spec names) into `table` by `fields`, with a secret reference for
    /// each secret field and, when `required_too`, a placeholder for each required field not
    /// reported.
    fn table(
        &mut self,
        table: &mut Node,
        fields: &'static [Field],
        reported: &Reported<'_>,
        path: &str,
        required_too: bool,
    ) {
        for (rank, field) in fields.iter().enumerate() {
            let slot = Slot { field, rank };
            // Most fields are not reported: their path is written out only when it is used.
            let here = || {
                if path.is_empty() {
                    field.name.to_string()
                } else {
                    format!("{path}.{}", field.name)
                }
            };
            match (reported.get(field.name), &field.kind) {
                (_, Kind::Secret) if field.required => self.secret(table, slot, &here()),
                (_, Kind::Secret) => {}
                (_, Kind::Map(Kind::Secret)) if field.required => {
                    let here = here();
                    let comment = format!(
                        "# secret: `{here}` is never reported. Declare each of its entries by reference\n\
                         # (like name = {{ env = \"{}_{}_...\" }}) before the organization is ever created again.\n",
                        self.env_prefix,
                        here.replace(['.', '-'], "_").to_ascii_uppercase()
                    );
                    table.insert(slot, Entry::Table(Some(comment), Node::default()));
                }
                (Some(item), kind) => {
                    let entry = self.entry(kind, item, &here);
                    table.insert(slot, entry);
                }
                (None, kind) if required_too && field.required => {
                    self.placeholder(table, slot, kind, &here());
                }
                (None, _) => {}
            }
        }
    }

    /// Rules across fields a placeholder can satisfy: one of an `AnyOf` group, the other half
    /// of a `Pair`.
    fn rules(&mut self, table: &mut Node, fields: &'static [Field], rules: &[Rule]) {
        let find = |name: &str| {
            fields
                .iter()
                .enumerate()
                .find(|(_, f)| f.name == name)
                .map(|(rank, field)| Slot { field, rank })
        };
        for rule in rules {
            let missing = match rule {
                Rule::AnyOf(names) if !names.iter().any(|n| table.contains_key(n)) => {
                    names.first().copied()
                }
                Rule::Pair(a, b) if table.contains_key(a) != table.contains_key(b) => {
                    Some(if table.contains_key(a) { *b } else { *a })
                }
                _ => None,
            };
            if let Some(slot) = missing.and_then(find) {
                if matches!(slot.field.kind, Kind::Secret) {
                    self.secret(table, slot, slot.field.name);
                } else {
                    self.placeholder(table, slot, &slot.field.kind, slot.field.name);
                }
            }
        }
    }

    fn secret(&mut self, table: &mut Node, slot: Slot, path: &str) {
        let variable = format!(
            "{}_{}",
            self.env_prefix,
            path.replace(['.', '-'], "_").to_ascii_uppercase()
        );
        // As `toml_edit` writes the inline table `{ env = VARIABLE }`, with its comment.
        let text = format!("{{ env = {} }} # secret", Value::from(variable.as_str()));
        table.insert(slot, Entry::Text(text));
        self.secrets.push(variable);
    }

    fn placeholder(&mut self, table: &mut Node, slot: Slot, kind: &'static Kind, path: &str) {
        let entry = match kind {
            // The keys inside say which are placeholders.
            Kind::Object(fields) => {
                let mut inner = Node::default();
                self.table(&mut inner, fields, &Reported::default(), path, true);
                Entry::Table(None, inner)
            }
            other => {
                let mut value = placeholder_value(other);
                value.decor_mut().set_suffix(" # placeholder");
                *self.placeholders += 1;
                Entry::Value(value)
            }
        };
        table.insert(slot, entry);
    }

    /// A reported value as TOML: objects as tables, arrays of objects as arrays of tables.
    fn entry(&mut self, kind: &'static Kind, item: &Item<'_>, path: &dyn Fn() -> String) -> Entry {
        match (kind, item) {
            (Kind::Object(fields), Item::Table(entries)) => {
                let mut inner = Node::default();
                let reported = Reported::of(entries.clone());
                self.table(&mut inner, fields, &reported, &path(), true);
                Entry::Table(None, inner)
            }
            (Kind::Array(Kind::Object(fields)), Item::Array(items))
                if items.remaining() > 0
                    && items.clone().all(|item| matches!(item, Item::Table(_))) =>
            {
                let path = path();
                let mut tables = Vec::with_capacity(items.remaining());
                for (i, item) in items.clone().enumerate() {
                    let mut inner = Node::default();
                    if let Item::Table(entries) = item {
                        let reported = Reported::of(entries);
                        self.table(&mut inner, fields, &reported, &format!("{path}[{i}]"), true);
                    }
                    tables.push(inner);
                }
                Entry::Tables(tables)
            }
            (_, item) => leaf(item),
        }
    }
}

/// A reported value that is no table: a scalar written as [`toml_value`] would write it, without
/// building a `toml_edit` value for it; anything else as that value.
fn leaf(item: &Item<'_>) -> Entry {
    match item {
        Item::Text(s) => Entry::Text(basic_string(&String::from_utf8_lossy(s))),
        Item::Bool(b) => Entry::Text(b.to_string()),
        Item::Int(i) => Entry::Text(i.to_string()),
        Item::Uint(u) if i64::try_from(*u).is_ok() => Entry::Text(u.to_string()),
        other => Entry::Value(toml_value(other.clone())),
    }
}

/// A reported value as a TOML one, as its JSON was written: a number JSON can't hold (not
/// finite), a null (the reverse mapping drops them) or a secret (never reported) as `""`, an
/// integer above `i64::MAX` as a float.
fn toml_value(item: Item<'_>) -> Value {
    match item {
        Item::Bool(b) => Value::from(b),
        Item::Int(i) => Value::from(i),
        #[expect(
            clippy::cast_precision_loss,
            reason = "as JSON reads an integer TOML can't hold"
        )]
        Item::Uint(u) => i64::try_from(u).map_or(Value::from(u as f64), Value::from),
        Item::Float(x) if x.is_finite() => Value::from(x),
        Item::Text(s) => toml_string(&String::from_utf8_lossy(s)),
        Item::Array(items) => Value::Array(items.map(toml_value).collect()),
        Item::Table(entries) => {
            let mut table = toml_edit::InlineTable::new();
            for (k, v) in entries {
                table.insert(&*String::from_utf8_lossy(k), toml_value(v));
            }
            Value::InlineTable(table)
        }
        Item::Float(_) | Item::Null | Item::Secret => Value::from(""),
    }
}

/// A string as a one-line TOML basic string, every character that is unsafe to show (controls,
/// bidi and invisible marks) escaped: a value a provider reports can't span lines that would
/// read as tables of their own in a review, nor reorder or hide text on a terminal.
fn toml_string(text: &str) -> Value {
    let repr = basic_string(text);
    // A basic string built as above always parses; the plain form is as safe, only less plain.
    repr.parse().unwrap_or_else(|_| Value::from(text))
}

/// The TOML text of [`toml_string`]: a basic string, unsafe characters escaped.
fn basic_string(text: &str) -> String {
    let mut repr = String::with_capacity(text.len() + 2);
    repr.push('"');
    for c in text.chars() {
        match c {
            '"' => repr.push_str("\\\""),
            '\\' => repr.push_str("\\\\"),
            c if (crate::escape::is_unsafe(c) || c.is_control()) && u32::from(c) > 0xFFFF => {
                repr.push_str(&format!("\\U{:08X}", u32::from(c)));
            }
            c if crate::escape::is_unsafe(c) || c.is_control() => {
                repr.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => repr.push(c),
        }
    }
    repr.push('"');
    repr
}

/// A value of `kind` that passes validation and says it is a placeholder where it can.
fn placeholder_value(kind: &Kind) -> Value {
    match kind {
        Kind::String(text) => Value::from(match text.format {
            Some(Format::Url) => "https://placeholder.invalid".to_string(),
            Some(Format::Email) => "placeholder@example.invalid".to_string(),
            Some(Format::Date) => "1970-01-01".to_string(),
            Some(Format::Digits(n)) => "0".repeat(n),
            Some(Format::Numeric) => "0".to_string(),
            Some(Format::CountryCode) => "US".to_string(),
            Some(Format::TemplateId) => "0TT000000000000".to_string(),
            Some(Format::ApiVersion) => "60.0".to_string(),
            None => {
                let mut text_value = "PLACEHOLDER".to_string();
                if let Some(max) = text.max_len {
                    text_value.truncate(max.max(1));
                }
                text_value
            }
        }),
        Kind::Integer { min, max } => {
            Value::from(min.unwrap_or(0).max(0).min(max.unwrap_or(i64::MAX)))
        }
        Kind::Float => Value::from(0.0),
        Kind::Bool => Value::from(false),
        Kind::Enum(values) => Value::from(values.first().copied().unwrap_or("")),
        Kind::IntEnum(values) => Value::from(values.first().copied().unwrap_or(0)),
        Kind::Array(_) => Value::Array(toml_edit::Array::new()),
        Kind::Map(_) | Kind::Object(_) => Value::InlineTable(toml_edit::InlineTable::new()),
        Kind::Any | Kind::Secret => Value::from(""),
    }
}

/// The way `spec_file` wrote a file before it wrote text directly: a `toml_edit` document,
/// rendered, then formatted. What it wrote is what `spec_file` must still write, byte for byte.
#[cfg(test)]
mod before {
    use std::collections::BTreeSet;

    use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

    use super::{Generated, address_for, env_name, one_line, placeholder_value, toml_string};
    use crate::catalog::schema::{Field, Kind, Rule};
    use crate::model::{ProviderType, RemoteOrg};

    pub(super) fn spec_file(
        instance: &str,
        provider_type: ProviderType,
        orgs: &[&RemoteOrg],
        taken: &mut BTreeSet<String>,
    ) -> Generated {
        let schema = provider_type.schema();
        let mut doc = DocumentMut::new();
        let mut all = Table::new();
        all.set_implicit(true);
        let mut generated = Generated {
            text: String::new(),
            addresses: Vec::new(),
            secrets: Vec::new(),
            placeholders: 0,
            starts: Vec::new(),
        };
        let mut sorted: Vec<&RemoteOrg> = orgs.to_vec();
        sorted.sort_by(|a, b| (&a.natural_key, &a.remote_id).cmp(&(&b.natural_key, &b.remote_id)));
        for org in sorted {
            let address = address_for(&org.natural_key, &org.remote_id, taken);
            let mut table = Table::new();
            table.decor_mut().set_prefix(format!(
                "\n# {provider_type} id {}\n",
                one_line(&org.remote_id)
            ));
            table.insert("provider", toml_edit::value(instance));
            let mut fill = Fill {
                env_prefix: env_name(&address),
                secrets: &mut generated.secrets,
                placeholders: &mut generated.placeholders,
            };
            fill.table(&mut table, schema.org, &org.attributes.to_json(), "", true);
            fill.rules(&mut table, schema.org, schema.org_rules);
            all.insert(&address, Item::Table(table));
            generated.addresses.push(address);
        }
        doc.insert("org", Item::Table(all));
        let header = super::file_header(instance, provider_type, &generated);
        doc.decor_mut().set_prefix(header);
        let types = crate::spec::format::instance_types(&[&format!(
            "[provider.{}]\ntype = \"{provider_type}\"\n",
            toml_edit::Key::new(instance)
        )]);
        let text = doc.to_string();
        // Formatting a document this module built can't fail; the unformatted text is valid anyway.
        generated.text = crate::spec::format::format(&text, &types).unwrap_or(text);
        generated
    }

    /// What one organization's table is filled with beyond what was reported.
    struct Fill<'a> {
        env_prefix: String,
        secrets: &'a mut Vec<String>,
        placeholders: &'a mut usize,
    }

    impl Fill<'_> {
        /// Writes `reported` (spec names) into `table` by `fields`, with a secret reference for
        /// each secret field and, when `required_too`, a placeholder for each required field not
        /// reported.
        fn table(
            &mut self,
            table: &mut Table,
            fields: &[Field],
            reported: &serde_json::Map<String, serde_json::Value>,
            path: &str,
            required_too: bool,
        ) {
            for field in fields {
                let here = if path.is_empty() {
                    field.name.to_string()
                } else {
                    format!("{path}.{}", field.name)
                };
                match (reported.get(field.name), &field.kind) {
                    (_, Kind::Secret) if field.required => self.secret(table, field.name, &here),
                    (_, Kind::Secret) => {}
                    (_, Kind::Map(Kind::Secret)) if field.required => {
                        let mut inner = Table::new();
                        inner.decor_mut().set_prefix(format!(
                            "# secret: `{here}` is never reported. Declare each of its entries by reference\n\
                             # (like name = {{ env = \"{}_{}_...\" }}) before the organization is ever created again.\n",
                            self.env_prefix,
                            here.replace(['.', '-'], "_").to_ascii_uppercase()
                        ));
                        table.insert(field.name, Item::Table(inner));
                    }
                    (Some(value), kind) => {
                        let item = self.item(kind, value, &here);
                        table.insert(field.name, item);
                    }
                    (None, kind) if required_too && field.required => {
                        self.placeholder(table, field.name, kind, &here);
                    }
                    (None, _) => {}
                }
            }
        }

        /// Rules across fields a placeholder can satisfy: one of an `AnyOf` group, the other half
        /// of a `Pair`.
        fn rules(&mut self, table: &mut Table, fields: &[Field], rules: &[Rule]) {
            let find = |name: &str| fields.iter().find(|f| f.name == name);
            for rule in rules {
                let missing = match rule {
                    Rule::AnyOf(names) if !names.iter().any(|n| table.contains_key(n)) => {
                        names.first().copied()
                    }
                    Rule::Pair(a, b) if table.contains_key(a) != table.contains_key(b) => {
                        Some(if table.contains_key(a) { *b } else { *a })
                    }
                    _ => None,
                };
                if let Some(field) = missing.and_then(find) {
                    if matches!(field.kind, Kind::Secret) {
                        self.secret(table, field.name, field.name);
                    } else {
                        self.placeholder(table, field.name, &field.kind, field.name);
                    }
                }
            }
        }

        fn secret(&mut self, table: &mut Table, key: &str, path: &str) {
            let variable = format!(
                "{}_{}",
                self.env_prefix,
                path.replace(['.', '-'], "_").to_ascii_uppercase()
            );
            let mut reference = toml_edit::InlineTable::new();
            reference.insert("env", Value::from(variable.as_str()));
            let mut value = Value::InlineTable(reference);
            value.decor_mut().set_suffix(" # secret");
            table.insert(key, Item::Value(value));
            self.secrets.push(variable);
        }

        fn placeholder(&mut self, table: &mut Table, key: &str, kind: &Kind, path: &str) {
            let item = match kind {
                // The keys inside say which are placeholders.
                Kind::Object(fields) => {
                    let mut inner = Table::new();
                    self.table(&mut inner, fields, &serde_json::Map::new(), path, true);
                    Item::Table(inner)
                }
                other => {
                    let mut value = placeholder_value(other);
                    value.decor_mut().set_suffix(" # placeholder");
                    *self.placeholders += 1;
                    Item::Value(value)
                }
            };
            table.insert(key, item);
        }

        /// A reported value as TOML: objects as tables, arrays of objects as arrays of tables.
        fn item(&mut self, kind: &Kind, value: &serde_json::Value, path: &str) -> Item {
            match (kind, value) {
                (Kind::Object(fields), serde_json::Value::Object(map)) => {
                    let mut inner = Table::new();
                    self.table(&mut inner, fields, map, path, true);
                    Item::Table(inner)
                }
                (Kind::Array(Kind::Object(fields)), serde_json::Value::Array(items))
                    if !items.is_empty() && items.iter().all(serde_json::Value::is_object) =>
                {
                    let mut tables = ArrayOfTables::new();
                    for (i, item) in items.iter().enumerate() {
                        let mut inner = Table::new();
                        if let serde_json::Value::Object(map) = item {
                            self.table(&mut inner, fields, map, &format!("{path}[{i}]"), true);
                        }
                        tables.push(inner);
                    }
                    Item::ArrayOfTables(tables)
                }
                (_, value) => toml_edit::value(toml_value(value)),
            }
        }
    }

    /// A JSON value as a TOML one.
    fn toml_value(value: &serde_json::Value) -> Value {
        match value {
            serde_json::Value::Bool(b) => Value::from(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::from(i),
                None => Value::from(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => toml_string(s),
            serde_json::Value::Array(items) => Value::Array(items.iter().map(toml_value).collect()),
            serde_json::Value::Object(map) => {
                let mut table = toml_edit::InlineTable::new();
                for (k, v) in map {
                    table.insert(k, toml_value(v));
                }
                Value::InlineTable(table)
            }
            serde_json::Value::Null => Value::from(""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_key_is_written_with_its_bidirectional_controls_and_separators_escaped() {
        let key = "New\u{202e}York\u{61c}\u{2028}\u{1b}";
        let text = key_text(key);
        assert!(!text.chars().any(crate::escape::is_unsafe), "{text:?}");
        // The same key, read back.
        let doc: toml::Table = toml::from_str(&format!("{text} = 1")).expect("TOML");
        assert!(doc.contains_key(key), "{text}");
    }
    use proptest::prelude::*;

    proptest! {
        /// Whatever natural keys a provider reports (any text, clashing or not), every address
        /// is a valid name and no two are the same; and an organization's address does not
        /// depend on which others exist, unless its own name was taken first.
        #[test]
        fn addresses_are_valid_distinct_and_stable(keys in prop::collection::vec(any::<String>(), 1..40)) {
            let mut taken = BTreeSet::new();
            let mut seen = BTreeSet::new();
            for (i, key) in keys.iter().enumerate() {
                let address = address_for(&NaturalKey(key.clone()), &i.to_string(), &mut taken);
                prop_assert!(valid_name(&address), "{:?} -> {}", key, address);
                prop_assert!(seen.insert(address.clone()), "{} twice", address);
                let mut alone = BTreeSet::new();
                let first = address_for(&NaturalKey(key.clone()), &i.to_string(), &mut alone);
                prop_assert!(address == first || address.starts_with(&format!("{first}_")), "{} vs {}", address, first);
            }
        }
    }

    /// A small deterministic generator of what a provider might report: mostly values of the
    /// kinds the schema names, sometimes another kind, text with quotes, escapes, controls,
    /// bidi marks and keys that need quoting.
    struct Reports(u64);

    impl Reports {
        fn next(&mut self) -> u64 {
            // SplitMix64.
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn text(&mut self) -> String {
            const PIECES: &[&str] = &[
                "Acme",
                "New York",
                "a\"b",
                "back\\slash",
                "tab\there",
                "line\nbreak",
                "\u{202e}rtl",
                "é",
                "🦀",
                "",
                " ",
                "#",
                "=",
                "[x]",
                "x.y",
                "\u{7f}",
                "\u{1}",
                "'single'",
                "0",
            ];
            let n = self.below(3) + 1;
            (0..n)
                .map(|_| PIECES[usize::try_from(self.below(PIECES.len() as u64)).unwrap_or(0)])
                .collect()
        }

        fn any(&mut self, depth: u32) -> serde_json::Value {
            match self.below(if depth > 2 { 5 } else { 7 }) {
                0 => serde_json::Value::Bool(self.below(2) == 0),
                1 => serde_json::json!(i64::try_from(self.next() >> 2).unwrap_or(0) - (1 << 60)),
                2 => serde_json::json!(
                    [0.5, 1e300, -2.0, 0.1][usize::try_from(self.below(4)).unwrap_or(0)]
                ),
                3 | 4 => serde_json::Value::String(self.text()),
                5 => (0..self.below(3)).map(|_| self.any(depth + 1)).collect(),
                _ => serde_json::Value::Object(
                    (0..self.below(3))
                        .map(|_| (self.text(), self.any(depth + 1)))
                        .collect(),
                ),
            }
        }

        fn of(&mut self, kind: &Kind, depth: u32) -> serde_json::Value {
            if self.below(12) == 0 {
                return self.any(depth);
            }
            match kind {
                Kind::Object(fields) => serde_json::Value::Object(self.object(fields, depth + 1)),
                Kind::Array(inner) => (0..self.below(3))
                    .map(|_| self.of(inner, depth + 1))
                    .collect(),
                Kind::Map(inner) => serde_json::Value::Object(
                    (0..self.below(3))
                        .map(|_| (self.text(), self.of(inner, depth + 1)))
                        .collect(),
                ),
                Kind::Bool => serde_json::Value::Bool(self.below(2) == 0),
                Kind::Integer { .. } | Kind::IntEnum(_) => serde_json::json!(self.below(5000)),
                Kind::Float => serde_json::json!(0.25),
                Kind::Enum(values) => serde_json::Value::String(
                    values
                        .get(usize::try_from(self.below(values.len().max(1) as u64)).unwrap_or(0))
                        .map_or_else(String::new, |v| (*v).to_string()),
                ),
                Kind::String(_) | Kind::Secret => serde_json::Value::String(self.text()),
                Kind::Any => self.any(depth),
            }
        }

        fn object(
            &mut self,
            fields: &[Field],
            depth: u32,
        ) -> serde_json::Map<String, serde_json::Value> {
            let mut out = serde_json::Map::new();
            for field in fields {
                if depth < 4 && self.below(3) > 0 {
                    let value = self.of(&field.kind, depth);
                    out.insert(field.name.to_string(), value);
                }
            }
            // What a provider reports need not come in schema order.
            if self.below(2) == 0 {
                out = out.into_iter().rev().collect();
            }
            out
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// The text written directly is the text the `toml_edit` document, formatted, was: byte
        /// for byte, for whatever each provider type may report.
        #[test]
        fn the_text_is_what_the_formatted_document_was(seed in any::<u64>()) {
            let mut reports = Reports(seed);
            for provider_type in ProviderType::ALL {
                let schema = provider_type.schema();
                let orgs: Vec<RemoteOrg> = (0..=reports.below(4))
                    .map(|i| RemoteOrg {
                        remote_id: format!("{i}\n{}", reports.text()),
                        natural_key: NaturalKey(reports.text()),
                        status: crate::model::RemoteStatus::Ready,
                        detail: crate::model::Detail::default(),
                        attributes: crate::model::Reported::from_json(&reports.object(schema.org, 0)),
                    })
                    .collect();
                let refs: Vec<&RemoteOrg> = orgs.iter().collect();
                let now = spec_file("found_here", provider_type, &refs, &mut BTreeSet::new());
                let then = before::spec_file("found_here", provider_type, &refs, &mut BTreeSet::new());
                prop_assert_eq!(&now.text, &then.text);
                prop_assert_eq!(&now.addresses, &then.addresses);
                prop_assert_eq!(now.secrets, then.secrets);
                prop_assert_eq!(now.placeholders, then.placeholders);
                // Each organization's tables start where it says, on a line of their own.
                prop_assert_eq!(now.starts.len(), now.addresses.len());
                let id_line = format!("# {provider_type} id ");
                for &start in &now.starts {
                    prop_assert!(now.text[..start].ends_with('\n'));
                    prop_assert!(now.text[start..].starts_with(&id_line));
                }
            }
        }
    }

    #[test]
    fn addresses_are_valid_unique_and_do_not_depend_on_the_others() {
        let key = |s: &str| NaturalKey(s.to_string());
        let mut taken = BTreeSet::from(["acme_corp".to_string()]);
        let a = address_for(&key("Acme Corp"), "1", &mut taken);
        let b = address_for(&key("acme-corp"), "2", &mut taken);
        let c = address_for(&key("1905"), "3", &mut taken);
        let d = address_for(
            &key("salesforce | https://acme.my.salesforce.com"),
            "4",
            &mut taken,
        );
        assert!(
            a.starts_with("acme_corp_") && a.len() == "acme_corp_".len() + 8,
            "{a}"
        );
        assert_ne!(a, b);
        assert_eq!(c, "org_1905");
        assert_eq!(d, "salesforce_acme_my_salesforce_com");
        for name in [&a, &b, &c, &d] {
            assert!(valid_name(name), "{name}");
        }
        // The same organization gets the same address in a run where others differ.
        let mut again = BTreeSet::from(["acme_corp".to_string()]);
        assert_eq!(address_for(&key("Acme Corp"), "1", &mut again), a);
        let mut empty = BTreeSet::new();
        assert_eq!(address_for(&key("%%%"), "9", &mut empty), "org");
    }
}
