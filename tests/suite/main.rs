//! The one integration test binary (every extra one re-links tokio and reqwest): modules by
//! area, all through orgform's public surface.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

mod architecture;
mod canary;
mod e2e;
mod endpoints;
mod exactly_once;
mod fmt;
mod fuzz_regressions;
mod golden;
mod harness;
mod heron_fixture;
mod hostile_files;
mod hostile_output;
mod http_client;
mod natural_keys;
mod planner_props;
mod plans;
mod provider_commvault;
mod provider_neoncrm;
mod provider_oracle;
mod provider_salesforce;
mod refusals;
mod request_counts;
mod sandbox;
mod scenario;
mod schema;
mod secrets_checked;
mod specs;
mod state_stores;
mod team_state;
mod tolerant_commvault;
mod tolerant_heron;
mod tolerant_neoncrm;
mod tolerant_oracle;
mod tolerant_salesforce;
mod validate_first;
mod variation_proxy;
