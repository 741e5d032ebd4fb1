//! `account/listAccounts`: the output columns and search keys it knows ([`COLUMNS`], named in
//! an answer as the vendor's example names them, never by echoing the request), the
//! `searches.search.*` groups (ANDed; EQUAL without case; IN_RANGE over `("a","b")`), and
//! 1-based pages of at most [`MAX_PAGE_SIZE`](super::MAX_PAGE_SIZE) (or the configured cap), sorted.

use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use super::{Account, Answer, ApiError, DEFAULT_PAGE_SIZE, Emulator, Endpoint, Params};

/// The output columns and search keys `listAccounts` knows here: what each holds, the name a
/// request uses, and the name an answer gives it. A request's names are matched without regard
/// to case or surrounding blanks: the vendor's List Accounts example asks for `Account ID`,
/// `First Name`, `Last Name` and `Email 1`, and its answer says `Account Id`, `First Name`,
/// `Last Name` and `Email` [S: the example, as quoted in issue 13 and providers.md §5.1]. Both
/// names of an organization's name are accepted, as the sources disagree on it [I]. `Account
/// Type` (Individual | Organization, v1's `userType` values) is inferred [I]: v1 documents
/// `userType` on searches, not this column's name. On an organization account the name and
/// e-mail columns are its primary contact's [I: a company account has no name or e-mail of its
/// own, its contact does (the vendor's "Accounts" page)].
pub(crate) const COLUMNS: &[(Column, &str, &str)] = &[
    (Column::AccountId, "Account ID", "Account Id"),
    (Column::Name, "Organization Name", "Organization Name"),
    (Column::Name, "Company Name", "Company Name"),
    (Column::AccountType, "Account Type", "Account Type"),
    (Column::FirstName, "First Name", "First Name"),
    (Column::LastName, "Last Name", "Last Name"),
    (Column::Email, "Email 1", "Email"),
    // The example's search key for the same field.
    (Column::Email, "Email", "Email"),
];

/// What a column of `listAccounts` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Column {
    AccountId,
    Name,
    AccountType,
    FirstName,
    LastName,
    Email,
}

/// The column a request names, and its documented name for the answer.
pub(super) fn column(requested: &str) -> Option<(Column, &'static str)> {
    let requested = requested.trim();
    COLUMNS
        .iter()
        .find(|(_, asked, _)| asked.eq_ignore_ascii_case(requested))
        .map(|(column, _, answered)| (*column, *answered))
}

impl Column {
    /// What this column holds for `account`: a blank where the account has nothing, as v1
    /// renders an empty field (`"lastName": ""` in the keyword search example).
    fn cell(self, account: &Account) -> Cell<'_> {
        self.cell_of(account, &Contact::of(account))
    }

    /// [`Column::cell`], with the account's contact already looked up (once a row, not once
    /// a column: a page's cost was mostly these look-ups).
    fn cell_of<'a>(self, account: &'a Account, contact: &Contact<'a>) -> Cell<'a> {
        let contact = |key: &str| {
            Cell::Text(
                contact
                    .0
                    .and_then(|c| c.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
        };
        match self {
            Column::AccountId => Cell::Number(account.account_id),
            Column::Name => Cell::Text(&account.organization_name),
            Column::AccountType => Cell::Text(account.user_type.name()),
            Column::FirstName => contact("firstName"),
            Column::LastName => contact("lastName"),
            Column::Email => contact("email1"),
        }
    }
}

/// An account's primary contact, where its name and e-mail columns come from.
struct Contact<'a>(Option<&'a serde_json::Map<String, Value>>);

