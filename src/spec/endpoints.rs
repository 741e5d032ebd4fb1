//! Where the specs send credentials, checked from outside the specs: each provider instance's
//! URLs (`base_url`, Oracle's `store_url`) against the hosts the CI environment allows
//! (`ORGFORM_ALLOWED_HOSTS` or `--allowed-hosts`), because a pull request that edits a
//! `base_url` would otherwise receive the CI job's credentials on its first plan.
//!
//! With a list, a host not on it is refused, before any secret is read or any request leaves.
//! Without one, the vendor's own hosts (`Capabilities::vendor_hosts`) and loopback pass quietly,
//! and any other host passes with a warning that every plan format shows the reviewer.
//!
//! Pure, like the rest of `spec`: the list comes in as a value.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::diagnostic::{SourceFile, SpecError, SpecErrors};
use super::{Endpoint, ProviderInstance, Spec};
use crate::model::{InstanceName, ProviderType};

/// One host pattern: a host, or `*.suffix` for any subdomain of `suffix` (not `suffix` itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// A host as `url` normalises it: lowercase ASCII (IDNA), an IPv4 address, or `[v6]`.
    Exact(String),
    /// The part after `*.`, normalised the same way.
    Subdomains(String),
}

impl HostPattern {
    /// Parses `api.neoncrm.com`, `*.salesforce.com`, `10.0.0.7` or `[::1]`; anything with a
    /// scheme, port, path or a `*` elsewhere is refused with a reason.
    pub(crate) fn parse(text: &str) -> Result<HostPattern, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty host pattern (two commas in a row, or one at an end?)".into());
        }
        let (wildcard, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if rest.contains('*') {
            return Err(format!(
                "`{text}`: `*` may only start a pattern, as in *.example.com (to allow every host, leave the list unset)"
            ));
        }
        let bracketed = rest.starts_with('[') && rest.ends_with(']');
        if rest.contains("://") || rest.contains('/') || (rest.contains(':') && !bracketed) {
            // A bare IPv6 address has colons too: accept it, without brackets.
            if let Ok(url::Host::Ipv6(ip)) = url::Host::parse(&format!("[{rest}]"))
                && !wildcard
            {
                return Ok(HostPattern::Exact(format!("[{ip}]")));
            }
            return Err(format!(
                "`{text}` is not a host: write hosts only, without scheme, port or path, like api.neoncrm.com or *.salesforce.com"
            ));
        }
        let host = url::Host::parse(rest).map_err(|e| format!("`{text}` is not a host: {e}"))?;
        match host {
            url::Host::Domain(domain) => {
                let domain = domain.trim_end_matches('.').to_string();
                if domain.is_empty() {
                    return Err(format!("`{text}` is not a host"));
                }
                Ok(if wildcard {
                    HostPattern::Subdomains(domain)
                } else {
                    HostPattern::Exact(domain)
                })
            }
            _ if wildcard => Err(format!(
                "`{text}`: `*.` goes before a domain name, not an address"
            )),
            url::Host::Ipv4(ip) => Ok(HostPattern::Exact(ip.to_string())),
            url::Host::Ipv6(ip) => Ok(HostPattern::Exact(format!("[{ip}]"))),
        }
    }

    /// Whether `host` (as [`host_of`] gives it) matches.
    pub(crate) fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        match self {
            HostPattern::Exact(exact) => host == exact,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(host) => f.write_str(host),
            HostPattern::Subdomains(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// Where the allowed list came from, to name it in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AllowedSource {
    Env,
    Flag,
}

impl fmt::Display for AllowedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllowedSource::Env => "ORGFORM_ALLOWED_HOSTS",
            AllowedSource::Flag => "--allowed-hosts",
        })
    }
}

/// The hosts credentials may go to, set outside the specs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AllowedHosts {
    pub(crate) patterns: Vec<HostPattern>,
    pub(crate) source: AllowedSource,
}

impl AllowedHosts {
    /// Parses a comma-separated list; every pattern must be well formed, and there must be one.
    pub(crate) fn parse(text: &str) -> Result<AllowedHosts, String> {
        let patterns = text
            .split(',')
            .map(HostPattern::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                format!("{e}; --allowed-hosts and ORGFORM_ALLOWED_HOSTS take a comma-separated list of hosts and *.suffix patterns")
            })?;
        Ok(AllowedHosts {
            patterns,
            source: AllowedSource::Flag,
        })
    }

    pub(crate) fn allows(&self, host: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(host))
    }

    fn listed(&self) -> String {
        self.patterns
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A host outside the vendor's and loopback that an instance sends credentials to, with no
/// allowed list to vouch for it: shown to the reviewer in every plan format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EndpointWarning {
    pub(crate) provider: InstanceName,
    pub(crate) provider_type: ProviderType,
    /// The setting that names it: `base_url`, `store_url`.
    pub(crate) setting: String,
    pub(crate) host: String,
}

impl fmt::Display for EndpointWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "credentials for `{}` go to `{}` ({}), which is not a vendor host of {}; check that the specs mean it",
            self.provider, self.host, self.setting, self.provider_type
        )
    }
}

/// The host of a URL as `url` normalises it (lowercase, IDNA to ASCII, `[v6]`), or `None` if it
/// has none.
pub(crate) fn host_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .host_str()
        .map(|h| h.trim_end_matches('.').to_string())
}

