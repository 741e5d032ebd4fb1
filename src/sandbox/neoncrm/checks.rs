//! What a create is checked against, as seed 004's error table names it (10050 to 10071): the
//! catalogs a NeonCRM organization would configure (organization types, sources, address
//! types, states, countries), organization types named by id or name and none twice, every
//! address's type, state and country, and the custom field triplets.

use serde_json::{Map, Value, json};

use super::{ApiError, Params};

// Catalogs a NeonCRM organization would configure; what the List ... requests would return.
const ORGANIZATION_TYPES: &[(u64, &str)] = &[
    (1, "Church"),
    (2, "Business"),
    (3, "Foundation"),
    (4, "Government"),
    (5, "Nonprofit"),
    (6, "School"),
];
pub(super) const SOURCES: &[(u64, &str)] = &[
    (1, "Website"),
    (2, "Event"),
    (3, "Referral"),
    (4, "Import"),
    (43, "J. Starr"),
];
const ADDRESS_TYPES: &[(u64, &str)] = &[
    (1, "Home"),
    (2, "Business"),
    (3, "Billing"),
    (4, "Shipping"),
];
const COUNTRIES: &[(u64, &str)] = &[
    (1, "United States"),
    (2, "Canada"),
    (3, "United Kingdom"),
    (4, "Australia"),
    (5, "New Zealand"),
    (6, "Ireland"),
    (7, "Germany"),
    (8, "France"),
    (9, "Mexico"),
    (10, "India"),
];
const STATES: &[(&str, &str)] = &[
    ("AL", "ALABAMA"),
    ("AK", "ALASKA"),
    ("AZ", "ARIZONA"),
    ("AR", "ARKANSAS"),
    ("CA", "CALIFORNIA"),
    ("CO", "COLORADO"),
    ("CT", "CONNECTICUT"),
    ("DE", "DELAWARE"),
    ("DC", "DISTRICT OF COLUMBIA"),
    ("FL", "FLORIDA"),
    ("GA", "GEORGIA"),
    ("HI", "HAWAII"),
    ("ID", "IDAHO"),
    ("IL", "ILLINOIS"),
    ("IN", "INDIANA"),
    ("IA", "IOWA"),
    ("KS", "KANSAS"),
    ("KY", "KENTUCKY"),
    ("LA", "LOUISIANA"),
    ("ME", "MAINE"),
    ("MD", "MARYLAND"),
    ("MA", "MASSACHUSETTS"),
    ("MI", "MICHIGAN"),
    ("MN", "MINNESOTA"),
    ("MS", "MISSISSIPPI"),
    ("MO", "MISSOURI"),
    ("MT", "MONTANA"),
    ("NE", "NEBRASKA"),
    ("NV", "NEVADA"),
    ("NH", "NEW HAMPSHIRE"),
    ("NJ", "NEW JERSEY"),
    ("NM", "NEW MEXICO"),
    ("NY", "NEW YORK"),
    ("NC", "NORTH CAROLINA"),
    ("ND", "NORTH DAKOTA"),
    ("OH", "OHIO"),
    ("OK", "OKLAHOMA"),
    ("OR", "OREGON"),
    ("PA", "PENNSYLVANIA"),
    ("RI", "RHODE ISLAND"),
    ("SC", "SOUTH CAROLINA"),
    ("SD", "SOUTH DAKOTA"),
    ("TN", "TENNESSEE"),
    ("TX", "TEXAS"),
    ("UT", "UTAH"),
    ("VT", "VERMONT"),
    ("VA", "VIRGINIA"),
    ("WA", "WASHINGTON"),
    ("WV", "WEST VIRGINIA"),
    ("WI", "WISCONSIN"),
    ("WY", "WYOMING"),
    ("AB", "ALBERTA"),
    ("BC", "BRITISH COLUMBIA"),
    ("MB", "MANITOBA"),
    ("NB", "NEW BRUNSWICK"),
    ("NL", "NEWFOUNDLAND AND LABRADOR"),
    ("NS", "NOVA SCOTIA"),
    ("NT", "NORTHWEST TERRITORIES"),
    ("NU", "NUNAVUT"),
    ("ON", "ONTARIO"),
    ("PE", "PRINCE EDWARD ISLAND"),
    ("QC", "QUEBEC"),
    ("SK", "SASKATCHEWAN"),
    ("YT", "YUKON"),
];

pub(super) const NAME_REQUIRED: ApiError = ("10050", "Organization name is required.");
pub(super) const TYPE_REQUIRED: ApiError = ("10051", "Organization type is required.");
pub(super) const TYPES_NOT_FOUND: ApiError =
    ("10052", "Available organization types cannot be found.");
