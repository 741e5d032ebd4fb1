//! The providers a run talks to: connection options (with `--sandbox`, an embedded sandbox
//! started and stopped around the work, and its address and credentials), every secret checked
//! before the first request, one login per instance, and reality read from all of them at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use miette::{IntoDiagnostic, Result, WrapErr};

use super::apply::Interrupted;
use super::sandbox::EmbeddedSandbox;
use super::state_store::StateLocation;
use crate::cli::{GlobalArgs, SandboxArg};
use crate::model::{InstanceName, NaturalKey, Reality};
use crate::plan::{Plan, Targets};
use crate::providers::{AnyProvider, ConnectOptions, HttpOptions, Provider};
use crate::spec::Spec;
use crate::state::{State, Store};
use crate::time;

/// Connected providers for every instance that declared organizations or state use.
pub(crate) struct Connected {
    pub(crate) providers: BTreeMap<InstanceName, Arc<AnyProvider>>,
}

/// Connects to each provider instance the specs or state need, logging in once each.
pub(crate) async fn connect(
    spec: &Spec,
    state: &State,
    targets: Option<&Targets>,
    options: &ConnectOptions,
) -> Result<Connected> {
    // An instance only orphans use is not among them: nothing to read or create there.
    connect_instances(
        spec,
        crate::plan::contacted_instances(spec, state, targets),
        options,
    )
    .await
}

/// Connects to the named instances, logging in to each once, all at once.
async fn connect_instances<'s>(
    spec: &Spec,
    names: impl IntoIterator<Item = &'s str>,
    options: &ConnectOptions,
) -> Result<Connected> {
    let mut providers = BTreeMap::new();
    let mut logins = tokio::task::JoinSet::new();
    for name in names {
        let Some(instance) = spec.providers.get(name) else {
            continue;
        };
        let provider = Arc::new(
            AnyProvider::connect(instance, options)
                .into_diagnostic()
                .wrap_err_with(|| format!("provider `{name}` ({})", instance.origin))?,
        );
        providers.insert(name.to_string(), provider.clone());
        let name = name.to_string();
        logins.spawn(async move { (name, provider.login().await) });
    }
    while let Some(joined) = logins.join_next().await {
        let (name, result) = joined.into_diagnostic()?;
        result
            .into_diagnostic()
            .wrap_err_with(|| format!("logging in to provider `{name}`"))?;
    }
    Ok(Connected { providers })
}

/// Resolves every secret a run needs before it sends anything: the credentials of each
/// instance it contacts and, given `plan`, what the organizations it may create declare. All
/// that can't be read are reported in one error.
pub(crate) fn check_secrets(
    spec: &Spec,
    state: &State,
    plan: Option<&Plan>,
    targets: Option<&Targets>,
    options: &ConnectOptions,
) -> Result<()> {
    let needed = crate::plan::secrets_needed(spec, state, plan, targets);
    Ok(options.secrets.check_all(&needed)?)
}

/// The check before any login, when the plan needs the providers' answers and so comes after
/// them. If a login can't happen, nothing more will be learnt from the providers this run: the
/// error also names what the creates known from specs and state alone need, so that one run
/// lists everything missing rather than one kind per run.
pub(crate) fn check_login_secrets(
    spec: &Spec,
    state: &State,
    targets: Option<&Targets>,
    options: &ConnectOptions,
) -> Result<()> {
    if check_secrets(spec, state, None, targets, options).is_ok() {
        return Ok(());
    }
    let known = crate::plan::plan_targeted(
        spec,
        state,
        None,
        crate::plan::PlanContext { now: time::now() },
        targets,
    );
    check_secrets(spec, state, Some(&known), targets, options)
}

/// Reads remote reality from every connected instance at once, each in as few requests as its
/// API allows.
pub(crate) async fn read_reality(
    spec: &Spec,
    state: &State,
    targets: Option<&Targets>,
    connected: &Connected,
) -> Result<Reality> {
    let wanted = |address: &str| targets.is_none_or(|t| t.contains(address));
    let mut keys: BTreeMap<&str, Vec<NaturalKey>> = BTreeMap::new();
    for org in spec.orgs.values().filter(|o| wanted(&o.address)) {
        keys.entry(&org.instance)
            .or_default()
            .push(org.natural_key.clone());
    }
    for (_, record) in state.orgs.iter().filter(|(a, _)| wanted(a)) {
        keys.entry(&record.provider)
            .or_default()
            .push(record.natural_key.clone());
    }
    read_keys(spec, connected, keys).await
}

