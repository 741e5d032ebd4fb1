//! Specs: the TOML files a team commits, turned into a validated [`Spec`].
//!
//! Pure: the caller reads the files and hands over their text, so this layer never touches the
//! disk or the network. Every problem is collected with its file, line and column, and a spec
//! with any problem yields no `Spec` at all, so nothing downstream ever sees half-valid input.
//!
//! A caller that keeps a cache (`commands::spec_cache`) may hand over, for a file that declares
//! organizations only, what an earlier validation of the same bytes against the same providers
//! and templates made of it ([`checked`]), instead of its text: [`Spec::load_inputs`]. The
//! checks across files still run over every organization.

pub(crate) mod checked;
pub(crate) mod diagnostic;
pub(crate) mod endpoints;
pub(crate) mod format;
pub(crate) mod generate;
pub(crate) mod json_schema;
mod validate;

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

pub use checked::CheckedFile;
pub use diagnostic::{SourceFile, SpecError, SpecErrors};
pub(crate) use validate::{NAME_RULE, may_declare_shared, valid_name};

use crate::model::packed::PackedTable;
use crate::model::{Address, InstanceName, NaturalKey, ProviderType, SecretRef, Table, Value};

/// The validated specs: provider instances, organizations and the optional `[state]` settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub providers: BTreeMap<InstanceName, ProviderInstance>,
    pub orgs: BTreeMap<Address, OrgSpec>,
    pub(crate) state: StateSettings,
}

/// Where a table was declared, for messages that point back at the specs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Shared by every table declared in the file: one allocation per file, not per table.
    pub(crate) path: std::sync::Arc<str>,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A file name may hold any character but `/` and NUL.
        write!(f, "{}:{}", crate::escape::Shown(&self.path), self.line)
    }
}

/// One `[provider.NAME]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderInstance {
    pub(crate) name: InstanceName,
    pub(crate) provider_type: ProviderType,
    /// `base_url`, or the vendor's public endpoint.
    pub(crate) base_url: String,
    /// The provider-specific keys (credentials by reference, modes), validated.
    pub(crate) settings: Table,
    pub(crate) limits: Limits,
    pub(crate) origin: Origin,
    /// Every URL the instance sends requests to (`base_url`, Oracle's `store_url`), with where
    /// it was written: what [`endpoints::check`] holds against the allowed hosts.
    pub(crate) endpoints: Vec<Endpoint>,
}

/// One URL a provider instance sends requests (and so credentials) to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The setting that names it: `base_url`, `store_url`.
    pub(crate) setting: &'static str,
    pub(crate) url: String,
    /// Byte span in its file of the value, or of the `[provider.NAME]` header when the URL is
    /// the vendor's default, for errors that point at it.
    pub(crate) span: std::ops::Range<usize>,
}

impl ProviderInstance {
    /// A credential or other secret setting, by reference.
    pub(crate) fn secret(&self, key: &str) -> Option<&SecretRef> {
        match self.settings.get(key) {
            Some(Value::Secret(r)) => Some(r),
            _ => None,
        }
    }

    /// A plain string setting (`mode`, `auth`).
    pub(crate) fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(Value::as_str)
    }
}

/// How hard orgform may drive one provider instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub max_concurrency: u32,
    pub requests_per_second: Option<f64>,
    /// Creates allowed in any rolling 24 hours; `None` means no quota.
    pub creates_per_day: Option<u32>,
    /// Creates one apply may send; a plan with more is refused (a safety rail for unattended
    /// applies, so a bad merge can't open a thousand organizations).
    pub max_creates: Option<u32>,
}

impl Limits {
    /// Feeds the limits to `hasher` as `NAME=VALUE;` for each field, written out here rather
    /// than taken from a derived format, so that the specs digest changes only when a limit does.
    /// An absent limit is `NAME=;`, a rate is its IEEE 754 bits in hex.
    fn hash_into(&self, hasher: &mut Sha256) {
        // Named in full, so that a new field can't be left out of the digest unnoticed.
        let Limits {
            max_concurrency,
            requests_per_second,
            creates_per_day,
            max_creates,
        } = *self;
        let mut field = |name: &str, value: Option<String>| {
            hasher.update(name.as_bytes());
            hasher.update(b"=");
            hasher.update(value.unwrap_or_default().as_bytes());
            hasher.update(b";");
        };
        field("max_concurrency", Some(max_concurrency.to_string()));
        field(
            "requests_per_second",
            requests_per_second.map(|r| format!("{:016x}", r.to_bits())),
        );
        field("creates_per_day", creates_per_day.map(|n| n.to_string()));
        field("max_creates", max_creates.map(|n| n.to_string()));
    }
}

