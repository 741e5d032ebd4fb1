//! What a provider's answer says about its own size is not trusted with memory or time: a
//! NeonCRM search whose page count grows as it is followed, or says four billion, is refused
//! (it looped, or made a future per announced page), and an error answer whose body never ends
//! is read no further than its first words (its whole body was read until the timeout, and
//! then nothing of it shown).

use std::path::Path;

use orgform::sandbox::SandboxConfig;
use orgform::sandbox::neoncrm::{API_KEY, ORG_ID, PATH_PREFIX};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::e2e::start;
use crate::harness::run;
use crate::variation_proxy::{Exchange, VariationProxy};

const ENV: &[(&str, &str)] = &[("NEON_ORG_ID", ORG_ID), ("NEON_API_KEY", API_KEY)];

fn neon_specs(dir: &Path, base_url: &str) {
    std::fs::create_dir_all(dir.join("specs")).expect("mkdir");
    std::fs::write(
        dir.join("specs/neon.toml"),
        format!(
            "[provider.neon]\ntype = \"neoncrm\"\nbase_url = \"{base_url}{PATH_PREFIX}\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\n\n\
             [org.acme]\nprovider = \"neon\"\norganization_name = \"Acme\"\n"
        ),
    )
    .expect("write specs");
}

/// Every search page says there is one more page after it.
fn one_more_page(exchange: &Exchange<'_>, answer: &mut Value) {
    if exchange.path.ends_with("/listAccounts")
        && let Some(page) = answer
            .pointer_mut("/listAccountsResponse/page")
            .and_then(Value::as_object_mut)
    {
        let current = page.get("currentPage").and_then(Value::as_u64).unwrap_or(1);
        page.insert("totalPage".into(), (current + 1).into());
    }
}

/// The first search page says there are four billion.
fn four_billion_pages(exchange: &Exchange<'_>, answer: &mut Value) {
    if exchange.path.ends_with("/listAccounts")
        && let Some(page) = answer
            .pointer_mut("/listAccountsResponse/page")
            .and_then(Value::as_object_mut)
    {
        page.insert("totalPage".into(), 4_000_000_000_u64.into());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_count_that_grows_or_is_huge_is_refused_not_followed() {
    let sandbox = start(SandboxConfig::default()).await;
    for (rewrite, what) in [
        (one_more_page as fn(&Exchange<'_>, &mut Value), "grows"),
        (four_billion_pages, "four billion"),
    ] {
        let proxy = VariationProxy::start(&sandbox.base_url(), rewrite).await;
        let dir = tempfile::tempdir().expect("tempdir");
        neon_specs(dir.path(), &proxy.base_url());
        let out = run(dir.path(), &["plan"], ENV).expect(1);
        assert!(
            out.stderr
                .contains("pages, more than the 100000 orgform follows")
                || out.stderr.contains("page count grew 17 times"),
            "{what}: {}",
            out.stderr
        );
    }
}

/// A server on loopback that answers every request 500 with a body that never ends.
async fn endless_500() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let words = "overloaded ".repeat(1000);
                let chunk = format!("{:x}\r\n{words}\r\n", words.len());
                while socket.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_answer_that_never_ends_is_read_no_further_than_its_first_words() {
    let base_url = endless_500().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    std::fs::write(
        dir.path().join("specs/heron.toml"),
        format!(
            "[provider.h]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"BA_KEY\" }}\n\n\
             [org.acme]\nprovider = \"h\"\ncrm_provider = \"hubspot\"\ninstance_url = \"https://acme.example\"\n\
             auth = {{ access_token = {{ env = \"BA_KEY\" }} }}\nsecret = {{ env = \"BA_KEY\" }}\n\
             config = {{ default_id = {{ external_name = \"Company\" }} }}\n"
        ),
    )
    .expect("write specs");
    let out = run(
        dir.path(),
        &["plan", "--http-timeout", "2s"],
        &[("BA_KEY", "bounded-answers-key")],
    )
    .expect(1);
    assert!(
        out.stderr
            .contains("HTTP 500 Internal Server Error: overloaded overloaded"),
        "{}",
        out.stderr
    );
}