pub(super) const TYPE_ID_INVALID: ApiError = ("10053", "OrganizationType id is invalid.");
pub(super) const ADDRESS_TYPE_INVALID: ApiError = ("10055", "Address type is invalid.");
pub(super) const STATE_INVALID: ApiError = ("10056", "Address state is invalid.");
pub(super) const COUNTRY_INVALID: ApiError = ("10057", "Address country is invalid.");
pub(super) const TYPE_NAME_INVALID: ApiError = ("10058", "Organization type name is invalid.");
pub(super) const TYPE_INVALID: ApiError = ("10059", "Organization type is invalid");
pub(super) const USERNAME_REQUIRED: ApiError = ("10060", "Login username is required.");
pub(super) const USERNAME_TAKEN: ApiError = ("10061", "Login username is already exist.");
pub(super) const PASSWORD_REQUIRED: ApiError = ("10062", "Login password is required.");
pub(super) const SOURCE_INVALID: ApiError = ("10063", "Source is invalid.");
pub(super) const FIELD_ID_REQUIRED: ApiError = ("10064", "CustomField id is required.");
pub(super) const FIELD_ID_INVALID: ApiError = ("10065", "CustomField id is invalid.");
pub(super) const FIELD_VALUE_REQUIRED: ApiError =
    ("10067", "CustomField option value is required.");
pub(super) const FIELD_OPTION_REQUIRED: ApiError = ("10068", "CustomField optionId is required.");
pub(super) const TYPE_DUPLICATED: ApiError = ("10070", "Organizaiton type is duplicated.");
pub(super) const FIELD_OPTION_INVALID: ApiError = ("10071", "CustomField optionId is invalid.");

/// Organization types (10051 to 10059, 10070): each by an id or a name of the catalog, none
/// twice; groups are paired by position.
pub(super) fn check_organization_types(
    params: &Params<'_>,
    required: bool,
    errors: &mut Vec<ApiError>,
) {
    const GROUP: &str = "organizationAccount.organizationTypes.organizationType";
    let ids = params.all(&format!("{GROUP}.id"));
    let names = params.all(&format!("{GROUP}.name"));
    let count = ids.len().max(names.len());
    if count == 0 {
        if required {
            errors.push(TYPE_REQUIRED);
        }
        return;
    }
    if ORGANIZATION_TYPES.is_empty() {
        errors.push(TYPES_NOT_FOUND);
        return;
    }
    let mut seen = Vec::new();
    for i in 0..count {
        let id = ids.get(i).copied().filter(|s| !s.is_empty());
        let name = names.get(i).copied().filter(|s| !s.is_empty());
        let found = match (id, name) {
            (None, None) => {
                errors.push(TYPE_INVALID);
                continue;
            }
            (Some(id), _) => {
                let found = lookup(ORGANIZATION_TYPES, Some(id), None);
                if found.is_none() {
                    errors.push(TYPE_ID_INVALID);
                }
                found
            }
            (None, Some(name)) => {
                let found = lookup(ORGANIZATION_TYPES, None, Some(name));
                if found.is_none() {
                    errors.push(TYPE_NAME_INVALID);
                }
                found
            }
        };
        if let Some(id) = found {
            if seen.contains(&id) {
                errors.push(TYPE_DUPLICATED);
            }
            seen.push(id);
        }
    }
}

/// Whether a lookup object named by its two keys (id or code, and name) is in a catalog.
type Known = dyn Fn(Option<&str>, Option<&str>) -> bool;

/// Address types, states and countries of every address (10055 to 10057).
pub(super) fn check_addresses(params: &Params<'_>, errors: &mut Vec<ApiError>) {
    const GROUP: &str = "organizationAccount.primaryContact.addresses.address";
    let field = |leaf: &str| params.all(&format!("{GROUP}.{leaf}"));
    let mut check = |a: &str, b: &str, known: &Known, error| {
        let (firsts, seconds) = (field(a), field(b));
        for i in 0..firsts.len().max(seconds.len()) {
            let first = firsts.get(i).copied().filter(|s| !s.is_empty());
            let second = seconds.get(i).copied().filter(|s| !s.is_empty());
            if (first.is_some() || second.is_some()) && !known(first, second) {
                errors.push(error);
            }
        }
    };
    check(
        "addressType.id",
        "addressType.name",
        &|id, name| lookup(ADDRESS_TYPES, id, name).is_some(),
        ADDRESS_TYPE_INVALID,
    );
    check(
        "state.code",
        "state.name",
        &|code, name| {
            STATES.iter().any(|(c, n)| {
                code.is_none_or(|x| x.eq_ignore_ascii_case(c))
                    && name.is_none_or(|x| x.eq_ignore_ascii_case(n))
            })
        },
        STATE_INVALID,
    );
    check(
        "country.id",
        "country.name",
        &|id, name| lookup(COUNTRIES, id, name).is_some(),
        COUNTRY_INVALID,
    );
}

