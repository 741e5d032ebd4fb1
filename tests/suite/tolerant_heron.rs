//! Heron's client reads every documented variation of Heron's answers: objects carrying fields
//! it has never seen (the OpenAPI marks the integration schema open, and the docs show
//! differently sized objects across versions), `failure_notification_channel` as a string or
//! `null`, and an integration's `heron_id` in any form (opaque, providers.md §4). Apply and plan
//! run through the variation proxy; the organizations are counted with Heron's own list API.

use serde_json::Value;

use crate::e2e::{orgform, served, start};
use crate::heron_fixture::{ACME_SECRET, heron_list, heron_specs};
use crate::variation_proxy::{
    Exchange, VariationProxy, adopt_from_fresh_state, extra_fields, walk_objects,
};

/// Heron's variations: extra fields in every object, and a `failure_notification_channel` that
/// is `null` where the emulator left it out.
fn heron_variations(_: &Exchange<'_>, answer: &mut Value) {
    walk_objects(answer, &mut |object| {
        if object.contains_key("heron_id") && !object.contains_key("failure_notification_channel") {
            object.insert("failure_notification_channel".to_string(), Value::Null);
        }
    });
    extra_fields(answer);
}

#[tokio::test(flavor = "multi_thread")]
async fn heron_apply_and_plan_read_every_documented_variation() {
    let sandbox = start(Default::default()).await;
    let proxy = VariationProxy::start(&sandbox.base_url(), heron_variations).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &proxy.base_url(), 6, Some(4), ACME_SECRET);

    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    // A fresh state finds all six through the varied list answer and adopts them.
    adopt_from_fresh_state(
        &|args| orgform(dir.path(), args),
        &dir.path().join("state"),
        6,
        &["apply", "--auto-approve"],
    );

    assert!(proxy.rewritten() > 0, "the proxy varied no answer");
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        6
    );
    let mut listed = heron_list(&sandbox.base_url()).await;
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), 6, "{listed:?}");
    sandbox.shutdown().await.expect("shutdown");
}
