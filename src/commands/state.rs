//! `orgform state ...`: `list` and `show` read the records without the lock; `mv` renames an
//! address under the lock as a new version; `history` lists a PostgreSQL state's versions and
//! `migrate --to TARGET` moves the state to another backend. What renders a record, and what
//! the specs say about a move, is pure and lives in `records`.

mod records;

use std::process::ExitCode;

use miette::{Result, WrapErr, miette};

use super::specs::load_specs;
use super::state_store::{
    StateLocation, lock_request, open_state_locked, read_state_asked, state_location,
    state_location_for_migrate,
};
use crate::cli::{Format, GlobalArgs, StateCommand};
use crate::escape::Shown;
use crate::output;
use crate::spec::Spec;
use crate::state::{State, StateBackend, Store};
use records::{Declared, Elsewhere};

pub(crate) async fn run(g: &GlobalArgs, command: &StateCommand) -> Result<ExitCode> {
    match command {
        StateCommand::List { patterns, sandbox } => {
            list(g, &located(g, sandbox.enabled)?, patterns).await
        }
        StateCommand::Show { address, sandbox } => {
            show(g, &located(g, sandbox.enabled)?, address).await
        }
        StateCommand::Move { old, new } => move_address(g, old, new).await,
        StateCommand::History { prune: false, .. } => history(g, &located(g, false)?).await,
        StateCommand::History { prune: true, keep } => {
            prune_history(g, &located(g, false)?, *keep).await
        }
        StateCommand::Migrate { to } => {
            let spec = load_specs(&g.specs).ok();
            migrate(g, &state_location_for_migrate(g, spec.as_ref())?, to).await
        }
    }
}

/// Where the state is, for a command that works without valid specs (they only matter for a
/// `[state]` table).
fn located(g: &GlobalArgs, sandbox: bool) -> Result<StateLocation> {
    let spec = load_specs(&g.specs).ok();
    state_location(g, spec.as_ref(), sandbox)
}

