//! The catalog: one pure descriptor per provider type, reached through the one enum
//! (`ProviderType::descriptor`). A descriptor holds every fact about a provider that is known
//! without talking to it: its spec format (keys, rules, natural key, default `base_url`), its
//! capabilities (quota, the natural key's case rule, how reality is read and in what pages,
//! vendor hosts), and the credentials its sandbox emulator accepts. The validator, the planner, the clients and the emulators read these facts
//! from here; none is written twice.
//!
//! Adding a provider type adds one file here (its `DESCRIPTOR`), and the exhaustive matches on
//! `ProviderType` make the compiler list every other place to touch (see ARCHITECTURE.md).

pub(crate) mod commvault;
pub(crate) mod heron;
pub(crate) mod neoncrm;
pub(crate) mod oracle;
pub(crate) mod salesforce;
pub(crate) mod schema;

use crate::model::{NaturalKey, ProviderType};
use schema::ProviderSchema;

/// Everything orgform knows about one provider type before it talks to it.
#[derive(Debug)]
pub(crate) struct Descriptor {
    /// The spec format: keys, rules, the natural key, where the API lives.
    pub(crate) schema: ProviderSchema,
    /// What the planner and apply may rely on.
    pub(crate) capabilities: Capabilities,
    /// The credentials the sandbox's emulator of this provider accepts, by the instance key
    /// that carries each (`--sandbox` fills them in; `orgform sandbox` prints them).
    pub(crate) sandbox_credentials: &'static [(&'static str, &'static str)],
}

impl ProviderType {
    /// This type's descriptor.
    pub(crate) fn descriptor(self) -> &'static Descriptor {
        match self {
            ProviderType::CommvaultSalesforce => &commvault::DESCRIPTOR,
            ProviderType::SalesforceSignup => &salesforce::DESCRIPTOR,
            ProviderType::OracleCommerce => &oracle::DESCRIPTOR,
            ProviderType::Heron => &heron::DESCRIPTOR,
            ProviderType::Neoncrm => &neoncrm::DESCRIPTOR,
        }
    }

    /// This type's spec format.
    pub fn schema(self) -> &'static ProviderSchema {
        &self.descriptor().schema
    }

    /// What the pure planner may know about this provider without talking to it.
    pub(crate) fn capabilities(self) -> Capabilities {
        self.descriptor().capabilities
    }

    /// A natural key from its parts, folded by this provider's case rule: the one place the
    /// rule is applied, for keys made from specs and keys read from the provider alike.
    pub(crate) fn natural_key(self, parts: &[&str]) -> NaturalKey {
        NaturalKey::new(parts, self.capabilities().key_case_insensitive)
    }
}

/// Capabilities as data (dnscontrol's capability flags): none of the five APIs has an update
/// call orgform may use, so every provider is create-only and a changed declaration is `blocked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Capabilities {
    /// Creates finish later and must be settled by polling (Salesforce sign-ups, Oracle requests).
    pub(crate) asynchronous: bool,
    /// Whether apply polls an asynchronous create until it finishes (or `--settle-timeout`
    /// passes). When not, apply looks it up once right after the create (a site that decides at
    /// once is recorded at once) and leaves it `pending`: a later plan or `refresh` settles it.
    pub(crate) waits_for_creates: bool,
    /// Documented creates per rolling 24 hours, when the provider has such a quota.
    pub(crate) daily_quota: Option<u32>,
    /// How remote reality is read.
    pub(crate) reads: Reads,
    /// Whether the natural key matches regardless of case (Commvault names, Salesforce usernames).
    pub(crate) key_case_insensitive: bool,
    /// Whether the provider itself lets two organizations share a natural key, so that orgform's
    /// look-up before create is the only thing standing between a retry and a duplicate.
    pub(crate) allows_duplicates: bool,
    /// The hosts the vendor serves its API from, as host patterns (`*.salesforce.com` is any
    /// subdomain): a `base_url` there sends credentials where they belong. Another host is
    /// allowed too, but a plan warns about it (or, with `ORGFORM_ALLOWED_HOSTS`, only its
    /// list counts); see `spec::endpoints`.
    pub(crate) vendor_hosts: &'static [&'static str],
}

impl Capabilities {
    /// The plainest provider: a create is done when it answers, there is no quota, one call
    /// lists every organization, keys match to the letter, the provider lets two organizations
    /// share one, and no vendor host is known. Each catalog file states only where its
    /// provider differs (`..Capabilities::PLAIN`).
    pub(crate) const PLAIN: Capabilities = Capabilities {
        asynchronous: false,
        waits_for_creates: false,
        daily_quota: None,
        reads: Reads::ListAll,
        key_case_insensitive: false,
        allows_duplicates: true,
        vendor_hosts: &[],
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// How a provider's organizations are read for a plan.
pub(crate) enum Reads {
    /// One call returns every organization (Commvault, Heron).
    ListAll,
    /// Look-ups by natural key, many keys per request, in pages of at most `page_size`.
    ByKeys { page_size: u32 },
}
