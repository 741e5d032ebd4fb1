//! One thin file per subcommand, each orchestrating the layers: read specs and state at the
//! edge, call the pure planner, drive providers and the state store, hand results to `output`.
//! This module holds what several commands share.

mod apply;
mod fmt;
mod import;
mod plan;
mod sandbox;
mod schema;
mod show;
mod state;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::model::{InstanceName, NaturalKey, Reality};
use crate::plan::Plan;
use crate::providers::{AnyProvider, ConnectOptions, HttpOptions, Provider};
use crate::spec::endpoints::{self, EndpointWarning};
use crate::spec::{SourceFile, Spec};
use crate::state::file::{FileBackend, LockRequest};
use crate::state::postgres::PostgresBackend;
use crate::state::{LockInfo, State, Store};
use crate::time;

pub use sandbox::EmbeddedSandbox;

/// Runs the command and says how the process should exit.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")?;
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Validate => validate::run(g),
        Command::Plan(args) => plan::run(g, &args).await,
        Command::Apply(args) => apply::run(g, &args).await,
        Command::Show => show::run(g).await,
        Command::Import(args) => import::import(g, &args).await,
        Command::Forget(args) => import::forget(g, &args).await,
        Command::Refresh(args) => apply::refresh(g, &args).await,
        Command::Schema => schema::run(),
        Command::Fmt(args) => fmt::run(g, &args),
        Command::ForceUnlock(args) => import::force_unlock(g, &args).await,
        Command::State(command) => state::run(g, &command).await,
        Command::Sandbox(args) => sandbox::serve(&args).await,
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "orgform",
                &mut out,
            );
            crate::output::data(&String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .into_diagnostic()?;
            crate::output::data(&String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Every `*.toml` under `dir`, in path order.
pub fn spec_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    collect_toml(dir, &mut paths)
        .map_err(|e| miette!("cannot read the specs folder {}: {e}", dir.display()))
        .map_err(|e| e.wrap_err("pass --specs DIR to point at your specs"))?;
    paths.sort();
    Ok(paths)
}

/// Reads every `*.toml` under `dir`, in path order, and validates them together. Each is a
/// regular file of at most 32 MiB (a link is followed within `dir` only) and UTF-8 text with no
/// control character TOML forbids; a file that is not is named, and nothing of it is shown.
pub fn load_specs(dir: &Path) -> Result<Spec> {
    Ok(Spec::load(&read_spec_files(dir)?)?)
}

fn read_spec_files(dir: &Path) -> Result<Vec<SourceFile>> {
    let paths = spec_paths(dir)?;
    let folder = std::fs::canonicalize(dir)
        .map_err(|e| miette!("cannot read the specs folder {}: {e}", dir.display()))?;
    let mut files = Vec::with_capacity(paths.len());
    let mut refused = Vec::new();
    let mut not_text = Vec::new();
    for path in paths {
        match crate::files::read_spec(&folder, &path) {
            Ok(bytes) => match SourceFile::from_bytes(path.display().to_string(), bytes) {
                Ok(file) => files.push(file),
                Err(e) => not_text.push(*e),
            },
            Err(e) => refused.push(e),
        }
    }
    if !refused.is_empty() {
        return Err(UnreadableSpecFiles { errors: refused }.into());
    }
    if !not_text.is_empty() {
        return Err(crate::spec::SpecErrors::new(not_text).into());
    }
    Ok(files)
}

/// Where a run sends requests: the hosts the specs name, or the embedded sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    Specs,
    /// `--sandbox`: every request goes to the sandbox on loopback, with the sandbox's own
    /// credentials, so the specs' hosts receive nothing and are not checked.
    Sandbox,
}

impl Destination {
    /// Where a command with `--sandbox` set to `sandbox` sends requests.
    pub fn of(sandbox: bool) -> Destination {
        if sandbox {
            Destination::Sandbox
        } else {
            Destination::Specs
        }
    }
}

/// Loads the specs for a command that may talk to providers, and checks where they would send
/// credentials (`spec::endpoints`) before anything else happens: before the state is opened,
/// any secret read or any request sent. Refused hosts are spec errors; the warnings returned
/// are for the caller to show (in the plan, or on stderr).
pub fn load_specs_checked(g: &GlobalArgs, to: Destination) -> Result<(Spec, Vec<EndpointWarning>)> {
    let files = read_spec_files(&g.specs)?;
    let spec = Spec::load(&files)?;
    let warnings = match to {
        Destination::Specs => endpoints::check(&files, &spec, g.allowed_hosts.as_ref())?,
        Destination::Sandbox => Vec::new(),
    };
    Ok((spec, warnings))
}

