//! The command line, as clap structs only: what each command accepts. The commands themselves
//! live in `commands/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::spec::endpoints::{AllowedHosts, AllowedSource};

#[derive(Debug, Parser)]
#[command(
    name = "orgform",
    version,
    about = "Keep SaaS and CRM organizations as code: plan, review, apply",
    long_about = "orgform reads TOML specs of the organizations you want on five SaaS and CRM \
                  providers, compares them with its state and with what exists at each provider, \
                  and creates only what is missing: never a duplicate, never a lost record, never \
                  a leaked secret."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Folder of spec files (every *.toml under it)
    #[arg(long, global = true, default_value = "specs", value_name = "DIR")]
    pub(crate) specs: PathBuf,
    /// State file, or postgres://user@host:port/db (password from PGPASSWORD); default:
    /// [state] in the specs, else state/orgform.state.json
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub(crate) state: Option<String>,
    /// Named workspace in a PostgreSQL state database (default: [state] workspace, else "default")
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) workspace: Option<String>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// How long to wait for the state lock, like 30s or 5m
    #[arg(long, global = true, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub(crate) lock_timeout: Duration,
    /// Give up on a provider request after this long, like 30s
    #[arg(long, global = true, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub(crate) http_timeout: Duration,
    /// More log output (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Log format on stderr: human lines, or JSON objects for CI log collectors
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// The only hosts the specs may send credentials to, comma-separated hosts and *.suffix
    /// patterns; set by CI, outside the specs (unset: other than vendor hosts and loopback warn)
    #[arg(
        long,
        global = true,
        env = "ORGFORM_ALLOWED_HOSTS",
        value_parser = AllowedHosts::parse,
        value_name = "HOSTS"
    )]
    pub(crate) allowed_hosts: Option<AllowedHosts>,
}

/// The global flags each command reads (`-v` and `--log-format` are read by all). A flag not
/// listed for a command is still accepted there, as it always was, so no command line that
/// worked stops working; it is only left out of that command's help, its completions and the
/// man page.
const FLAGS_READ: &[(&str, &[&str])] = &[
    ("validate", &["specs", "format", "allowed_hosts"]),
    (
        "plan",
        &[
            "specs",
            "state",
            "workspace",
            "format",
            "http_timeout",
            "allowed_hosts",
        ],
    ),
    (
        "apply",
        &[
            "specs",
            "state",
            "workspace",
            "format",
            "lock_timeout",
            "http_timeout",
            "allowed_hosts",
        ],
    ),
    ("show", &["specs", "state", "workspace", "format"]),
    (
        "import",
        &[
            "specs",
            "state",
            "workspace",
            "lock_timeout",
            "http_timeout",
            "allowed_hosts",
        ],
    ),
    ("forget", &["specs", "state", "workspace", "lock_timeout"]),
    (
        "refresh",
        &[
            "specs",
            "state",
            "workspace",
            "format",
            "lock_timeout",
            "http_timeout",
            "allowed_hosts",
        ],
    ),
    (
        "discover",
        &[
            "specs",
            "state",
            "workspace",
            "format",
            "http_timeout",
            "allowed_hosts",
        ],
    ),
    ("secrets", &["specs", "format"]),
    ("schema", &[]),
    ("fmt", &["specs"]),
    ("force-unlock", &["specs", "state", "workspace"]),
    ("state list", &["specs", "state", "workspace", "format"]),
    ("state show", &["specs", "state", "workspace", "format"]),
    ("state mv", &["specs", "state", "workspace", "lock_timeout"]),
    (
        "state history",
        &["specs", "state", "workspace", "format", "lock_timeout"],
    ),
    (
        "state migrate",
        &["specs", "state", "workspace", "lock_timeout"],
    ),
    ("sandbox", &[]),
    ("completions", &[]),
    ("man", &[]),
];

/// The flags every command reads.
const FLAGS_EVERYWHERE: &[&str] = &["verbose", "log_format"];