async fn list(g: &GlobalArgs, location: &StateLocation, patterns: &[String]) -> Result<ExitCode> {
    let state = read_state_asked(location, g).await?;
    let (picked, unmatched) = records::pick(&state, patterns);
    for pattern in unmatched {
        output::message(&format!(
            "No address in state ({location}) matches `{}`.",
            Shown(pattern)
        ));
    }
    match g.format {
        Format::Json => output::data(&records::list_json(&state, &picked)),
        Format::Markdown => output::data(&records::list_markdown(&picked)),
        // Nothing at all for no address, as `terraform state list` prints: a script's loop
        // over the lines runs zero times.
        Format::Text if picked.is_empty() => {}
        Format::Text => output::data(&records::list_text(&picked)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(g: &GlobalArgs, location: &StateLocation, address: &str) -> Result<ExitCode> {
    let state = read_state_asked(location, g).await?;
    let Some(record) = state.orgs.get(address) else {
        return Err(not_in_state(&state, location, address));
    };
    output::data(&match g.format {
        Format::Json => records::show_json(&state, address, record),
        Format::Markdown => records::show_markdown(address, record),
        Format::Text => records::show_text(address, record),
    });
    Ok(ExitCode::SUCCESS)
}

/// An address the state doesn't hold, with the closest one it does as a hint.
fn not_in_state(state: &State, location: &StateLocation, address: &str) -> miette::Report {
    let close =
        crate::spec::diagnostic::did_you_mean(address, state.orgs.keys().map(String::as_str));
    let help = match close {
        Some(close) => format!("did you mean `{}`?", Shown(close)),
        None if state.orgs.is_empty() => "the state holds no address yet".to_string(),
        None => "`orgform state list` lists the addresses in state".to_string(),
    };
    miette!(
        help = help,
        "`{}` is not in state ({location})",
        Shown(address)
    )
}

/// `state mv OLD NEW`: the record of OLD, unchanged, under NEW, as one new version of the
/// state. Everything that can refuse the move is checked before the lock is taken, except
/// what only the locked state tells.
async fn move_address(g: &GlobalArgs, old: &str, new: &str) -> Result<ExitCode> {
    if !crate::spec::valid_name(new) {
        return Err(miette!(
            help = crate::spec::NAME_RULE,
            "`{}` is not a valid address",
            Shown(new)
        ));
    }
    if old == new {
        return Err(miette!(
            "`{}` and `{}` are the same address; there is nothing to move",
            Shown(old),
            Shown(new)
        ));
    }
    let spec = specs_to_check_against(g)?;
    let location = state_location(g, spec.as_ref(), false)?;
    if crate::commands::state_store::never_written(&location) {
        return Err(not_in_state(&State::new(String::new()), &location, old));
    }
    let (mut store, mut state): (Store, State) = open_state_locked(&location, g).await?;
    let Some(record) = state.orgs.get(old) else {
        return Err(not_in_state(&state, &location, old));
    };
    if let Some(taken) = state.orgs.get(new) {
        return Err(miette!(
            help = format!(
                "`orgform state show {0}` shows it; move `{1}` to another address, or `orgform forget {0}` first if that record stands for nothing any more",
                Shown(new),
                Shown(old)
            ),
            "`{}` is already in state ({}, remote id {} on `{}`); moving `{}` there would lose that record",
            Shown(new),
            taken.status.name(),
            Shown(taken.remote_id.as_deref().unwrap_or("none")),
            Shown(&taken.provider),
            Shown(old)
        ));
    }
    let declared = spec.as_ref().map(|s| records::declared(s, record, new));
    if let Some(Declared::Otherwise {
        instance,
        natural_key,
        origin,
        elsewhere,
    }) = &declared
    {
        let help = match elsewhere {
            Some(e) if e.address != old => format!(
                "the specs declare this organization as `{}` ({}): `orgform state mv {} {}`",
                Shown(&e.address),
                e.origin,
                Shown(old),
                Shown(&e.address)
            ),
            _ => format!(
                "move `{}` to an address the specs don't declare as another organization",
                Shown(old)
            ),
        };
        return Err(miette!(
            help = help,
            "the specs declare `{}` ({origin}) as `{}` on `{}`, but `{}` in state is `{}` on `{}`: under `{}`, state would record an organization the specs say it is not",
            Shown(new),
            Shown(natural_key),
            Shown(instance),
            Shown(old),
            Shown(&record.natural_key.0),
            Shown(&record.provider),
            Shown(new)
        ));
    }
    let (remote_id, provider) = (
        record
            .remote_id
            .clone()
            .unwrap_or_else(|| "no remote id yet".into()),
        record.provider.clone(),
    );
    let before = state.serial;
    if let Some(record) = state.orgs.remove(old) {
        state.orgs.insert(new.to_string(), record);
    }
    store.write(&mut state).await?;
    let mut said = format!(
        "Moved `{}` to `{}` ({} on `{}`) in {location}, serial {before} -> {}. No provider was contacted.",
        Shown(old),
        Shown(new),
        Shown(&remote_id),
        Shown(&provider),
        state.serial
    );
    match declared {
        None => said.push_str(&format!(
            "\nNo specs folder at {}: the move was not checked against any declaration.",
            g.specs.display()
        )),
        Some(Declared::NotAsNew {
            elsewhere: Some(Elsewhere { address, origin }),
        }) => said.push_str(&format!(
            "\nThe specs still declare this organization as `{}` ({origin}); rename that table to [org.{}], or the next plan won't find `{}` declared.",
            Shown(&address),
            Shown(new),
            Shown(new)
        )),
        Some(Declared::NotAsNew { elsewhere: None }) => said.push_str(&format!(
            "\n`{}` is not declared in the specs: plans show it as an orphan until a [org.{}] table declares it.",
            Shown(new),
            Shown(new)
        )),
        Some(Declared::AsNew | Declared::Otherwise { .. }) => {}
    }
    output::message(&said);
    Ok(ExitCode::SUCCESS)
}

/// The specs a move is checked against: none when there is no specs folder at all (said after
/// the move), refused when there is one that doesn't load, since the check can't be made.
fn specs_to_check_against(g: &GlobalArgs) -> Result<Option<Spec>> {
    if std::fs::symlink_metadata(&g.specs).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return Ok(None);
    }
    load_specs(&g.specs).map(Some).wrap_err_with(|| {
        format!(
            "state mv checks the new address against the specs in {}, and they don't load; nothing was moved",
            g.specs.display()
        )
    })
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
    let mut text = format!(
        "{} of {location}\n\n",
        crate::text::plural(versions.len(), "version")
    );
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

/// `state history --prune --keep N`: under the workspace's lock, deletes every version but the
/// `keep` newest, and says what it freed.
async fn prune_history(g: &GlobalArgs, location: &StateLocation, keep: u64) -> Result<ExitCode> {
    let StateLocation::Postgres { url, workspace } = location else {
        return Err(miette!(
            "a state file keeps only its previous version (`{location}.backup`): there is no history to prune"
        ));
    };
    let request = lock_request(g);
    let mut backend =
        crate::state::postgres::PostgresBackend::connect(url, workspace, request.info).await?;
    backend.lock(request.timeout).await?;
    let pruned = backend.prune(keep).await;
    let unlocked = backend.unlock().await;
    let pruned = pruned?;
    unlocked?;
    if g.format == Format::Json {
        output::data(&serde_json::to_string_pretty(&pruned).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    output::data(&format!(
        "Pruned {} of {location} ({} bytes freed); kept {}.",
        crate::text::plural(
            usize::try_from(pruned.deleted).unwrap_or(usize::MAX),
            "version"
        ),
        pruned.bytes_freed,
        crate::text::plural(
            usize::try_from(pruned.kept).unwrap_or(usize::MAX),
            "version"
        ),
    ));
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
            crate::escape::Shown(&existing.lineage),
            existing.serial
        ));
    }
    let mut moved = state.clone();
    destination.write(&mut moved).await?;
    output::message(&format!(
        "Moved the state (lineage {}, {}) from {from} (serial {}) to {target} (serial {}). The source is left as it was; point orgform at the new location from now on.",
        crate::escape::Shown(&moved.lineage),
        crate::text::plural(moved.orgs.len(), "organization"),
        state.serial,
        moved.serial
    ));
    Ok(ExitCode::SUCCESS)
}
