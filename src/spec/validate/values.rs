//! Checking spec tables against the schema (`catalog::schema`): a provider instance, an
//! organization, `[state]`, and every value in them by its kind (strings and their formats,
//! numbers and their ranges, enums, secret references, nested tables), then the rules across
//! fields. What passes becomes a [`ProviderInstance`], an [`OrgSpec`] or [`StateSettings`].
//!
//! An organization that names a `[template.NAME]` is checked as the merge of its table over the
//! template's (see [`Layer`]): each value where it is written, so that an error points at the
//! template's line and its help names the organization that took it.
//!
//! A value that fails its own check is left out, and rules across fields only run on tables
//! whose fields all passed, so one mistake yields one message rather than a cascade.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::{Errors, Found, TomlTable};
use crate::catalog::schema::{
    BaseUrl, COMMON_INSTANCE_FIELDS, Field, Format, Kind, ORG_KEYS, ProviderSchema, Rule,
    STATE_FIELDS,
};
use crate::model::packed::PackedTable;
use crate::model::{ProviderType, SecretRef, Table, Value};
use crate::spec::diagnostic::{SourceFile, SpecError, did_you_mean};
use crate::spec::{
    DEFAULT_MAX_CONCURRENCY, Endpoint, Limits, OrgSpec, Origin, ProviderInstance, StateSettings,
    attributes_digest,
};

/// The type a provider table names, if it names a known one (even if the table has other
/// problems), so that its organizations can still be checked.
pub(super) fn declared_type(value: &Spanned<DeValue<'_>>) -> Option<ProviderType> {
    let DeValue::Table(t) = value.get_ref() else {
        return None;
    };
    let (_, v) = t.iter().find(|(k, _)| k.get_ref() == "type")?;
    ProviderType::from_name(v.get_ref().as_str()?)
}

/// What checking an organization needs to know about the provider instances and templates.
pub(super) struct OrgContext<'a> {
    pub(super) declared_types: &'a BTreeMap<String, Option<ProviderType>>,
    pub(super) providers: &'a BTreeMap<String, ProviderInstance>,
    pub(super) templates: &'a BTreeMap<String, Template<'a>>,
}

/// A `[template.NAME]` table as pass 1 found it: the fields organizations take from it,
/// checked with each of them (against the schema of that organization's provider).
pub(super) struct Template<'a> {
    file: &'a SourceFile,
    key_span: Range<usize>,
    /// Its fields; `None` if it has problems of its own (reported once, by [`check_template`]),
    /// so that the organizations naming it are not checked against half a template.
    table: Option<&'a TomlTable<'a>>,
    /// The provider instance it names, if it names one, with the span of the name.
    provider: Option<(&'a str, Range<usize>)>,
}

/// Checks what a template is on its own: a table, not naming another template, and naming (if
/// any) a declared provider. Its fields wait for the organizations that name it.
pub(super) fn check_template<'a>(
    errors: &mut Errors,
    found: Found<'a, 'a>,
    declared_types: &BTreeMap<String, Option<ProviderType>>,
) -> Template<'a> {
    let path = format!("template.{}", found.name);
    let mut template = Template {
        file: found.file,
        key_span: found.key_span.clone(),
        table: None,
        provider: None,
    };
    let Some(table) = expect_table(errors, found.file, &path, found.value) else {
        return template;
    };
    let before = errors.0.len();
    if let Some((key, _)) = table.iter().find(|(k, _)| k.get_ref() == "template") {
        errors.push(
            SpecError::new(
                found.file,
                key.span(),
                format!(
                    "template `{}` names a template: templates do not nest",
                    found.name
                ),
                "not allowed in a template",
            )
            .with_help("copy the fields it would take into this template"),
        );
    }
    if let Some(value) = entry(table, "provider") {
        match value.get_ref().as_str() {
            Some(name) if declared_types.contains_key(name) => {
                template.provider = Some((name, value.span()));
            }
            Some(name) => {
                let mut e = SpecError::new(
                    found.file,
                    value.span(),
                    format!(
                        "template `{}` names provider `{name}`, which is not declared",
                        found.name
                    ),
                    "no such provider",
                );
                e = match did_you_mean(name, declared_types.keys().map(String::as_str)) {
                    Some(s) => e.with_help(format!("did you mean `{s}`?")),
                    None => e.with_help(format!("declare it with `[provider.{name}]`")),
                };
                errors.push(e);
            }
            None => errors.push(SpecError::new(
                found.file,
                value.span(),
                format!("`{path}.provider` must be a string naming a `[provider.NAME]` table"),
                "expected a string",
            )),
        }
    }
    if errors.0.len() == before {
        template.table = Some(table);
    }
    template
}

/// The value of `key` in a parsed table.
fn entry<'a, 'i>(table: &'a TomlTable<'i>, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v)
}

