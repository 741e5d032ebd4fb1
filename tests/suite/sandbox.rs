//! The sandbox through real HTTP on 127.0.0.1:0.

use std::net::SocketAddr;

use orgform::sandbox::{Fault, Sandbox, SandboxConfig, SandboxError, Stats};
use reqwest::{Client, StatusCode};

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn client() -> Client {
    // Already installed by another test is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().build().expect("a reqwest client")
}

#[tokio::test]
async fn control_routes_answer_and_unknown_paths_are_404() {
    let sandbox = Sandbox::start(loopback(), SandboxConfig::default())
        .await
        .expect("sandbox starts");
    let http = client();
    let url = |path: &str| format!("{}{path}", sandbox.base_url());
    let stats: Stats = http
        .get(url("/_sandbox/stats"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("stats body");
    assert_eq!(stats, sandbox.stats());
    let reset = http
        .post(url("/_sandbox/reset"))
        .send()
        .await
        .expect("answered");
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let missing = http.get(url("/nowhere")).send().await.expect("answered");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    sandbox.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_corrupt_data_file_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sandbox.json");
    std::fs::write(&path, "{not json").expect("written");
    let result = Sandbox::start(
        loopback(),
        SandboxConfig {
            data_file: Some(path.clone()),
            ..SandboxConfig::default()
        },
    )
    .await;
    assert!(matches!(result, Err(SandboxError::ParseData { .. })));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "{not json");
}

#[tokio::test]
async fn bad_fault_settings_are_refused() {
    for (fault_rate, faults) in [(1.5, Fault::ALL.to_vec()), (-0.1, vec![]), (0.5, vec![])] {
        let result = Sandbox::start(
            loopback(),
            SandboxConfig {
                fault_rate,
                faults,
                ..SandboxConfig::default()
            },
        )
        .await;
        assert!(result.is_err(), "fault rate {fault_rate}");
    }
}

#[test]
fn fault_names_round_trip() {
    for fault in Fault::ALL {
        assert_eq!(fault.name().parse::<Fault>().expect("known"), fault);
        assert_eq!(fault.to_string(), fault.name());
    }
    assert_eq!(
        "429-retry-after".parse::<Fault>().ok(),
        Some(Fault::TooManyRequestsRetryAfter)
    );
    assert!("502".parse::<Fault>().is_err());
}