/// The command line as clap parses it, with each command's help showing only the global flags
/// that command reads ([`FLAGS_READ`]). A command gets a hidden copy of every global flag it
/// does not read: clap copies a global flag into a command only where the command has no
/// argument of that id, and hands a value given there up to the top as it does any global's,
/// so the hidden copy parses as before and the command's help leaves it out.
pub fn command() -> clap::Command {
    per_command(|flag, read| (!read).then(|| flag.clone().global(false).hide(true)))
}

/// The command line as the completions and the man page describe it: no flag is global, and
/// each command has its own copy of the global flags it reads (shell completions would offer
/// hidden flags too).
pub fn command_for_docs() -> clap::Command {
    per_command(|flag, read| read.then(|| flag.clone().global(false))).mut_args(|a| {
        if a.is_global_set() {
            a.global(false)
        } else {
            a
        }
    })
}

/// `orgform`'s command with `copy(flag, read)` added to each command for each global flag,
/// `read` saying whether the command reads it.
fn per_command(copy: impl Fn(&clap::Arg, bool) -> Option<clap::Arg>) -> clap::Command {
    use clap::CommandFactory as _;
    let cli = Cli::command();
    let globals: Vec<clap::Arg> = cli
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    with_copies(cli, "", &globals, &copy)
}

/// The commands under `cmd` (named after `prefix`), each given `copy` of the global flags.
fn with_copies(
    cmd: clap::Command,
    prefix: &str,
    globals: &[clap::Arg],
    copy: &dyn Fn(&clap::Arg, bool) -> Option<clap::Arg>,
) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    names.into_iter().fold(cmd, |cmd, name| {
        let path = format!("{prefix}{name}");
        cmd.mut_subcommand(&name, |sub| {
            let sub = with_copies(sub, &format!("{path} "), globals, copy);
            let Some((_, read)) = FLAGS_READ.iter().find(|(command, _)| *command == path) else {
                return sub; // a group (`state`): its commands say what they read
            };
            globals
                .iter()
                .filter_map(|a| {
                    let id = a.get_id().as_str();
                    copy(a, read.contains(&id) || FLAGS_EVERYWHERE.contains(&id))
                })
                .fold(sub, clap::Command::arg)
        })
    })
}