/// `file:line:col` of a span, for help that points at a second place.
fn place(file: &SourceFile, span: &Range<usize>) -> String {
    let (line, column) = file.line_col(span.start);
    format!("{}:{line}:{column}", crate::escape::Shown(&file.path))
}

/// Adds `note` to the help of the errors pushed since `from`.
fn note_since(errors: &mut Errors, from: usize, note: Option<&str>) {
    let Some(note) = note else { return };
    for e in errors.0.iter_mut().skip(from) {
        e.help = Some(match e.help.take() {
            Some(help) => format!("{help}; {note}"),
            None => note.to_string(),
        });
    }
}

pub(super) fn expect_table<'a, 'i>(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    value: &'a Spanned<DeValue<'i>>,
) -> Option<&'a TomlTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        other => {
            errors.push(SpecError::new(
                file,
                value.span(),
                format!("`{path}` must be a table, found {}", type_name(other)),
                "expected a table",
            ));
            None
        }
    }
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A pace slower than this is a typo, not a limit: 1e-10 would wait centuries between
/// requests (and 1e-300 overflows the interval).
const MIN_REQUESTS_PER_SECOND: f64 = 0.001;

/// Refuses a table that lacks the key saying what it is (a provider's `type`, an
/// organization's `provider`): nothing else in it can be checked.
fn lacks_its_kind<T>(
    errors: &mut Errors,
    found: &Found<'_, '_>,
    what: &str,
    key: &str,
    help: impl Into<String>,
) -> Option<T> {
    errors.push(
        SpecError::new(
            found.file,
            found.key_span.clone(),
            format!("{what} `{}` has no `{key}`", found.name),
            format!("this {what}"),
        )
        .with_help(help),
    );
    None
}

pub(super) fn check_instance(
    errors: &mut Errors,
    found: &Found<'_, '_>,
) -> Option<ProviderInstance> {
    let file = found.file;
    let path = format!("provider.{}", found.name);
    let table = expect_table(errors, file, &path, found.value)?;

    let type_entry = table.iter().find(|(k, _)| k.get_ref() == "type");
    let Some((_, type_value)) = type_entry else {
        let help = format!("add `type = \"...\"`, one of: {}", type_names());
        return lacks_its_kind(errors, found, "provider", "type", help);
    };
    let provider_type = match type_value.get_ref().as_str() {
        Some(name) => match ProviderType::from_name(name) {
            Some(t) => t,
            None => {
                let mut e = SpecError::new(
                    file,
                    type_value.span(),
                    format!("unknown provider type `{name}`"),
                    "not a provider type",
                );
                e = match did_you_mean(name, ProviderType::ALL.iter().map(|t| t.name())) {
                    Some(s) => e.with_help(format!("did you mean `{s}`?")),
                    None => e.with_help(format!("the types are: {}", type_names())),
                };
                errors.push(e);
                return None;
            }
        },
        None => {
            errors.push(SpecError::new(
                file,
                type_value.span(),
                format!(
                    "`{path}.type` must be a string, found {}",
                    type_name(type_value.get_ref())
                ),
                "expected a string",
            ));
            return None;
        }
    };
    let schema = provider_type.schema();

    let before = errors.0.len();
    let checked = check_table(
        errors,
        file,
        &path,
        &[COMMON_INSTANCE_FIELDS, schema.instance],
        table,
        found.key_span.clone(),
    );
    if errors.0.len() == before {
        if let BaseUrl::Required { why } = schema.base_url
            && !checked.contains_key("base_url")
        {
            errors.push(SpecError::new(
                file,
                found.key_span.clone(),
                format!("`{path}.base_url` is required for {provider_type}: {why}"),
                "in this table",
            ));
        }
        plain_http_to_loopback_only(errors, file, &path, schema, table);
        check_rules(
            errors,
            file,
            &path,
            schema.instance_rules,
            &checked,
            None,
            found.key_span.clone(),
        );
    }
    if errors.0.len() != before {
        return None;
    }

    let int = |key: &str| match checked.get(key) {
        Some(Value::Int(i)) => u32::try_from(*i).ok(),
        _ => None,
    };
    let requests_per_second = match checked.get("requests_per_second") {
        Some(Value::Float(x)) if (MIN_REQUESTS_PER_SECOND..f64::INFINITY).contains(x) => Some(*x),
        Some(_) => {
            let span = table
                .iter()
                .find(|(k, _)| k.get_ref() == "requests_per_second")
                .map_or(found.key_span.clone(), |(_, v)| v.span());
            errors.push(SpecError::new(
                file,
                span,
                format!(
                    "`{path}.requests_per_second` must be a number from {MIN_REQUESTS_PER_SECOND} up (one request every {} seconds at the slowest)",
                    1.0 / MIN_REQUESTS_PER_SECOND
                ),
                "out of range",
            ));
            return None;
        }
        None => None,
    };
    let limits = Limits {
        max_concurrency: int("max_concurrency").unwrap_or(DEFAULT_MAX_CONCURRENCY),
        requests_per_second,
        creates_per_day: int("creates_per_day").or(provider_type.capabilities().daily_quota),
        max_creates: int("max_creates"),
    };
    let default_base_url = match schema.base_url {
        BaseUrl::Default(url) => url,
        // Required, so declared: checked above.
        BaseUrl::Required { .. } => "",
    };
    let base_url = checked
        .get("base_url")
        .and_then(Value::as_str)
        .unwrap_or(default_base_url)
        .trim_end_matches('/')
        .to_string();
    let endpoints = endpoints(file, found, table, schema, &base_url);
    let settings = checked
        .into_iter()
        .filter(|(k, _)| !COMMON_INSTANCE_FIELDS.iter().any(|f| f.name == k))
        .collect();
    Some(ProviderInstance {
        name: found.name.clone(),
        provider_type,
        base_url,
        settings,
        limits,
        origin: origin(file, &found.key_span),
        endpoints,
    })
}

