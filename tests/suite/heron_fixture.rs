//! The Heron specs and the look at what the sandbox holds that the end-to-end tests of apply
//! share: `n` organizations on one instance, and the list Heron's own API gives back.

use std::path::Path;

/// A secret reference the fixtures' organizations use by default.
pub const ACME_SECRET: &str = "{ env = \"ACME_SECRET\" }";

/// Writes `DIR/specs/orgs.toml`: one Heron instance at `base_url` (with `max_concurrency` when
/// given) and `n` organizations `o000`, `o001`, ..., each with `secret` (a TOML reference).
pub fn heron_specs(
    dir: &Path,
    base_url: &str,
    n: usize,
    max_concurrency: Option<u32>,
    secret: &str,
) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let mut text = format!(
        "[provider.heron]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n"
    );
    if let Some(n) = max_concurrency {
        text.push_str(&format!("max_concurrency = {n}\n"));
    }
    for i in 0..n {
        text.push_str(&format!(
            "\n[org.o{i:03}]\nprovider = \"heron\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://o{i:03}.example.com\"\nauth = {{}}\nsecret = {secret}\nconfig = {{}}\n"
        ));
    }
    std::fs::write(specs.join("orgs.toml"), text).expect("write specs");
}

/// Instance URLs of every integration the sandbox holds, by Heron's own list endpoint.
pub async fn heron_list(base_url: &str) -> Vec<String> {
    let list: serde_json::Value = reqwest::Client::new()
        .get(format!("{base_url}/api/crm_integrations"))
        .header("x-api-key", orgform::sandbox::HERON_API_KEY)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    list["crm_integrations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|i| i["instance_url"].as_str().unwrap_or_default().to_string())
        .collect()
}
