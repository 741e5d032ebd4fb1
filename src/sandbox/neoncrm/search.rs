//! `account/listAccounts`: the output columns and search keys it knows ([`COLUMNS`], named in
//! an answer as the vendor's example names them, never by echoing the request), the
//! `searches.search.*` groups (ANDed; EQUAL without case; IN_RANGE over `("a","b")`), and
//! 1-based pages of at most [`MAX_PAGE_SIZE`](super::MAX_PAGE_SIZE) (or the configured cap), sorted.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Account, ApiError, DEFAULT_PAGE_SIZE, Emulator, Params, v1_list};

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
    fn value(self, account: &Account) -> Value {
        let contact = |key: &str| {
            json!(
                account.organization_account["primaryContact"][key]
                    .as_str()
                    .unwrap_or_default()
            )
        };
        match self {
            Column::AccountId => json!(account.account_id),
            Column::Name => json!(account.organization_name),
            Column::AccountType => json!(account.user_type.name()),
            Column::FirstName => contact("firstName"),
            Column::LastName => contact("lastName"),
            Column::Email => contact("email1"),
        }
    }
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
    pub(super) fn list(&mut self, params: &Params<'_>) -> Result<Value, Vec<ApiError>> {
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
        let total = found.len();
        let accounts = &self.data.accounts;
        let rows: Vec<Value> = found
            .iter()
            .skip((page - 1).saturating_mul(size))
            .take(size)
            .filter_map(|p| accounts.get(*p))
            .map(|account| {
                let pairs = columns
                    .iter()
                    .map(|(c, name)| json!({"name": name, "value": c.value(account)}))
                    .collect();
                json!({"nameValuePair": v1_list(pairs)})
            })
            .collect();
        let search_results = if rows.is_empty() {
            json!({})
        } else {
            json!({"nameValuePairs": v1_list(rows)})
        };
        Ok(json!({
            "page": {
                "currentPage": page,
                "pageSize": size,
                "totalPage": total.div_ceil(size),
                "totalResults": total,
            },
            "searchResults": search_results,
        }))
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
        let have = match column.value(account) {
            Value::String(s) => s,
            other => other.to_string(),
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
