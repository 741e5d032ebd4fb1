//! Commvault: "Create Salesforce Organization", `POST {base}/Salesforce/Organization` (seed 000,
//! docs/providers/commvault_salesforce.md), which puts a Salesforce organization under
//! Commvault's protection.
//!
//! Every field of the seed's request body is declarable, under the API's names in snake_case;
//! `_type_` keeps its own name, which is already a valid bare TOML key. The four credentials of
//! the body are secrets, by reference only: the Salesforce user's password, the connected app's
//! consumer secret and the sync database user's password go on the wire base64-encoded (the
//! seed says so for each), the Salesforce API `token` as it is (the seed says nothing of an
//! encoding for it). The client, not the schema, knows which is which.
//!
//! The natural key is `organization_name`, compared without case: Commvault's client names are
//! unique regardless of case, and its own SDK compares them lower-cased.
//!
//! The provider instance takes `username` and `password` (the Commcell login), and needs a
//! `base_url`: the API lives on each customer's own Command Center host, so there is no public
//! endpoint to default to.

use super::schema::{BaseUrl, Field, Format, Kind, Problems, ProviderSchema, Rule, Text};
use super::{Capabilities, Descriptor, Reads};
use crate::model::{NaturalKey, ProviderType, Table, Value};

const S: Kind = Kind::String(Text::ANY);
const NAME: Kind = Kind::String(Text::non_empty());
/// An id Commvault hands out (plans, clients, client groups): positive.
const ID: Kind = Kind::Integer {
    min: Some(1),
    max: None,
};
/// An id where 0 means "the Commcell itself" (company, multi-Commcell).
const ID_OR_ZERO: Kind = Kind::Integer {
    min: Some(0),
    max: None,
};

/// Salesforce's production login host, the seed's default `endpoint`.
const PRODUCTION_LOGIN: &str = "https://login.salesforce.com";
/// Salesforce's sandbox login host.
const SANDBOX_LOGIN: &str = "https://test.salesforce.com";

static ENTITY_INFO: &[Field] = &[
    Field::new("company_id", "companyId", ID_OR_ZERO)
        .required()
        .doc("Id of the Company to associate this client (0 for the Commcell itself)"),
    Field::new("company_name", "companyName", NAME)
        .doc("Name of the Company to associate this client (default \"Commcell\")"),
    Field::new("multi_commcell_id", "multiCommcellId", ID_OR_ZERO)
        .doc("Id of the Commcell, in a multi-Commcell setup"),
];

static PLAN: &[Field] = &[
    Field::new("plan_name", "planName", NAME)
        .required()
        .doc("Name of the plan to be associated"),
    Field::new("plan_id", "planId", ID)
        .required()
        .doc("Id of the plan to be associated"),
    // Optional: the seed marks `planName`, `planId` and `companyId` required, not `entityInfo`.
    Field::new("entity_info", "entityInfo", Kind::Object(ENTITY_INFO))
        .doc("The Company the organization belongs to: `company_id`, optionally its name"),
];

static CLIENT: &[Field] = &[
    Field::new("client_id", "clientId", ID)
        .required()
        .doc("Id of the Client to use as Access Node"),
    Field::new("client_name", "clientName", NAME)
        .required()
        .doc("Name of the Client to use as Access Node"),
    Field::same_on_wire(
        "_type_",
        Kind::Integer {
            min: Some(0),
            max: None,
        },
    )
    .doc("Commvault's entity type; 3 is a client"),
];

static ACCESS_NODE: &[Field] = &[
    Field::same_on_wire("client", Kind::Object(CLIENT))
        .doc("A Client to use as Access Node: `client_id` and `client_name`"),
    Field::new("client_group_name", "clientGroupName", NAME).doc("Client Group Name"),
    Field::new("client_group_id", "clientGroupId", ID).doc("Id of the Client Group"),
];

static USER_CREDENTIALS: &[Field] = &[
    Field::new("user_name", "userName", NAME)
        .required()
        .doc("Username of the Salesforce User"),
    Field::same_on_wire("password", Kind::Secret)
        .required()
        .doc("Password of the Salesforce User, by reference; orgform base64-encodes it"),
];

static SALESFORCE_ACCOUNT: &[Field] = &[
    Field::new(
        "environment_type",
        "environmentType",
        Kind::IntEnum(&[0, 1]),
    )
    .doc("Salesforce Environment: 0 Production, 1 Sandbox"),
    Field::new(
        "authentication_type",
        "authenticationType",
        Kind::IntEnum(&[1, 2]),
    )
    .required()
    .doc("Authentication Type: 1 OAuth, 2 Username and Password"),
    Field::new(
        "user_credentials",
        "userCredentials",
        Kind::Object(USER_CREDENTIALS),
    )
    .required()
    .doc("The Salesforce User: `user_name` and `password`"),
    Field::new("consumer_id", "consumerId", NAME)
        .required()
        .doc("Consumer Key of the connected APP"),
    Field::new("consumer_secret", "consumerSecret", Kind::Secret)
        .required()
        .doc("Consumer Secret of the connected APP, by reference; orgform base64-encodes it"),
    Field::same_on_wire("endpoint", Kind::String(Text::format(Format::Url)))
        .doc("Salesforce endpoint (default https://login.salesforce.com)"),
    Field::same_on_wire("token", Kind::Secret)
        .doc("API token for Salesforce User, by reference; sent as it is"),
];