/// Shows endpoint warnings on stderr, for commands that print no plan.
pub fn warn_endpoints(warnings: &[EndpointWarning]) {
    for warning in warnings {
        crate::output::message(&format!("Warning: {warning}."));
    }
}

/// Spec files that could not be read at all, every one of them named.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{} cannot be read", crate::text::plural(.errors.len(), "spec file"))]
struct UnreadableSpecFiles {
    #[related]
    errors: Vec<crate::files::FileError>,
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_toml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Where state lives for this run.
#[derive(Clone, Debug)]
pub enum StateLocation {
    File(PathBuf),
    Postgres { url: String, workspace: String },
}

impl StateLocation {
    /// Parses a `--state` or `--to` value: a PostgreSQL URL or a file path.
    pub fn parse(value: &str, workspace: &str) -> Result<StateLocation> {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            let parsed =
                url::Url::parse(value).map_err(|e| miette!("`{value}` is not a valid URL: {e}"))?;
            if parsed.password().is_some() {
                return Err(miette!(
                    help = "export PGPASSWORD instead, or use [state] url = { env = \"NAME\" } in the specs",
                    "a password on the command line can be read by other users of this machine; refusing it"
                ));
            }
            return Ok(StateLocation::Postgres {
                url: value.to_string(),
                workspace: workspace.to_string(),
            });
        }
        Ok(StateLocation::File(PathBuf::from(value)))
    }

    /// Where an embedded sandbox keeps its data: beside a state file, or under state/sandbox/.
    pub fn sandbox_data_file(&self) -> PathBuf {
        match self {
            StateLocation::File(path) => path.with_file_name("sandbox-data.json"),
            StateLocation::Postgres { .. } => PathBuf::from("state/sandbox/sandbox-data.json"),
        }
    }
}

impl std::fmt::Display for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::File(path) => write!(f, "{}", path.display()),
            StateLocation::Postgres { url, workspace } => write!(
                f,
                "{} (workspace `{workspace}`)",
                crate::state::postgres::redact_url(url)
            ),
        }
    }
}

/// Where state lives: `--state`, else the specs' `[state]` table, else the default file. Sandbox
/// runs keep their own state under `state/sandbox/` unless `--state` says otherwise.
pub fn state_location(g: &GlobalArgs, spec: Option<&Spec>, sandbox: bool) -> Result<StateLocation> {
    let settings = spec.map(|s| &s.state);
    let workspace = g
        .workspace
        .clone()
        .or_else(|| settings.and_then(|s| s.workspace.clone()))
        .unwrap_or_else(|| "default".to_string());
    if let Some(explicit) = &g.state {
        return StateLocation::parse(explicit, &workspace);
    }
    if sandbox {
        return Ok(StateLocation::File(PathBuf::from(
            "state/sandbox/orgform.state.json",
        )));
    }
    if let Some(settings) = settings {
        if settings.backend.as_deref() == Some("postgres") {
            let Some(reference) = &settings.url else {
                return Err(miette!(
                    help = "add `url = { env = \"NAME\" }` to the [state] table",
                    "[state] backend = \"postgres\" needs a `url`"
                ));
            };
            let url = crate::secrets::SecretResolver::default()
                .resolve(reference)
                .map_err(|e| miette!("[state] url: {e}"))?;
            return Ok(StateLocation::Postgres {
                url: url.expose().to_string(),
                workspace,
            });
        }
        if let Some(path) = &settings.path {
            return Ok(StateLocation::File(PathBuf::from(path)));
        }
    }
    Ok(StateLocation::File(PathBuf::from(
        "state/orgform.state.json",
    )))
}

