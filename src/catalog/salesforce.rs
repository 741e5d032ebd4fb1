//! Salesforce Trialforce sign-ups: `POST /services/data/vXX.X/sobjects/SignupRequest/` (seed 001,
//! docs/providers/salesforce_signup.md), one trial organization per `[org.NAME]`.
//!
//! Every field the seed marks `Create` is declarable under the snake_case of its API name, plus
//! `SuppressSignupEmails` (see its doc below). The read-only fields (`CreatedOrgId`,
//! `CreatedOrgInstance`, `ErrorCode`, `ResolvedTemplateId`, `TrialSourceOrgId`, `Status`) and
//! `AuthCode` (marked `Create` in the seed but described as "a read-only field provided by the
//! system") are what Salesforce reports, never what a spec declares.
//!
//! The natural key is `username`, compared without case: Salesforce usernames are globally
//! unique (a second sign-up with one fails with `C-1007`), and SOQL compares strings without
//! case, so two spellings of one username are one organization.
//!
//! `country` is required: the seed's `Country` is neither Nillable nor Defaulted on create (newer
//! API versions default it to the requesting organization's country, but relying on that would
//! make the trial's language depend on where the Trialforce Management Organization lives).

use super::schema::{BaseUrl, Field, Format, Kind, ProviderSchema, Rule, Text};
use super::{Capabilities, Descriptor, Reads};
use crate::model::{NaturalKey, ProviderType, Table, Value};

/// The `Edition` restricted picklist, as the seed lists it.
pub(crate) const EDITIONS: &[&str] = &[
    "Partner Group",
    "Professional",
    "Partner Professional",
    "Sales Professional",
    "Professional TSO",
    "Enterprise",
    "Partner Enterprise",
    "Service Enterprise",
    "Enterprise TSO",
    "Developer",
    "Partner Developer",
];

/// Editions whose organizations get a suffix appended to their My Domain, which leaves 33
/// characters for the subdomain instead of 40.
pub(crate) const DEVELOPER_EDITIONS: &[&str] = &["Developer", "Partner Developer"];

/// The longest subdomain for Developer editions, and for all others.
pub(crate) const SUBDOMAIN_MAX_DEVELOPER: usize = 33;
pub(crate) const SUBDOMAIN_MAX: usize = 40;

/// The `PreferredLanguage` codes: the seed says to use a code from Salesforce's "Fully Supported
/// Languages" (Metadata API guide, Translations), which are these eighteen.
pub(crate) const LANGUAGES: &[&str] = &[
    "zh_CN", "zh_TW", "da", "nl_NL", "en_US", "fi", "fr", "de", "it", "ja", "ko", "no", "pt_BR",
    "ru", "es", "es_MX", "sv", "th",
];

/// The officially assigned ISO 3166-1 alpha-2 codes (249, as ISO publishes them). The seed's
/// `Country` is "the two-character, upper-case ISO-3166 country code"; any other is `S-2006`
/// after the sign-up is spent, so validate refuses it first.
pub(crate) const COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// When each creatable field appeared, as the seed says ("available in API version N and
/// later"); a field it gives no version for is as old as `SignupRequest` (27.0). Sent with an
/// older `api_version`, Salesforce refuses the field as unknown, after validation passed.
pub(crate) const FIELD_API_VERSIONS: &[(&str, u32)] = &[
    ("connected_app_callback_url", 28),
    ("connected_app_consumer_key", 28),
    ("suppress_signup_emails", 29),
    ("edition", 35),
    ("preferred_language", 35),
    ("should_connect_to_env_hub", 35),
    ("signup_source", 36),
];

