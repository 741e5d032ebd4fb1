//! A plan is a promise (issue 13): every rule the documents give is checked by `validate`, so a
//! spec that breaks one stops `plan` with exit 1 before any request, let alone a create, leaves.
//! Through the real binary, against the sandbox on loopback: each broken spec below validated
//! before, and its plan showed a create that apply would have spent (a Salesforce sign-up of
//! the day's 20, for one) only to fail.

use std::path::Path;

use orgform::sandbox::{Sandbox, SandboxConfig};

use crate::harness::{Run, run};

const ENV: &[(&str, &str)] = &[
    ("SF_USERNAME", orgform::sandbox::salesforce::USERNAME),
    ("SF_PASSWORD", orgform::sandbox::salesforce::PASSWORD),
    ("SF_CLIENT_ID", orgform::sandbox::salesforce::CLIENT_ID),
    (
        "SF_CLIENT_SECRET",
        orgform::sandbox::salesforce::CLIENT_SECRET,
    ),
    ("OCC_APP_KEY", orgform::sandbox::oracle::APP_KEY),
    ("NEON_ORG_ID", orgform::sandbox::neoncrm::ORG_ID),
    ("NEON_API_KEY", orgform::sandbox::neoncrm::API_KEY),
];

fn salesforce(base: &str, api_version: &str, org: &str) -> String {
    format!(
        "[provider.sf]\ntype = \"salesforce_signup\"\nbase_url = \"{base}\"\napi_version = \"{api_version}\"\nusername = {{ env = \"SF_USERNAME\" }}\npassword = {{ env = \"SF_PASSWORD\" }}\nclient_id = {{ env = \"SF_CLIENT_ID\" }}\nclient_secret = {{ env = \"SF_CLIENT_SECRET\" }}\n\n[org.acme]\nprovider = \"sf\"\ncompany = \"Acme\"\nlast_name = \"Doe\"\nsignup_email = \"admin@acme.example\"\nusername = \"admin@acme-trial.example\"\ntemplate_id = \"0TT000000000001\"\n{org}"
    )
}

fn oracle(base: &str, mode: &str, org: &str) -> String {
    format!(
        "[provider.occ]\ntype = \"oracle_commerce\"\nmode = \"{mode}\"\nbase_url = \"{base}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\n\n[org.acme]\nprovider = \"occ\"\n{org}"
    )
}

fn neoncrm(base: &str, org: &str) -> String {
    format!(
        "[provider.neon]\ntype = \"neoncrm\"\nbase_url = \"{base}{}\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\n\n[org.acme]\nprovider = \"neon\"\norganization_name = \"Acme\"\n{org}",
        orgform::sandbox::neoncrm::PATH_PREFIX
    )
}

/// Each case: (what it breaks, the broken spec, the same spec with the rule kept).
fn cases(base: &str) -> Vec<(&'static str, String, String)> {
    let profile =
        "profile = { email = \"a@acme.example\", first_name = \"A\", last_name = \"B\" }\n";
    vec![
        (
            "Salesforce country outside ISO 3166-1 (S-2006)",
            salesforce(base, "60.0", "country = \"ZZ\"\n"),
            salesforce(base, "60.0", "country = \"US\"\n"),
        ),
        (
            "Salesforce subdomain characters (C-1018)",
            salesforce(
                base,
                "60.0",
                "country = \"US\"\nsubdomain = \"acme_trial!\"\n",
            ),
            salesforce(
                base,
                "60.0",
                "country = \"US\"\nsubdomain = \"acme-trial\"\n",
            ),
        ),
        (
            "Salesforce field newer than api_version",
            salesforce(base, "35.0", "country = \"US\"\nsignup_source = \"web\"\n"),
            salesforce(base, "36.0", "country = \"US\"\nsignup_source = \"web\"\n"),
        ),
        (
            "Oracle request mode without the request's name",
            oracle(base, "request", "organization = { name = \"Acme\" }\n"),
            oracle(
                base,
                "request",
                &format!("name = \"Acme\"\norganization = {{ name = \"Acme\" }}\n{profile}"),
            ),
        ),
        (
            "Oracle direct mode with request fields",
            oracle(
                base,
                "direct",
                &format!("name = \"Acme\"\norganization = {{ name = \"Acme\" }}\n{profile}"),
            ),
            oracle(base, "direct", "organization = { name = \"Acme\" }\n"),
        ),
        (
            "NeonCRM text custom field with an empty value (10067)",
            neoncrm(
                base,
                "[[org.acme.custom_field_data_list]]\nfield_id = 22\nfield_value = \"\"\n",
            ),
            neoncrm(
                base,
                "[[org.acme.custom_field_data_list]]\nfield_id = 22\nfield_value = \"text\"\n",
            ),
        ),
        (
            "NeonCRM date that does not exist",
            neoncrm(
                base,
                "[org.acme.primary_contact]\nfirst_name = \"A\"\nlast_name = \"B\"\ndob = \"1985-02-31\"\n",
            ),
            neoncrm(
                base,
                "[org.acme.primary_contact]\nfirst_name = \"A\"\nlast_name = \"B\"\ndob = \"1985-02-28\"\n",
            ),
        ),
    ]
}

fn plan(dir: &Path, text: &str) -> Run {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    std::fs::write(specs.join("a.toml"), text).expect("write specs");
    run(dir, &["plan", "--detailed-exitcode"], ENV)
}

/// Every request the sandbox has served, to any provider.
async fn requests(sandbox: &Sandbox) -> u64 {
    let stats = crate::e2e::stats(sandbox).await;
    let Some(providers) = stats["requests"].as_object() else {
        return 0;
    };
    providers
        .values()
        .filter_map(serde_json::Value::as_object)
        .flat_map(|endpoints| endpoints.values())
        .filter_map(serde_json::Value::as_u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_breaking_a_documented_rule_exits_1_before_any_request() {
    let sandbox = crate::e2e::start(SandboxConfig::default()).await;
    let base = sandbox.base_url();
    // Every case is run before any assertion, so one run shows each rule that is not kept.
    let mut planned = Vec::new();
    for (what, broken, _) in cases(&base) {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = plan(dir.path(), &broken);
        if run.code != 1 || !run.stderr.contains("a.toml:") {
            planned.push(format!(
                "{what}: exit {}, wanted 1 at validation\nstdout:\n{}\nstderr:\n{}",
                run.code, run.stdout, run.stderr
            ));
        }
    }
    assert!(planned.is_empty(), "{}", planned.join("\n"));
    assert_eq!(requests(&sandbox).await, 0, "no request may leave");

    // The same specs with the rule kept do reach the providers and plan a create: the refusal
    // above is the rule's, not the test's setup.
    for (what, _, kept) in cases(&base) {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = plan(dir.path(), &kept);
        assert_eq!(
            run.code, 2,
            "{what}: the kept spec should plan a create\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
    }
    assert!(requests(&sandbox).await > 0);
    sandbox.shutdown().await.expect("shutdown");
}