/// Plain `http://` sends the login's credentials in the clear: the clients refuse it except to
/// loopback (the sandbox), so `validate` refuses it too, for every URL setting of an instance
/// (`base_url`, Oracle's `store_url`), rather than letting `plan` be the first to say so.
fn plain_http_to_loopback_only(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    schema: &ProviderSchema,
    table: &TomlTable<'_>,
) {
    for field in COMMON_INSTANCE_FIELDS.iter().chain(schema.instance) {
        if !matches!(&field.kind, Kind::String(text) if text.format == Some(Format::Url)) {
            continue;
        }
        let Some((_, value)) = table.iter().find(|(k, _)| k.get_ref() == field.name) else {
            continue;
        };
        let Some(url) = value.get_ref().as_str() else {
            continue;
        };
        let Ok(parsed) = url::Url::parse(url) else {
            continue;
        };
        let loopback = parsed
            .host_str()
            .is_some_and(crate::spec::endpoints::is_loopback);
        if parsed.scheme() == "http" && !loopback {
            errors.push(
                SpecError::new(
                    file,
                    value.span(),
                    format!(
                        "`{path}.{}` is plain HTTP (\"{url}\"): orgform sends credentials over HTTPS only",
                        field.name
                    ),
                    "not HTTPS",
                )
                .with_help("use https://; plain http:// is allowed to loopback addresses only (127.0.0.1, [::1], localhost)"),
            );
        }
    }
}

/// Every URL setting of an instance (any field of URL format: `base_url`, `store_url`), with the
/// span of its value in the whole file; `base_url` even when it is the vendor's default.
fn endpoints(
    file: &SourceFile,
    found: &Found<'_, '_>,
    table: &TomlTable<'_>,
    schema: &ProviderSchema,
    base_url: &str,
) -> Vec<Endpoint> {
    let mut endpoints = Vec::new();
    for field in COMMON_INSTANCE_FIELDS.iter().chain(schema.instance) {
        let Kind::String(text) = &field.kind else {
            continue;
        };
        if text.format != Some(Format::Url) {
            continue;
        }
        let declared = table.iter().find(|(k, _)| k.get_ref() == field.name);
        let (url, span) = match declared {
            Some((_, value)) => match value.get_ref().as_str() {
                Some(url) => (url.trim_end_matches('/').to_string(), value.span()),
                None => continue,
            },
            None if field.name == "base_url" => (base_url.to_string(), found.key_span.clone()),
            None => continue,
        };
        endpoints.push(Endpoint {
            setting: field.name,
            url,
            span: file.in_file(span),
        });
    }
    endpoints
}

