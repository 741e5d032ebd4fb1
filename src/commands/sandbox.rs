//! `orgform sandbox` (serve the emulators) and the embedded sandbox behind `--sandbox`.

use std::path::Path;
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use crate::cli::SandboxArgs;
use crate::output;
use crate::sandbox::{Fault, Sandbox, SandboxConfig};
use crate::secrets::{SecretResolver, SecretString};
use crate::spec::Spec;

/// A sandbox started inside this process for a `--sandbox` run, with its data kept beside the
/// state so that the next run finds what this one created.
pub(crate) struct EmbeddedSandbox {
    pub(crate) running: Sandbox,
    pub(crate) secrets: SecretResolver,
}

impl EmbeddedSandbox {
    pub(crate) async fn start(spec: &Spec, data_file: &Path) -> Result<EmbeddedSandbox> {
        let data_file = data_file.to_path_buf();
        let config = SandboxConfig {
            data_file: Some(data_file),
            // No administrator stands behind the embedded sandbox: it approves organization
            // requests itself, at once, so that apply's one look after the create records them
            // and the next run finds nothing to do.
            oracle: crate::sandbox::oracle::OracleConfig {
                new_for: std::time::Duration::ZERO,
                review_for: Some(std::time::Duration::ZERO),
                ..crate::sandbox::oracle::OracleConfig::default()
            },
            ..SandboxConfig::default()
        };
        let listen = "127.0.0.1:0".parse().into_diagnostic()?;
        let running = Sandbox::start(listen, config)
            .await
            .map_err(|e| miette!("cannot start the embedded sandbox: {e}"))?;
        let mut secrets = SecretResolver {
            sandbox_placeholders: true,
            ..SecretResolver::default()
        };
        for instance in spec.providers.values() {
            for (key, value) in instance.provider_type.descriptor().sandbox_credentials {
                if let Some(reference) = instance.secret(key) {
                    secrets
                        .overrides
                        .insert(reference.clone(), SecretString::new(*value));
                }
            }
        }
        Ok(EmbeddedSandbox { running, secrets })
    }

    pub(crate) fn base_url(&self) -> String {
        self.running.base_url()
    }

    pub(crate) async fn stop(self) -> Result<()> {
        self.running
            .shutdown()
            .await
            .map_err(|e| miette!("the embedded sandbox did not stop cleanly: {e}"))
    }
}

/// `orgform sandbox`: serve until interrupted.
pub(crate) async fn serve(args: &SandboxArgs) -> Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.fault_rate) {
        return Err(miette!(
            "--fault-rate must be between 0 and 1, got {}",
            args.fault_rate
        ));
    }
    let faults = args
        .faults
        .iter()
        .filter(|f| !f.is_empty())
        .map(|f| f.parse::<Fault>().map_err(|e| miette!("--faults: {e}")))
        .collect::<Result<Vec<_>>>()?;
    // Each emulator's defaults, for what the flags leave alone.
    let salesforce = crate::sandbox::salesforce::SalesforceConfig::default();
    let neoncrm = crate::sandbox::neoncrm::NeonConfig::default();
    let commvault = crate::sandbox::commvault::CommvaultConfig::default();
    let oracle = crate::sandbox::oracle::OracleConfig::default();
    let config = SandboxConfig {
        latency: std::time::Duration::from_millis(args.latency_ms),
        fault_rate: args.fault_rate,
        faults,
        timeout_hang: std::time::Duration::from_millis(args.timeout_hang_ms),
        data_file: args.data.clone(),
        seed: args.seed,
        heron_rate_limit: args.heron_rate_limit,
        max_body_bytes: args.max_body_bytes,
        salesforce: crate::sandbox::salesforce::SalesforceConfig {
            signups_per_day: args.salesforce_signups_per_day,
            api_requests_per_day: args.salesforce_api_requests_per_day,
            new_for: std::time::Duration::ZERO,
            in_progress_for: args.salesforce_signup_settle,
            session_ttl: args.session_idle.unwrap_or(salesforce.session_ttl),
            ..salesforce
        },
        neoncrm: crate::sandbox::neoncrm::NeonConfig {
            session_idle: args.session_idle.unwrap_or(neoncrm.session_idle),
            max_page_size: args.neoncrm_max_page_size,
            ..neoncrm
        },
        commvault: crate::sandbox::commvault::CommvaultConfig {
            token_idle: args.session_idle.unwrap_or(commvault.token_idle),
            ..commvault
        },
        oracle: crate::sandbox::oracle::OracleConfig {
            token_ttl: args.session_idle.unwrap_or(oracle.token_ttl),
            max_limit: match args.occ_max_limit {
                0 => u64::MAX,
                limit => limit,
            },
            // Decided `DURATION` after it is made: `new` for half of it, then `review`.
            new_for: args.occ_auto_approve.map_or(
                crate::sandbox::oracle::OracleConfig::default().new_for,
                |d| d / 2,
            ),
            review_for: args.occ_auto_approve.map(|d| d.saturating_sub(d / 2)),
            ..crate::sandbox::oracle::OracleConfig::default()
        },
    };
    let sandbox = Sandbox::start(args.listen, config)
        .await
        .map_err(|e| miette!("cannot start the sandbox on {}: {e}", args.listen))?;
    // On stdout: the address is what a script reads (`--listen 127.0.0.1:0` picks the port).
    output::data(&format!(
        "orgform sandbox listening on {} (stats at {}/_sandbox/stats); Ctrl-C stops it",
        sandbox.base_url(),
        sandbox.base_url()
    ));
    tokio::signal::ctrl_c()
        .await
        .into_diagnostic()
        .wrap_err("cannot wait for Ctrl-C")?;
    sandbox
        .shutdown()
        .await
        .map_err(|e| miette!("the sandbox did not stop cleanly: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
