//! The two lists, organization requests and organizations, as OCC pages them: a SCIM `q`
//! ([`Filter`]), `sort=attr:asc|desc`, `offset` and `limit` (at most
//! [`OracleConfig::max_limit`](super::OracleConfig::max_limit)), answered as
//! `{total, totalResults, offset, limit, links, items}` with links back at the sandbox, each
//! item with the fields OCC's list documents.

use std::sync::Arc;

use serde_json::{Value, json};

use super::filter::{Filter, compare, lookup};
use super::index::Source;
use super::{Emulator, Reply, code, write_json, write_organization};

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
        let number = |out: &mut Vec<u8>, n: u64| {
            if self.config.counts_as_strings {
                write_json(out, &n.to_string());
            } else {
                write_json(out, &n);
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
        // `{total, totalResults, offset, limit, links, items[, sort]}`, written as JSON text item
        // by item (the bytes a tree of it serialized to): an organization is written from what
        // is stored, not copied into a tree first.
        let page = &items[start..end];
        let mut out = Vec::with_capacity(256 + page.len() * 768);
        out.extend_from_slice(b"{\"total\":");
        number(&mut out, total);
        out.extend_from_slice(b",\"totalResults\":");
        number(&mut out, total);
        out.extend_from_slice(b",\"offset\":");
        number(&mut out, offset);
        out.extend_from_slice(b",\"limit\":");
        number(&mut out, limit);
        out.extend_from_slice(b",\"links\":[{\"rel\":\"self\",\"href\":");
        write_json(&mut out, &href);
        out.extend_from_slice(b"}],\"items\":[");
        for (i, source) in page.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.write_item(&mut out, *source, listed);
        }
        out.push(b']');
        if !sort_echo.is_empty() {
            out.extend_from_slice(b",\"sort\":");
            write_json(&mut out, &sort_echo);
        }
        out.push(b'}');
        Reply::written(200, out)
    }

    /// One list item as JSON text onto `out`: [`Emulator::render_source`]'s object with only
    /// the keys of `keep` when it names them.
    fn write_item(&self, out: &mut Vec<u8>, source: Source, keep: Option<&[&str]>) {
        let data = &*self.data;
        match source {
            Source::Organization(p) => {
                if let Some(o) = data.organizations.get(p) {
                    return write_organization(out, &o.id, Some(&o.fields), None, keep);
                }
            }
            Source::Approved(p) => {
                if let Some(r) = data.requests.get(p) {
                    let organization = r.fields.get("organization").and_then(Value::as_object);
                    return write_organization(
                        out,
                        &r.organization_id,
                        organization,
                        Some(&r.name),
                        keep,
                    );
                }
            }
            Source::Request(_) => {}
        }
        let mut item = self.render_source(source);
        if let (Some(keys), Value::Object(fields)) = (keep, &mut item) {
            fields.retain(|k, _| keys.contains(&k.as_str()));
        }
        write_json(out, &item);
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