impl<'a> Contact<'a> {
    fn of(account: &'a Account) -> Contact<'a> {
        Contact(
            account
                .organization_account
                .get("primaryContact")
                .and_then(Value::as_object),
        )
    }
}

/// The value of one column of one account, borrowed from it.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(untagged)]
enum Cell<'a> {
    Number(u64),
    Text(&'a str),
}

// [I] Search errors: v2's documented search codes, which v1's "Querying" page describes in words.
const SORT_COLUMN_INVALID: ApiError = ("21", "Sort column is invalid.");
const SEARCH_KEY_REQUIRED: ApiError = ("22", "Search key is required.");
const SEARCH_KEY_INVALID: ApiError = ("23", "Search key is invalid.");
const SEARCH_VALUE_REQUIRED: ApiError = ("24", "Search value is required.");
const SEARCH_VALUE_INVALID: ApiError = ("25", "Search value is invalid.");
const OUTPUT_FIELD_INVALID: ApiError = ("26", "Output field is invalid.");
const OPERATOR_INVALID: ApiError = ("27", "Search operator is invalid.");
const CRITERIA_EMPTY: ApiError = ("28", "Search criteria is empty.");
const PAGE_INVALID: ApiError = ("29", "Page number is invalid.");

impl Emulator<'_> {
    pub(super) fn list(&mut self, params: &Params<'_>) -> Result<Listed<'_>, Vec<ApiError>> {
        let requested = params.all("outputfields.idnamepair.name");
        let columns: Vec<(Column, &str)> = requested.iter().filter_map(|c| column(c)).collect();
        if columns.is_empty() || columns.len() != requested.len() {
            return Err(vec![OUTPUT_FIELD_INVALID]);
        }
        let keys = params.all("searches.search.key");
        let operators = params.all("searches.search.searchOperator");
        let values = params.all("searches.search.value");
        if keys.is_empty() {
            return Err(vec![CRITERIA_EMPTY]);
        }
        let mut searches = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if key.is_empty() {
                return Err(vec![SEARCH_KEY_REQUIRED]);
            }
            let Some((key, _)) = column(key) else {
                return Err(vec![SEARCH_KEY_INVALID]);
            };
            let operator = operators.get(i).copied().unwrap_or("");
            let value = values.get(i).copied().unwrap_or("");
            searches.push(Search::parse(key, operator, value)?);
        }

        let size = match params.value("page.pageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| vec![PAGE_INVALID])?
                .clamp(1, self.max_page_size()),
        };
        let page = match params.value("page.currentPage") {
            None => 1,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(vec![PAGE_INVALID]),
            },
        };
        let descending = match params.value("page.sortDirection") {
            None | Some("ASC") => false,
            Some("DESC") => true,
            Some(_) => return Err(vec![SORT_COLUMN_INVALID]),
        };
        let sort = match params.value("page.sortColumn") {
            None => None,
            Some(asked) => match column(asked) {
                Some((c, _)) if columns.iter().any(|(have, _)| *have == c) => Some(c),
                _ => return Err(vec![SORT_COLUMN_INVALID]),
            },
        };

        let found = self.found(&searches, sort, descending);
        let accounts = &self.data.accounts;
        let rows = found
            .iter()
            .skip((page - 1).saturating_mul(size))
            .take(size)
            .filter_map(|p| accounts.get(*p))
            .collect();
        Ok(Listed {
            page,
            size,
            total: found.len(),
            columns,
            rows,
        })
    }
}

/// One page of a search, borrowing the accounts it shows: written out as the answer's JSON
/// text ([`Listed::answer`]) under the data's lock, so that a page costs what it shows, with
/// no tree of JSON values built for it first.
pub(super) struct Listed<'a> {
    page: usize,
    size: usize,
    total: usize,
    columns: Vec<(Column, &'static str)>,
    rows: Vec<&'a Account>,
}

impl Listed<'_> {
    /// The whole answer, as [`envelope`](super::envelope) makes a success of `{page,
    /// searchResults}`: rows and each row's columns as v1 lists (one element bare), and
    /// `searchResults` empty (`{}`) when no row is on the page.
    pub(super) fn answer(&self, wall: SystemTime) -> Answer {
        #[derive(Serialize)]
        struct Whole<'a> {
            #[serde(rename = "listAccountsResponse")]
            response: Body<'a>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            operation_result: &'static str,
            response_date_time: String,
            page: Page,
            search_results: Results<'a>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        #[expect(
            clippy::struct_field_names,
            reason = "the fields mirror the API's currentPage and totalPage"
        )]
        struct Page {
            current_page: usize,
            page_size: usize,
            total_page: usize,
            total_results: usize,
        }
        #[derive(Serialize)]
        struct Results<'a> {
            #[serde(rename = "nameValuePairs", skip_serializing_if = "V1List::is_empty")]
            rows: V1List<Row<'a>>,
        }
        let whole = Whole {
            response: Body {
                operation_result: "SUCCESS",
                response_date_time: humantime::format_rfc3339_millis(wall).to_string(),
                page: Page {
                    current_page: self.page,
                    page_size: self.size,
                    total_page: self.total.div_ceil(self.size),
                    total_results: self.total,
                },
                search_results: Results {
                    rows: V1List(
                        self.rows
                            .iter()
                            .map(|account| Row {
                                columns: &self.columns,
                                account,
                            })
                            .collect(),
                    ),
                },
            },
        };
        match serde_json::to_vec(&whole) {
            Ok(text) => Answer::Text(text),
            // Never for these plain structs; said as v1 says a failure, should it ever be.
            Err(_) => Answer::Value(super::envelope(
                Endpoint::ListAccounts,
                Err(vec![("1", "Unexpected System error occured.")]),
                wall,
            )),
        }
    }
}

/// v1's rendering of a list (as [`v1_list`](super::v1_list)): one element bare, several an
/// array.
struct V1List<T>(Vec<T>);

impl<T> V1List<T> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize> Serialize for V1List<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(serializer),
            many => many.serialize(serializer),
        }
    }
}

