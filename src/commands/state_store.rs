//! The state store a run uses: where it lives (`--state`, the specs' `[state]` table, or the
//! default file) and how a command opens it: locked for the whole run by those that write,
//! read without the lock by those that only read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use crate::cli::GlobalArgs;
use crate::model::SecretRef;
use crate::plan::SecretUse;
use crate::spec::Spec;
use crate::state::file::{FileBackend, LockRequest};
use crate::state::postgres::PostgresBackend;
use crate::state::{LockInfo, State, Store};
use crate::time;

/// Where state lives for this run.
#[derive(Clone, Debug)]
pub(crate) enum StateLocation {
    File(PathBuf),
    Postgres { url: String, workspace: String },
}

impl StateLocation {
    /// Parses a `--state` or `--to` value: a PostgreSQL URL or a file path.
    pub(crate) fn parse(value: &str, workspace: &str) -> Result<StateLocation> {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            let parsed = url::Url::parse(value)
                .into_diagnostic()
                .wrap_err_with(|| format!("`{value}` is not a valid URL"))?;
            let password_in_query = parsed
                .query_pairs()
                .any(|(key, _)| matches!(key.as_ref(), "password" | "sslpassword"));
            if parsed.password().is_some() || password_in_query {
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
    pub(crate) fn sandbox_data_file(&self) -> PathBuf {
        match self {
            StateLocation::File(path) => path.with_file_name("sandbox-data.json"),
            StateLocation::Postgres { .. } => PathBuf::from("state/sandbox/sandbox-data.json"),
        }
    }
}

impl std::fmt::Display for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::File(path) => write!(f, "{}", crate::escape::ShownPath(path)),
            StateLocation::Postgres { url, workspace } => write!(
                f,
                "{} (workspace `{}`)",
                crate::state::postgres::redact_url(url),
                crate::escape::Shown(workspace)
            ),
        }
    }
}

/// Where state lives: `--state`, else the specs' `[state]` table, else the default file. Sandbox
/// runs keep their own state under `state/sandbox/` unless `--state` says otherwise.
pub(crate) fn state_location(
    g: &GlobalArgs,
    spec: Option<&Spec>,
    sandbox: bool,
) -> Result<StateLocation> {
    locate(g, spec, sandbox, BTreeMap::new())
}

/// `state_location` for `state migrate`, whose `--workspace` may name the workspace it moves
/// the state to rather than the one it reads.
pub(crate) fn state_location_for_migrate(
    g: &GlobalArgs,
    spec: Option<&Spec>,
) -> Result<StateLocation> {
    let (location, _) = locate_unchecked(g, spec, false, BTreeMap::new())?;
    Ok(location)
}

/// `state_location` for a run that then logs in to `instances`: a `[state] url` that can't be
/// read is reported with every login credential that can't either, so that one run names
/// everything missing.
pub(crate) fn state_location_before_login<'a>(
    g: &GlobalArgs,
    spec: &Spec,
    sandbox: bool,
    instances: impl IntoIterator<Item = &'a str>,
) -> Result<StateLocation> {
    let logins = crate::plan::login_secrets(spec, instances);
    locate(g, Some(spec), sandbox, logins)
}

fn locate(
    g: &GlobalArgs,
    spec: Option<&Spec>,
    sandbox: bool,
    also_needed: BTreeMap<SecretRef, BTreeSet<SecretUse>>,
) -> Result<StateLocation> {
    let (location, workspace_flag) = locate_unchecked(g, spec, sandbox, also_needed)?;
    if let (Some(asked), StateLocation::File(path)) = (workspace_flag, &location) {
        return Err(miette!(
            help = "workspaces are for a PostgreSQL state: --state postgres://... or [state] backend = \"postgres\"",
            "--workspace `{}` names a workspace, but this run's state is the file {}",
            crate::escape::Shown(asked),
            path.display()
        ));
    }
    Ok(location)
}

/// Where state lives, and the `--workspace` given (for the caller to hold to the location).
fn locate_unchecked<'g>(
    g: &'g GlobalArgs,
    spec: Option<&Spec>,
    sandbox: bool,
    also_needed: BTreeMap<SecretRef, BTreeSet<SecretUse>>,
) -> Result<(StateLocation, Option<&'g String>)> {
    let settings = spec.map(|s| &s.state);
    let workspace = g
        .workspace
        .clone()
        .or_else(|| settings.and_then(|s| s.workspace.clone()))
        .unwrap_or_else(|| "default".to_string());
    let location = location_of(g, settings, sandbox, also_needed, workspace)?;
    Ok((location, g.workspace.as_ref()))
}