impl Cli {
    /// Parses the command line like `Cli::try_parse`, and notes whether the allowed hosts came
    /// from the environment or the flag, so errors name the right one.
    pub fn parse_noting_sources() -> Result<Cli, clap::Error> {
        use clap::FromArgMatches as _;
        let matches = command().try_get_matches()?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command()))?;
        if let Some(list) = &mut cli.global.allowed_hosts {
            // A global flag may be given after the subcommand: look down the chain too.
            let mut sources = Vec::new();
            let mut level = Some(&matches);
            while let Some(m) = level {
                sources.extend(m.value_source("allowed_hosts"));
                level = m.subcommand().map(|(_, sub)| sub);
            }
            let flag = sources.contains(&clap::parser::ValueSource::CommandLine);
            list.source = if flag {
                AllowedSource::Flag
            } else {
                AllowedSource::Env
            };
        }
        Ok(cli)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check the specs without calling any provider
    ///
    /// Exits 0 when the specs are valid, 1 when they are not (every problem is listed at once,
    /// each with its file, line and column). With --format json, stdout holds one document
    /// either way: {"format_version": 1, "valid": true|false, "providers": N, "organizations":
    /// N (both null when invalid), "diagnostics": [{"file", "line", "column", "code",
    /// "message", "help"}]}; a problem with no place in a file (an unreadable specs folder) has
    /// a null file, line and column. Codes: toml, invalid-name, unknown-table, unknown-key,
    /// unknown-provider-type, unknown-provider, missing-field, wrong-type, invalid-value,
    /// constraint (fields that go together), literal-secret, secret-reference, not-https, host-not-allowed, duplicate,
    /// same-natural-key, not-text, unreadable, invalid (any other).
    Validate,
    /// Show what apply would do
    Plan(PlanArgs),
    /// Create what the plan says, and record it in state
    ///
    /// Makes a plan and shows it (or takes a PLANFILE saved by `orgform plan --out`, which is
    /// the approval), asks for approval unless --auto-approve, then sends the creates, writing
    /// each to state as `pending` before its request leaves and its outcome when known.
    ///
    /// Limits: --max-creates N refuses a plan that creates more than N organizations in all;
    /// `max_creates = N` in a `[provider.NAME]` table of the specs refuses one that creates more
    /// than N on that instance (the rest of the plan included: nothing is created).
    /// `creates_per_day = N` there defers what is over the instance's daily quota to a later
    /// apply instead.
    ///
    /// With --format json, stdout holds one JSON document, printed when the run ends (also when
    /// there is nothing to apply or apply refuses): {"format_version": 1, "plan": the plan as
    /// `orgform plan --format json` prints it, "outcomes": {ADDRESS: {"action", "result":
    /// "created"|"adopted"|"moved"|"pending"|"failed"|"error"|"not_started", "detail"}},
    /// "stopped": null, or why the run stopped early}. Progress and messages go to stderr.
    Apply(ApplyArgs),
    /// Show the state
    Show(SandboxArg),
    /// Record an existing organization in state under an address
    Import(ImportArgs),
    /// Drop addresses from state, leaving the organizations at their providers
    ///
    /// Every address is checked first: if one is not in state, none is dropped and nothing is
    /// written.
    Forget(ForgetArgs),
    /// Settle state against the providers without creating anything
    ///
    /// Adopts what the providers hold under a declared natural key and settles pending creates.
    /// With --format json, one document as `apply --format json` prints it.
    Refresh(RefreshArgs),
    /// Write specs for the organizations at the providers that no spec or state holds
    Discover(DiscoverArgs),
    /// List every secret the specs reference (variable names and file paths, never a value)
    ///
    /// For setting up CI: each reference once, whether this machine can read it, and where it
    /// is used (a provider's credentials, an organization's attribute, the [state] url). With
    /// --format json, one document: {"format_version": 1, "secrets": [{"kind": "env"|"file",
    /// "name", "readable", "used_by": [...]}]}.
    Secrets,
    /// Print the JSON Schema of the spec format, for editors
    Schema,
    /// Rewrite the specs with keys in canonical order, keeping comments
    Fmt(FmtArgs),
    /// Release a state lock whose holder is gone
    ForceUnlock(ForceUnlockArgs),
    /// Inspect or move the state
    #[command(subcommand)]
    State(StateCommand),
    /// Serve emulators of the five provider APIs
    Sandbox(SandboxArgs),
    /// Print shell completions, like `orgform completions bash > /etc/bash_completion.d/orgform`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), like `orgform man > orgform.1`
    Man,
}

#[derive(Debug, Args)]
pub(crate) struct RemoteArgs {
    /// Read what exists at the providers (--refresh=false plans from specs and state alone)
    #[arg(
        long,
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_name = "BOOL"
    )]
    pub(crate) refresh: bool,
    /// Plan and apply only the addresses matching ADDRESS, where `*` matches any run of
    /// characters; repeatable
    #[arg(long = "target", value_name = "ADDRESS")]
    pub(crate) targets: Vec<String>,
    #[command(flatten)]
    pub(crate) sandbox: SandboxArg,
}