/// One row of a page: `{"nameValuePair": ...}`, a `{name, value}` per column asked.
struct Row<'a> {
    columns: &'a [(Column, &'static str)],
    account: &'a Account,
}

impl Serialize for Row<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        #[derive(Serialize)]
        struct Pair<'a> {
            name: &'static str,
            value: Cell<'a>,
        }
        let contact = Contact::of(self.account);
        let pairs = V1List(
            self.columns
                .iter()
                .map(|(column, name)| Pair {
                    name,
                    value: column.cell_of(self.account, &contact),
                })
                .collect(),
        );
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("nameValuePair", &pairs)?;
        map.end()
    }
}

impl Emulator<'_> {
    /// The most accounts a page holds: the documented cap, unless configured otherwise.
    fn max_page_size(&self) -> usize {
        match self.config.max_page_size {
            0 => usize::MAX,
            cap => cap,
        }
    }

    /// The positions of the accounts a search finds, in the order of its answer. A search on
    /// names (EQUAL or IN_RANGE) looks them up; any other reads every account, once: what it
    /// found is kept for the next page of the same search, until an account changes.
    fn found(
        &mut self,
        searches: &[Search],
        sort: Option<Column>,
        descending: bool,
    ) -> Arc<[usize]> {
        let accounts = &self.data.accounts;
        let named = searches
            .iter()
            .find_map(|Search(column, operator, values)| {
                (*column == Column::Name && matches!(operator, Operator::Equal | Operator::InRange))
                    .then_some(values)
            });
        if let Some(names) = named {
            let mut candidates: Vec<usize> = names
                .iter()
                .flat_map(|name| self.data.index.with_name(name))
                .copied()
                .collect();
            candidates.sort_unstable();
            candidates.dedup();
            return ordered(accounts, candidates, searches, sort, descending).into();
        }
        let key = format!("{searches:?} {sort:?} {descending}");
        if let Some(found) = self.data.index.scanned(&key) {
            return found;
        }
        let found: Arc<[usize]> =
            ordered(accounts, 0..accounts.len(), searches, sort, descending).into();
        self.data.index.remember_scan(key, Arc::clone(&found));
        found
    }
}

/// Those of `candidates` (positions in ascending order) that every search matches, sorted
/// as the answer lists them.
fn ordered(
    accounts: &[Account],
    candidates: impl IntoIterator<Item = usize>,
    searches: &[Search],
    sort: Option<Column>,
    descending: bool,
) -> Vec<usize> {
    let mut found: Vec<(usize, &Account)> = candidates
        .into_iter()
        .filter_map(|p| Some((p, accounts.get(p)?)))
        .filter(|(_, a)| searches.iter().all(|s| s.matches(a)))
        .collect();
    match sort {
        Some(Column::Name) => {
            found.sort_by_cached_key(|(_, a)| (a.organization_name.to_lowercase(), a.account_id));
        }
        _ => found.sort_by_key(|(_, a)| a.account_id),
    }
    if descending {
        found.reverse();
    }
    found.into_iter().map(|(p, _)| p).collect()
}

/// One `searches.search` group: a column, an operator and its values.
#[derive(Debug)]
struct Search(Column, Operator, Vec<String>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    Equal,
    NotEqual,
    Contain,
    InRange,
    NotInRange,
    Blank,
    NotBlank,
}

impl Search {
    fn parse(key: Column, operator: &str, value: &str) -> Result<Search, Vec<ApiError>> {
        let operator = match operator {
            "EQUAL" => Operator::Equal,
            "NOT_EQUAL" => Operator::NotEqual,
            "CONTAIN" => Operator::Contain,
            "IN_RANGE" => Operator::InRange,
            "NOT_IN_RANGE" => Operator::NotInRange,
            "BLANK" => Operator::Blank,
            "NOT_BLANK" => Operator::NotBlank,
            _ => return Err(vec![OPERATOR_INVALID]),
        };
        let values = match operator {
            Operator::Blank | Operator::NotBlank => Vec::new(),
            _ if value.is_empty() => return Err(vec![SEARCH_VALUE_REQUIRED]),
            Operator::InRange | Operator::NotInRange => {
                parse_range(value).ok_or_else(|| vec![SEARCH_VALUE_INVALID])?
            }
            _ => vec![value.to_string()],
        };
        Ok(Search(key, operator, values))
    }

    fn matches(&self, account: &Account) -> bool {
        let Search(column, operator, values) = self;
        let operator = *operator;
        let number;
        let have = match column.cell(account) {
            Cell::Text(text) => text,
            Cell::Number(n) => {
                number = n.to_string();
                &number
            }
        };
        // [I] Text comparisons ignore case and surrounding blanks, as a SQL search would.
        let have = have.trim().to_lowercase();
        let is = |v: &String| v.trim().to_lowercase() == have;
        match operator {
            Operator::Equal | Operator::InRange => values.iter().any(is),
            Operator::NotEqual | Operator::NotInRange => !values.iter().any(is),
            Operator::Contain => values
                .iter()
                .any(|v| have.contains(&v.trim().to_lowercase())),
            Operator::Blank => have.is_empty(),
            Operator::NotBlank => !have.is_empty(),
        }
    }
}

