//! Indexes over OCC's requests and organizations, so that a create, a look-up by id, name or
//! e-mail and a page of a list cost what they touch rather than every item: positions by
//! request id, by request name, by the name an approval's organization has, by profile e-mail,
//! by organization id and name; and the order of the last few lists read whole (their filter
//! and sort applied), each kept for its next page until something changes or a request's
//! status may. A few, not one: a site's request-mode and direct-mode instances page their two
//! lists at the same time, and one kept list would be evicted by the other's every page.
//!
//! Invariant: **an index only narrows where to look**; each candidate is still checked as a
//! scan of every item checks it, so answers are the same. Names are keyed lower-cased, as the
//! lists' name filters compare them; an item whose name is not text is a candidate for every
//! name (a scan would not skip it either).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::{OrgRequest, Organization};

/// An item of a list: a request, an organization created directly, or the organization of an
/// approved request (by its position).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    Request(usize),
    Organization(usize),
    Approved(usize),
}

/// Positions by key, each list in ascending order.
type Positions<K> = HashMap<K, Vec<usize>>;

#[derive(Debug, Default)]
pub(super) struct Index {
    /// How many requests and organizations are indexed: other counts mean the data was
    /// replaced (a data file, a test's set-up) or changed in place, and it is built again.
    indexed: Option<(usize, usize)>,
    request_by_id: Positions<u64>,
    request_by_name: Positions<String>,
    request_by_email: Positions<String>,
    request_by_organization_id: Positions<String>,
    /// Requests by the name their organization has (its `organization.name`, else theirs).
    request_by_organization_name: Positions<String>,
    requests_unnamed: Vec<usize>,
    organization_by_id: Positions<String>,
    organization_by_name: Positions<String>,
    organizations_unnamed: Vec<usize>,
    /// Counts every change: a kept list order is for one generation.
    generation: u64,
    /// The last lists read whole, the newest last: each its path and query, the generation and
    /// the time until which no request's status changes by itself, and its items in order.
    listed: Vec<Listed>,
}

/// A list read whole, kept for its next pages.
#[derive(Debug)]
struct Listed {
    key: String,
    generation: u64,
    until_ms: u64,
    order: Arc<[Source]>,
}

/// Lists kept at once: the two lists and a sort or filter of one of them read meanwhile.
const LISTS_KEPT: usize = 4;

/// A name as the lists' name filters compare it.
pub(super) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn email(request: &OrgRequest) -> Option<&str> {
    request
        .fields
        .get("profile")
        .and_then(|p| p.get("email"))
        .and_then(Value::as_str)
}

/// The name of the organization a request's approval makes, if it is text.
fn organization_name(request: &OrgRequest) -> Option<&Value> {
    request
        .fields
        .get("organization")
        .and_then(Value::as_object)
        .and_then(|o| o.get("name"))
}

fn lookup<'a, K: std::hash::Hash + Eq>(map: &'a Positions<K>, key: &K) -> &'a [usize] {
    map.get(key).map_or(&[], Vec::as_slice)
}

impl Index {
    pub(super) fn refresh(&mut self, requests: &[OrgRequest], organizations: &[Organization]) {
        if self.indexed == Some((requests.len(), organizations.len())) {
            return;
        }
        let generation = self.generation + 1;
        *self = Index::default();
        self.generation = generation;
        for (position, request) in requests.iter().enumerate() {
            self.add_request(position, request);
        }
        for (position, organization) in organizations.iter().enumerate() {
            self.add_organization(position, organization);
        }
        self.indexed = Some((requests.len(), organizations.len()));
    }

    /// Something may have changed in place (an update): build again before the next call.
    pub(super) fn invalidate(&mut self) {
        self.indexed = None;
        self.changed();
    }

    /// Something changed: no kept list order holds any more.
    pub(super) fn changed(&mut self) {
        self.generation += 1;
        self.listed.clear();
    }