pub(crate) const DEFAULT_MAX_CONCURRENCY: u32 = 4;

/// One `[org.NAME]` table: an organization orgform keeps in existence.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgSpec {
    pub address: Address,
    pub instance: InstanceName,
    pub provider_type: ProviderType,
    /// The declared fields, by their spec names, validated against the provider's schema;
    /// packed, and unpacked by whoever needs them (a create, a plan that shows them).
    pub attrs: PackedTable,
    pub natural_key: NaturalKey,
    /// SHA-256 of the declared non-secret attributes: what "changed since creation" compares.
    pub digest: String,
    pub origin: Origin,
}

impl OrgSpec {
    /// The declared non-secret attributes as JSON: stored in state and shown in plans.
    pub fn public_attributes(&self) -> serde_json::Value {
        serde_json::to_value(TablePublicView(&self.attrs.unpack()))
            .unwrap_or(serde_json::Value::Null)
    }

    /// The same, as compact JSON text, the form state keeps.
    pub fn public_attributes_text(&self) -> crate::state::Attributes {
        crate::state::Attributes::from_serialize(&TablePublicView(&self.attrs.unpack()))
    }

    /// Feeds the secret references it declares, with their paths, to `hasher`: part of what a
    /// plan depends on, though not of the digest (secrets rotate without making an
    /// organization different).
    pub(crate) fn hash_secret_references(&self, hasher: &mut Sha256) {
        // The bytes `PATH=env:NAME;`, fed in parts.
        self.attrs.each_secret(|path, kind, name| {
            hasher.update(path);
            hasher.update(b"=");
            hasher.update(kind.as_bytes());
            hasher.update(b":");
            hasher.update(name.as_bytes());
            hasher.update(b";");
        });
    }
}

/// The `[state]` table.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StateSettings {
    pub(crate) backend: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) url: Option<SecretRef>,
    pub(crate) workspace: Option<String>,
}

/// One spec file for [`Spec::load_inputs`]: its text, or what validation made of the same bytes
/// before, against the same provider, template and `[state]` tables.
#[derive(Clone, Debug)]
pub enum Input {
    Text(SourceFile),
    Checked(CheckedFile),
}

/// What [`Spec::load_inputs`] made of the files.
#[derive(Debug)]
pub struct Loaded {
    pub spec: Spec,
    /// For each text input, in the order given (checked inputs left out): its organizations
    /// encoded for a cache to keep ([`checked::encode`]), when asked to keep and the file
    /// declares nothing but valid organizations; `None` otherwise.
    pub checked: Vec<Option<Vec<u8>>>,
}

/// Why [`Spec::load_inputs`] gave no spec.
#[derive(Debug)]
pub enum NotLoaded {
    /// Problems in the specs, every one of them (all inputs were text).
    Problems(SpecErrors),
    /// Some inputs were checked before, and the specs have a problem (or a file taken for one of
    /// organizations only declares more): the problems are told from text, so load again with
    /// every file's text ([`Spec::load`]).
    NeedsText,
}

impl Spec {
    /// Validates spec files read together. Addresses and instance names are unique across all of
    /// them. Returns every problem found, or the whole validated spec.
    pub fn load(files: &[SourceFile]) -> Result<Spec, SpecErrors> {
        validate::load(files)
    }

    /// [`Spec::load`] over files given as text or as checked before (a cache's hit): the same
    /// spec their texts give. With `keep`, also what a cache may keep of each text input.
    pub fn load_inputs(inputs: Vec<Input>, keep: bool) -> Result<Loaded, NotLoaded> {
        validate::load_inputs(inputs, keep)
    }

    /// A digest of everything a plan depends on in the specs, so that `apply PLANFILE` can
    /// refuse a plan made from other specs. Formatting and comments don't count.
    pub(crate) fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        // Each field ends in a 0 byte, so that two fields cannot run together.
        let field = |hasher: &mut Sha256, bytes: &[u8]| {
            hasher.update(bytes);
            hasher.update([0]);
        };
        for (name, instance) in &self.providers {
            field(&mut hasher, name.as_bytes());
            field(&mut hasher, instance.provider_type.name().as_bytes());
            field(&mut hasher, instance.base_url.as_bytes());
            let settings = Value::Table(instance.settings.clone()).display_json();
            field(&mut hasher, settings.to_string().as_bytes());
            instance.limits.hash_into(&mut hasher);
            hasher.update([0xff]);
        }
        for (address, org) in &self.orgs {
            field(&mut hasher, address.as_bytes());
            field(&mut hasher, org.instance.as_bytes());
            hasher.update(org.digest.as_bytes());
            // Secret references are not in the org digest; a plan still depends on them.
            org.hash_secret_references(&mut hasher);
            hasher.update([0xff]);
        }
        hex::encode(hasher.finalize())
    }
}