/// `--sandbox`, one flag for every command that reaches the providers or the state.
#[derive(Debug, Args)]
pub(crate) struct SandboxArg {
    /// Run against an embedded sandbox instead of the real providers (no account needed); its
    /// data and state are kept under state/sandbox/
    #[arg(id = "sandbox", long = "sandbox")]
    pub(crate) enabled: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
    /// Save the plan to FILE, for `orgform apply FILE`
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
    /// Warn when the plan creates more than N organizations (apply refuses it)
    #[arg(long, value_name = "N")]
    pub(crate) max_creates: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// A plan saved by `orgform plan --out FILE`; applied exactly, or refused if stale
    #[arg(value_name = "PLANFILE")]
    pub(crate) plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
    /// Apply without asking (a saved PLANFILE never asks: it is the approval)
    #[arg(long)]
    pub(crate) auto_approve: bool,
    /// Refuse a plan that creates more than N organizations (see also `max_creates` per provider)
    #[arg(long, value_name = "N")]
    pub(crate) max_creates: Option<u32>,
    /// Apply only if the plan's digest is DIGEST (as every plan format shows it): the plan
    /// reviewed in a pull request, made again after the merge, must say exactly the same
    #[arg(long, value_name = "DIGEST")]
    pub(crate) expect_digest: Option<String>,
    /// How long to wait for an asynchronous create before leaving it pending, like 15m
    #[arg(long, value_parser = parse_duration, default_value = "15m", value_name = "DURATION")]
    pub(crate) settle_timeout: Duration,
    /// How often to poll an asynchronous create, like 10s
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub(crate) poll_interval: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The address of a declared organization
    pub(crate) address: String,
    /// The provider's id for it
    pub(crate) remote_id: String,
    #[command(flatten)]
    pub(crate) sandbox: SandboxArg,
}

#[derive(Debug, Args)]
pub(crate) struct ForgetArgs {
    /// The addresses to drop from state
    #[arg(value_name = "ADDRESS", required = true)]
    pub(crate) addresses: Vec<String>,
    #[command(flatten)]
    pub(crate) sandbox: SandboxArg,
}