fn type_names() -> String {
    ProviderType::ALL
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn origin(file: &SourceFile, span: &Range<usize>) -> Origin {
    Origin {
        path: file.path.clone(),
        line: file.line_col(span.start).0,
    }
}

pub(super) fn check_org(
    errors: &mut Errors,
    found: &Found<'_, '_>,
    context: &OrgContext<'_>,
) -> Option<OrgSpec> {
    let file = found.file;
    let path = format!("org.{}", found.name);
    let table = expect_table(errors, file, &path, found.value)?;

    let template = match entry(table, "template") {
        Some(value) => Some(named_template(errors, found, &path, value, context)?),
        None => None,
    };
    // The provider the organization names, or else the one its template names: where it is
    // written, for errors about it.
    let provider_entry = match (entry(table, "provider"), template) {
        (Some(value), _) => {
            let Some(name) = value.get_ref().as_str() else {
                errors.push(SpecError::new(
                    file,
                    value.span(),
                    format!("`{path}.provider` must be a string naming a `[provider.NAME]` table"),
                    "expected a string",
                ));
                return None;
            };
            (name, file, value.span())
        }
        (None, Some((_, t))) if t.provider.is_some() => {
            let (name, span) = t.provider.clone()?;
            (name, t.file, span)
        }
        (None, template) => {
            let help = match template {
                Some((name, _)) => format!(
                    "add `provider = \"NAME\"`, naming a `[provider.NAME]` table, here or in template `{name}`"
                ),
                None => "add `provider = \"NAME\"`, naming a `[provider.NAME]` table".to_string(),
            };
            return lacks_its_kind(errors, found, "organization", "provider", help);
        }
    };
    let (instance_name, provider_file, provider_span) = provider_entry;
    let instance = context.providers.get(instance_name);
    // The type of the named provider, even if that table has problems of its own: the
    // organization's fields are still checked, so one pass shows every mistake.
    let type_of = |name: &str| {
        context
            .providers
            .get(name)
            .map(|i| i.provider_type)
            .or_else(|| context.declared_types.get(name).copied().flatten())
    };
    let Some(provider_type) = type_of(instance_name) else {
        if !context.declared_types.contains_key(instance_name) {
            let mut e = SpecError::new(
                provider_file,
                provider_span,
                format!(
                    "organization `{}` names provider `{instance_name}`, which is not declared",
                    found.name
                ),
                "no such provider",
            );
            e = match did_you_mean(
                instance_name,
                context.declared_types.keys().map(String::as_str),
            ) {
                Some(s) => e.with_help(format!("did you mean `{s}`?")),
                None => e.with_help(format!("declare it with `[provider.{instance_name}]`")),
            };
            errors.push(e);
        }
        // A declared provider without a usable type has its own errors already.
        return None;
    };
    // A template that names a provider was written for that provider's type: an organization
    // may move to another instance of that type, never to another type.
    if let Some((template_name, t)) = template
        && let Some((template_provider, template_span)) = &t.provider
        && let Some(template_type) = type_of(template_provider)
        && template_type != provider_type
    {
        errors.push(
            SpecError::new(
                provider_file,
                provider_span,
                format!(
                    "organization `{}` is on provider `{instance_name}` ({provider_type}), but its template `{template_name}` is for provider `{template_provider}` ({template_type})",
                    found.name
                ),
                "another provider type",
            )
            .with_help(format!(
                "the template names its provider at {}; a template's fields are for one provider type: name an instance of type {template_type} here, or use another template",
                place(t.file, template_span)
            )),
        );
        return None;
    }
    let schema = provider_type.schema();

    let mut layers = vec![Layer {
        file,
        path: Cow::Borrowed(&path),
        table,
        span: found.key_span.clone(),
        note: None,
    }];
    let template_note = template.map(|(name, t)| {
        let note = format!(
            "`{path}` ({}) takes this from template `{name}`",
            place(file, &found.key_span)
        );
        (name, t, note)
    });
    if let Some((name, t, note)) = &template_note {
        layers.push(Layer {
            file: t.file,
            path: Cow::Owned(format!("template.{name}")),
            table: t.table?,
            span: t.key_span.clone(),
            note: Some(note),
        });
    }
    let before = errors.0.len();
    let mut attrs = check_layers(errors, &[ORG_KEYS, schema.org], &layers);
    // orgform's own keys, checked above; what remains is the organization's declaration.
    attrs.remove("provider");
    attrs.remove("template");
    if errors.0.len() == before {
        check_rules(
            errors,
            file,
            &path,
            schema.org_rules,
            &attrs,
            instance.map(|i| &i.settings),
            found.key_span.clone(),
        );
    }
    if errors.0.len() != before {
        // What is said of the organization as a whole (a field missing, a rule across fields)
        // is said of the merge: name the template's place too.
        if let Some((name, t, _)) = &template_note {
            let (line, column) = file.line_col(found.key_span.start);
            let note = format!(
                "with the fields of template `{name}` ({})",
                place(t.file, &t.key_span)
            );
            for e in errors.0.iter_mut().skip(before) {
                if e.line == line && e.column == column && *e.path == *file.path {
                    e.help = Some(match e.help.take() {
                        Some(help) => format!("{help}; {note}"),
                        None => note.clone(),
                    });
                }
            }
        }
        return None;
    }
    Some(org_spec(schema, instance?, found, file, attrs))
}

/// The template an organization's `template` key names, or `None` after an error (or when the
/// template has problems of its own, reported once already).
fn named_template<'c>(
    errors: &mut Errors,
    found: &Found<'_, '_>,
    path: &str,
    value: &Spanned<DeValue<'_>>,
    context: &OrgContext<'c>,
) -> Option<(&'c str, &'c Template<'c>)> {
    let Some(name) = value.get_ref().as_str() else {
        errors.push(SpecError::new(
            found.file,
            value.span(),
            format!("`{path}.template` must be a string naming a `[template.NAME]` table"),
            "expected a string",
        ));
        return None;
    };
    let Some((name, template)) = context.templates.get_key_value(name) else {
        let mut e = SpecError::new(
            found.file,
            value.span(),
            format!(
                "organization `{}` names template `{name}`, which is not declared",
                found.name
            ),
            "no such template",
        );
        e = match did_you_mean(name, context.templates.keys().map(String::as_str)) {
            Some(s) => e.with_help(format!("did you mean `{s}`?")),
            None => e.with_help(format!("declare it with `[template.{name}]`")),
        };
        errors.push(e);
        return None;
    };
    template.table?;
    Some((name.as_str(), template))
}

