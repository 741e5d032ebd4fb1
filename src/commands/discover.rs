//! `orgform discover --out DIR`: reads every organization at each provider instance (the same
//! bounded reads as `plan`: login and list pages, and one read per organization only where a
//! provider's list leaves declarable fields out), leaves out those a spec declares or state
//! holds, and writes one spec file per instance for the rest, which the next plan adopts.
//!
//! It writes no state, and never overwrites a file: every file it would write is checked before
//! any request is sent, and each is created only if it does not exist. What it writes is
//! validated together with the specs before anything is written.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use super::connection::with_connect_options;
use super::specs::{Destination, load_specs_checked_keeping_files, warn_endpoints};
use super::state_store::{read_state, state_location_before_login};
use crate::cli::{DiscoverArgs, Format, GlobalArgs};
use crate::model::{InstanceName, InstanceReality, NaturalKey, RemoteOrg, RemoteStatus};
use crate::providers::{AnyProvider, ConnectOptions, Provider};
use crate::spec::generate::{Generated, spec_file};
use crate::spec::{SourceFile, Spec};
use crate::state::State;
use crate::text::plural;

/// What was read from one instance, and what it cost.
struct Read {
    reality: InstanceReality,
    requests: u64,
}

/// One instance's outcome, as reported.
#[derive(serde::Serialize)]
struct Outcome {
    provider: InstanceName,
    #[serde(rename = "type")]
    provider_type: &'static str,
    /// Organizations the provider reported.
    found: usize,
    /// Of those, creates that failed at the provider: no organization, and not written.
    failed: usize,
    /// Of the rest, those already declared in the specs or held in state.
    known: usize,
    /// Requests sent to read them (login included).
    requests: u64,
    /// The file written, when there was anything to write.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    addresses: Vec<String>,
    /// Secret references written: variables to set before such an organization is ever created.
    secrets: Vec<String>,
    /// Keys written as placeholders: required, and reported by no documented read.
    placeholders: usize,
}

pub(crate) async fn run(g: &GlobalArgs, args: &DiscoverArgs) -> Result<ExitCode> {
    let sandbox = &args.sandbox;
    let (spec, warnings, spec_files) =
        load_specs_checked_keeping_files(g, Destination::of(sandbox.enabled))?;
    warn_endpoints(&warnings);
    let instances = chosen_instances(&spec, &args.providers)?;
    let location = state_location_before_login(
        g,
        &spec,
        sandbox.enabled,
        instances.iter().map(String::as_str),
    )?;
    let state = read_state(&location, g).await?;
    let targets = files_to_write(&args.out, &instances)?;

    let reads = with_connect_options(g, sandbox, &spec, &location, async |options| {
        read_all(&spec, &instances, options).await
    })
    .await?;

    let mut taken: BTreeSet<String> = spec.orgs.keys().cloned().collect();
    taken.extend(state.orgs.keys().cloned());
    let mut outcomes = Vec::new();
    let mut files: Vec<(PathBuf, Generated)> = Vec::new();
    // Each instance's reading is freed once its file is made: the check that follows holds
    // every file's text and what it parses to.
    for (name, read) in reads {
        let name = &name;
        let Some(instance) = spec.providers.get(name) else {
            continue;
        };
        let all: Vec<&RemoteOrg> = read.reality.orgs.values().flatten().collect();
        // A create that failed at the provider (a sign-up in `Error`, a rejected request) is
        // no organization: written as a spec, the next plan would create it.
        let failed = all
            .iter()
            .filter(|org| matches!(org.status, RemoteStatus::Failed { .. }))
            .count();
        let known = Known::on(&spec, &state, name);
        let new: Vec<&RemoteOrg> = all
            .iter()
            .copied()
            .filter(|org| !matches!(org.status, RemoteStatus::Failed { .. }))
            .filter(|org| !known.holds(org))
            .collect();
        let mut outcome = Outcome {
            provider: name.clone(),
            provider_type: instance.provider_type.name(),
            found: all.len(),
            failed,
            known: all.len() - failed - new.len(),
            requests: read.requests,
            file: None,
            addresses: Vec::new(),
            secrets: Vec::new(),
            placeholders: 0,
        };
        if !new.is_empty() {
            let generated = spec_file(name, instance.provider_type, &new, &mut taken);
            let path = targets[name].clone();
            outcome.file = Some(path.display().to_string());
            outcome.addresses.clone_from(&generated.addresses);
            outcome.secrets.clone_from(&generated.secrets);
            outcome.placeholders = generated.placeholders;
            files.push((path, generated));
        }
        outcomes.push(outcome);
    }

    check_generated(&spec_files, &files)?;
    write_new_files(&args.out, &files)?;
    report(g.format, &outcomes);
    // The process ends next: freeing what was written, a hundred thousand organizations'
    // worth, one by one would cost more than the writing did, for memory the system takes back
    // at once.
    std::mem::forget((spec, state, spec_files, files));
    Ok(ExitCode::SUCCESS)
}