/// `orgform state ...`: read the state record by record, rename an address in it, or look at
/// and move the store itself. `list` and `show` read without the lock; `mv` and `migrate` hold
/// it and write a new version.
#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// List the addresses in state, one a line, sorted
    ///
    /// Reads the state without taking its lock. With --format json, one document:
    /// {"format_version": 1, "lineage", "serial", "addresses": [{"address", "provider",
    /// "provider_type", "status", "remote_id" (null until known)}]}, sorted by address.
    List {
        /// Only the addresses matching one of these patterns (`*` matches any run of characters)
        #[arg(value_name = "PATTERN")]
        patterns: Vec<String>,
        #[command(flatten)]
        sandbox: SandboxArg,
    },
    /// Show the record of one address
    ///
    /// Reads the state without taking its lock. Shows the provider instance and type, the
    /// natural key, the status, the remote id, when the create was sent, when the record last
    /// changed, the digest and the declared attributes it was made with (state holds no
    /// secret). With --format json, one document: {"format_version": 1, "lineage", "serial",
    /// "address", "provider", "provider_type", "natural_key", "status", "remote_id",
    /// "create_sent_at", "updated_at", "digest", "error", "detail", "attributes"}; an absent
    /// value is null.
    Show {
        /// The address, as `state list` prints it
        address: String,
        #[command(flatten)]
        sandbox: SandboxArg,
    },
    /// Rename an address in state, keeping its organization
    ///
    /// Takes the state's lock and writes a new version (a state file keeps the one before as
    /// its backup). No provider is asked anything: the organization stays as it is, known
    /// from now on as NEW.
    ///
    /// Refused when OLD is not in state, when NEW already is, and when NEW is not an address
    /// (at most 64 ASCII letters, digits, `_` and `-`, starting with a letter or `_`). Refused
    /// too when the specs declare NEW as another organization (on another provider instance,
    /// or with another natural key): state would then say NEW is an organization the specs
    /// say it is not, and every plan would block NEW until it was forgotten. To rename a
    /// declared organization, rename its [org.OLD] table in the specs and move its record with
    /// `state mv OLD NEW`. A specs folder that fails to load refuses the move; with no specs
    /// folder at all, the move is made unchecked and says so.
    #[command(name = "mv")]
    Move {
        /// The address in state now
        old: String,
        /// The address to record it under
        new: String,
    },
    /// List every kept version of the state (PostgreSQL keeps them all), or prune the oldest
    ///
    /// PostgreSQL keeps every version, each a whole copy of the state: a workspace applied
    /// every day grows without bound. `--prune` (under the workspace's lock) deletes all but
    /// the `--keep` newest versions and says how many bytes it freed; the newest is always
    /// kept, and nothing else is ever deleted on its own.
    History {
        /// Delete the versions older than the --keep newest
        #[arg(long)]
        prune: bool,
        /// How many of the newest versions --prune keeps (at least 1)
        #[arg(long, default_value_t = 100, value_name = "N", requires = "prune",
              value_parser = clap::value_parser!(u64).range(1..))]
        keep: u64,
    },
    /// Move the state to another backend, keeping its lineage
    Migrate {
        /// Where to: a postgres:// URL (password from PGPASSWORD) or a file path
        #[arg(long, value_name = "URL|PATH")]
        to: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct FmtArgs {
    /// Change nothing; exit 1 and show, as a unified diff, what formatting would change (for CI)
    #[arg(long)]
    pub(crate) check: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ForceUnlockArgs {
    /// The lock id, as printed by the run that waited for the lock
    pub(crate) lock_id: String,
    #[command(flatten)]
    pub(crate) sandbox: SandboxArg,
}

#[derive(Debug, Args)]
pub(crate) struct DiscoverArgs {
    /// The folder to write one spec file per provider instance into (`NAME.toml`); an existing
    /// file is never overwritten
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Read only this provider instance (its name in `[provider.NAME]`); repeatable, default all
    #[arg(long = "provider", value_name = "NAME")]
    pub(crate) providers: Vec<String>,
    #[command(flatten)]
    pub(crate) sandbox: SandboxArg,
}

#[derive(Debug, Args)]
pub(crate) struct RefreshArgs {
    #[command(flatten)]
    pub(crate) sandbox: SandboxArg,
}

#[derive(Debug, Args)]
#[command(after_long_help = SANDBOX_HELP)]
pub(crate) struct SandboxArgs {
    /// Address to listen on, like 127.0.0.1:8080 (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub(crate) listen: SocketAddr,
    /// Delay added to every request, in milliseconds
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) latency_ms: u64,
    /// Chance (0 to 1) that a request to a provider path gets an injected fault
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub(crate) fault_rate: f64,
    /// Which faults to inject, comma-separated: 429, 429-retry-after, 500, 503, reset, timeout
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "429,429-retry-after,500,503,reset,timeout",
        value_name = "LIST"
    )]
    pub(crate) faults: Vec<String>,
    /// How long a `timeout` fault holds its answer, in milliseconds
    #[arg(long, default_value_t = 30_000, value_name = "N")]
    pub(crate) timeout_hang_ms: u64,
    /// Keep the emulators' data in FILE, so that it survives restarts
    #[arg(long, value_name = "FILE")]
    pub(crate) data: Option<PathBuf>,
    /// Seed for fault picks and ids, for reproducible runs
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
    /// Heron's rate limit: requests per minute per API key (0 for none)
    #[arg(long, default_value_t = 600, value_name = "N")]
    pub(crate) heron_rate_limit: u32,
    /// Salesforce's daily sign-up limit: sign-ups per rolling 24 hours, as Trialforce documents
    /// 20 (0 for none, for a benchmark); one over it is refused with LIMIT_EXCEEDED
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub(crate) salesforce_signups_per_day: u32,
    /// Oracle Commerce: decide each organization request on its own DURATION after it is made,
    /// like 2s (approved; named *reject*: rejected). Without it a request stays in review until
    /// an administrator calls POST /ccadmin/v1/organizationRequests/{id}/approve (or /reject)
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) occ_auto_approve: Option<Duration>,
    /// Salesforce's REST API requests per UTC day before 403 REQUEST_LIMIT_EXCEEDED (0 for none)
    #[arg(long, default_value_t = 15_000, value_name = "N")]
    pub(crate) salesforce_api_requests_per_day: u32,
    /// How long a Salesforce sign-up takes to settle (In Progress, then Success or Error)
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) salesforce_signup_settle: Duration,
    /// How long a login lasts unused at every emulator (NeonCRM 10m, Commvault 30m, Salesforce
    /// 2h; Oracle's 5m token from its issue) instead of each vendor's own
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) session_idle: Option<Duration>,
    /// Most accounts a NeonCRM listAccounts page holds, as documented 200 (0 for no cap)
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub(crate) neoncrm_max_page_size: usize,
    /// Most items an Oracle Commerce list page holds, as documented 250 (0 for no cap)
    #[arg(long, default_value_t = 250, value_name = "N")]
    pub(crate) occ_max_limit: u64,
    /// Largest request body any emulator reads, in bytes (0 for no limit)
    #[arg(long, default_value_t = 2 * 1024 * 1024, value_name = "N")]
    pub(crate) max_body_bytes: usize,
}

