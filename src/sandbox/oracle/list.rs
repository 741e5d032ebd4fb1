//! The two lists, organization requests and organizations, as OCC pages them: a SCIM `q`
//! ([`Filter`]), `sort=attr:asc|desc`, `offset` and `limit` (at most
//! [`OracleConfig::max_limit`](super::OracleConfig::max_limit)), answered as
//! `{total, totalResults, offset, limit, links, items}` with links back at the sandbox, each
//! item with the fields OCC's list documents.

use std::sync::Arc;

use serde_json::{Value, json};

use super::filter::{Filter, compare, lookup};
use super::index::Source;
use super::{Emulator, Reply, code};

/// Which list a request reads.
#[derive(Clone, Copy, Debug)]
pub(super) enum Collection {
    Requests,
    Organizations,
}

impl Emulator<'_> {
    pub(super) fn list(&mut self, collection: Collection, query: &str) -> Reply {
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let paging = |name: &str, default: u64| -> Result<u64, Reply> {
            match param(name) {
                None | Some("") => Ok(default),
                Some(v) => v.trim().parse::<u64>().map_err(|_| {
                    Reply::error(
                        400,
                        code::BAD_PAGING,
                        format!("The value {v} for parameter '{name}' is invalid. '{name}' can be 'limit', 'offset'."),
                    )
                }),
            }
        };
        let offset = match paging("offset", 0) {
            Ok(v) => v,
            Err(reply) => return reply,
        };
        let limit = match paging("limit", self.config.max_limit) {
            Ok(0) => self.config.max_limit,
            Ok(v) => v.min(self.config.max_limit),
            Err(reply) => return reply,
        };
        let filter = match param("q").map(str::trim).filter(|q| !q.is_empty()) {
            None => None,
            Some(q) => match Filter::parse(q) {
                Ok(f) => Some(f),
                Err(why) => {
                    let code = match collection {
                        Collection::Requests => code::BAD_REQUEST_QUERY,
                        Collection::Organizations => code::BAD_ORGANIZATION_QUERY,
                    };
                    return Reply::error(400, code, format!("Invalid Query Expression. {why}"));
                }
            },
        };
        let mut sort_echo = Vec::new();
        let mut sort_by = None;
        if let Some(sort) = param("sort").filter(|s| !s.trim().is_empty()) {
            let (field, order) = sort.split_once(':').unwrap_or((sort, "asc"));
            let descending = match order.trim() {
                "asc" => false,
                "desc" => true,
                _ => {
                    return Reply::error(
                        400,
                        code::BAD_SORT,
                        format!("Invalid sort options: {sort}"),
                    );
                }
            };
            let field = field.trim();
            sort_by = Some((field, descending));
            sort_echo.push(
                json!({ "property": field, "order": if descending { "desc" } else { "asc" } }),
            );
        }
        // A list read whole is kept for its next page (the same filter and sort); one that
        // names its items is a look-up, as cheap to make again.
        let whole = filter.as_ref().and_then(Filter::only_names).is_none();
        let key = format!("{collection:?} {:?} {sort_by:?}", param("q"));
        let items = match self.data.index.listed(&key, self.now_ms) {
            Some(items) if whole => items,
            _ => {
                let items: Arc<[Source]> = self.order(collection, filter.as_ref(), sort_by).into();
                if whole {
                    let until = self.statuses_hold_until();
                    self.data
                        .index
                        .remember_list(key, until, Arc::clone(&items));
                }
                items
            }
        };
        let total = items.len() as u64;
        let start = usize::try_from(offset.min(total)).unwrap_or(usize::MAX);
        let end = usize::try_from((offset.saturating_add(limit)).min(total)).unwrap_or(usize::MAX);
        let mut page: Vec<Value> = items[start..end]
            .iter()
            .map(|source| self.render_source(*source))
            .collect();
        // Filtered and sorted on the whole object, answered as OCC's list items: a request's is
        // `{id, name, status, organization: {id}, profile: {id}}` (its comments and the rest
        // only come with a read of one), an organization's the whole object unless
        // `brief_organization_items` asks for the example's `{name, repositoryId, active, id}`.
        let listed: Option<&[&str]> = match collection {
            Collection::Requests => Some(&["id", "name", "status", "organization", "profile"]),
            Collection::Organizations if self.config.brief_organization_items => {
                Some(&["name", "repositoryId", "active", "id"])
            }
            Collection::Organizations => None,
        };
        if let Some(keys) = listed {
            for item in &mut page {
                if let Value::Object(fields) = item {
                    fields.retain(|k, _| keys.contains(&k.as_str()));
                }
            }
        }
        let number = |n: u64| {
            if self.config.counts_as_strings {
                json!(n.to_string())
            } else {
                json!(n)
            }
        };
        let path = match collection {
            Collection::Requests => "/ccadmin/v1/organizationRequests",
            Collection::Organizations => "/ccadmin/v1/organizations",
        };
        let href = if query.is_empty() {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}{path}?{query}", self.base_url)
        };
        let mut answer = json!({
            "total": number(total),
            "totalResults": number(total),
            "offset": number(offset),
            "limit": number(limit),
            "links": [{ "rel": "self", "href": href }],
            "items": page,
        });
        if !sort_echo.is_empty() {
            answer["sort"] = Value::Array(sort_echo);
        }
        Reply::json(200, answer)
    }
}

impl Emulator<'_> {
    /// The items of a list in the order of its answer, its filter and sort applied. Only the
    /// items the filter may match are looked at (by name, when it names them), and only when
    /// it filters or sorts are they rendered to be compared (rendering is what costs).
    fn order(
        &self,
        collection: Collection,
        filter: Option<&Filter>,
        sort_by: Option<(&str, bool)>,
    ) -> Vec<Source> {
        let names = filter.and_then(Filter::only_names);
        let candidates: Vec<Source> = match collection {
            Collection::Requests => {
                let positions: Vec<usize> = match &names {
                    None => (0..self.data.requests.len()).collect(),
                    Some(names) => {
                        let mut found: Vec<usize> = names
                            .iter()
                            .flat_map(|n| self.data.index.requests_named(n))
                            .copied()
                            .collect();
                        found.sort_unstable();
                        found.dedup();
                        found
                    }
                };
                positions
                    .into_iter()
                    .filter(|p| {
                        self.data.requests.get(*p).is_some_and(|r| {
                            names
                                .as_ref()
                                .is_none_or(|n| n.contains(&r.name.to_lowercase()))
                        })
                    })
                    .map(Source::Request)
                    .collect()
            }
            Collection::Organizations => self.organizations_named(names.as_ref()),
        };
        if filter.is_none() && sort_by.is_none() {
            return candidates;
        }
        let mut items: Vec<(Source, Value)> = candidates
            .into_iter()
            .map(|source| (source, self.render_source(source)))
            .filter(|(_, item)| filter.is_none_or(|f| f.matches(item)))
            .collect();
        if let Some((field, descending)) = sort_by {
            items.sort_by(|(_, a), (_, b)| {
                let ord = compare(
                    lookup(a, field).unwrap_or(&Value::Null),
                    lookup(b, field).unwrap_or(&Value::Null),
                );
                if descending { ord.reverse() } else { ord }
            });
        }
        items.into_iter().map(|(source, _)| source).collect()
    }
}
