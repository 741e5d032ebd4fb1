//! What validation made of one spec file that declares organizations only, as bytes for the
//! spec cache to keep (`commands::spec_cache`), and those bytes read back: a file read back is
//! the same [`OrgSpec`]s its text gives (address, provider, packed attributes, natural key,
//! digest, line), with the path it is read under now.
//!
//! Pure: bytes in, bytes out. The encoding belongs to one build (packed attributes may change
//! between versions), so the cache's key names the build; a read checks every length, tag and
//! text all the same, and damaged bytes are `None`, never a different organization.

use std::sync::Arc;

use super::{OrgSpec, Origin};
use crate::model::packed::{PackedTable, Unpacker, put_len as len, put_text as text};
use crate::model::{NaturalKey, ProviderType};

/// The organizations validation made of one spec file, as the cache gave them back.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedFile {
    /// The path the file is read under in this run: what every origin names.
    pub(crate) path: Arc<str>,
    pub(crate) orgs: Vec<OrgSpec>,
}

/// The bytes that [`decode`] reads back as `orgs` (in the order given).
pub(crate) fn encode<'o>(orgs: impl ExactSizeIterator<Item = &'o OrgSpec>) -> Vec<u8> {
    let mut out = Vec::with_capacity(orgs.len() * 256);
    len(&mut out, orgs.len());
    for org in orgs {
        text(&mut out, &org.address);
        text(&mut out, &org.instance);
        out.push(type_index(org.provider_type));
        text(&mut out, &org.natural_key.0);
        text(&mut out, &org.digest);
        len(&mut out, org.origin.line);
        let attrs = org.attrs.as_bytes();
        len(&mut out, attrs.len());
        out.extend_from_slice(attrs);
    }
    out
}

/// The organizations [`encode`] wrote, each with its origin in `path`; `None` if the bytes are
/// not wholly what `encode` writes.
pub(crate) fn decode(path: Arc<str>, bytes: &[u8]) -> Option<CheckedFile> {
    let mut r = Unpacker(bytes);
    let count = r.len()?;
    // Each organization takes more than 8 bytes: a damaged count can't reserve much.
    let mut orgs = Vec::with_capacity(count.min(bytes.len() / 8));
    for _ in 0..count {
        let address = r.text()?.to_string();
        let instance = r.text()?.to_string();
        let provider_type = *ProviderType::ALL.get(usize::from(r.byte()?))?;
        let natural_key = NaturalKey(r.text()?.to_string());
        let digest = r.text()?.to_string();
        let line = r.len()?;
        let attrs_len = r.len()?;
        let attrs = PackedTable::from_kept(r.take(attrs_len)?)?;
        orgs.push(OrgSpec {
            address,
            instance,
            provider_type,
            attrs,
            natural_key,
            digest,
            origin: Origin {
                path: path.clone(),
                line,
            },
        });
    }
    r.0.is_empty().then_some(CheckedFile { path, orgs })
}

fn type_index(provider_type: ProviderType) -> u8 {
    let index = ProviderType::ALL
        .iter()
        .position(|t| *t == provider_type)
        .unwrap_or_default();
    u8::try_from(index).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SourceFile, Spec};

    fn orgs() -> Vec<OrgSpec> {
        let text = r#"
[provider.h]
type = "heron"
api_key = { env = "K" }
[org.a]
provider = "h"
crm_provider = "salesforce"
instance_url = "https://a.example.com"
auth = { access_token = { env = "T" } }
secret = { env = "S" }
config = { default_id = { external_name = "Company" }, sync_file_classes = { invoice = true }, value_mappings = [{ name = "n", mapping = { x = 1.5 } }] }

[org.b]
provider = "h"
crm_provider = "hubspot"
instance_url = "https://b.example.com"
auth = { access_token = { file = "secrets/t" } }
secret = { env = "S" }
config = { default_id = { external_name = "Company" } }
"#;
        match Spec::load(&[SourceFile::new("specs/a.toml", text)]) {
            Ok(spec) => spec.orgs.into_values().collect(),
            Err(e) => panic!("the spec loads: {e:?}"),
        }
    }

    /// Read back under another path, each organization is what it was, with that path.
    #[test]
    fn organizations_read_back_whole() {
        let orgs = orgs();
        let bytes = encode(orgs.iter());
        let path: Arc<str> = Arc::from("elsewhere/a.toml");
        let back = decode(path.clone(), &bytes).expect("reads back");
        let expected: Vec<OrgSpec> = orgs
            .into_iter()
            .map(|mut o| {
                o.origin.path = path.clone();
                o
            })
            .collect();
        assert_eq!(back.orgs, expected);
    }

    /// A file of organizations only, kept and given back, loads to the spec its text gives;
    /// a problem across files with one given back is told from text.
    #[test]
    fn a_file_given_back_loads_to_the_same_spec() {
        use crate::spec::{Input, NotLoaded};
        let providers = SourceFile::new(
            "specs/p.toml",
            "[provider.h]\ntype = \"heron\"\napi_key = { env = \"K\" }\n",
        );
        let org = |name: &str, url: &str| {
            format!(
                "[org.{name}]\nprovider = \"h\"\ncrm_provider = \"hubspot\"\ninstance_url = \"{url}\"\nauth = {{ access_token = {{ env = \"T\" }} }}\nsecret = {{ env = \"S\" }}\nconfig = {{ default_id = {{ external_name = \"Company\" }} }}\n"
            )
        };
        let text = format!(
            "{}\n{}",
            org("a", "https://a.example.com"),
            org("b", "https://b.example.com")
        );
        let orgs = SourceFile::new("specs/o.toml", text);
        let inputs = vec![Input::Text(providers.clone()), Input::Text(orgs.clone())];
        let Ok(loaded) = Spec::load_inputs(inputs, true) else {
            panic!("the specs load")
        };
        assert!(
            loaded.checked[0].is_none(),
            "a file that declares a provider is not kept"
        );
        let Some(Some(kept)) = loaded.checked.get(1) else {
            panic!("a file of organizations is kept")
        };
        let back = decode(orgs.path.clone(), kept).expect("reads back");
        let inputs = vec![Input::Text(providers.clone()), Input::Checked(back.clone())];
        let Ok(again) = Spec::load_inputs(inputs, true) else {
            panic!("the specs load again")
        };
        assert_eq!(again.spec, loaded.spec);
        assert_eq!(again.spec.digest(), loaded.spec.digest());
        assert_eq!(again.checked, vec![None]);
        // `a` again, in another file: an error, to be told from text.
        let twice = SourceFile::new("specs/z.toml", org("a", "https://z.example.com"));
        let inputs = vec![
            Input::Text(providers),
            Input::Checked(back),
            Input::Text(twice),
        ];
        assert!(matches!(
            Spec::load_inputs(inputs, true),
            Err(NotLoaded::NeedsText)
        ));
    }

    /// Every cut short, and every single byte changed, reads as nothing or as a table that
    /// packs to the same bytes: never a panic.
    #[test]
    fn damaged_bytes_never_panic() {
        let bytes = encode(orgs().iter());
        for cut in 0..bytes.len() {
            assert!(
                decode(Arc::from("a"), &bytes[..cut]).is_none(),
                "cut at {cut}"
            );
        }
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] ^= flip;
                if let Some(file) = decode(Arc::from("a"), &damaged) {
                    for org in &file.orgs {
                        let table = org.attrs.unpack();
                        assert_eq!(PackedTable::pack(&table), org.attrs);
                    }
                }
            }
        }
    }
}
