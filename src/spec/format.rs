//! `orgform fmt`: rewrites spec text with every table's keys in canonical order (the order of
//! the schema: `type` or `provider` (and `template`) first, then the fields as the vendor
//! documents list them; a `[template.NAME]` as the organizations it is for),
//! keeping comments, blank lines and the order of the tables themselves. Pure: text in, text out.

use std::collections::BTreeMap;

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::catalog::schema::{COMMON_INSTANCE_FIELDS, Field, Kind, ORG_KEYS, STATE_FIELDS};
use crate::model::ProviderType;

/// The provider types spec files' tables are written for, across all spec files (an
/// organization's fields depend on the type of the instance it names, which may be declared in
/// another file; a template's, on its own `provider` or that of an organization that names it).
#[derive(Debug, Default)]
pub(crate) struct Types {
    instances: BTreeMap<String, ProviderType>,
    templates: BTreeMap<String, ProviderType>,
}

impl Types {
    /// The type of an `[org.NAME]` table: that of the provider it names, or else that of its
    /// template.
    fn of_org(&self, table: &Table) -> Option<ProviderType> {
        let own = text_of(table, "provider").and_then(|name| self.instances.get(name));
        let inherited = || text_of(table, "template").and_then(|name| self.templates.get(name));
        own.or_else(inherited).copied()
    }
}

/// The types of every instance and template declared in `texts`.
pub(crate) fn instance_types(texts: &[&str]) -> Types {
    let docs: Vec<toml::Table> = texts.iter().filter_map(|t| t.parse().ok()).collect();
    let tables = |doc: &toml::Table, key: &str| -> Vec<(String, toml::Table)> {
        doc.get(key)
            .and_then(toml::Value::as_table)
            .into_iter()
            .flatten()
            .filter_map(|(name, v)| Some((name.clone(), v.as_table()?.clone())))
            .collect()
    };
    let text = |table: &toml::Table, key: &str| {
        table
            .get(key)
            .and_then(toml::Value::as_str)
            .map(str::to_string)
    };
    let mut types = Types::default();
    for doc in &docs {
        for (name, table) in tables(doc, "provider") {
            if let Some(t) = text(&table, "type").and_then(|t| ProviderType::from_name(&t)) {
                types.instances.insert(name, t);
            }
        }
    }
    for doc in &docs {
        for (name, table) in tables(doc, "template") {
            if let Some(t) = text(&table, "provider").and_then(|p| types.instances.get(&p).copied())
            {
                types.templates.insert(name, t);
            }
        }
    }
    // A template without a provider: the type of the first organization naming it that names
    // its own provider.
    for doc in &docs {
        for (_, table) in tables(doc, "org") {
            let (Some(template), Some(provider)) =
                (text(&table, "template"), text(&table, "provider"))
            else {
                continue;
            };
            if let Some(&t) = types.instances.get(&provider) {
                types.templates.entry(template).or_insert(t);
            }
        }
    }
    types
}

/// The canonical text of one spec file. Errors are TOML syntax errors; `validate` says more.
pub(crate) fn format(text: &str, types: &Types) -> Result<String, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.to_string())?;
    let root = doc.as_table_mut();
    if let Some(state) = root.get_mut("state").and_then(Item::as_table_mut) {
        sort_table(state, &[STATE_FIELDS]);
    }
    for table in tables_under(root, "provider") {
        let schema = text_of(table, "type")
            .and_then(ProviderType::from_name)
            .map(|t| t.schema());
        // `type` and `base_url`, then the credentials, then the limits.
        let (head, limits) = COMMON_INSTANCE_FIELDS.split_at(2);
        match schema {
            Some(s) => sort_table(table, &[head, s.instance, limits]),
            None => sort_table(table, &[head, limits]),
        }
    }
    // Templates hold organization fields, in the same order.
    if let Some(templates) = root.get_mut("template").and_then(Item::as_table_mut) {
        for (name, item) in templates.iter_mut() {
            let Some(table) = item.as_table_mut() else {
                continue;
            };
            match types.templates.get(name.get()).map(|t| t.schema()) {
                Some(s) => sort_table(table, &[ORG_KEYS, s.org]),
                None => sort_table(table, &[ORG_KEYS]),
            }
        }
    }
    for table in tables_under(root, "org") {
        match types.of_org(table).map(|t| t.schema()) {
            Some(s) => sort_table(table, &[ORG_KEYS, s.org]),
            None => sort_table(table, &[ORG_KEYS]),
        }
    }
    Ok(doc.to_string())
}

/// The tables under `root.key`: each `[provider.NAME]` or `[org.NAME]`.
fn tables_under<'a>(root: &'a mut Table, key: &str) -> impl Iterator<Item = &'a mut Table> {
    root.get_mut(key)
        .and_then(Item::as_table_mut)
        .into_iter()
        .flat_map(|tables| {
            tables
                .iter_mut()
                .filter_map(|(_, item)| item.as_table_mut())
        })
}

/// A key's value, when it is a string.
fn text_of<'a>(table: &'a Table, key: &str) -> Option<&'a str> {
    table.get(key).and_then(Item::as_str)
}

/// Where `key` goes among `fields` (`usize::MAX`: after every key they name).
pub(crate) fn rank(fields: &[&[Field]], key: &str) -> usize {
    fields
        .iter()
        .flat_map(|f| f.iter())
        .position(|f| f.name == key)
        .unwrap_or(usize::MAX)
}

pub(crate) fn find<'a>(fields: &'a [&'a [Field]], key: &str) -> Option<&'a Field> {
    fields.iter().flat_map(|f| f.iter()).find(|f| f.name == key)
}

fn sort_table(table: &mut Table, fields: &[&[Field]]) {
    // A stable sort: keys the schema doesn't know keep their order, after the known ones.
    table.sort_values_by(|a, _, b, _| rank(fields, a.get()).cmp(&rank(fields, b.get())));
    for (key, item) in table.iter_mut() {
        let Some(field) = find(fields, key.get()) else {
            continue;
        };
        sort_item(item, &field.kind);
    }
}

fn sort_item(item: &mut Item, kind: &Kind) {
    match (item, kind) {
        (Item::Table(t), Kind::Object(inner)) => sort_table(t, &[inner]),
        (Item::ArrayOfTables(tables), Kind::Array(Kind::Object(inner))) => {
            for t in tables.iter_mut() {
                sort_table(t, &[inner]);
            }
        }
        (Item::Value(v), kind) => sort_value(v, kind),
        _ => {}
    }
}

/// An inline table of a known table kind with its keys in schema order and laid out afresh, at
/// any depth (what `discover` writes goes through this too).
pub(crate) fn sort_value(value: &mut Value, kind: &Kind) {
    match (value, kind) {
        (Value::InlineTable(t), Kind::Object(inner)) => {
            let fields: &[&[Field]] = &[inner];
            t.sort_values_by(|a, _, b, _| rank(fields, a.get()).cmp(&rank(fields, b.get())));
            // Moved pairs keep their old spacing; lay the table out afresh.
            t.fmt();
            for (key, v) in t.iter_mut() {
                if let Some(field) = find(fields, key.get()) {
                    sort_value(v, &field.kind);
                }
            }
        }
        (Value::Array(items), Kind::Array(inner)) => {
            for v in items.iter_mut() {
                sort_value(v, inner);
            }
        }
        _ => {}
    }
}
