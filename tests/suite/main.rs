//! The one integration test binary (every extra one re-links tokio and reqwest): modules by
//! area, all through orgform's public surface.

#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a failed unwrap is a failed test; a test may say what it saw"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests read their own knobs (BLESS, ORGFORM_TEST_PG_URL) and poke the emulators \
              with a plain reqwest client, on purpose beside orgform's one client"
)]
#![expect(
    unreachable_pub,
    reason = "a binary's modules share their helpers with `pub`; `pub(crate)` would say the same"
)]
#![expect(
    clippy::items_after_statements,
    clippy::cast_possible_truncation,
    clippy::unreadable_literal,
    clippy::semicolon_if_nothing_returned,
    clippy::format_collect,
    clippy::manual_assert,
    clippy::default_trait_access,
    reason = "pedantic lints on in src/ that fire a few times in tests; fix them with the next \
              change to those test files, then drop this"
)]

mod architecture;
mod bounded_answers;
mod brownfield;
mod canary;
mod cli_polish;
mod discover;
mod e2e;
mod echoed_secrets;
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
mod moves;
mod natural_keys;
mod pg_history;
mod planner_props;
mod plans;
mod provider_commvault;
mod provider_neoncrm;
mod provider_oracle;
mod provider_salesforce;
mod refusals;
mod reported_commvault;
mod reported_neoncrm;
mod reported_oracle;
mod reported_salesforce;
mod request_counts;
mod request_floor;
mod reviewed_plan;
mod sandbox;
mod sandbox_scale;
mod scenario;
mod schema;
mod secrets_checked;
mod spec_cache;
mod specs;
mod state_commands;
mod state_stores;
mod target;
mod team_state;
mod templates;
mod terminal;
mod tolerant_commvault;
mod tolerant_heron;
mod tolerant_neoncrm;
mod tolerant_oracle;
mod tolerant_salesforce;
mod untrusted_answers;
mod validate_first;
mod variation_proxy;
