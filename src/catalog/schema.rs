//! The words the spec format is described in: a declarable key (`Field`), what its value must
//! look like (`Kind`, `Text`, `Format`), rules across keys (`Rule`), where an API lives
//! (`BaseUrl`), and one provider type's whole spec format (`ProviderSchema`). Plus the keys
//! every provider instance, every organization and the `[state]` table take.
//!
//! One description serves four readers: the validator (`spec::validate`), the provider clients
//! (which map snake_case keys to the API's own names with `wire`), `orgform schema` (JSON Schema
//! for editors) and the docs. Keeping it as data is what keeps the four in step.

use crate::model::{NaturalKey, ProviderType, Table};

/// One declarable key.
#[derive(Debug)]
pub struct Field {
    /// The key in specs: the API's name in snake_case.
    pub(crate) name: &'static str,
    /// The API's own name for it, used on the wire.
    pub(crate) wire: &'static str,
    pub(crate) kind: Kind,
    pub(crate) required: bool,
    /// One line from the vendor's document.
    pub(crate) doc: &'static str,
}

impl Field {
    pub(crate) const fn new(name: &'static str, wire: &'static str, kind: Kind) -> Field {
        Field {
            name,
            wire,
            kind,
            required: false,
            doc: "",
        }
    }

    /// A field the API spells as the spec does.
    pub(crate) const fn same_on_wire(name: &'static str, kind: Kind) -> Field {
        Field::new(name, name, kind)
    }

    pub(crate) const fn required(mut self) -> Field {
        self.required = true;
        self
    }

    pub(crate) const fn doc(mut self, doc: &'static str) -> Field {
        self.doc = doc;
        self
    }
}

/// What a value must look like.
#[derive(Debug)]
pub(crate) enum Kind {
    String(Text),
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    /// A number; integers are accepted too.
    Float,
    Bool,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// One of a fixed set of integers (Commvault's `environment_type` 0 or 1).
    IntEnum(&'static [i64]),
    /// A secret: only `{ env = "NAME" }` or `{ file = "PATH" }`.
    Secret,
    Object(&'static [Field]),
    Array(&'static Kind),
    /// A table with free keys whose values are all of one kind.
    Map(&'static Kind),
    /// Any TOML value (Heron's `static_data.value`).
    Any,
}

/// Rules on a string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text {
    pub(crate) min_len: Option<usize>,
    pub(crate) max_len: Option<usize>,
    pub(crate) format: Option<Format>,
}

impl Text {
    pub(crate) const ANY: Text = Text {
        min_len: None,
        max_len: None,
        format: None,
    };

    pub(crate) const fn format(format: Format) -> Text {
        Text {
            min_len: None,
            max_len: None,
            format: Some(format),
        }
    }

    pub(crate) const fn max(max_len: usize) -> Text {
        Text {
            min_len: None,
            max_len: Some(max_len),
            format: None,
        }
    }

    pub(crate) const fn non_empty() -> Text {
        Text {
            min_len: Some(1),
            max_len: None,
            format: None,
        }
    }
}

/// String formats the seed documents name. Checked by hand: each is simple enough that a regex
/// engine would cost more than it saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// An absolute `http` or `https` URL.
    Url,
    /// An e-mail address in RFC 822 form (`name@domain.tld`).
    Email,
    /// A calendar date `YYYY-MM-DD`; a TOML date is accepted too.
    Date,
    /// Exactly this many ASCII digits (Oracle's nine-digit DUNS number).
    Digits(usize),
    /// Only ASCII digits, of any length (ids sent as strings, ports).
    Numeric,
    /// A two-letter upper-case ISO 3166 country code.
    CountryCode,
    /// A Salesforce Trialforce template id: `0TT` followed by 12 letters or digits.
    TemplateId,
    /// A Salesforce REST API version: digits, a dot, digits (`60.0`).
    ApiVersion,
}

impl Format {
    /// Checks `value`; on failure, returns what was expected, in words a user can act on.
    pub(crate) fn check(self, value: &str) -> Result<(), String> {
        let ok = match self {
            Format::Url => is_url(value),
            Format::Email => is_email(value),
            Format::Date => is_date(value),
            Format::Digits(n) => value.len() == n && value.bytes().all(|b| b.is_ascii_digit()),
            Format::Numeric => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
            Format::CountryCode => {
                value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase())
            }
            Format::TemplateId => {
                value.len() == 15
                    && value.starts_with("0TT")
                    && value.bytes().all(|b| b.is_ascii_alphanumeric())
            }
            Format::ApiVersion => value.split_once('.').is_some_and(|(major, minor)| {
                [major, minor]
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            }),
        };
        if ok { Ok(()) } else { Err(self.describe()) }
    }

    pub(crate) fn describe(self) -> String {
        match self {
            Format::Url => "an absolute http(s) URL, like \"https://example.com\"".into(),
            Format::Email => "an e-mail address, like \"admin@example.com\"".into(),
            Format::Date => "a date that exists, in the form YYYY-MM-DD".into(),
            Format::Digits(n) => format!("exactly {n} digits"),
            Format::Numeric => "digits only".into(),
            Format::CountryCode => "a two-letter upper-case country code, like \"US\"".into(),
            Format::TemplateId => "a template id: \"0TT\" followed by 12 letters or digits".into(),
            Format::ApiVersion => "an API version like \"60.0\"".into(),
        }
    }

    /// The same rule as a JSON Schema (ECMA 262) pattern, for editors.
    pub(crate) fn pattern(self) -> Option<String> {
        match self {
            Format::Url => Some("^https?://[^\\s/]+".into()),
            Format::Email => Some("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$".into()),
            Format::Date => Some("^[0-9]{4}-[0-9]{2}-[0-9]{2}$".into()),
            Format::Digits(n) => Some(format!("^[0-9]{{{n}}}$")),
            Format::Numeric => Some("^[0-9]+$".into()),
            Format::CountryCode => Some("^[A-Z]{2}$".into()),
            Format::TemplateId => Some("^0TT[0-9A-Za-z]{12}$".into()),
            Format::ApiVersion => Some("^[0-9]+\\.[0-9]+$".into()),
        }
    }
}

fn is_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace)
    }) && !value.contains(char::is_whitespace)
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.contains(char::is_whitespace)
}