static DB_USER_PASSWORD: &[Field] = &[
    Field::new("user_name", "userName", NAME)
        .required()
        .doc("Username of DB user"),
    Field::same_on_wire("password", Kind::Secret)
        .required()
        .doc("Password of DB User, by reference; orgform base64-encodes it"),
];

static SYNC_DATABASE: &[Field] = &[
    Field::new("db_enabled", "dbEnabled", Kind::Bool)
        .required()
        .doc("Set true to use SyncDB (Commvault's default is true)"),
    Field::new(
        "db_type",
        "dbType",
        Kind::String(Text::format(Format::Numeric)),
    )
    .required()
    .doc("Database type, as digits: \"3\" PostgreSQL (Commvault's default), \"2\" SQL Server"),
    Field::new("db_host", "dbHost", NAME)
        .required()
        .doc("Database host"),
    Field::new(
        "db_port",
        "dbPort",
        Kind::String(Text::format(Format::Numeric)),
    )
    .required()
    .doc("Database port, as a string of digits, like \"5432\""),
    Field::new("db_name", "dbName", NAME)
        .required()
        .doc("Database name"),
    Field::new(
        "db_user_password",
        "dbUserPassword",
        Kind::Object(DB_USER_PASSWORD),
    )
    .doc("The database user: `user_name` and `password`"),
    Field::new("db_instance", "dbInstance", S).doc("SQL Server instance (SQL Server only)"),
];

static ORG: &[Field] = &[
    Field::new("organization_name", "organizationName", NAME)
        .required()
        .doc("Name of the Organization; how orgform finds it again, regardless of case"),
    Field::same_on_wire("plan", Kind::Object(PLAN))
        .required()
        .doc("The plan to associate: `plan_name`, `plan_id`, optionally `entity_info`"),
    Field::new(
        "access_nodes",
        "accessNodes",
        Kind::Array(&Kind::Object(ACCESS_NODE)),
    )
    .doc("Access nodes, as `[[org.NAME.access_nodes]]` tables: each a `client` or a client group"),
    Field::new(
        "salesforce_account",
        "salesforceAccount",
        Kind::Object(SALESFORCE_ACCOUNT),
    )
    .required()
    .doc("How Commvault reaches the Salesforce organization"),
    Field::new("download_cache_path", "downloadCachePath", NAME)
        .required()
        .doc("Download cache path on the access nodes"),
    Field::new("sync_database", "syncDatabase", Kind::Object(SYNC_DATABASE))
        .doc("The database Commvault syncs Salesforce data into"),
    Field::new("use_resource_pool_info", "useResourcePoolInfo", Kind::Bool)
        .doc("Use Resource Pool linked with Plan (default false)"),
];

static INSTANCE: &[Field] = &[
    Field::same_on_wire("username", Kind::Secret)
        .required()
        .doc("Commcell user name, by reference; sent to POST /Login"),
    Field::same_on_wire("password", Kind::Secret)
        .required()
        .doc("Commcell password, by reference; orgform base64-encodes it for POST /Login"),
];

static INSTANCE_RULES: &[Rule] = &[Rule::Check(check_base_url)];

static ORG_RULES: &[Rule] = &[
    Rule::Check(check_access_nodes),
    Rule::Check(check_endpoint),
    Rule::Check(check_sync_database),
];

/// Commvault's API lives on each customer's own Command Center, under a path (`/commandcenter/api`
/// or the older `/webconsole/api`): a bare host would send every request to the web console's
/// pages instead of its API. (That `base_url` is required at all is `BaseUrl::Required`.)
fn check_base_url(values: &Table) -> Problems {
    let example = "like \"https://commandcenter.example.com/commandcenter/api\"";
    let Some(base_url) = values.text("base_url") else {
        return Vec::new();
    };
    let path = url::Url::parse(base_url)
        .map(|u| u.path().trim_matches('/').to_string())
        .unwrap_or_default();
    if path.is_empty() {
        return vec![(
            "base_url".into(),
            format!(
                "(\"{base_url}\") has no path: Commvault serves its API under /commandcenter/api (or /webconsole/api on older Commcells), so include it, {example}"
            ),
        )];
    }
    Vec::new()
}