static ORG: &[Field] = &[
    Field::new("company", "Company", Kind::String(Text::non_empty()))
        .required()
        .doc("The name of the company requesting the trial sign-up"),
    Field::new(
        "connected_app_callback_url",
        "ConnectedAppCallbackUrl",
        Kind::String(Text::format(Format::Url)),
    )
    .doc("With connected_app_consumer_key: a connected app approved during the sign-up"),
    Field::new(
        "connected_app_consumer_key",
        "ConnectedAppConsumerKey",
        Kind::String(Text::non_empty()),
    )
    .doc("With connected_app_callback_url: a connected app approved during the sign-up"),
    Field::new(
        "country",
        "Country",
        Kind::String(Text::format(Format::CountryCode)),
    )
    .required()
    .doc("Two-letter upper-case ISO 3166 country code, like \"US\"; sets the trial's language"),
    Field::new("edition", "Edition", Kind::Enum(EDITIONS))
        .doc("The Salesforce template for the trial; without it, template_id is required"),
    Field::new("first_name", "FirstName", Kind::String(Text::non_empty()))
        .doc("First name of the trial's admin user"),
    Field::new("last_name", "LastName", Kind::String(Text::non_empty()))
        .required()
        .doc("Last name of the trial's admin user"),
    Field::new("preferred_language", "PreferredLanguage", Kind::Enum(LANGUAGES))
        .doc("Language of the trial organization, a fully supported language code like \"en_US\""),
    Field::new(
        "should_connect_to_env_hub",
        "ShouldConnectToEnvHub",
        Kind::Bool,
    )
    .doc("Connect the trial to the Environment Hub (sign up from the hub or a spoke); default false"),
    Field::new(
        "signup_email",
        "SignupEmail",
        Kind::String(Text::format(Format::Email)),
    )
    .required()
    .doc("E-mail address of the trial's admin user"),
    Field::new("signup_source", "SignupSource", Kind::String(Text::max(60)))
        .doc("Your description of the sign-up, up to 60 characters"),
    Field::new(
        "subdomain",
        "Subdomain",
        Kind::String(Text {
            min_len: Some(1),
            max_len: Some(SUBDOMAIN_MAX),
            format: None,
        }),
    )
    .doc("My Domain subdomain of the trial: at most 33 characters for Developer editions, 40 otherwise"),
    // Marked Filter/Group/Nillable/Sort only in the seed's (v36-era) page, but the Proxy Signup
    // feature it serves only works if it is set when the request is created, and Salesforce's
    // own create example sends it (docs/providers/salesforce_signup.md, "Create"): declarable,
    // sent on create.
    Field::new(
        "suppress_signup_emails",
        "SuppressSignupEmails",
        Kind::Bool,
    )
    .doc("Send no sign-up e-mails when the trial is created (Proxy Signup)"),
    Field::new(
        "template_id",
        "TemplateId",
        Kind::String(Text::format(Format::TemplateId)),
    )
    .doc("15-character id of an approved Trialforce template, \"0TT\" + 12; or set edition"),
    Field::new(
        "trial_days",
        "TrialDays",
        Kind::Integer {
            min: Some(1),
            max: None,
        },
    )
    .doc("Length of the trial in days, at most the template's; defaults to the template's"),
    Field::new(
        "username",
        "Username",
        Kind::String(Text::format(Format::Email)),
    )
    .required()
    .doc("Username of the trial's admin user, in RFC 822 form; unique across all of Salesforce"),
];

static ORG_RULES: &[Rule] = &[
    Rule::Pair("connected_app_consumer_key", "connected_app_callback_url"),
    Rule::AnyOf(&["template_id", "edition"]),
    Rule::Check(subdomain_fits_edition),
    Rule::Check(country_assigned),
    Rule::Check(subdomain_characters),
    Rule::WithInstance(fields_fit_api_version),
];

/// `country` has the right shape already (two upper-case letters); here, that ISO assigned it.
fn country_assigned(org: &Table) -> Vec<(String, String)> {
    match org.get("country").and_then(Value::as_str) {
        Some(country) if !COUNTRIES.contains(&country) => vec![(
            "country".into(),
            format!(
                "(\"{country}\") is not an ISO 3166-1 alpha-2 country code: Salesforce would fail the sign-up with S-2006 (invalid country code)"
            ),
        )],
        _ => Vec::new(),
    }
}