/// The instances to read: those named with `--provider`, or every one the specs declare.
fn chosen_instances(spec: &Spec, named: &[String]) -> Result<Vec<InstanceName>> {
    if named.is_empty() {
        return Ok(spec.providers.keys().cloned().collect());
    }
    let unknown: Vec<&String> = named
        .iter()
        .filter(|n| !spec.providers.contains_key(n.as_str()))
        .collect();
    if !unknown.is_empty() {
        let declared: Vec<String> = spec.providers.keys().map(|k| format!("`{k}`")).collect();
        return Err(miette!(
            help = format!("the specs declare {}", declared.join(", ")),
            "no provider instance named {}",
            unknown
                .iter()
                .map(|n| format!("`{}`", crate::escape::Shown(n)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut chosen: Vec<InstanceName> = named.to_vec();
    chosen.sort();
    chosen.dedup();
    Ok(chosen)
}

/// The file each instance's organizations go to, `DIR/NAME.toml`; refused, before anything is
/// read, if any of them exists already (or `DIR` is not a folder).
fn files_to_write(
    out: &Path,
    instances: &[InstanceName],
) -> Result<BTreeMap<InstanceName, PathBuf>> {
    if out.exists() && !out.is_dir() {
        return Err(miette!(
            help = "--out names a folder to write spec files into",
            "{} is not a folder",
            out.display()
        ));
    }
    let targets: BTreeMap<InstanceName, PathBuf> = instances
        .iter()
        .map(|name| (name.clone(), out.join(format!("{name}.toml"))))
        .collect();
    let existing: Vec<String> = targets
        .values()
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(miette!(
            help = "discover never overwrites a file: choose an empty folder with --out, or move these away",
            "{} {} already: {}",
            plural(existing.len(), "file"),
            if existing.len() == 1 {
                "exists"
            } else {
                "exist"
            },
            existing.join(", ")
        ));
    }
    Ok(targets)
}

/// Logs in to each instance and lists everything it holds, all instances at once, counting
/// each one's requests.
async fn read_all(
    spec: &Spec,
    instances: &[InstanceName],
    options: &ConnectOptions,
) -> Result<BTreeMap<InstanceName, Read>> {
    let needed = crate::plan::login_secrets(spec, instances.iter().map(String::as_str));
    options.secrets.check_all(&needed)?;
    let mut reads = tokio::task::JoinSet::new();
    for name in instances {
        let Some(instance) = spec.providers.get(name) else {
            continue;
        };
        // A counter of its own, so each instance's requests are told apart.
        let mut own = options.clone();
        own.http.requests = crate::providers::http::RequestCount::default();
        let provider = AnyProvider::connect(instance, &own)
            .into_diagnostic()
            .wrap_err_with(|| format!("provider `{name}` ({})", instance.origin))?;
        let name = name.clone();
        reads.spawn(async move {
            let listed = async {
                provider.login().await?;
                provider.list_all().await
            }
            .await;
            (name, listed, own.http.requests.get())
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = reads.join_next().await {
        let (name, listed, requests) = joined.into_diagnostic()?;
        let reality = listed
            .into_diagnostic()
            .wrap_err_with(|| format!("listing the organizations of provider `{name}`"))?;
        out.insert(name, Read { reality, requests });
    }
    Ok(out)
}

/// What the specs and state already hold on one instance, gathered once so that each
/// organization found is a set look-up (a hundred thousand found against a hundred thousand
/// declared). Held means: declared or recorded on this instance with the same natural key, or
/// recorded through any instance of the same type at the same `base_url` (the same site) by its
/// id, as a record's remote id or a fact it kept (an Oracle request keeps the id of the
/// organization its approval made, which the direct-mode instance lists).
struct Known<'a> {
    keys: HashSet<&'a NaturalKey>,
    ids: HashSet<&'a str>,
}

impl<'a> Known<'a> {
    fn on(spec: &'a Spec, state: &'a State, instance: &str) -> Known<'a> {
        let site = spec
            .providers
            .get(instance)
            .map(|p| (p.provider_type, p.base_url.as_str()));
        let same_site = |other: &str| {
            other == instance
                || spec
                    .providers
                    .get(other)
                    .is_some_and(|p| Some((p.provider_type, p.base_url.as_str())) == site)
        };
        let mut keys: HashSet<&NaturalKey> = spec
            .orgs
            .values()
            .filter(|o| o.instance == instance)
            .map(|o| &o.natural_key)
            .collect();
        let mut ids = HashSet::new();
        for record in state.orgs.values() {
            if record.provider == instance {
                keys.insert(&record.natural_key);
            }
            if same_site(&record.provider) {
                ids.extend(record.remote_id.as_deref());
                ids.extend(record.detail.values().map(String::as_str));
            }
        }
        Known { keys, ids }
    }

    fn holds(&self, org: &RemoteOrg) -> bool {
        self.keys.contains(&org.natural_key) || self.ids.contains(org.remote_id.as_str())
    }
}

/// Validates the generated files together with the specs, before anything is written: a file
/// that would not validate (a provider reporting a value its own documents rule out, say) is
/// reported with what is wrong where, rather than left behind.
fn check_generated(specs: &[SourceFile], files: &[(PathBuf, Generated)]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let mut sources = specs.to_vec();
    for (path, generated) in files {
        sources.push(
            SourceFile::from_bytes(
                path.display().to_string(),
                generated.text.clone().into_bytes(),
            )
            .map_err(|e| crate::spec::SpecErrors::new(vec![*e]))?,
        );
    }
    let checked = Spec::load(&sources);
    // Only whether they validate matters; what they parse to (as large as the specs) is left
    // for the system to take back when the process ends, not freed one table at a time.
    std::mem::forget(sources);
    checked
        .map(std::mem::forget)
        .map_err(miette::Report::new)
        .wrap_err("the specs discover would write do not validate, so nothing was written (the errors point into the files it would have written)")
}

/// Creates each file, refusing one that appeared since the check: written whole to a temporary
/// name, then linked into place, which fails rather than replace anything.
fn write_new_files(out: &Path, files: &[(PathBuf, Generated)]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(out)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create the folder {}", out.display()))?;
    for (path, generated) in files {
        let temporary = crate::files::sibling(path, ".discover-tmp");
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temporary)?;
            file.write_all(generated.text.as_bytes())?;
            file.sync_all()?;
            std::fs::hard_link(&temporary, path)
        })();
        let _ = std::fs::remove_file(&temporary);
        written.into_diagnostic().wrap_err_with(|| {
            format!(
                "cannot write {} (discover never overwrites a file)",
                path.display()
            )
        })?;
    }
    Ok(())
}

fn report(format: Format, outcomes: &[Outcome]) {
    if format == Format::Json {
        let document = serde_json::json!({ "format_version": 1, "providers": outcomes });
        crate::output::data(&serde_json::to_string_pretty(&document).unwrap_or_default());
        return;
    }
    let mut written = 0;
    for o in outcomes {
        let failed = if o.failed > 0 {
            format!(", {} failed at the provider (left out)", o.failed)
        } else {
            String::new()
        };
        let mut line = format!(
            "provider `{}` ({}): found {}{failed}, {} declared or in state, in {}",
            o.provider,
            o.provider_type,
            o.found,
            o.known,
            plural(usize::try_from(o.requests).unwrap_or(usize::MAX), "request")
        );
        match &o.file {
            Some(file) => {
                written += o.addresses.len();
                line.push_str(&format!(
                    "; wrote {} to {file}",
                    plural(o.addresses.len(), "organization")
                ));
                let mut marked = Vec::new();
                if !o.secrets.is_empty() {
                    marked.push(format!(
                        "{} by reference",
                        plural(o.secrets.len(), "secret")
                    ));
                }
                if o.placeholders > 0 {
                    marked.push(format!(
                        "{} for keys no read returns",
                        plural(o.placeholders, "placeholder")
                    ));
                }
                if !marked.is_empty() {
                    line.push_str(&format!(" ({})", marked.join(", ")));
                }
            }
            None => line.push_str("; nothing new"),
        }
        crate::output::message(&crate::escape::controls(&line));
    }
    crate::output::message(&if written == 0 {
        "Nothing to write: every organization found is declared or in state.".to_string()
    } else {
        format!(
            "Wrote {}. Review them, keep them in the specs folder, and run `orgform plan`: it adopts each one.",
            plural(written, "organization")
        )
    });
}