const SANDBOX_HELP: &str = "\
The base_url each provider type needs, with the sandbox listening on 127.0.0.1:8080 (plain
http is allowed to loopback only; the line `listening on URL` on stdout gives the address):
  commvault_salesforce base_url = \"http://127.0.0.1:8080/commandcenter/api\"
  heron            base_url = \"http://127.0.0.1:8080\"
  neoncrm          base_url = \"http://127.0.0.1:8080/neonws/services/api\"
  oracle_commerce  base_url = \"http://127.0.0.1:8080\" (and store_url, if set, the same)
  salesforce_signup base_url = \"http://127.0.0.1:8080\"
`orgform plan --sandbox` (and apply, refresh...) starts a sandbox of its own instead, and needs
none of this: it keeps each base_url's path and sends it to that sandbox.

Faults (--fault-rate P picks one of --faults for that share of provider requests):
  429              Too Many Requests, no Retry-After; nothing done
  429-retry-after  Too Many Requests with Retry-After: 1; nothing done
  500, 503         server error; nothing done
  reset            the connection drops before a full answer; nothing done
  timeout          the work IS done (a create is committed), then the answer is held back
                   for --timeout-hang-ms, so the client times out not knowing

Credentials the emulators accept:
  commvault_salesforce username sandbox-admin, password sandbox-password (POST /Login)
  heron            x-api-key: sandbox-heron-key
  neoncrm          login.orgid=sandbox-neon-org, login.apiKey=sandbox-neon-api-key
  oracle_commerce  app_key sandbox-occ-app-key (requests wait in review for an administrator's
                   POST /ccadmin/v1/organizationRequests/{id}/approve or /reject, unless
                   --occ-auto-approve DURATION decides them: named *reject*: rejected)
  salesforce_signup username tmo@sandbox.example, password sandbox-sf-password, client_id
                   sandbox-sf-client-id, client_secret sandbox-sf-client-secret (JWT: any RS256 key)

Limits, each liftable for a benchmark (`orgform sandbox --help` names their defaults):
  heron            --heron-rate-limit 0 (600 requests a minute per key)
  salesforce_signup --salesforce-signups-per-day 0, --salesforce-api-requests-per-day 0,
                   --salesforce-signup-settle 0s
  oracle_commerce  --occ-auto-approve 0s (requests wait for an administrator), --occ-max-limit 0
  neoncrm          --neoncrm-max-page-size 0
  every emulator   --session-idle 24h (logins lapse unused), --max-body-bytes 0

GET /_sandbox/stats reports requests per provider and endpoint, faults injected, the
organizations each emulator holds and the sandbox process's CPU time (cpu_ms).";

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 30s or 5m: {e}"))
}