/// 127.0.0.0/8, ::1 and `localhost`: where the sandbox runs.
pub(crate) fn is_loopback(host: &str) -> bool {
    match url::Host::parse(host) {
        Ok(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Ok(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Ok(url::Host::Domain(d)) => d == "localhost",
        Err(_) => false,
    }
}

/// Whether `host` is one the vendor of `provider_type` serves its API from.
pub(crate) fn is_vendor_host(provider_type: ProviderType, host: &str) -> bool {
    provider_type
        .capabilities()
        .vendor_hosts
        .iter()
        .filter_map(|p| HostPattern::parse(p).ok())
        .any(|p| p.matches(host))
}

/// What [`judge`] made of the specs' endpoints.
#[derive(Debug, Default)]
pub(crate) struct Verdict<'a> {
    /// Not on the allowed list: the run must stop before any secret is read.
    pub(crate) refused: Vec<(&'a ProviderInstance, &'a Endpoint, String)>,
    pub(crate) warnings: Vec<EndpointWarning>,
}

/// Sorts every endpoint of the specs into allowed, refused (with a list that does not name it)
/// and warned about (without a list, neither the vendor's nor loopback).
pub(crate) fn judge<'a>(spec: &'a Spec, allowed: Option<&AllowedHosts>) -> Verdict<'a> {
    let mut verdict = Verdict::default();
    for instance in spec.providers.values() {
        for endpoint in &instance.endpoints {
            let host = host_of(&endpoint.url);
            match (allowed, host) {
                (Some(list), Some(host)) if list.allows(&host) => {}
                (Some(_), host) => {
                    let host = host.unwrap_or_else(|| endpoint.url.clone());
                    verdict.refused.push((instance, endpoint, host));
                }
                (None, Some(host))
                    if is_loopback(&host) || is_vendor_host(instance.provider_type, &host) => {}
                (None, host) => verdict.warnings.push(EndpointWarning {
                    provider: instance.name.clone(),
                    provider_type: instance.provider_type,
                    setting: endpoint.setting.to_string(),
                    host: host.unwrap_or_else(|| endpoint.url.clone()),
                }),
            }
        }
    }
    verdict
}

/// Checks the specs' endpoints: every refusal as a spec error pointing at the URL in `files`
/// (the whole files the specs were loaded from), or the warnings to show.
pub(crate) fn check(
    files: &[SourceFile],
    spec: &Spec,
    allowed: Option<&AllowedHosts>,
) -> Result<Vec<EndpointWarning>, SpecErrors> {
    let verdict = judge(spec, allowed);
    let Some(list) = allowed.filter(|_| !verdict.refused.is_empty()) else {
        return Ok(verdict.warnings);
    };
    let errors = verdict
        .refused
        .iter()
        .map(|(instance, endpoint, host)| refusal(files, list, instance, endpoint, host))
        .collect();
    Err(SpecErrors::new(errors))
}

/// The spec error for a host off the list, pointing at its URL.
fn refusal(
    files: &[SourceFile],
    list: &AllowedHosts,
    instance: &ProviderInstance,
    endpoint: &Endpoint,
    host: &str,
) -> SpecError {
    let message = format!(
        "provider `{}` would send its credentials to `{host}` ({}), which {} does not allow",
        instance.name, endpoint.setting, list.source
    );
    let help = format!(
        "{} allows: {}. If this host is meant, add it there: the list is set by the CI environment, not by the specs",
        list.source,
        list.listed()
    );
    // The specs were loaded from `files`, so the file is there; were it not, the refusal
    // still stands, without a snippet.
    let error = match files.iter().find(|f| f.path == instance.origin.path) {
        Some(file) => SpecError::new(file, endpoint.span.clone(), message, "not an allowed host"),
        None => SpecError::new(
            &SourceFile::new(instance.origin.path.clone(), ""),
            0..0,
            message,
            "not an allowed host",
        ),
    };
    error.with_help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, host: &str) -> bool {
        HostPattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .matches(host)
    }

    #[test]
    fn patterns_match_hosts_as_url_normalises_them() {
        assert!(matches("api.neoncrm.com", "api.neoncrm.com"));
        assert!(matches("API.NeonCRM.com.", "api.neoncrm.com"));
        assert!(!matches("api.neoncrm.com", "x.api.neoncrm.com"));
        assert!(matches("*.salesforce.com", "login.salesforce.com"));
        assert!(matches("*.salesforce.com", "a.b.salesforce.com"));
        assert!(!matches("*.salesforce.com", "salesforce.com"));
        assert!(!matches("*.salesforce.com", "evilsalesforce.com"));
        assert!(!matches("*.salesforce.com", "salesforce.com.evil.example"));
        assert!(matches("*.bücher.example", "shop.xn--bcher-kva.example"));
        assert!(matches("::1", "[::1]"));
        assert!(matches("[::1]", "[::1]"));
        assert!(matches("127.0.0.1", "127.0.0.1"));
    }

    #[test]
    fn malformed_patterns_say_why() {
        for bad in [
            "",
            " ",
            "*",
            "*.",
            "a.*.example",
            "https://a.example",
            "a.example:443",
            "a.example/x",
            "*.127.0.0.1",
            "a b.example",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert!(AllowedHosts::parse("a.example,,b.example").is_err());
        assert!(AllowedHosts::parse("a.example,").is_err());
        let list = AllowedHosts::parse(" a.example , *.b.example").expect("a valid list");
        assert_eq!(list.patterns.len(), 2);
    }

    #[test]
    fn every_vendor_host_is_a_valid_pattern() {
        for t in ProviderType::ALL {
            for p in t.capabilities().vendor_hosts {
                assert!(HostPattern::parse(p).is_ok(), "{t}: {p}");
            }
        }
    }

    #[test]
    fn loopback_is_the_sandbox_s_addresses_only() {
        for host in ["127.0.0.1", "127.8.9.10", "[::1]", "localhost"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["10.0.0.1", "localhost.example", "x.localhost", "[::2]"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