/// A My Domain name is letters, digits and hyphens, starts with a letter, and has no hyphen at
/// its end or two in a row; anything else fails the sign-up with C-1018 ("Invalid subdomain
/// value"). Inferred: seed 001 gives the code but not the characters; this is Salesforce's My
/// Domain naming rule, and the sandbox's C-1018 rule.
fn subdomain_characters(org: &Table) -> Vec<(String, String)> {
    let Some(subdomain) = org.get("subdomain").and_then(Value::as_str) else {
        return Vec::new();
    };
    let well_formed = subdomain.starts_with(|c: char| c.is_ascii_alphabetic())
        && !subdomain.ends_with('-')
        && !subdomain.contains("--")
        && subdomain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if well_formed {
        Vec::new()
    } else {
        vec![(
            "subdomain".into(),
            format!(
                "(\"{subdomain}\") must be letters, digits and single hyphens, start with a letter and not end with a hyphen: Salesforce would fail the sign-up with C-1018 (invalid subdomain value)"
            ),
        )]
    }
}

/// A field newer than the instance's `api_version` is unknown to that version of the API. With
/// no `api_version`, the client's default (60.0) has every field.
fn fields_fit_api_version(org: &Table, instance: &Table) -> Vec<(String, String)> {
    let Some(version) = instance.get("api_version").and_then(Value::as_str) else {
        return Vec::new();
    };
    let Some(major) = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
    else {
        return Vec::new();
    };
    FIELD_API_VERSIONS
        .iter()
        .filter(|(field, since)| *since > major && org.contains_key(field))
        .map(|(field, since)| {
            (
                (*field).to_string(),
                format!(
                    "exists from API version {since}.0 on, but the provider instance's `api_version` is \"{version}\": raise `api_version` to \"{since}.0\" or later, or remove the field"
                ),
            )
        })
        .collect()
}

/// Developer editions append a suffix to the My Domain, so their subdomain has 33 characters,
/// not 40. With a template and no edition the edition is not known here: 40 is checked.
fn subdomain_fits_edition(org: &Table) -> Vec<(String, String)> {
    let edition = org.get("edition").and_then(Value::as_str);
    let subdomain = org.get("subdomain").and_then(Value::as_str);
    match (edition, subdomain) {
        (Some(edition), Some(subdomain))
            if DEVELOPER_EDITIONS.contains(&edition)
                && subdomain.chars().count() > SUBDOMAIN_MAX_DEVELOPER =>
        {
            vec![(
                "subdomain".into(),
                format!(
                    "must be at most {SUBDOMAIN_MAX_DEVELOPER} characters long for edition \"{edition}\" (it is {}): Salesforce appends a suffix to Developer Edition domains",
                    subdomain.chars().count()
                ),
            )]
        }
        _ => Vec::new(),
    }
}

static INSTANCE: &[Field] = &[
    Field::same_on_wire("auth", Kind::Enum(&["password", "jwt"])).doc(
        "How orgform logs in: \"password\" (OAuth username-password flow, the default) or \"jwt\" (JWT bearer flow)",
    ),
    Field::same_on_wire("username", Kind::Secret)
        .required()
        .doc("Username of the Trialforce Management Organization's admin, by reference"),
    Field::same_on_wire("password", Kind::Secret)
        .doc("With auth = \"password\": the password followed by the security token, by reference"),
    Field::same_on_wire("client_id", Kind::Secret)
        .required()
        .doc("Consumer key of the connected app, by reference"),
    Field::same_on_wire("client_secret", Kind::Secret)
        .doc("With auth = \"password\": consumer secret of the connected app, by reference"),
    Field::same_on_wire("private_key", Kind::Secret).doc(
        "With auth = \"jwt\": the connected app's RSA private key, PEM PKCS#8, like { file = \"keys/tmo.pem\" }",
    ),
    Field::same_on_wire("audience", Kind::String(Text::format(Format::Url))).doc(
        "With auth = \"jwt\": the JWT `aud`, like a community URL; default https://login.salesforce.com, or https://test.salesforce.com for test.salesforce.com and *.sandbox.my.salesforce.com",
    ),
    Field::same_on_wire("api_version", Kind::String(Text::format(Format::ApiVersion)),
    )
    .doc("REST API version, like \"60.0\" (default); SignupRequest needs 27.0 or later"),
];

/// The oldest API version with SignupRequest (seed 001).
pub(crate) const MIN_API_VERSION: u32 = 27;

static INSTANCE_RULES: &[Rule] = &[Rule::Check(credentials_fit_auth), Rule::Check(api_version)];