/// An IN_RANGE value, `("a","b")`, or unquoted `(a,b)`.
fn parse_range(value: &str) -> Option<Vec<String>> {
    let inner = value.trim().strip_prefix('(')?.strip_suffix(')')?;
    let mut items = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (item, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start())
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            (rest[..end].trim(), &rest[end..])
        };
        items.push(item.to_string());
        rest = match after.strip_prefix(',') {
            Some(next) => next.trim_start(),
            None if after.is_empty() => after,
            None => return None,
        };
    }
    (!items.is_empty()).then_some(items)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use serde_json::{Value, json};

    use super::super::{Answer, Endpoint, NeonConfig, NeonData};

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
            .collect()
    }

    /// A page is written as text straight from the accounts: exactly the text the answer
    /// built as JSON values was, key order and v1's one-element lists included.
    #[test]
    fn a_page_is_the_text_its_json_was() {
        let config = NeonConfig::default();
        let mut data = NeonData::default();
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut call = |endpoint, pairs: &[(&str, &str)]| {
            data.answer(&config, endpoint, &params(pairs), now, wall, 7)
        };
        let login = call(
            Endpoint::Login,
            &[
                ("login.apiKey", super::super::API_KEY),
                ("login.orgid", super::super::ORG_ID),
            ],
        )
        .into_value();
        let sid = login["loginResponse"]["userSessionId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for (name, first) in [("Alpha", "Ann"), ("Beta", ""), ("Gamma", "Gus")] {
            call(
                Endpoint::CreateOrganizationAccount,
                &[
                    ("userSessionId", &sid),
                    ("organizationAccount.organizationName", name),
                    ("organizationAccount.primaryContact.firstName", first),
                ],
            );
        }
        let text = |answer: Answer| match answer {
            Answer::Text(text) => String::from_utf8(text).unwrap_or_default(),
            Answer::Value(value) => panic!("not written as text: {value}"),
        };
        let page = |operator: &str, value: &str, columns: &[&str], page: &str, size: &str| {
            let mut pairs = vec![("userSessionId".to_string(), sid.clone())];
            for column in columns {
                pairs.push(("outputfields.idnamepair.name".into(), (*column).to_string()));
            }
            for (name, value) in [
                ("searches.search.key", "Organization Name"),
                ("searches.search.searchOperator", operator),
                ("searches.search.value", value),
                ("page.currentPage", page),
                ("page.pageSize", size),
            ] {
                pairs.push((name.to_string(), value.to_string()));
            }
            pairs
        };
        let mut list = |pairs: Vec<(String, String)>| {
            text(data.answer(&config, Endpoint::ListAccounts, &pairs, now, wall, 7))
        };
        let time = "2023-11-14T22:13:20.000Z";
        let two_columns = ["Account ID", "First Name"];
        let several = list(page("NOT_BLANK", "", &two_columns, "1", "2"));
        let expected = json!({"listAccountsResponse": {
            "operationResult": "SUCCESS", "responseDateTime": time,
            "page": {"currentPage": 1, "pageSize": 2, "totalPage": 2, "totalResults": 3},
            "searchResults": {"nameValuePairs": [
                {"nameValuePair": [{"name": "Account Id", "value": 10001}, {"name": "First Name", "value": "Ann"}]},
                {"nameValuePair": [{"name": "Account Id", "value": 10002}, {"name": "First Name", "value": ""}]},
            ]},
        }});
        assert_eq!(several, expected.to_string());
        let one = list(page("EQUAL", "gamma", &["Organization Name"], "1", "10"));
        let expected = json!({"listAccountsResponse": {
            "operationResult": "SUCCESS", "responseDateTime": time,
            "page": {"currentPage": 1, "pageSize": 10, "totalPage": 1, "totalResults": 1},
            "searchResults": {"nameValuePairs": {"nameValuePair": {"name": "Organization Name", "value": "Gamma"}}},
        }});
        assert_eq!(one, expected.to_string());
        let none = list(page("NOT_BLANK", "", &two_columns, "3", "2"));
        let expected = json!({"listAccountsResponse": {
            "operationResult": "SUCCESS", "responseDateTime": time,
            "page": {"currentPage": 3, "pageSize": 2, "totalPage": 2, "totalResults": 3},
            "searchResults": {},
        }});
        assert_eq!(none, expected.to_string());
        assert!(matches!(
            serde_json::from_str::<Value>(&none),
            Ok(Value::Object(_))
        ));
    }
}
