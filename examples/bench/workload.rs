//! Workloads scaled from the project's own examples in `specs/`: each organization a copy of one
//! example of its provider type, with its natural key and the other fields a vendor keeps
//! unique made unique, and every provider instance pointed at the benchmark's sandbox.
//!
//! The examples are read at run time, so the workload follows them as they change. They are cut
//! into blocks at their table headers (`[provider.X]`, `[org.X...]`, `[[org.X...]]`), the way a
//! person would copy them; the edits are string edits of `key = "value"` pairs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use orgform::sandbox::{Sandbox, SandboxConfig};

/// The five provider types, by their `type = "..."` names, in the order the benchmark runs them.
pub(crate) const TYPES: [&str; 5] = [
    "heron",
    "salesforce_signup",
    "neoncrm",
    "commvault_salesforce",
    "oracle_commerce",
];

/// The emulator's name for a type in `/_sandbox/stats`.
pub(crate) fn stats_name(provider_type: &str) -> &'static str {
    match provider_type {
        "heron" => "heron",
        "salesforce_signup" => "salesforce",
        "neoncrm" => "neoncrm",
        "commvault_salesforce" => "commvault_salesforce",
        _ => "oracle_commerce",
    }
}

/// A short name for a type, for row names and workload names.
pub(crate) fn short(provider_type: &str) -> &'static str {
    match provider_type {
        "heron" => "heron",
        "salesforce_signup" => "salesforce",
        "neoncrm" => "neoncrm",
        "commvault_salesforce" => "commvault",
        _ => "oracle",
    }
}

/// One `[provider.NAME]` table of the examples.
#[derive(Clone)]
pub(crate) struct Instance {
    pub(crate) name: String,
    pub(crate) provider_type: String,
    lines: Vec<String>,
}

impl Instance {
    /// A `key = "text"` of its table.
    pub(crate) fn setting(&self, key: &str) -> Option<&str> {
        self.lines.iter().find_map(|line| string_value(line, key))
    }
}

/// One example organization: its name, every line of its tables, and its provider instance.
#[derive(Clone)]
struct Example {
    name: String,
    text: String,
    instance: String,
}

/// The project's examples, by provider type.
pub(crate) struct Examples {
    pub(crate) instances: Vec<Instance>,
    orgs: BTreeMap<String, Vec<Example>>,
}