fn org_spec(
    schema: &ProviderSchema,
    instance: &ProviderInstance,
    found: &Found<'_, '_>,
    file: &SourceFile,
    attrs: Table,
) -> OrgSpec {
    OrgSpec {
        address: found.name.clone(),
        instance: instance.name.clone(),
        provider_type: instance.provider_type,
        natural_key: (schema.natural_key)(&attrs, &instance.settings),
        digest: attributes_digest(&attrs),
        attrs: PackedTable::pack(&attrs),
        origin: origin(file, &found.key_span),
    }
}

pub(super) fn check_state(errors: &mut Errors, found: &Found<'_, '_>) -> StateSettings {
    let Some(table) = expect_table(errors, found.file, "state", found.value) else {
        return StateSettings::default();
    };
    let checked = check_table(
        errors,
        found.file,
        "state",
        &[STATE_FIELDS],
        table,
        found.key_span.clone(),
    );
    let text = |k: &str| checked.get(k).and_then(Value::as_str).map(str::to_string);
    StateSettings {
        backend: text("backend"),
        path: text("path"),
        url: match checked.get("url") {
            Some(Value::Secret(r)) => Some(r.clone()),
            _ => None,
        },
        workspace: text("workspace"),
    }
}

/// Checks a table's keys against `fields` (several slices, searched in order).
fn check_table(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    fields: &[&'static [Field]],
    table: &TomlTable<'_>,
    table_span: Range<usize>,
) -> Table {
    let layer = Layer {
        file,
        path: Cow::Borrowed(path),
        table,
        span: table_span,
        note: None,
    };
    check_layers(errors, fields, &[layer])
}

/// One table of a merge, with where it is written: an organization's table, then the
/// template's, whose keys count where the organization sets none.
struct Layer<'a, 'i> {
    file: &'a SourceFile,
    /// The table's path as messages name it: `org.a.config`, or `template.crm.config` for the
    /// template's values (the same mistake, found with every organization, is one message).
    path: Cow<'a, str>,
    table: &'a TomlTable<'i>,
    /// The table's header or braces: where a missing field is reported.
    span: Range<usize>,
    /// Added to the help of an error about a value of this table: which organization took it.
    note: Option<&'a str>,
}

/// One value of a merge as one layer writes it, with its path.
struct Written<'a, 'i> {
    file: &'a SourceFile,
    path: String,
    value: &'a Spanned<DeValue<'i>>,
    note: Option<&'a str>,
}

/// Where `layers` write `name`, top layer first: the values one key's merge is made of.
fn written_in<'a, 'i>(layers: &[Layer<'a, 'i>], name: &str) -> Vec<Written<'a, 'i>> {
    layers
        .iter()
        .filter_map(|l| {
            entry(l.table, name).map(|value| Written {
                file: l.file,
                path: format!("{}.{name}", l.path),
                value,
                note: l.note,
            })
        })
        .collect()
}

impl<'a, 'i> Written<'a, 'i> {
    /// This value as a layer, if it is a table.
    fn as_layer(&self) -> Option<Layer<'a, 'i>> {
        match self.value.get_ref() {
            DeValue::Table(table) => Some(Layer {
                file: self.file,
                path: Cow::Owned(self.path.clone()),
                table,
                span: self.value.span(),
                note: self.note,
            }),
            _ => None,
        }
    }
}

/// Checks the merge of `layers` (the first wins) against `fields`: each key as the first layer
/// that sets it writes it, tables merged key by key (see [`check_merged`]).
fn check_layers(
    errors: &mut Errors,
    fields: &[&'static [Field]],
    layers: &[Layer<'_, '_>],
) -> Table {
    let all = || fields.iter().flat_map(|f| f.iter());
    let mut out = Table::with_capacity(layers.first().map_or(0, |l| l.table.len()));
    // Each value's path, `LAYER.KEY`, written into one buffer per table rather than a string
    // per value: it is read only when a value is wrong.
    let mut field_path = String::new();
    for (depth, layer) in layers.iter().enumerate() {
        for (key, value) in layer.table {
            let name = key.get_ref().as_ref();
            if layers[..depth]
                .iter()
                .any(|l| entry(l.table, name).is_some())
            {
                continue; // set above: this one is overridden
            }
            let Some(field) = all().find(|f| f.name == name) else {
                let before = errors.0.len();
                let mut e = SpecError::new(
                    layer.file,
                    key.span(),
                    format!("unknown key `{name}` in `{}`", layer.path),
                    "unknown key",
                );
                e = match did_you_mean(name, all().map(|f| f.name)) {
                    Some(s) => e.with_help(format!("did you mean `{s}`?")),
                    None => e.with_help(format!(
                        "the keys here are: {}",
                        all()
                            .map(|f| format!("`{}`", f.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                errors.push(e);
                note_since(errors, before, layer.note);
                continue;
            };
            let value = if layers.len() == 1 {
                // No merge (no template): the common case, kept as direct as it was.
                field_path.clear();
                field_path.push_str(&layer.path);
                field_path.push('.');
                field_path.push_str(name);
                check_value(errors, layer.file, &mut field_path, &field.kind, value)
            } else {
                check_merged(errors, &field.kind, &written_in(&layers[depth..], name))
            };
            if let Some(v) = value {
                out.insert(name.to_string(), v);
            }
        }
    }
    for field in all().filter(|f| f.required) {
        if layers.iter().any(|l| entry(l.table, field.name).is_some()) {
            continue;
        }
        let Some(top) = layers.first() else { break };
        let mut e = SpecError::new(
            top.file,
            top.span.clone(),
            format!("missing required field `{}.{}`", top.path, field.name),
            format!("`{}` is required here", field.name),
        );
        if !field.doc.is_empty() {
            e = e.with_help(field.doc);
        }
        errors.push(e);
    }
    out
}

/// Checks one key's value as several layers write it, the first winning: tables (of fields, a
/// map, or anything) are merged key by key, down to the first layer where the value is not a
/// table; any other value (an array too) is the first layer's, whole.
fn check_merged(errors: &mut Errors, kind: &Kind, written: &[Written<'_, '_>]) -> Option<Value> {
    let top = written.first()?;
    // The tables from the top down, as far as every layer writes a table.
    let tables: Vec<Layer<'_, '_>> = written.iter().map_while(Written::as_layer).collect();
    let inner = match kind {
        Kind::Object(fields) if tables.len() > 1 => {
            return Some(Value::Table(check_layers(errors, &[fields], &tables)));
        }
        Kind::Map(inner) if tables.len() > 1 => inner,
        Kind::Any if tables.len() > 1 => &Kind::Any,
        _ => {
            let before = errors.0.len();
            let checked = check_value(errors, top.file, &mut top.path.clone(), kind, top.value);
            note_since(errors, before, top.note);
            return checked;
        }
    };
    // A map (or a table of anything): every key any layer writes, each merged in turn.
    let mut out = Table::default();
    let mut ok = true;
    for (depth, layer) in tables.iter().enumerate() {
        for (key, _) in layer.table {
            let name = key.get_ref().as_ref();
            if tables[..depth]
                .iter()
                .any(|l| entry(l.table, name).is_some())
            {
                continue; // set above
            }
            match check_merged(errors, inner, &written_in(&tables[depth..], name)) {
                Some(v) => {
                    out.insert(name.to_string(), v);
                }
                None => ok = false,
            }
        }
    }
    ok.then_some(Value::Table(out))
}

/// Checks one value against its kind. `path` names it in messages; it is extended for the
/// values inside (`[0]`, `.key`) and given back as it came.
fn check_value(
    errors: &mut Errors,
    file: &SourceFile,
    path: &mut String,
    kind: &Kind,
    value: &Spanned<DeValue<'_>>,
) -> Option<Value> {
    let span = value.span();
    // This value refused: the error kept, nothing taken.
    let refuse = |errors: &mut Errors, message: String, label: &str| {
        errors.push(SpecError::new(file, span.clone(), message, label));
        None
    };
    let wrong_type = |errors: &mut Errors, expected: &str| {
        let found = type_name(value.get_ref());
        refuse(
            errors,
            format!("`{path}` must be {expected}, found {found}"),
            &format!("expected {expected}"),
        )
    };
    match (kind, value.get_ref()) {
        (Kind::String(text), DeValue::String(s)) => {
            let s: &str = s;
            let mut problem = None;
            if let Some(min) = text.min_len
                && s.chars().count() < min
            {
                problem = Some(if min == 1 {
                    "must not be empty".to_string()
                } else {
                    format!("must be at least {min} characters long")
                });
            }
            if let Some(max) = text.max_len
                && s.chars().count() > max
            {
                problem = Some(format!(
                    "must be at most {max} characters long (it is {})",
                    s.chars().count()
                ));
            }
            if problem.is_none()
                && let Some(format) = text.format
                && let Err(expected) = format.check(s)
            {
                problem = Some(format!("must be {expected}"));
            }
            match problem {
                Some(p) => refuse(errors, format!("`{path}` {p}"), "invalid value"),
                None => Some(Value::String(s.to_string())),
            }
        }
        (Kind::String(text), DeValue::Datetime(d)) if text.format == Some(Format::Date) => {
            let s = d.to_string();
            match Format::Date.check(&s) {
                Ok(()) => Some(Value::String(s)),
                Err(expected) => refuse(errors, format!("`{path}`: {expected}"), "not a date"),
            }
        }
        (Kind::String(_), _) => wrong_type(errors, "a string"),
        (Kind::Integer { min, max }, DeValue::Integer(i)) => {
            let Ok(n) = i64::from_str_radix(i.as_str(), i.radix()) else {
                return refuse(errors, format!("`{path}` is out of range"), "too large");
            };
            let below = min.is_some_and(|m| n < m);
            let above = max.is_some_and(|m| n > m);
            if below || above {
                let range = match (min, max) {
                    (Some(a), Some(b)) => format!("between {a} and {b}"),
                    (Some(a), None) => format!("at least {a}"),
                    (None, Some(b)) => format!("at most {b}"),
                    (None, None) => String::new(),
                };
                let message = format!("`{path}` must be {range}, found {n}");
                return refuse(errors, message, "out of range");
            }
            Some(Value::Int(n))
        }
        (Kind::Integer { .. }, _) => wrong_type(errors, "an integer"),
        (Kind::Float, DeValue::Float(x)) => match x.as_str().replace('_', "").parse::<f64>() {
            Ok(x) => Some(Value::Float(x)),
            Err(_) => wrong_type(errors, "a number"),
        },
        (Kind::Float, DeValue::Integer(i)) => match i64::from_str_radix(i.as_str(), i.radix()) {
            #[expect(clippy::cast_precision_loss, reason = "limits are small numbers")]
            Ok(n) => Some(Value::Float(n as f64)),
            Err(_) => wrong_type(errors, "a number"),
        },
        (Kind::Float, _) => wrong_type(errors, "a number"),
        (Kind::Bool, DeValue::Boolean(b)) => Some(Value::Bool(*b)),
        (Kind::Bool, _) => wrong_type(errors, "a boolean (true or false)"),
        (Kind::Enum(allowed), DeValue::String(s)) => {
            let s: &str = s;
            if allowed.contains(&s) {
                Some(Value::String(s.to_string()))
            } else {
                let list = allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut e = SpecError::new(
                    file,
                    span,
                    format!("`{path}` must be one of {list}, found `{s}`"),
                    "not an allowed value",
                );
                if let Some(m) = did_you_mean(s, allowed.iter().copied()) {
                    e = e.with_help(format!("did you mean `{m}`?"));
                }
                errors.push(e);
                None
            }
        }
        (Kind::Enum(_), _) => wrong_type(errors, "a string"),
        (Kind::IntEnum(allowed), DeValue::Integer(i)) => {
            match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if allowed.contains(&n) => Some(Value::Int(n)),
                _ => {
                    let list = allowed
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(" or ");
                    errors.push(SpecError::new(
                        file,
                        span,
                        format!("`{path}` must be {list}, found {}", i.as_str()),
                        "not an allowed value",
                    ));
                    None
                }
            }
        }
        (Kind::IntEnum(_), _) => wrong_type(errors, "an integer"),
        (Kind::Secret, DeValue::Table(t)) => check_secret(errors, file, path, t, span),
        (Kind::Secret, DeValue::String(_) | DeValue::Integer(_)) => {
            errors.push(
                SpecError::literal_secret(
                    file,
                    span,
                    format!("`{path}` is a secret and must not be written in the specs"),
                )
                .with_help("refer to it instead: `{ env = \"NAME\" }` or `{ file = \"PATH\" }`"),
            );
            None
        }
        (Kind::Secret, _) => wrong_type(errors, "a secret reference like `{ env = \"NAME\" }`"),
        (Kind::Object(fields), DeValue::Table(t)) => Some(Value::Table(check_table(
            errors,
            file,
            path,
            &[fields],
            t,
            span,
        ))),
        (Kind::Object(_), _) => wrong_type(errors, "a table"),
        (Kind::Array(inner), DeValue::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            let base = path.len();
            for (i, item) in items.iter().enumerate() {
                path.truncate(base);
                // Writing to a String cannot fail.
                let _ = std::fmt::Write::write_fmt(path, format_args!("[{i}]"));
                match check_value(errors, file, path, inner, item) {
                    Some(v) => out.push(v),
                    None => ok = false,
                }
            }
            path.truncate(base);
            ok.then_some(Value::Array(out))
        }
        (Kind::Array(_), _) => wrong_type(errors, "an array"),
        (Kind::Map(inner), DeValue::Table(t)) => {
            let mut out = Table::with_capacity(t.len());
            let mut ok = true;
            let base = path.len();
            for (k, v) in t {
                path.truncate(base);
                path.push('.');
                path.push_str(k.get_ref());
                match check_value(errors, file, path, inner, v) {
                    Some(v) => {
                        out.insert(k.get_ref().to_string(), v);
                    }
                    None => ok = false,
                }
            }
            path.truncate(base);
            ok.then_some(Value::Table(out))
        }
        (Kind::Map(_), _) => wrong_type(errors, "a table"),
        (Kind::Any, v) => Some(any_value(v)),
    }
}

fn check_secret(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    table: &TomlTable<'_>,
    span: Range<usize>,
) -> Option<Value> {
    let mut entries = table.iter();
    let (Some((key, value)), None) = (entries.next(), entries.next()) else {
        errors.push(
            SpecError::new(
                file,
                span,
                format!("`{path}` must be exactly one of `env` or `file`"),
                "not a secret reference",
            )
            .with_help("write `{ env = \"NAME\" }` or `{ file = \"PATH\" }`"),
        );
        return None;
    };
    let Some(target) = value.get_ref().as_str().filter(|s| !s.is_empty()) else {
        errors.push(SpecError::new(
            file,
            value.span(),
            format!("`{path}.{}` must be a non-empty string", key.get_ref()),
            "expected a name or path",
        ));
        return None;
    };
    match key.get_ref().as_ref() {
        "env" => Some(Value::Secret(SecretRef::Env(target.to_string()))),
        "file" => Some(Value::Secret(SecretRef::File(target.to_string()))),
        other => {
            let mut e = SpecError::new(
                file,
                key.span(),
                format!("`{path}` has unknown key `{other}`: a secret is `env` or `file`"),
                "unknown key",
            );
            if let Some(m) = did_you_mean(other, ["env", "file"]) {
                e = e.with_help(format!("did you mean `{m}`?"));
            }
            errors.push(e);
            None
        }
    }
}

fn any_value(value: &DeValue<'_>) -> Value {
    match value {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_or_else(|_| Value::String(i.as_str().to_string()), Value::Int),
        DeValue::Float(x) => x
            .as_str()
            .replace('_', "")
            .parse()
            .map_or_else(|_| Value::String(x.as_str().to_string()), Value::Float),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => {
            Value::Array(items.iter().map(|v| any_value(v.get_ref())).collect())
        }
        DeValue::Table(t) => Value::Table(
            t.iter()
                .map(|(k, v)| (k.get_ref().to_string(), any_value(v.get_ref())))
                .collect(),
        ),
    }
}

fn check_rules(
    errors: &mut Errors,
    file: &SourceFile,
    path: &str,
    rules: &[Rule],
    values: &Table,
    instance: Option<&Table>,
    span: Range<usize>,
) {
    let has = |p: &str| Value::Table(values.clone()).get_path(p).is_some();
    for rule in rules {
        match rule {
            Rule::Pair(a, b) => {
                if has(a) != has(b) {
                    let (set, missing) = if has(a) { (a, b) } else { (b, a) };
                    errors.push(
                        SpecError::new(
                            file,
                            span.clone(),
                            format!("`{path}.{set}` is set but `{path}.{missing}` is not"),
                            "in this table",
                        )
                        .with_help(format!("`{a}` and `{b}` go together: set both or neither")),
                    );
                }
            }
            Rule::AnyOf(keys) => {
                if !keys.iter().any(|k| has(k)) {
                    let list = keys
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" or ");
                    errors.push(SpecError::new(
                        file,
                        span.clone(),
                        format!("`{path}` needs {list}"),
                        "in this table",
                    ));
                }
            }
            Rule::Check(_) | Rule::WithInstance(_) => {
                let problems = match (rule, instance) {
                    (Rule::Check(check), _) => check(values),
                    (Rule::WithInstance(check), Some(instance)) => check(values, instance),
                    // An instance with problems of its own: those are reported already.
                    _ => Vec::new(),
                };
                for (field, message) in problems {
                    errors.push(SpecError::new(
                        file,
                        span.clone(),
                        format!("`{path}.{field}` {message}"),
                        "in this table",
                    ));
                }
            }
        }
    }
}