/// SHA-256 of declared attributes with secrets left out, over canonical JSON: compact, keys
/// sorted (tables are ordered maps), streamed into the hash without building a JSON tree.
pub(crate) fn attributes_digest(attrs: &Table) -> String {
    crate::digest::json_sha256(&TablePublicView(attrs))
}

/// A table of declared values, serialized with secrets left out.
struct TablePublicView<'a>(&'a Table);

impl serde::Serialize for TablePublicView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in self
            .0
            .iter()
            .filter(|(_, v)| !matches!(v, Value::Secret(_)))
        {
            map.serialize_entry(k, &v.public_view())?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heron(limits: &str) -> Spec {
        let text = format!(
            "[provider.h]\ntype = \"heron\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n{limits}"
        );
        match Spec::load(&[SourceFile::new("specs/h.toml", text)]) {
            Ok(spec) => spec,
            Err(e) => panic!("the spec loads: {e:?}"),
        }
    }

    fn with_max_creates(mut spec: Spec, n: u32) -> Spec {
        for instance in spec.providers.values_mut() {
            instance.limits.max_creates = Some(n);
        }
        spec
    }

    fn load(text: &str) -> Spec {
        match Spec::load(&[SourceFile::new("specs/a.toml", text.to_string())]) {
            Ok(spec) => spec,
            Err(e) => panic!("the spec loads: {e:?}"),
        }
    }

    /// An organization that names a template is the merge: tables (of fields, maps, secret
    /// maps) key by key at any depth, the organization's keys winning; arrays replaced whole.
    /// The specs digest, what a saved plan was made from, is that of the written-out spec.
    #[test]
    fn a_template_merges_tables_deeply_and_replaces_arrays() {
        let provider = "[provider.h]\ntype = \"heron\"\napi_key = { env = \"K\" }\n";
        let templated = format!(
            r#"{provider}
[template.t]
provider = "h"
crm_provider = "salesforce"
auth = {{ client_id = {{ env = "CID" }} }}
secret = {{ env = "S" }}
[template.t.config]
sync_file_classes = {{ invoice = true, receipt = false }}
value_mappings = [{{ name = "a", mapping = {{ x = 1 }} }}]
data_source_accounts_config = {{ external_name = "Account", key = "Account", external_lookup_config = {{ external_lookup_fields_and = ["Name", "Website"], sort_order = "ASC" }} }}

[org.o]
template = "t"
instance_url = "https://o.example.com"
auth = {{ refresh_token = {{ env = "RT" }} }}
[org.o.config]
sync_file_classes = {{ receipt = true }}
value_mappings = [{{ name = "b", mapping = {{}} }}]
data_source_accounts_config = {{ external_lookup_config = {{ external_lookup_fields_and = ["Email"] }} }}
"#
        );
        let written_out = format!(
            r#"{provider}
[org.o]
provider = "h"
crm_provider = "salesforce"
instance_url = "https://o.example.com"
auth = {{ client_id = {{ env = "CID" }}, refresh_token = {{ env = "RT" }} }}
secret = {{ env = "S" }}
[org.o.config]
sync_file_classes = {{ invoice = true, receipt = true }}
value_mappings = [{{ name = "b", mapping = {{}} }}]
data_source_accounts_config = {{ external_name = "Account", key = "Account", external_lookup_config = {{ external_lookup_fields_and = ["Email"], sort_order = "ASC" }} }}
"#
        );
        let (a, b) = (load(&templated), load(&written_out));
        assert_eq!(a.orgs["o"].attrs, b.orgs["o"].attrs);
        assert_eq!(a.orgs["o"].digest, b.orgs["o"].digest);
        assert_eq!(a.digest(), b.digest());
    }

    /// Each limit is part of what a saved plan was made from, and so is whether it is set.
    #[test]
    fn every_limit_feeds_the_specs_digest() {
        let digests = [
            heron(""),
            heron("max_concurrency = 2"),
            heron("requests_per_second = 2.5"),
            heron("requests_per_second = 3.5"),
            heron("creates_per_day = 3"),
            // No spec key sets it today (the schema has none); set on the value.
            with_max_creates(heron(""), 3),
        ]
        .map(|spec| spec.digest());
        for (i, a) in digests.iter().enumerate() {
            for b in &digests[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Where a table is declared, and how it is written, is not.
        assert_eq!(
            heron("creates_per_day = 3").digest(),
            heron("\n\ncreates_per_day   =   3 # at most").digest()
        );
    }
}
