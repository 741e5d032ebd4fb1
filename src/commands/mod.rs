//! One thin file per subcommand, each orchestrating the layers: read specs and state at the
//! edge, call the pure planner, drive providers and the state store, hand results to `output`.
//! This module only dispatches; what several commands share has its own room: `specs` (the
//! specs folder read and checked), `state_store` (where state lives, opened locked or
//! read), `connection` (providers connected, secrets checked, reality read).

mod apply;
mod completions;
mod connection;
mod discover;
mod fmt;
mod import;
mod man;
mod plan;
mod sandbox;
mod schema;
mod secrets;
mod show;
mod spec_cache;
mod specs;
mod state;
mod state_store;
mod validate;

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, WrapErr};

use crate::cli::{Cli, Command};

pub use apply::Interrupted;

/// Runs the command and says how the process should exit; an [`Interrupted`] error is a run
/// ended by a second interrupt.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")?;
    let result = runtime.block_on(dispatch(cli));
    if result
        .as_ref()
        .is_err_and(|e| e.downcast_ref::<Interrupted>().is_some())
    {
        // Interrupted twice: leave at once, without waiting for what is still running.
        runtime.shutdown_background();
    }
    result
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Validate => validate::run(g),
        Command::Plan(args) => plan::run(g, &args).await,
        Command::Apply(args) => apply::run(g, &args).await,
        Command::Show(args) => show::run(g, &args).await,
        Command::Import(args) => import::import(g, &args).await,
        Command::Forget(args) => import::forget(g, &args).await,
        Command::Refresh(args) => apply::refresh(g, &args).await,
        Command::Discover(args) => discover::run(g, &args).await,
        Command::Schema => schema::run(),
        Command::Secrets => secrets::run(g),
        Command::Fmt(args) => fmt::run(g, &args),
        Command::ForceUnlock(args) => import::force_unlock(g, &args).await,
        Command::State(command) => state::run(g, &command).await,
        Command::Sandbox(args) => sandbox::serve(&args).await,
        Command::Completions { shell } => completions::run(shell),
        Command::Man => man::run(),
    }
}