impl Examples {
    /// Reads every `*.toml` in `specs` (the project's examples).
    pub(crate) fn read(specs: &Path) -> Result<Examples, String> {
        /// Which kind of table the lines being read belong to.
        enum In {
            Nothing,
            Provider,
            Org,
        }
        let mut paths: Vec<_> = std::fs::read_dir(specs)
            .map_err(|e| format!("{}: {e}", specs.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut instances: Vec<Instance> = Vec::new();
        let mut examples: Vec<(Example, String)> = Vec::new();
        for path in paths {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut current = In::Nothing;
            for line in text.lines() {
                if let Some((kind, name)) = header(line) {
                    if kind == "provider" {
                        instances.push(Instance {
                            name: name.to_owned(),
                            provider_type: String::new(),
                            lines: Vec::new(),
                        });
                        current = In::Provider;
                    } else {
                        if examples.last().is_none_or(|(e, _)| e.name != name) {
                            examples.push((
                                Example {
                                    name: name.to_owned(),
                                    text: String::new(),
                                    instance: String::new(),
                                },
                                String::new(),
                            ));
                        }
                        current = In::Org;
                    }
                } else if line.trim_start().starts_with('#') {
                    continue;
                }
                match current {
                    In::Nothing => {}
                    In::Provider => {
                        if let Some(instance) = instances.last_mut() {
                            if let Some(t) = string_value(line, "type") {
                                t.clone_into(&mut instance.provider_type);
                            }
                            instance.lines.push(line.to_owned());
                        }
                    }
                    In::Org => {
                        if let Some((example, instance)) = examples.last_mut() {
                            if let Some(p) = string_value(line, "provider") {
                                p.clone_into(instance);
                            }
                            example.text.push_str(line);
                            example.text.push('\n');
                        }
                    }
                }
            }
        }
        let mut orgs: BTreeMap<String, Vec<Example>> = BTreeMap::new();
        for (mut example, instance) in examples {
            example.instance.clone_from(&instance);
            let provider_type = instances
                .iter()
                .find(|i| i.name == instance)
                .map(|i| i.provider_type.clone())
                .ok_or_else(|| format!("example {} names no known provider", example.name))?;
            orgs.entry(provider_type).or_default().push(example);
        }
        Ok(Examples { instances, orgs })
    }

    /// How many of `n` organizations of a type (round robin over its examples) go to each of
    /// its instances: the instances with none are left out.
    pub(crate) fn per_instance(&self, provider_type: &str, n: usize) -> Vec<(&Instance, usize)> {
        let examples = self.orgs.get(provider_type).map_or(&[][..], Vec::as_slice);
        self.instances
            .iter()
            .filter(|i| i.provider_type == provider_type)
            .map(|instance| {
                let count = (0..examples.len())
                    .filter(|&e| examples[e].instance == instance.name)
                    .map(|e| n / examples.len() + usize::from(e < n % examples.len()))
                    .sum();
                (instance, count)
            })
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    /// The instances of the given types, each with its `base_url` at the sandbox.
    fn providers_toml(&self, base_url: &str, types: &[&str]) -> String {
        let mut out = String::new();
        for instance in &self.instances {
            if !types.contains(&instance.provider_type.as_str()) {
                continue;
            }
            let path = match instance.provider_type.as_str() {
                "neoncrm" => "/neonws/services/api",
                "commvault_salesforce" => "/commandcenter/api",
                _ => "",
            };
            for line in &instance.lines {
                let key = line.split('=').next().unwrap_or("").trim();
                if matches!(
                    key,
                    "base_url" | "store_url" | "max_concurrency" | "creates_per_day"
                ) || line.trim().is_empty()
                {
                    continue;
                }
                out.push_str(line);
                out.push('\n');
                if header(line).is_some() {
                    out.push_str(&format!("base_url = \"{base_url}{path}\"\n"));
                    out.push_str("max_concurrency = 32\n");
                    if instance.provider_type == "salesforce_signup" {
                        // Lifted for the run: Trialforce's 20 a day would defer the rest.
                        out.push_str("creates_per_day = 100000000\n");
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// Organization number `i` of a type: a copy of example `i % examples`, unique by `i`.
    pub(crate) fn org(&self, provider_type: &str, i: usize) -> String {
        let examples = &self.orgs[provider_type];
        let example = &examples[i % examples.len()];
        let tag = format!("{i:06}");
        let new_name = format!("{}_{tag}", example.name);
        let mut text = String::with_capacity(example.text.len() + 64);
        for line in example.text.lines() {
            match header(line) {
                Some((_, name)) if name == example.name => {
                    // `[org.NAME` or `[[org.NAME`, then the rest of the header.
                    let at = line.find("org.").unwrap_or(0) + 4;
                    text.push_str(&line[..at]);
                    text.push_str(&new_name);
                    text.push_str(&line[at + name.len()..]);
                }
                _ => text.push_str(line),
            }
            text.push('\n');
        }
        let text = match provider_type {
            "heron" => edit(&text, "instance_url", false, |v| {
                // https://acme.my.salesforce.com -> https://acme-000001.my.salesforce.com
                let host = v.find("://").map_or(0, |p| p + 3);
                let dot = v[host..].find(['.', '/']).map_or(v.len(), |p| host + p);
                format!("{}-{tag}{}", &v[..dot], &v[dot..])
            }),
            "salesforce_signup" => {
                let t = edit(&text, "username", false, |v| format!("n{tag}.{v}"));
                edit(&t, "subdomain", false, |v| format!("{v}-{tag}"))
            }
            "neoncrm" => {
                let t = edit(&text, "organization_name", false, |v| format!("{v} {tag}"));
                edit(&t, "username", true, |v| format!("{v}-{tag}"))
            }
            "commvault_salesforce" => {
                edit(&text, "organization_name", false, |v| format!("{v}-{tag}"))
            }
            _ => {
                let t = edit(&text, "name", true, |v| format!("{v} {tag}"));
                edit(&t, "email", true, |v| match v.split_once('@') {
                    Some((local, domain)) => format!("{local}+{tag}@{domain}"),
                    None => format!("{v}{tag}"),
                })
            }
        };
        text + "\n"
    }

    /// Writes `counts[type]` organizations of each type (numbered from `from`) into `specs/` of
    /// `dir`, 100 files a type, with `providers.toml` at `base_url`; and the secret files they
    /// reference.
    pub(crate) fn write(
        &self,
        dir: &Path,
        base_url: &str,
        counts: &[(&str, usize)],
        from: usize,
    ) -> Result<(), String> {
        let specs = dir.join("specs");
        std::fs::create_dir_all(&specs).map_err(|e| e.to_string())?;
        let types: Vec<&str> = counts.iter().map(|(t, _)| *t).collect();
        write(
            &specs.join("providers.toml"),
            &self.providers_toml(base_url, &types),
        )?;
        for (provider_type, n) in counts {
            let files = (*n).clamp(1, 100);
            let mut chunks = vec![String::new(); files];
            for i in 0..*n {
                chunks[i % files].push_str(&self.org(provider_type, from + i));
            }
            for (c, text) in chunks.iter().enumerate() {
                write(
                    &specs.join(format!("{provider_type}_{from}_{c:03}.toml")),
                    text,
                )?;
            }
        }
        // The examples' `{ file = ... }` secrets, relative to the working directory.
        std::fs::create_dir_all(dir.join("secrets")).map_err(|e| e.to_string())?;
        write(
            &dir.join("secrets/initech-webhook-secret"),
            "bench-webhook-secret\n",
        )?;
        Ok(())
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `("provider", "NAME")` for `[provider.NAME]`, `("org", "NAME")` for `[org.NAME...]` and
/// `[[org.NAME...]]`.
fn header(line: &str) -> Option<(&'static str, &str)> {
    let rest = line.strip_prefix("[[").or_else(|| line.strip_prefix('['))?;
    let (kind, rest) = if let Some(r) = rest.strip_prefix("provider.") {
        ("provider", r)
    } else {
        ("org", rest.strip_prefix("org.")?)
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    Some((kind, &rest[..end]))
}

/// The string value of `key = "..."` at the start of `line`.
fn string_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(key)?.trim_start().strip_prefix('=')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    rest.split('"').next()
}

/// Replaces the value of every `key = "value"` in `text` by `f(value)`: at the start of a line,
/// and with `inline` also inside inline tables (after `{ ` or `, `).
fn edit(text: &str, key: &str, inline: bool, f: impl Fn(&str) -> String) -> String {
    let needle = format!("{key} = \"");
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let before = &rest[..at];
        let starts_line = at == 0 && out.is_empty() || before.ends_with('\n');
        let in_inline = inline && (before.ends_with("{ ") || before.ends_with(", "));
        let value_at = at + needle.len();
        if !(starts_line || in_inline) {
            out.push_str(&rest[..value_at]);
            rest = &rest[value_at..];
            continue;
        }
        let Some(len) = rest[value_at..].find('"') else {
            break;
        };
        out.push_str(&rest[..value_at]);
        out.push_str(&f(&rest[value_at..value_at + len]));
        rest = &rest[value_at + len..];
    }
    out.push_str(rest);
    out
}

/// The environment the child needs: every secret the specs in `dir` reference, as
/// `orgform secrets --format json` lists them, the providers' credentials set to what the
/// sandbox accepts and everything else to a placeholder; and the loopback allowed.
pub(crate) fn child_env(bin: &Path, dir: &Path) -> Result<Vec<(String, String)>, String> {
    let out = std::process::Command::new(bin)
        .args(["secrets", "--format", "json"])
        .current_dir(dir)
        .output()
        .map_err(|e| e.to_string())?;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("orgform secrets --format json: {e}"))?;
    let instances = provider_types(&dir.join("specs/providers.toml"));
    let mut env = vec![("ORGFORM_ALLOWED_HOSTS".to_owned(), "127.0.0.1".to_owned())];
    for secret in listed["secrets"].as_array().into_iter().flatten() {
        if secret["kind"] != "env" {
            continue;
        }
        let name = secret["name"].as_str().unwrap_or_default().to_owned();
        let used_by = secret["used_by"][0].as_str().unwrap_or_default();
        // "provider NAME, FIELD": a credential of that instance.
        let credential = used_by
            .strip_prefix("provider ")
            .and_then(|r| r.split_once(", "))
            .and_then(|(instance, field)| {
                credential(instances.get(instance).map(String::as_str)?, field)
            });
        env.push((name, credential.unwrap_or("bench-secret-value").to_owned()));
    }
    Ok(env)
}

/// Instance name to type, from a providers file the benchmark wrote.
fn provider_types(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut map = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(("provider", name)) = header(line) {
            current = Some(name.to_owned());
        } else if let (Some(name), Some(t)) = (&current, string_value(line, "type")) {
            map.insert(name.clone(), t.to_owned());
        }
    }
    map
}

/// What the sandbox accepts for a provider type's credential field.
fn credential(provider_type: &str, field: &str) -> Option<&'static str> {
    use orgform::sandbox::{commvault, neoncrm, oracle, salesforce};
    Some(match (provider_type, field) {
        ("heron", "api_key") => orgform::sandbox::HERON_API_KEY,
        ("salesforce_signup", "username") => salesforce::USERNAME,
        ("salesforce_signup", "password") => salesforce::PASSWORD,
        ("salesforce_signup", "client_id") => salesforce::CLIENT_ID,
        ("salesforce_signup", "client_secret") => salesforce::CLIENT_SECRET,
        ("neoncrm", "org_id") => neoncrm::ORG_ID,
        ("neoncrm", "api_key") => neoncrm::API_KEY,
        ("commvault_salesforce", "username") => commvault::USERNAME,
        ("commvault_salesforce", "password") => commvault::PASSWORD,
        ("oracle_commerce", "app_key") => oracle::APP_KEY,
        _ => return None,
    })
}

/// A sandbox with every limit lifted: no Heron rate limit, Salesforce sign-ups unlimited and
/// settled at once, Oracle requests approved at once, sessions that do not expire by use.
pub(crate) async fn lifted_sandbox(latency: Duration) -> Result<Sandbox, String> {
    let config = SandboxConfig {
        latency,
        heron_rate_limit: 0,
        salesforce: orgform::sandbox::salesforce::SalesforceConfig {
            new_for: Duration::ZERO,
            in_progress_for: Duration::ZERO,
            signups_per_day: 0,
            api_requests_per_day: u32::MAX,
            session_max_requests: None,
            ..Default::default()
        },
        oracle: orgform::sandbox::oracle::OracleConfig {
            new_for: Duration::ZERO,
            review_for: Some(Duration::ZERO),
            token_max_uses: None,
            ..Default::default()
        },
        neoncrm: orgform::sandbox::neoncrm::NeonConfig {
            session_max_uses: None,
            ..Default::default()
        },
        commvault: orgform::sandbox::commvault::CommvaultConfig {
            token_max_uses: None,
            ..Default::default()
        },
        ..SandboxConfig::default()
    };
    start(config).await
}

/// A sandbox with `config`, on a free loopback port.
pub(crate) async fn start(config: SandboxConfig) -> Result<Sandbox, String> {
    let addr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    Sandbox::start(addr, config)
        .await
        .map_err(|e| format!("sandbox: {e}"))
}

/// Requests per endpoint of one emulator.
pub(crate) fn requests(sandbox: &Sandbox, emulator: &str) -> BTreeMap<String, u64> {
    sandbox
        .stats()
        .requests
        .get(emulator)
        .cloned()
        .unwrap_or_default()
}

/// Requests per endpoint sent since `before`.
pub(crate) fn since(
    now: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    now.iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}
