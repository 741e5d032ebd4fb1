//! Indexes over NeonCRM's accounts, so that a create, a look-up by id or by name and a page of
//! `listAccounts` cost what they touch rather than every account: positions in
//! [`NeonData::accounts`](super::NeonData) by account id, by organization name (as
//! `listAccounts` compares it: trimmed, without case), by login username (as 10061 compares
//! it: without ASCII case), and the matches of the last search that had to read every account
//! (a search on something not indexed), kept until an account changes, so that paging through
//! it reads the accounts once, not once a page.
//!
//! Invariant: **an index only narrows where to look**; every answer is still decided by the
//! same checks on the accounts themselves, so it is the answer a scan of all of them gives.

use std::collections::HashMap;
use std::sync::Arc;

use super::Account;

/// The indexes, and the accounts they were built for.
#[derive(Clone, Debug, Default)]
pub(super) struct Index {
    /// How many accounts are indexed: another count means the accounts were replaced as a
    /// whole (a data file, a test's set-up), and the index is built again.
    indexed: Option<usize>,
    by_id: HashMap<u64, Vec<usize>>,
    by_name: HashMap<String, Vec<usize>>,
    by_username: HashMap<String, Vec<usize>>,
    /// The last search that read every account: what it was (its key) and what it found, in
    /// the order of its answer.
    scanned: Option<(String, Arc<[usize]>)>,
}

/// An organization name as `listAccounts` compares it.
pub(super) fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A login username as 10061 (username taken) compares it.
fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// Adds `position` to a list kept in ascending order (the accounts' own order).
fn insert(map: &mut HashMap<String, Vec<usize>>, key: String, position: usize) {
    let list = map.entry(key).or_default();
    if let Err(at) = list.binary_search(&position) {
        list.insert(at, position);
    }
}

fn remove(map: &mut HashMap<String, Vec<usize>>, key: &str, position: usize) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|p| *p != position);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

impl Index {
    /// Builds the index again unless it already covers exactly `accounts`.
    pub(super) fn refresh(&mut self, accounts: &[Account]) {
        if self.indexed == Some(accounts.len()) {
            return;
        }
        *self = Index::default();
        for (position, account) in accounts.iter().enumerate() {
            self.add(position, account);
        }
        self.indexed = Some(accounts.len());
    }

    /// Indexes the account just pushed at `position` (the last).
    pub(super) fn add(&mut self, position: usize, account: &Account) {
        self.by_id
            .entry(account.account_id)
            .or_default()
            .push(position);
        self.index_names(position, account);
        self.indexed = Some(position + 1);
        self.scanned = None;
    }

    /// The account at `position` is about to change from `old`; `new` is what it becomes.
    pub(super) fn replace(&mut self, position: usize, old: &Account, new: &Account) {
        remove(
            &mut self.by_name,
            &name_key(&old.organization_name),
            position,
        );
        if let Some(username) = &old.login_username {
            remove(&mut self.by_username, &username_key(username), position);
        }
        self.index_names(position, new);
        self.scanned = None;
    }

    fn index_names(&mut self, position: usize, account: &Account) {
        insert(
            &mut self.by_name,
            name_key(&account.organization_name),
            position,
        );
        if let Some(username) = &account.login_username {
            insert(&mut self.by_username, username_key(username), position);
        }
    }

    /// The positions of the accounts with this id, in order.
    pub(super) fn with_id(&self, id: u64) -> &[usize] {
        self.by_id.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The positions of the accounts whose organization name is `name` as `listAccounts`
    /// compares it, in order.
    pub(super) fn with_name(&self, name: &str) -> &[usize] {
        self.by_name.get(&name_key(name)).map_or(&[], Vec::as_slice)
    }

    /// The positions of the accounts whose login username is `username` without ASCII case.
    pub(super) fn with_username(&self, username: &str) -> &[usize] {
        self.by_username
            .get(&username_key(username))
            .map_or(&[], Vec::as_slice)
    }

    /// What the last search that read every account found, if it was the search `key`.
    pub(super) fn scanned(&self, key: &str) -> Option<Arc<[usize]>> {
        match &self.scanned {
            Some((k, found)) if k == key => Some(Arc::clone(found)),
            _ => None,
        }
    }

    pub(super) fn remember_scan(&mut self, key: String, found: Arc<[usize]>) {
        self.scanned = Some((key, found));
    }
}
