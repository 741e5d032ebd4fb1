//! orgform: a declarative reconciler for SaaS and CRM organizations kept as code.
//!
//! Reading order: `model` (the vocabulary), `spec` (TOML to a validated `Spec`), `state` (what
//! was created), `plan` (the pure core: specs + state + remote reality -> `Plan`), `providers`
//! (the five APIs), `apply` (executes a plan), `sandbox` (emulators of the five APIs), `escape`
//! (values made safe to show), `text` (words for people: plurals), `output` (the only place that
//! prints), `time` (timestamps and their formats), `digest` (SHA-256 over JSON, streamed), `files` (reading user-named files safely,
//! replacing files atomically), `commands` (one per subcommand) and `cli` (the flags).

pub(crate) mod apply;
pub mod catalog;
pub mod cli;
pub mod commands;
pub(crate) mod digest;
pub(crate) mod escape;
pub(crate) mod files;
pub mod logging;
pub mod model;
pub mod output;
pub(crate) mod parallel;
pub mod plan;
pub mod providers;
pub mod sandbox;
pub mod secrets;
pub mod spec;
pub mod state;
pub(crate) mod text;
pub mod time;