    /// Indexes the request just pushed at `position` (the last).
    pub(super) fn add_request(&mut self, position: usize, request: &OrgRequest) {
        self.request_by_id
            .entry(request.id)
            .or_default()
            .push(position);
        self.request_by_name
            .entry(name_key(&request.name))
            .or_default()
            .push(position);
        if let Some(email) = email(request) {
            self.request_by_email
                .entry(email.to_lowercase())
                .or_default()
                .push(position);
        }
        self.request_by_organization_id
            .entry(request.organization_id.clone())
            .or_default()
            .push(position);
        match organization_name(request) {
            Some(Value::String(name)) => self
                .request_by_organization_name
                .entry(name_key(name))
                .or_default()
                .push(position),
            Some(_) => self.requests_unnamed.push(position),
            None => self
                .request_by_organization_name
                .entry(name_key(&request.name))
                .or_default()
                .push(position),
        }
        if let Some((requests, organizations)) = self.indexed {
            self.indexed = Some((requests.max(position + 1), organizations));
        }
        self.changed();
    }

    /// Indexes the organization just pushed at `position` (the last).
    pub(super) fn add_organization(&mut self, position: usize, organization: &Organization) {
        self.organization_by_id
            .entry(organization.id.clone())
            .or_default()
            .push(position);
        match organization.fields.get("name") {
            Some(Value::String(name)) => self
                .organization_by_name
                .entry(name_key(name))
                .or_default()
                .push(position),
            _ => self.organizations_unnamed.push(position),
        }
        if let Some((requests, organizations)) = self.indexed {
            self.indexed = Some((requests, organizations.max(position + 1)));
        }
        self.changed();
    }

    pub(super) fn request_with_id(&self, id: u64) -> &[usize] {
        lookup(&self.request_by_id, &id)
    }

    pub(super) fn requests_named(&self, name: &str) -> &[usize] {
        lookup(&self.request_by_name, &name_key(name))
    }

    /// Requests whose profile e-mail is `email` (lower-cased).
    pub(super) fn requests_with_email(&self, email: &str) -> &[usize] {
        lookup(&self.request_by_email, &email.to_string())
    }

    pub(super) fn requests_making(&self, organization_id: &str) -> &[usize] {
        lookup(
            &self.request_by_organization_id,
            &organization_id.to_string(),
        )
    }

    /// Requests whose organization may be named `name` (lower-cased), in order.
    pub(super) fn requests_making_named(&self, name: &str) -> Vec<usize> {
        let mut found: Vec<usize> = lookup(&self.request_by_organization_name, &name.to_string())
            .iter()
            .chain(&self.requests_unnamed)
            .copied()
            .collect();
        found.sort_unstable();
        found
    }

    pub(super) fn organization_with_id(&self, id: &str) -> &[usize] {
        lookup(&self.organization_by_id, &id.to_string())
    }

    /// Organizations that may be named `name` (lower-cased), in order.
    pub(super) fn organizations_named(&self, name: &str) -> Vec<usize> {
        let mut found: Vec<usize> = lookup(&self.organization_by_name, &name.to_string())
            .iter()
            .chain(&self.organizations_unnamed)
            .copied()
            .collect();
        found.sort_unstable();
        found
    }

    /// The kept order of the list `key`, if nothing changed since and it is not yet `until`.
    pub(super) fn listed(&self, key: &str, now_ms: u64) -> Option<Arc<[Source]>> {
        self.listed
            .iter()
            .find(|l| l.key == key && l.generation == self.generation && now_ms < l.until_ms)
            .map(|l| Arc::clone(&l.order))
    }

    /// Keeps the order of the list `key` (in place of an older one of that key), forgetting the
    /// oldest beyond [`LISTS_KEPT`].
    pub(super) fn remember_list(&mut self, key: String, until_ms: u64, order: Arc<[Source]>) {
        self.listed.retain(|l| l.key != key);
        if self.listed.len() >= LISTS_KEPT {
            self.listed.remove(0);
        }
        self.listed.push(Listed {
            key,
            generation: self.generation,
            until_ms,
            order,
        });
    }
}