/// Reads every connected instance for its natural keys in `keys`, all at once.
async fn read_keys(
    spec: &Spec,
    connected: &Connected,
    mut keys: BTreeMap<&str, Vec<NaturalKey>>,
) -> Result<Reality> {
    let mut reads = tokio::task::JoinSet::new();
    for (name, provider) in &connected.providers {
        let mut wanted = keys.remove(name.as_str()).unwrap_or_default();
        wanted.sort();
        wanted.dedup();
        let provider = provider.clone();
        let name = name.clone();
        // Where a daily quota applies, the provider's own count of today's creates too: other
        // states and people use the same quota, which this state can't see.
        let quota = spec
            .providers
            .get(&name)
            .is_some_and(|p| p.limits.creates_per_day.is_some());
        reads.spawn(async move {
            let count = async {
                if quota {
                    provider.creates_in_last_day().await
                } else {
                    Ok(None)
                }
            };
            let (read, count) = tokio::join!(provider.read(&wanted), count);
            let found = read.and_then(|mut found| {
                found.creates_last_day = count?;
                Ok(found)
            });
            (name, found)
        });
    }
    let mut reality = Reality::default();
    while let Some(joined) = reads.join_next().await {
        let (name, result) = joined.into_diagnostic()?;
        let found = result
            .into_diagnostic()
            .wrap_err_with(|| format!("reading provider `{name}`"))?;
        reality.instances.insert(name, found);
    }
    Ok(reality)
}

/// Logs in to and reads the instances the specs' organizations use, for the specs' natural
/// keys, while the state is still being read (`loading`); then the instances only the state
/// names, for the keys it records there, as [`read_reality`] reads them. A hundred thousand
/// organizations' state takes a fifth of a second to read, which the reads need not wait for:
/// the plan looks up only what the specs declare (a create, an adoption, drift), so the keys
/// state alone records at an instance read for the specs (an orphan's, a renamed
/// organization's old one) are not asked for there. The caller holds the state's lock already,
/// so nothing read here can be another run's work in flight. Every login's secrets are checked
/// before the first login, as [`check_login_secrets`] does; on any error the state is waited
/// for, and its own error comes first, as when it was read first.
pub(crate) async fn read_while_loading(
    spec: &Spec,
    loading: impl Future<Output = Result<(Store, State)>>,
    options: &ConnectOptions,
) -> Result<((Store, State), Connected, Reality)> {
    let nothing = State::new(String::new());
    if check_secrets(spec, &nothing, None, None, options).is_err() {
        // The error that names everything missing needs the state.
        let loaded = loading.await?;
        let state = &loaded.1;
        check_login_secrets(spec, state, None, options)?;
        let connected = connect(spec, state, None, options).await?;
        let reality = read_reality(spec, state, None, &connected).await?;
        return Ok((loaded, connected, reality));
    }
    let early = async {
        let connected = connect(spec, &nothing, None, options).await?;
        let reality = read_reality(spec, &nothing, None, &connected).await?;
        Ok::<_, miette::Report>((connected, reality))
    };
    let (loaded, early) = tokio::join!(loading, early);
    let loaded = loaded?;
    let (mut connected, mut reality) = early?;
    let state = &loaded.1;
    check_login_secrets(spec, state, None, options)?;
    let later: Vec<&str> = crate::plan::contacted_instances(spec, state, None)
        .into_iter()
        .filter(|name| !connected.providers.contains_key(*name))
        .collect();
    if later.is_empty() {
        return Ok((loaded, connected, reality));
    }
    let later = connect_instances(spec, later, options).await?;
    let mut keys: BTreeMap<&str, Vec<NaturalKey>> = BTreeMap::new();
    for record in state.orgs.values() {
        if later.providers.contains_key(&record.provider) {
            keys.entry(&record.provider)
                .or_default()
                .push(record.natural_key.clone());
        }
    }
    reality
        .instances
        .extend(read_keys(spec, &later, keys).await?.instances);
    connected.providers.extend(later.providers);
    Ok((loaded, connected, reality))
}

/// Runs `body` with the connection options for this run. With `--sandbox`, an embedded sandbox
/// is started first (its data beside the state, so that the next run finds what this one
/// created), `body` reaches it with the sandbox's own credentials, and it is stopped after,
/// whatever `body` returned (but [`Interrupted`], which ends the run at once); a failure to stop
/// it is the run's error.
pub(crate) async fn with_connect_options<T>(
    g: &GlobalArgs,
    sandbox: &SandboxArg,
    spec: &Spec,
    location: &StateLocation,
    body: impl AsyncFnOnce(&ConnectOptions) -> Result<T>,
) -> Result<T> {
    if !sandbox.enabled {
        return body(&connect_options(g, None)).await;
    }
    let running = EmbeddedSandbox::start(spec, &location.sandbox_data_file()).await?;
    let result = body(&connect_options(g, Some(&running))).await;
    // A second interrupt ends the run at once: no graceful stop to wait for.
    if result
        .as_ref()
        .is_err_and(|e| e.downcast_ref::<Interrupted>().is_some())
    {
        return result;
    }
    running.stop().await?;
    result
}

/// Connection options for this run; in sandbox mode, the sandbox's address and credentials.
fn connect_options(g: &GlobalArgs, sandbox: Option<&EmbeddedSandbox>) -> ConnectOptions {
    let mut options = ConnectOptions {
        http: HttpOptions {
            timeout: g.http_timeout,
            ..HttpOptions::default()
        },
        ..ConnectOptions::default()
    };
    if let Some(sandbox) = sandbox {
        options.secrets = sandbox.secrets.clone();
        options.base_url_override = Some(sandbox.base_url());
    }
    options
}