/// Each login flow takes its own credentials: the password flow a password and the consumer
/// secret, the JWT bearer flow a private key. A credential the flow doesn't use is refused
/// rather than ignored, so a half-migrated provider table is noticed.
fn credentials_fit_auth(instance: &Table) -> Vec<(String, String)> {
    let jwt = instance.get("auth").and_then(Value::as_str) == Some("jwt");
    let (flow, needed, unused): (&str, &[&str], &[&str]) = if jwt {
        (
            "`auth = \"jwt\"`",
            &["private_key"],
            &["password", "client_secret"],
        )
    } else {
        (
            "`auth = \"password\"` (the default)",
            &["password", "client_secret"],
            &["private_key", "audience"],
        )
    };
    let mut problems = Vec::new();
    for key in needed.iter().filter(|k| !instance.contains_key(k)) {
        // A PEM key is a file on disk far more often than an environment variable.
        let example = if *key == "private_key" {
            "{ file = \"PATH\" }"
        } else {
            "{ env = \"NAME\" }"
        };
        problems.push((
            (*key).to_string(),
            format!("is required with {flow}: add `{key} = {example}`"),
        ));
    }
    for key in unused.iter().filter(|k| instance.contains_key(k)) {
        problems.push((
            (*key).to_string(),
            format!("is not used with {flow}: remove it, or choose the other `auth`"),
        ));
    }
    problems
}

fn api_version(instance: &Table) -> Vec<(String, String)> {
    let Some(version) = instance.get("api_version").and_then(Value::as_str) else {
        return Vec::new();
    };
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= MIN_API_VERSION => Vec::new(),
        _ => vec![(
            "api_version".into(),
            format!(
                "is {version}, but SignupRequest exists from API version {MIN_API_VERSION}.0 on (Edition and PreferredLanguage from 35.0, SignupSource from 36.0)"
            ),
        )],
    }
}

fn natural_key(org: &Table, _instance: &Table) -> NaturalKey {
    let username = org.get("username").and_then(Value::as_str).unwrap_or("");
    ProviderType::SalesforceSignup.natural_key(&[username])
}

/// Usernames per SOQL query (`Username IN (...)`): Salesforce's largest batch of records, so
/// one query's answer fits one page.
pub(crate) const QUERY_PAGE: u32 = 2_000;

pub(crate) const CAPABILITIES: Capabilities = Capabilities {
    asynchronous: true,
    // A sign-up finishes in minutes on its own: apply polls it.
    waits_for_creates: true,
    daily_quota: Some(20),
    reads: Reads::ByKeys {
        page_size: QUERY_PAGE,
    },
    // Usernames are unique without regard to case.
    key_case_insensitive: true,
    allows_duplicates: false,
    vendor_hosts: &["*.salesforce.com"],
};

pub(crate) static DESCRIPTOR: Descriptor = Descriptor {
    schema: ProviderSchema::new(
        "Salesforce Trialforce sign-up (POST /services/data/vXX.X/sobjects/SignupRequest/)",
        BaseUrl::Default("https://login.salesforce.com"),
        natural_key,
    )
    .key_fields(&["username"])
    .instance(INSTANCE, INSTANCE_RULES)
    .org(ORG, ORG_RULES),
    capabilities: CAPABILITIES,
    sandbox_credentials: sandbox::CREDENTIALS,
};

/// What the sandbox's emulator accepts: fixed, public values for a machine with no account.
pub(crate) mod sandbox {
    /// The Trialforce Management Organization's admin, as the sandbox knows it.
    pub const USERNAME: &str = "tmo@sandbox.example";
    /// Its password followed by its security token, as the password grant sends them.
    pub const PASSWORD: &str = "sandbox-sf-password";
    /// The connected app's consumer key.
    pub const CLIENT_ID: &str = "sandbox-sf-client-id";
    /// The connected app's consumer secret.
    pub const CLIENT_SECRET: &str = "sandbox-sf-client-secret";
    /// By the instance key that carries each. A JWT instance gets the username and client id;
    /// its `private_key` must still be a real key file, since the sandbox only checks that the
    /// assertion is well signed.
    pub(crate) const CREDENTIALS: &[(&str, &str)] = &[
        ("username", USERNAME),
        ("password", PASSWORD),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
}
