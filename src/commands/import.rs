//! `orgform import ADDRESS REMOTE_ID` and `orgform forget ADDRESS...`: edit state by hand, under
//! the lock, with the provider consulted for imports.

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use super::connection::with_connect_options;
use super::specs::{Destination, load_specs, load_specs_checked, warn_endpoints};
use super::state_store::{
    StateLocation, lock_request, open_state_locked, state_location, state_location_before_login,
};
use crate::cli::{ForceUnlockArgs, ForgetArgs, GlobalArgs, ImportArgs};
use crate::escape::Shown;
use crate::output;
use crate::providers::{AnyProvider, ConnectOptions, Provider};
use crate::state::{Record, StateBackend, Status};
use crate::time;

pub(crate) async fn import(g: &GlobalArgs, args: &ImportArgs) -> Result<ExitCode> {
    let (spec, warnings) = load_specs_checked(g, Destination::of(args.sandbox.enabled))?;
    warn_endpoints(&warnings);
    let Some(org) = spec.orgs.get(&args.address) else {
        return Err(miette!(
            help = "declare it in the specs first, then import it",
            "`{}` is not declared in the specs",
            Shown(&args.address)
        ));
    };
    let location =
        state_location_before_login(g, &spec, args.sandbox.enabled, [org.instance.as_str()])?;
    let (mut backend, mut state) = open_state_locked(&location, g).await?;
    // A pending or failed create is what import may settle (the plan says so when several
    // organizations have its key); a created record is replaced only after `forget`.
    if let Some(existing) = state
        .orgs
        .get(&args.address)
        .filter(|r| r.status == Status::Created)
    {
        return Err(miette!(
            help = format!(
                "`orgform forget {}` first to replace it",
                Shown(&args.address)
            ),
            "`{}` is already in state ({}, remote id {})",
            Shown(&args.address),
            existing.status.name(),
            Shown(existing.remote_id.as_deref().unwrap_or("none"))
        ));
    }
    // One organization is never two addresses: the id may be recorded under another address
    // (an address renamed in the specs, or a second declaration of the same organization).
    if let Some((holder, _)) = state.orgs.iter().find(|(_, r)| {
        r.provider == org.instance && r.remote_id.as_deref() == Some(args.remote_id.as_str())
    }) {
        return Err(miette!(
            help = format!(
                "if `{}` is `{}` renamed, `orgform forget {}` first, then import it again",
                Shown(&args.address),
                Shown(holder),
                Shown(holder)
            ),
            "`{}` on `{}` is already recorded in state as `{}`; one organization can't be two addresses",
            Shown(&args.remote_id),
            org.instance,
            Shown(holder)
        ));
    }
    let instance = spec
        .providers
        .get(&org.instance)
        .ok_or_else(|| miette!("provider `{}` is not declared", org.instance))?;
    let look = async |options: &ConnectOptions| {
        // Every credential the login needs, checked at once before any request.
        options
            .secrets
            .check_all(&crate::plan::login_secrets(&spec, [org.instance.as_str()]))?;
        let provider = AnyProvider::connect(instance, options)
            .into_diagnostic()
            .wrap_err_with(|| format!("provider `{}` ({})", instance.name, instance.origin))?;
        provider
            .login()
            .await
            .into_diagnostic()
            .wrap_err_with(|| format!("logging in to provider `{}`", instance.name))?;
        let reality = provider
            .read(std::slice::from_ref(&org.natural_key))
            .await
            .into_diagnostic()
            .wrap_err_with(|| format!("reading provider `{}`", instance.name))?;
        Ok::<_, miette::Report>(
            reality
                .orgs
                .into_values()
                .flatten()
                .find(|o| o.remote_id == args.remote_id),
        )
    };
    let found = with_connect_options(g, &args.sandbox, &spec, &location, look).await?;
    let Some(remote) = found else {
        return Err(miette!(
            "provider `{}` has no organization with id `{}` under the natural key `{}`",
            instance.name,
            Shown(&args.remote_id),
            Shown(&org.natural_key.0)
        ));
    };
    if remote.natural_key != org.natural_key {
        return Err(miette!(
            "`{}` at `{}` is `{}`, but `{}` declares `{}`",
            Shown(&args.remote_id),
            instance.name,
            Shown(&remote.natural_key.0),
            Shown(&args.address),
            Shown(&org.natural_key.0)
        ));
    }
    let now = time::now();
    state.orgs.insert(
        args.address.clone(),
        Record {
            provider: org.instance.clone(),
            provider_type: org.provider_type,
            remote_id: Some(remote.remote_id.clone()),
            natural_key: org.natural_key.clone(),
            digest: org.digest.clone(),
            status: Status::Created,
            attributes: org.public_attributes_text(),
            attempted_at: None,
            updated_at: now,
            error: None,
            detail: crate::state::Detail::default(),
        },
    );
    backend.write(&mut state).await?;
    output::message(&format!(
        "Imported `{}` as {} on `{}`.",
        Shown(&args.address),
        Shown(&remote.remote_id),
        instance.name
    ));
    Ok(ExitCode::SUCCESS)
}