/// Who this run is, for the lock file.
pub fn lock_request(g: &GlobalArgs) -> LockRequest {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown host".into());
    let command = std::env::args()
        .map(|a| {
            if a.contains(char::is_whitespace) {
                format!("{a:?}")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    LockRequest {
        info: LockInfo {
            id: crate::state::new_lineage(),
            host,
            pid: std::process::id(),
            command,
            since: time::now(),
        },
        timeout: g.lock_timeout,
    }
}

/// Opens the state with its lock held for the whole run, and loads it (or starts a new one).
pub async fn open_state_locked(location: &StateLocation, g: &GlobalArgs) -> Result<(Store, State)> {
    let request = lock_request(g);
    let mut store = match location {
        StateLocation::File(path) => {
            let path = path.clone();
            // Waiting for a lock blocks; keep it off the async workers.
            let backend =
                tokio::task::spawn_blocking(move || FileBackend::open_locked(&path, &request))
                    .await
                    .into_diagnostic()??;
            Store::File(backend)
        }
        StateLocation::Postgres { url, workspace } => {
            let mut backend =
                PostgresBackend::connect(url, workspace, request.info.clone()).await?;
            backend.lock(request.timeout).await?;
            Store::Postgres(Box::new(backend))
        }
    };
    let state = store.load_or_new().await?;
    Ok((store, state))
}

/// Loads the state without locking it, for commands that only read.
pub async fn read_state(location: &StateLocation, g: &GlobalArgs) -> Result<State> {
    let mut store = match location {
        StateLocation::File(path) => Store::File(FileBackend::open_read_only(path)?),
        StateLocation::Postgres { url, workspace } => Store::Postgres(Box::new(
            PostgresBackend::connect(url, workspace, lock_request(g).info).await?,
        )),
    };
    Ok(store.load_or_new().await?)
}

/// Connected providers for every instance that declared organizations or state use.
pub struct Connected {
    pub providers: BTreeMap<InstanceName, Arc<AnyProvider>>,
}

/// Connects to each provider instance the specs or state need, logging in once each.
pub async fn connect(spec: &Spec, state: &State, options: &ConnectOptions) -> Result<Connected> {
    let mut providers = BTreeMap::new();
    let mut logins = tokio::task::JoinSet::new();
    // An instance only orphans use is not among them: nothing to read or create there.
    for name in crate::plan::contacted_instances(spec, state) {
        let Some(instance) = spec.providers.get(name) else {
            continue;
        };
        let provider = Arc::new(
            AnyProvider::connect(instance, options)
                .map_err(|e| miette!("provider `{name}` ({}): {e}", instance.origin))?,
        );
        providers.insert(name.to_string(), provider.clone());
        let name = name.to_string();
        logins.spawn(async move { (name, provider.login().await) });
    }
    while let Some(joined) = logins.join_next().await {
        let (name, result) = joined.into_diagnostic()?;
        result.map_err(|e| miette!("provider `{name}`: {e}"))?;
    }
    Ok(Connected { providers })
}

/// Resolves every secret a run needs before it sends anything: the credentials of each
/// instance it contacts and, given `plan`, what the organizations it may create declare. All
/// that can't be read are reported in one error.
pub fn check_secrets(
    spec: &Spec,
    state: &State,
    plan: Option<&Plan>,
    options: &ConnectOptions,
) -> Result<()> {
    let needed = crate::plan::secrets_needed(spec, state, plan);
    Ok(options.secrets.check_all(&needed)?)
}

/// The check before any login, when the plan needs the providers' answers and so comes after
/// them. If a login can't happen, nothing more will be learnt from the providers this run: the
/// error also names what the creates known from specs and state alone need, so that one run
/// lists everything missing rather than one kind per run.
pub fn check_login_secrets(spec: &Spec, state: &State, options: &ConnectOptions) -> Result<()> {
    if check_secrets(spec, state, None, options).is_ok() {
        return Ok(());
    }
    let known = crate::plan::plan(
        spec,
        state,
        None,
        crate::plan::PlanContext { now: time::now() },
    );
    check_secrets(spec, state, Some(&known), options)
}

/// Reads remote reality from every connected instance at once, each in as few requests as its
/// API allows.
pub async fn read_reality(spec: &Spec, state: &State, connected: &Connected) -> Result<Reality> {
    let mut keys: BTreeMap<&str, Vec<NaturalKey>> = BTreeMap::new();
    for org in spec.orgs.values() {
        keys.entry(&org.instance)
            .or_default()
            .push(org.natural_key.clone());
    }
    for record in state.orgs.values() {
        keys.entry(&record.provider)
            .or_default()
            .push(record.natural_key.clone());
    }
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
        let found = result.map_err(|e| miette!("reading provider `{name}`: {e}"))?;
        reality.instances.insert(name, found);
    }
    Ok(reality)
}

/// Connection options for this run; in sandbox mode, credentials come from the sandbox.
pub fn connect_options(g: &GlobalArgs, sandbox: Option<&EmbeddedSandbox>) -> ConnectOptions {
    let mut options = ConnectOptions {
        http: HttpOptions {
            timeout: g.http_timeout,
            ..HttpOptions::default()
        },
        ..ConnectOptions::default()
    };
    if let Some(sandbox) = sandbox {
        options.secrets = sandbox.secrets.clone();
    }
    options
}
