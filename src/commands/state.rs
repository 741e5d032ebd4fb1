//! `orgform state history` and `orgform state migrate --to TARGET`.

use std::process::ExitCode;

use miette::{Result, miette};

use super::specs::load_specs;
use super::state_store::{StateLocation, lock_request, open_state_locked, state_location};
use crate::cli::{Format, GlobalArgs, StateCommand};
use crate::output;
use crate::state::{StateBackend, Store};

pub(crate) async fn run(g: &GlobalArgs, command: &StateCommand) -> Result<ExitCode> {
    let spec = load_specs(&g.specs).ok();
    let location = state_location(g, spec.as_ref(), false)?;
    match command {
        StateCommand::History => history(g, &location).await,
        StateCommand::Migrate { to } => migrate(g, &location, to).await,
    }
}

async fn history(g: &GlobalArgs, location: &StateLocation) -> Result<ExitCode> {
    let StateLocation::Postgres { url, workspace } = location else {
        return Err(miette!(
            help = "the PostgreSQL backend keeps every version: `orgform state migrate --to postgres://...`",
            "a state file keeps only its previous version (`{location}.backup`), not a history"
        ));
    };
    let backend =
        crate::state::postgres::PostgresBackend::connect(url, workspace, lock_request(g).info)
            .await?;
    let versions = backend.history().await?;
    if g.format == Format::Json {
        output::data(&serde_json::to_string_pretty(&versions).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = format!("{} version(s) of {location}\n\n", versions.len());
    for v in &versions {
        text.push_str(&format!(
            "  serial {:>5}  {}  {:>6} orgs  {}  {}\n",
            v.serial,
            v.written_at,
            v.organizations,
            crate::escape::Shown(&v.written_by),
            crate::escape::Shown(&v.command)
        ));
    }
    output::data(&text);
    Ok(ExitCode::SUCCESS)
}

async fn migrate(g: &GlobalArgs, from: &StateLocation, to: &str) -> Result<ExitCode> {
    let workspace = match from {
        StateLocation::Postgres { workspace, .. } => workspace.clone(),
        StateLocation::File(_) => g.workspace.clone().unwrap_or_else(|| "default".into()),
    };
    let target = StateLocation::parse(to, &workspace)?;
    // Two names of one file (a link and its target) would wait on their own lock.
    if let (StateLocation::File(a), StateLocation::File(b)) = (from, &target) {
        let real = |p| crate::state::file::resolve(p, false);
        if real(a)? == real(b)? {
            return Err(miette!(
                "{from} and {target} are the same state file; there is nothing to migrate"
            ));
        }
    }
    let (_source, state) = open_state_locked(from, g).await?;
    if state.serial == 0 && state.orgs.is_empty() {
        return Err(miette!("there is no state at {from} to migrate"));
    }
    let (mut destination, existing): (Store, _) = open_state_locked(&target, g).await?;
    if existing.serial > 0 || !existing.orgs.is_empty() {
        return Err(miette!(
            "{target} already holds a state (lineage {}, serial {}); refusing to overwrite it",
            existing.lineage,
            existing.serial
        ));
    }
    let mut moved = state.clone();
    destination.write(&mut moved).await?;
    output::message(&format!(
        "Moved the state (lineage {}, {} organizations) from {from} (serial {}) to {target} (serial {}). The source is left as it was; point orgform at the new location from now on.",
        moved.lineage,
        moved.orgs.len(),
        state.serial,
        moved.serial
    ));
    Ok(ExitCode::SUCCESS)
}
