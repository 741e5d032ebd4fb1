//! The plan reviewed is the plan applied: every format shows one digest computed over what the
//! plan says (not when it was made), and `apply --expect-digest` applies only a plan that says
//! exactly what was reviewed, through the real binary against the sandbox.

use orgform::sandbox::SandboxConfig;

use crate::e2e::{orgform, served, start};
use crate::heron_fixture::{ACME_SECRET, heron_specs};

const CREATE: &str = "POST /api/crm_integrations";

fn digest_line(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("Plan digest: "))
        .unwrap_or_else(|| panic!("no digest line in {text}"))
        .trim_matches('`')
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_format_shows_one_content_digest_and_apply_holds_the_plan_to_it() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    heron_specs(dir, &sandbox.base_url(), 3, None, ACME_SECRET);

    let text = orgform(dir, &["plan"]).expect(0);
    let reviewed = digest_line(&text.stdout);
    assert_eq!(reviewed.len(), 64, "{reviewed}");
    let json: serde_json::Value =
        serde_json::from_str(&orgform(dir, &["plan", "--format", "json"]).expect(0).stdout)
            .expect("JSON");
    assert_eq!(json["digest"], reviewed.as_str());
    let markdown = orgform(dir, &["plan", "--format", "markdown"]).expect(0);
    assert_eq!(digest_line(&markdown.stdout), reviewed);
    // Made a second later, saved: the same content, the same digest.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let saved = orgform(dir, &["plan", "--out", "plan.json"]).expect(0);
    assert!(
        saved.stderr.contains(&format!("(digest {reviewed})")),
        "{}",
        saved.stderr
    );

    // After review the specs change: the plan made again says something else, and apply
    // refuses it before sending anything.
    let path = dir.join("specs/orgs.toml");
    let specs = std::fs::read_to_string(&path).expect("specs");
    std::fs::write(
        &path,
        specs.replace("o002.example.com", "o002-changed.example.com"),
    )
    .expect("write");
    let refused = orgform(
        dir,
        &["apply", "--auto-approve", "--expect-digest", &reviewed],
    )
    .expect(1);
    assert!(
        refused
            .stderr
            .contains("refusing to apply: this plan's digest is")
            && refused
                .stderr
                .contains(&format!("the reviewed one {reviewed}")),
        "{}",
        refused.stderr
    );
    assert_eq!(
        served(&sandbox, "heron", CREATE).await,
        0,
        "nothing was sent"
    );

    // As reviewed: applied, and the saved plan's digest holds too.
    std::fs::write(&path, specs).expect("write");
    orgform(
        dir,
        &["apply", "--auto-approve", "--expect-digest", &reviewed],
    )
    .expect(0);
    assert_eq!(served(&sandbox, "heron", CREATE).await, 3);
    // Run again (a CI job retried): nothing is left to send, which is success.
    let again = orgform(
        dir,
        &["apply", "--auto-approve", "--expect-digest", &reviewed],
    )
    .expect(0);
    assert!(
        again.stderr.contains("Nothing to apply"),
        "{}",
        again.stderr
    );
    assert_eq!(served(&sandbox, "heron", CREATE).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_applied_only_with_its_own_digest() {
    let sandbox = start(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    heron_specs(dir, &sandbox.base_url(), 2, None, ACME_SECRET);
    let saved = orgform(dir, &["plan", "--out", "plan.json"]).expect(0);
    let digest = saved
        .stderr
        .split("(digest ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the saved plan's digest")
        .to_string();
    let other = "0".repeat(64);
    orgform(dir, &["apply", "plan.json", "--expect-digest", &other]).expect(1);
    assert_eq!(served(&sandbox, "heron", CREATE).await, 0);
    let applied = orgform(dir, &["apply", "plan.json", "--expect-digest", &digest]).expect(0);
    assert!(
        applied.stderr.contains(&format!(
            "Applying the saved plan plan.json (digest {digest})"
        )),
        "{}",
        applied.stderr
    );
    assert_eq!(served(&sandbox, "heron", CREATE).await, 2);
}