fn is_date(value: &str) -> bool {
    let b = value.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = value.get(r)?;
        // `parse` would take a sign: only digits are a date's.
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse::<u32>().ok())?
    };
    matches!((digits(0..4), digits(5..7), digits(8..10)), (Some(y), Some(m), Some(d)) if (1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d))
}

/// Days in month `m` of year `y`, Gregorian: a date that does not exist (`1985-02-31`) is a
/// mistake the provider would refuse (or worse, roll over) only at apply.
fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// What a check finds: (dotted path, message) per problem.
pub(crate) type Problems = Vec<(String, String)>;

/// A check across fields: given a table's validated values, (dotted path, message) per problem.
pub(crate) type CheckFn = fn(&Table) -> Vec<(String, String)>;

/// A check of an organization against its provider instance's settings (Oracle's `mode`,
/// Salesforce's `api_version`): (dotted path in the organization, message) per problem.
pub(crate) type InstanceCheckFn = fn(&Table, &Table) -> Vec<(String, String)>;

/// A rule across fields, checked after each field is valid on its own.
#[derive(Debug)]
pub(crate) enum Rule {
    /// Both or neither (Salesforce's connected-app consumer key and callback URL).
    Pair(&'static str, &'static str),
    /// At least one of these must be set (a template id or an edition).
    AnyOf(&'static [&'static str]),
    /// A check no simpler rule expresses; returns (dotted path, message) for each problem.
    Check(CheckFn),
    /// In `org_rules` only: a check that also needs the organization's provider instance
    /// settings (those beyond `type`, `base_url` and limits). Skipped when that instance has
    /// problems of its own, which are reported already.
    WithInstance(InstanceCheckFn),
}

/// Where a provider type's API lives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BaseUrl {
    /// The vendor's public endpoint, which `base_url` may override.
    Default(&'static str),
    /// No public endpoint: each customer has its own host, so `base_url` is required (by the
    /// validator and by the JSON Schema alike). `why` ends the error message.
    Required { why: &'static str },
}

/// Everything the spec layer knows about one provider type.
#[derive(Debug)]
pub struct ProviderSchema {
    /// One line on what the provider creates.
    pub(crate) doc: &'static str,
    /// Where the real API lives, or that `base_url` is required.
    pub(crate) base_url: BaseUrl,
    /// Keys of `[provider.NAME]` beyond the common ones (`type`, `base_url`, limits).
    pub(crate) instance: &'static [Field],
    pub(crate) instance_rules: &'static [Rule],
    /// Keys of `[org.NAME]` beyond `provider`.
    pub org: &'static [Field],
    pub(crate) org_rules: &'static [Rule],
    /// The natural key of a validated organization, given its provider instance's settings.
    pub(crate) natural_key: fn(&Table, &Table) -> NaturalKey,
    /// The dotted spec paths the natural key is made of. A remote organization found by its key
    /// matched on these already, by the provider's own rule (case folded where it folds), so
    /// comparing its reported attributes with the declared ones leaves them out.
    pub(crate) key_fields: &'static [&'static str],
}

