//! Indexes over the sign-ups, so that a create's username and subdomain checks, a record read by
//! id and a SOQL look-up by `Username`, `Subdomain` or `Id` cost what they touch rather than
//! every sign-up.
//!
//! Invariant: **an index only narrows where to look**; each candidate is still checked as a
//! scan of every sign-up checks it (`ids_match`, SOQL's comparison without case), so answers
//! are the same. A sign-up whose `Username` (or `Subdomain`) is not text is a candidate for
//! every username (or subdomain).

use std::collections::HashMap;

use serde_json::Value;

use super::Signup;

#[derive(Debug, Default)]
pub(super) struct Index {
    /// How many sign-ups are indexed: another count means they were replaced as a whole (a
    /// data file, a test's set-up), and the index is built again.
    indexed: Option<usize>,
    /// By the first 15 characters of the id (a 15-character id names an 18-character one).
    by_id_prefix: HashMap<String, Vec<usize>>,
    /// By the id, lower-cased as SOQL compares it.
    by_id: HashMap<String, Vec<usize>>,
    by_username: HashMap<String, Vec<usize>>,
    username_not_text: Vec<usize>,
    by_subdomain: HashMap<String, Vec<usize>>,
    subdomain_not_text: Vec<usize>,
}

/// The positions indexed under `key`, with those whose value is not text, in order.
fn candidates(by: &HashMap<String, Vec<usize>>, not_text: &[usize], key: &str) -> Vec<usize> {
    let mut found: Vec<usize> = by
        .get(key)
        .into_iter()
        .flatten()
        .chain(not_text)
        .copied()
        .collect();
    found.sort_unstable();
    found
}

/// Text as SOQL compares it: each character lower-cased.
pub(super) fn lower(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

fn id_prefix(id: &str) -> &str {
    id.get(..15).unwrap_or(id)
}

impl Index {
    pub(super) fn refresh(&mut self, signups: &[Signup]) {
        if self.indexed == Some(signups.len()) {
            return;
        }
        *self = Index::default();
        for (position, signup) in signups.iter().enumerate() {
            self.add(position, signup);
        }
        self.indexed = Some(signups.len());
    }

    /// Indexes the sign-up just pushed at `position` (the last).
    pub(super) fn add(&mut self, position: usize, signup: &Signup) {
        self.by_id_prefix
            .entry(id_prefix(&signup.id).to_string())
            .or_default()
            .push(position);
        self.by_id
            .entry(lower(&signup.id))
            .or_default()
            .push(position);
        match signup.fields.get("Username") {
            Some(Value::String(username)) => self
                .by_username
                .entry(lower(username))
                .or_default()
                .push(position),
            // Null matches no text; anything else is compared as a scan compares it.
            None | Some(Value::Null) => {}
            Some(_) => self.username_not_text.push(position),
        }
        match signup.fields.get("Subdomain") {
            Some(Value::String(subdomain)) => self
                .by_subdomain
                .entry(lower(subdomain))
                .or_default()
                .push(position),
            None | Some(Value::Null) => {}
            Some(_) => self.subdomain_not_text.push(position),
        }
        self.indexed = Some(position + 1);
    }

    /// Sign-ups whose id `ids_match` may accept for `asked`, in order.
    pub(super) fn with_id(&self, asked: &str) -> &[usize] {
        self.by_id_prefix
            .get(id_prefix(asked))
            .map_or(&[], Vec::as_slice)
    }

    /// Sign-ups whose record SOQL may find by `Id`, `Username` or `Subdomain` = `value`, in order; `None`
    /// for another field.
    pub(super) fn with_field(&self, field: &str, value: &str) -> Option<Vec<usize>> {
        let key = lower(value);
        let found = match field {
            "Id" => self.by_id.get(&key).cloned().unwrap_or_default(),
            "Username" => candidates(&self.by_username, &self.username_not_text, &key),
            "Subdomain" => candidates(&self.by_subdomain, &self.subdomain_not_text, &key),
            _ => return None,
        };
        Some(found)
    }
}