/// An access node is a client or a client group (the seed's two ways to name one); a node with
/// neither would be sent empty, and the same client twice is a mistake Commvault would not
/// catch for you.
fn check_access_nodes(values: &Table) -> Problems {
    let mut problems = Vec::new();
    let Some(Value::Array(nodes)) = values.get("access_nodes") else {
        return problems;
    };
    let mut seen: Vec<(usize, i64)> = Vec::new();
    for (i, node) in nodes.iter().filter_map(Value::as_table).enumerate() {
        let at = format!("access_nodes[{i}]");
        let group = node.contains_key("client_group_name") || node.contains_key("client_group_id");
        match node.table("client") {
            None if !group => problems.push((
                at,
                "names no access node: set `client` (`client_id` and `client_name`) or a client group (`client_group_name` or `client_group_id`)".into(),
            )),
            Some(client) => {
                if let Some(id) = client.int("client_id") {
                    if let Some((first, _)) = seen.iter().find(|(_, seen_id)| *seen_id == id) {
                        problems.push((
                            format!("{at}.client.client_id"),
                            format!("({id}) repeats `access_nodes[{first}]`; list each access node once"),
                        ));
                    } else {
                        seen.push((i, id));
                    }
                }
            }
            None => {}
        }
    }
    problems
}

/// The Salesforce login endpoint: credentials travel there, so HTTPS only; and the two public
/// login hosts each serve one environment, so naming the other one is a mistake that would only
/// show when Commvault first tries to log in.
fn check_endpoint(values: &Table) -> Problems {
    let mut problems = Vec::new();
    let Some(account) = values.table("salesforce_account") else {
        return problems;
    };
    let Some(endpoint) = account.text("endpoint") else {
        return problems;
    };
    if !endpoint.starts_with("https://") {
        problems.push((
            "salesforce_account.endpoint".into(),
            format!("(\"{endpoint}\") must be an https:// URL: the Salesforce credentials are sent there"),
        ));
        return problems;
    }
    let host = endpoint.trim_end_matches('/').to_ascii_lowercase();
    match account.int("environment_type") {
        Some(1) if host == PRODUCTION_LOGIN => problems.push((
            "salesforce_account.endpoint".into(),
            format!("is Salesforce's production login, but `environment_type = 1` is a sandbox: use {SANDBOX_LOGIN} (or the sandbox's My Domain URL), or set `environment_type = 0`"),
        )),
        Some(0) if host == SANDBOX_LOGIN => problems.push((
            "salesforce_account.endpoint".into(),
            format!("is Salesforce's sandbox login, but `environment_type = 0` is production: use {PRODUCTION_LOGIN} (or the My Domain URL), or set `environment_type = 1`"),
        )),
        _ => {}
    }
    problems
}

/// The sync database's port is a TCP port, sent as a string; `db_instance` is the SQL Server
/// instance, which a PostgreSQL database (`db_type = "3"`) does not have.
fn check_sync_database(values: &Table) -> Problems {
    let mut problems = Vec::new();
    let Some(db) = values.table("sync_database") else {
        return problems;
    };
    if let Some(port) = db.text("db_port")
        && !port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p))
    {
        problems.push((
            "sync_database.db_port".into(),
            format!("(\"{port}\") must be a TCP port, from 1 to 65535"),
        ));
    }
    if db.text("db_type") == Some("3")
        && db.text("db_instance").is_some_and(|i| !i.trim().is_empty())
    {
        problems.push((
            "sync_database.db_instance".into(),
            "names a SQL Server instance, but `db_type = \"3\"` is PostgreSQL, which has none: remove it, or set `db_type = \"2\"` for SQL Server".into(),
        ));
    }
    problems
}

fn natural_key(org: &Table, _instance: &Table) -> NaturalKey {
    let name = org
        .get("organization_name")
        .and_then(Value::as_str)
        .unwrap_or("");
    ProviderType::CommvaultSalesforce.natural_key(&[name])
}

pub(crate) const CAPABILITIES: Capabilities = Capabilities {
    // One call lists every organization.
    reads: Reads::ListAll,
    // cvpysdk compares names lower-cased, and the API refuses a name that differs only in case.
    key_case_insensitive: true,
    allows_duplicates: false,
    // None: Command Center is always the customer's own host.
    vendor_hosts: &[],
    ..Capabilities::PLAIN
};

pub(crate) static DESCRIPTOR: Descriptor = Descriptor {
    schema: ProviderSchema::new(
        "Commvault protection of a Salesforce organization (POST /Salesforce/Organization)",
        BaseUrl::Required {
            why: "Commvault's API lives on your own Command Center host, so set its API root, like \"https://commandcenter.example.com/commandcenter/api\"",
        },
        natural_key,
    )
    .key_fields(&["organization_name"])
    .instance(INSTANCE, INSTANCE_RULES)
    .org(ORG, ORG_RULES),
    capabilities: CAPABILITIES,
    sandbox_credentials: sandbox::CREDENTIALS,
};

/// What the sandbox's emulator accepts: fixed, public values for a machine with no account.
pub(crate) mod sandbox {
    /// The Commcell user the emulator's `POST /Login` accepts (compared without case).
    pub const USERNAME: &str = "sandbox-admin";
    /// That user's password; it is sent base64-encoded.
    pub const PASSWORD: &str = "sandbox-password";
    /// By the instance key that carries each.
    pub(crate) const CREDENTIALS: &[(&str, &str)] =
        &[("username", USERNAME), ("password", PASSWORD)];
}