fn location_of(
    g: &GlobalArgs,
    settings: Option<&crate::spec::StateSettings>,
    sandbox: bool,
    also_needed: BTreeMap<SecretRef, BTreeSet<SecretUse>>,
    workspace: String,
) -> Result<StateLocation> {
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
            let resolver = crate::secrets::SecretResolver::default();
            let Ok(url) = resolver.resolve(reference) else {
                let mut needed = also_needed;
                needed
                    .entry(reference.clone())
                    .or_default()
                    .insert(SecretUse::StateUrl);
                return Err(match resolver.check_all(&needed) {
                    Err(missing) => missing.into(),
                    // Read on the second try: a file that appeared in between.
                    Ok(()) => miette!("the [state] url could not be read; run again"),
                });
            };
            let url = url.expose();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                // Never quoted: the reference may name any variable or file the run can read.
                return Err(miette!(
                    help = "set it to postgres://user@host:port/db (the password from PGPASSWORD)",
                    "the [state] url ({}) is not a postgres:// URL; its value is not shown",
                    crate::escape::Shown(&reference.to_string())
                ));
            }
            if let Some(allowed) = &g.allowed_hosts {
                allowed_state_hosts(url, allowed)?;
            }
            return Ok(StateLocation::Postgres {
                url: url.to_string(),
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

/// With an allowed list, the hosts a `[state] url` from the specs connects to must be on it, as
/// providers' must: the reference may name a file the pull request wrote, and the run would
/// send `PGPASSWORD` there. Every host counts (a URL may list several, or name one in its
/// query as `host=`); a Unix socket is this machine's.
fn allowed_state_hosts(url: &str, allowed: &crate::spec::endpoints::AllowedHosts) -> Result<()> {
    let config: tokio_postgres::Config = url.parse().map_err(|_| {
        miette!("the [state] url is not a PostgreSQL URL orgform can read; its value is not shown")
    })?;
    for host in config.get_hosts() {
        if let tokio_postgres::config::Host::Tcp(name) = host {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            // Lists write an IPv6 host as URLs do.
            let name = if name.parse::<std::net::Ipv6Addr>().is_ok() {
                format!("[{name}]")
            } else {
                name
            };
            if !allowed.allows(&name) {
                return Err(miette!(
                    help = "add the database's host to ORGFORM_ALLOWED_HOSTS (or --allowed-hosts) if it is yours",
                    "the [state] url names the host `{}`, which is not on the allowed hosts list; nothing was sent to it",
                    crate::escape::Shown(&name)
                ));
            }
        }
    }
    Ok(())
}

/// Whether no state was ever written at `location`: a file state whose file and journal are
/// both absent. A command that only changes records already there (`forget`, `state mv`) says
/// so before it would take the lock, so that a mistyped address in a fresh folder leaves no
/// lock file or folder behind.
pub(crate) fn never_written(location: &StateLocation) -> bool {
    let StateLocation::File(path) = location else {
        return false;
    };
    let absent = |p: &std::path::Path| {
        std::fs::symlink_metadata(p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    };
    let mut journal = path.as_os_str().to_owned();
    journal.push(".journal");
    absent(path) && absent(std::path::Path::new(&journal))
}

/// Who this run is, for the lock file.
pub(crate) fn lock_request(g: &GlobalArgs) -> LockRequest {
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
pub(crate) async fn open_state_locked(
    location: &StateLocation,
    g: &GlobalArgs,
) -> Result<(Store, State)> {
    let mut store = lock_state(location, g).await?;
    let state = store.load_or_new().await?;
    Ok((store, state))
}

/// Takes the state's lock, and reads the state on a task of its own: what a run that needs
/// both the state and the providers does first, so that the providers are read while the
/// state is (see `connection::read_while_loading`).
pub(crate) async fn lock_and_load(
    location: &StateLocation,
    g: &GlobalArgs,
) -> Result<tokio::task::JoinHandle<Result<(Store, State)>>> {
    let mut store = lock_state(location, g).await?;
    // On a thread of the blocking pool: a state file is read and parsed without a pause, and
    // the runtime's workers stay free for the reads it overlaps.
    let runtime = tokio::runtime::Handle::current();
    Ok(tokio::task::spawn_blocking(move || {
        runtime.block_on(async move {
            let state = store.load_or_new().await?;
            Ok((store, state))
        })
    }))
}

/// Takes the state's lock (waiting as `--lock-timeout` says), without reading the state.
async fn lock_state(location: &StateLocation, g: &GlobalArgs) -> Result<Store> {
    let request = lock_request(g);
    let store = match location {
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
    Ok(store)
}

/// Loads the state without locking it, for a command that shows it: a state file named with
/// `--state` that does not exist is an error (a mistyped path would otherwise show an empty
/// state as if it were the real one).
pub(crate) async fn read_state_asked(location: &StateLocation, g: &GlobalArgs) -> Result<State> {
    if let (Some(_), StateLocation::File(path)) = (&g.state, location)
        && path.symlink_metadata().is_err()
    {
        return Err(miette!(
            help = "check the path; the first apply that records something creates the file",
            "there is no state file at {}",
            path.display()
        ));
    }
    read_state(location, g).await
}

/// Loads the state without locking it, for commands that only read.
pub(crate) async fn read_state(location: &StateLocation, g: &GlobalArgs) -> Result<State> {
    let mut store = match location {
        StateLocation::File(path) => Store::File(FileBackend::open_read_only(path)?),
        StateLocation::Postgres { url, workspace } => Store::Postgres(Box::new(
            PostgresBackend::connect(url, workspace, lock_request(g).info).await?,
        )),
    };
    Ok(store.load_or_new().await?)
}

#[cfg(test)]
mod tests {
    use super::StateLocation;

    /// A URL that does not parse is reported with the parser's error as its cause, a link of
    /// the chain, not pasted into one flat message.
    #[test]
    fn a_bad_state_url_keeps_the_parsers_error_as_its_cause() {
        let Err(report) = StateLocation::parse("postgres://[::1", "default") else {
            panic!("`postgres://[::1` parsed");
        };
        let chain: Vec<String> = report.chain().map(ToString::to_string).collect();
        assert_eq!(
            chain,
            [
                "`postgres://[::1` is not a valid URL",
                "invalid IPv6 address"
            ],
            "{report:?}"
        );
    }
}