impl ProviderSchema {
    /// A type's schema with no keys of its own yet; `instance` and `org` add them, so that a
    /// catalog file states only its provider's facts.
    pub(crate) const fn new(
        doc: &'static str,
        base_url: BaseUrl,
        natural_key: fn(&Table, &Table) -> NaturalKey,
    ) -> ProviderSchema {
        ProviderSchema {
            doc,
            base_url,
            instance: &[],
            instance_rules: &[],
            org: &[],
            org_rules: &[],
            natural_key,
            key_fields: &[],
        }
    }

    /// With the natural key made of these dotted spec paths.
    pub(crate) const fn key_fields(self, paths: &'static [&'static str]) -> Self {
        ProviderSchema {
            key_fields: paths,
            ..self
        }
    }

    /// With these keys and rules for `[provider.NAME]`.
    pub(crate) const fn instance(self, fields: &'static [Field], rules: &'static [Rule]) -> Self {
        ProviderSchema {
            instance: fields,
            instance_rules: rules,
            ..self
        }
    }

    /// With these keys and rules for `[org.NAME]`.
    pub(crate) const fn org(self, fields: &'static [Field], rules: &'static [Rule]) -> Self {
        ProviderSchema {
            org: fields,
            org_rules: rules,
            ..self
        }
    }
}

/// Keys every `[provider.NAME]` table may carry, whatever its type.
pub(crate) static COMMON_INSTANCE_FIELDS: &[Field] = &[
    Field::same_on_wire("type", Kind::Enum(&ProviderType::NAMES))
        .required()
        .doc("Which API this instance talks to"),
    Field::same_on_wire("base_url", Kind::String(Text::format(Format::Url)))
        .doc("Root URL of the API; defaults to the vendor's public endpoint"),
    Field::same_on_wire(
        "max_concurrency",
        Kind::Integer {
            min: Some(1),
            max: Some(256),
        },
    )
    .doc("Most requests in flight at once to this instance (default 4)"),
    Field::same_on_wire("requests_per_second", Kind::Float)
        .doc("Most requests started per second to this instance (default: no limit)"),
    Field::same_on_wire(
        "creates_per_day",
        Kind::Integer {
            min: Some(0),
            max: None,
        },
    )
    .doc("Most creates in any rolling 24 hours (Salesforce defaults to its documented 20)"),
    Field::same_on_wire(
        "max_creates",
        Kind::Integer {
            min: Some(0),
            max: None,
        },
    )
    .doc("Refuse a plan that creates more than this many organizations here (like --max-creates)"),
];

/// orgform's own keys in every `[org.NAME]` table: the provider instance it lives on, and the
/// template it takes fields from.
pub(crate) static ORG_KEYS: &[Field] = &[
    Field::same_on_wire("provider", Kind::String(Text::non_empty()))
        .required()
        .doc("The `[provider.NAME]` this organization lives on"),
    Field::same_on_wire("template", Kind::String(Text::non_empty()))
        .doc("A `[template.NAME]` whose fields this organization takes where it sets none"),
];

/// Keys of the optional `[state]` table.
pub(crate) static STATE_FIELDS: &[Field] = &[
    Field::same_on_wire("backend", Kind::Enum(&["local", "postgres"]))
        .doc("Where state lives: a local JSON file (default) or PostgreSQL"),
    Field::same_on_wire("path", Kind::String(Text::non_empty()))
        .doc("The local state file (default state/orgform.state.json)"),
    Field::same_on_wire("url", Kind::Secret)
        .doc("PostgreSQL connection URL, by reference: { env = \"NAME\" }"),
    Field::same_on_wire("workspace", Kind::String(Text::non_empty()))
        .doc("Named workspace within the PostgreSQL database (default \"default\")"),
];

/// Walks `fields` for the field at a dotted path (`config.default_id.alias`).
pub(crate) fn field_at<'a>(fields: &'a [Field], path: &str) -> Option<&'a Field> {
    let mut fields = fields;
    let mut found = None;
    for part in path.split('.') {
        let field = fields.iter().find(|f| f.name == part)?;
        fields = match &field.kind {
            Kind::Object(inner) => inner,
            Kind::Array(Kind::Object(inner)) => inner,
            _ => &[],
        };
        found = Some(field);
    }
    found
}
