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

/// Each integration of a list answer padded with a note of 600 KB whose text looks like the
/// seam between two integrations: the answer (several megabytes) is read in shares.
fn padded_notes(exchange: &Exchange<'_>, answer: &mut Value) {
    if exchange.method != "GET" {
        return;
    }
    let seam = r#"},{"heron_id":"crm_decoy","crm_provider":"salesforce"},{"#;
    for integration in list_of(answer) {
        integration.insert("proxyNote".to_string(), Value::from(seam.repeat(12_000)));
    }
}

/// Each integration of a list answer given 3,000 copies of itself under another `heron_id`, in a
/// nested array: a share cut between two of them reads as an integration there, and a list
/// that took them for integrations would find every key held three thousand times over.
fn nested_copies(exchange: &Exchange<'_>, answer: &mut Value) {
    if exchange.method != "GET" {
        return;
    }
    for integration in list_of(answer) {
        let copies: Vec<Value> = (0..3000)
            .map(|n| {
                let mut copy = integration.clone();
                copy.insert(
                    "heron_id".to_string(),
                    Value::from(format!("crm_decoy_{n}")),
                );
                Value::Object(copy)
            })
            .collect();
        integration.insert("proxyCopies".to_string(), Value::Array(copies));
    }
}

fn list_of(answer: &mut Value) -> impl Iterator<Item = &mut serde_json::Map<String, Value>> {
    answer
        .get_mut("crm_integrations")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// A list answer of megabytes, on a machine of two cores or more, is read in shares; whether
/// it was, `-vv` says.
async fn read_in_shares(rewrite: fn(&Exchange<'_>, &mut Value), shared: bool) {
    let sandbox = start(Default::default()).await;
    let proxy = VariationProxy::start(&sandbox.base_url(), rewrite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &proxy.base_url(), 5, None, ACME_SECRET);
    orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);

    let plan = orgform(dir.path(), &["plan", "-vv", "--detailed-exitcode"]).expect(0);
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cores >= 2 {
        let said = if shared {
            "read in 2 shares"
        } else {
            "read on one core: its shares did not meet"
        };
        assert!(plan.stderr.contains(said), "{}", plan.stderr);
    }
    adopt_from_fresh_state(
        &|args| orgform(dir.path(), args),
        &dir.path().join("state"),
        5,
        &["apply", "--auto-approve"],
    );
    assert_eq!(
        served(&sandbox, "heron", "POST /api/crm_integrations").await,
        5
    );
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn heron_list_of_megabytes_reads_in_shares_past_text_shaped_like_its_seams() {
    read_in_shares(padded_notes, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn heron_list_whose_integrations_nest_copies_is_read_whole_not_cut_inside_one() {
    read_in_shares(nested_copies, false).await;
}