/// `orgform forget ADDRESS...`: every address checked before any is dropped, so that a typo in
/// one leaves state as it was; then one write for them all.
pub(crate) async fn forget(g: &GlobalArgs, args: &ForgetArgs) -> Result<ExitCode> {
    let spec = load_specs(&g.specs).ok();
    let location = state_location(g, spec.as_ref(), args.sandbox.enabled)?;
    if crate::commands::state_store::never_written(&location) {
        let names: Vec<String> = args
            .addresses
            .iter()
            .map(|a| format!("`{}`", Shown(a)))
            .collect();
        return Err(miette!(
            help = "no apply has written a state here yet",
            "{} not in state (there is none at {location}); nothing was forgotten",
            names.join(", ")
        ));
    }
    let (mut backend, mut state) = open_state_locked(&location, g).await?;
    let unknown: Vec<&String> = args
        .addresses
        .iter()
        .filter(|a| !state.orgs.contains_key(a.as_str()))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.iter().map(|a| format!("`{}`", Shown(a))).collect();
        let verb = if unknown.len() == 1 { "is" } else { "are" };
        return Err(miette!(
            help = "`orgform state list` shows the addresses in state",
            "{} {verb} not in state ({}); nothing was forgotten",
            names.join(", "),
            backend.describe()
        ));
    }
    let mut forgotten = Vec::new();
    for address in &args.addresses {
        // An address named twice is forgotten once.
        if let Some(record) = state.orgs.remove(address) {
            forgotten.push((address, record));
        }
    }
    backend.write(&mut state).await?;
    for (address, record) in forgotten {
        output::message(&format!(
            "Forgot `{}` ({} on `{}`); it was left at the provider.",
            Shown(address),
            Shown(record.remote_id.as_deref().unwrap_or("no remote id")),
            Shown(&record.provider)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `orgform force-unlock LOCK_ID`: free a lock whose holder is gone.
pub(crate) async fn force_unlock(g: &GlobalArgs, args: &ForceUnlockArgs) -> Result<ExitCode> {
    use crate::state::file::{Unlocked, force_unlock};
    let spec = load_specs(&g.specs).ok();
    match state_location(g, spec.as_ref(), args.sandbox.enabled)? {
        StateLocation::File(path) => match force_unlock(&path, &args.lock_id)? {
            Unlocked::Cleared(holder) => output::message(&format!(
                "Released the lock held by {holder}. (A local lock is an OS lock: it was already free once that process ended.)"
            )),
            Unlocked::WasFree => output::message("The state was not locked; nothing to do."),
        },
        StateLocation::Postgres { url, workspace } => {
            let mut backend = crate::state::postgres::PostgresBackend::connect(
                &url,
                &workspace,
                lock_request(g).info,
            )
            .await?;
            match backend.force_unlock(&args.lock_id).await? {
                Some(holder) => output::message(&format!("Released the lock held by {holder}.")),
                None => output::message("The workspace was not locked; nothing to do."),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