/// Custom field triplets (10064 to 10071): all three parameters sent for each field, paired by
/// position; an id, and an option id or a value. Any positive id is a configured field here.
pub(super) fn check_custom_fields(params: &Params<'_>, errors: &mut Vec<ApiError>) {
    const GROUP: &str = "organizationAccount.customFieldDataList.customFieldData";
    let ids = params.all(&format!("{GROUP}.fieldId"));
    let options = params.all(&format!("{GROUP}.fieldOptionId"));
    let values = params.all(&format!("{GROUP}.fieldValue"));
    let count = ids.len().max(options.len()).max(values.len());
    for i in 0..count {
        match ids.get(i).copied().filter(|s| !s.is_empty()) {
            None => errors.push(FIELD_ID_REQUIRED),
            Some(id) if !positive(id) => errors.push(FIELD_ID_INVALID),
            Some(_) => {}
        }
        let (Some(option), Some(value)) = (options.get(i), values.get(i)) else {
            if options.get(i).is_none() {
                errors.push(FIELD_OPTION_REQUIRED);
            }
            if values.get(i).is_none() {
                errors.push(FIELD_VALUE_REQUIRED);
            }
            continue;
        };
        if !option.is_empty() && !positive(option) {
            errors.push(FIELD_OPTION_INVALID);
        } else if option.is_empty() && value.is_empty() {
            errors.push(FIELD_VALUE_REQUIRED);
        }
    }
}

fn positive(s: &str) -> bool {
    s.parse::<u64>().is_ok_and(|n| n > 0)
}

/// The id of a catalog entry named by id, by name (case-insensitive), or both (which must
/// agree).
pub(super) fn lookup(catalog: &[(u64, &str)], id: Option<&str>, name: Option<&str>) -> Option<u64> {
    let id = match id {
        Some(s) => Some(s.parse::<u64>().ok()?),
        None => None,
    };
    catalog
        .iter()
        .find(|(i, n)| id.is_none_or(|x| x == *i) && name.is_none_or(|x| x.eq_ignore_ascii_case(n)))
        .map(|(i, _)| *i)
}

/// Every lookup of a stored account named by only one of its keys given the other too, from
/// the catalogs: the Retrieve Organization Account example answers `source`, each
/// `organizationType`, and each address's `addressType`, `state` and `country` with both [S].
/// What was sent is kept as sent [I: whether NeonCRM answers a name in its own case is not
/// documented]. Runs after the checks, so every lookup is known.
pub(super) fn complete_lookups(account: &mut Map<String, Value>) {
    complete(account.get_mut("source"), SOURCES);
    if let Some(types) = account
        .get_mut("organizationTypes")
        .and_then(|t| t.get_mut("organizationType"))
        .and_then(Value::as_array_mut)
    {
        for kind in types {
            complete(Some(kind), ORGANIZATION_TYPES);
        }
    }
    let addresses = account
        .get_mut("primaryContact")
        .and_then(|c| c.get_mut("addresses"))
        .and_then(|a| a.get_mut("address"))
        .and_then(Value::as_array_mut);
    for address in addresses.into_iter().flatten() {
        complete(address.get_mut("addressType"), ADDRESS_TYPES);
        complete(address.get_mut("country"), COUNTRIES);
        if let Some(Value::Object(state)) = address.get_mut("state") {
            let code = state.get("code").and_then(Value::as_str);
            let name = state.get("name").and_then(Value::as_str);
            let found = STATES.iter().find(|(c, n)| {
                code.is_none_or(|x| x.eq_ignore_ascii_case(c))
                    && name.is_none_or(|x| x.eq_ignore_ascii_case(n))
            });
            if let Some((c, n)) = found {
                state.entry("code").or_insert_with(|| json!(c));
                state.entry("name").or_insert_with(|| json!(n));
            }
        }
    }
}

/// One `{id, name}` lookup given its missing half.
fn complete(lookup_object: Option<&mut Value>, catalog: &[(u64, &str)]) {
    let Some(Value::Object(object)) = lookup_object else {
        return;
    };
    let id = object.get("id").map(|id| match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let name = object.get("name").and_then(Value::as_str);
    let Some(id) = lookup(catalog, id.as_deref(), name) else {
        return;
    };
    let name = catalog
        .iter()
        .find(|(i, _)| *i == id)
        .map_or("", |(_, n)| *n);
    object.entry("id").or_insert_with(|| json!(id));
    object.entry("name").or_insert_with(|| json!(name));
}
