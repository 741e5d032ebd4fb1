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
use std::sync::Arc;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use super::connection::with_connect_options;
use super::specs::{Destination, load_specs_checked_keeping_files, warn_endpoints};
use super::state_store::{read_state, state_location_before_login};
use crate::cli::{DiscoverArgs, Format, GlobalArgs};
use crate::model::{InstanceName, InstanceReality, NaturalKey, RemoteOrg, RemoteStatus};
use crate::providers::{AnyProvider, ConnectOptions, Provider};
use crate::spec::generate::{addresses, spec_text};
use crate::spec::{SourceFile, Spec, SpecErrors};
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

    // Only what may declare providers, templates or `[state]` is needed to check a generated
    // file alone; the rest of the specs join the check of all files together at the end.
    let shared: Arc<[SourceFile]> = spec_files
        .iter()
        .filter(|f| crate::spec::may_declare_shared(f.text.as_bytes()))
        .cloned()
        .collect();
    let mut taken: BTreeSet<String> = spec.orgs.keys().cloned().collect();
    taken.extend(state.orgs.keys().cloned());
    let mut outcomes = Vec::new();
    let mut files: Vec<NewFile> = Vec::new();
    // Each instance's organizations are sorted out and given addresses as soon as its reading
    // is in (in the instances' order, since an address depends on those given before it),
    // while slower instances are still read (NeonCRM's and Oracle's one read per
    // organization); its file is then written and checked alone on a thread of its own, at the
    // same time as the others'.
    let mut made = |name: &InstanceName, read: Read| {
        let Some(instance) = spec.providers.get(name) else {
            return Ok(());
        };
        let found = read.reality.len();
        let known = Known::on(&spec, &state, name);
        let (mut failed, mut new, mut held) = (0, Vec::new(), Vec::new());
        for org in read.reality.orgs.into_values().flatten() {
            // A create that failed at the provider (a sign-up in `Error`, a rejected request)
            // is no organization: written as a spec, the next plan would create it.
            if matches!(org.status, RemoteStatus::Failed { .. }) {
                failed += 1;
                held.push(org);
            } else if known.holds(&org) {
                held.push(org);
            } else {
                new.push(org);
            }
        }
        // Left for the system to take back when the process ends (see below).
        std::mem::forget(held);
        outcomes.push(Outcome {
            provider: name.clone(),
            provider_type: instance.provider_type.name(),
            found,
            failed,
            known: found - failed - new.len(),
            requests: read.requests,
            file: None,
            addresses: Vec::new(),
            secrets: Vec::new(),
            placeholders: 0,
        });
        if !new.is_empty() {
            let addresses = addresses(&mut new, &mut taken);
            let path = targets[name].clone();
            let (shared, instance, provider_type, shown) = (
                Arc::clone(&shared),
                name.clone(),
                instance.provider_type,
                path.display().to_string(),
            );
            let work = std::thread::spawn(move || {
                let generated = spec_text(&instance, provider_type, &new, &addresses);
                std::mem::forget((new, addresses));
                let source = SourceFile::from_bytes(shown, generated.text.into_bytes())
                    .map_err(|e| SpecErrors::new(vec![*e]))?;
                let names = check_alone(&shared, parts(&source, &generated.starts))?;
                Ok(Made {
                    source,
                    addresses: generated.addresses,
                    secrets: generated.secrets,
                    placeholders: generated.placeholders,
                    names,
                })
            });
            files.push(NewFile {
                path,
                outcome: outcomes.len() - 1,
                work,
            });
        }
        Ok(())
    };
    with_connect_options(g, sandbox, &spec, &location, async |options| {
        read_all(&spec, &instances, options, &mut made).await
    })
    .await?;

    let written = check_generated(&spec_files, &spec, files, &mut outcomes)?;
    write_new_files(&args.out, &written)?;
    report(g.format, &outcomes);
    // The process ends next: freeing what was written, a hundred thousand organizations'
    // worth, one by one would cost more than the writing did, for memory the system takes back
    // at once.
    std::mem::forget((spec, state, spec_files, written));
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
/// each one's requests; each reading is handed to `made` as soon as it and those of every
/// instance before it (in `instances`' order) are in, since a file's addresses depend on those
/// given before it.
async fn read_all(
    spec: &Spec,
    instances: &[InstanceName],
    options: &ConnectOptions,
    made: &mut impl FnMut(&InstanceName, Read) -> Result<()>,
) -> Result<()> {
    let needed = crate::plan::login_secrets(spec, instances.iter().map(String::as_str));
    options.secrets.check_all(&needed)?;
    let mut reads = tokio::task::JoinSet::new();
    let mut order = Vec::new();
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
        order.push(name.clone());
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
    let mut waiting = BTreeMap::new();
    let mut next = order.iter().peekable();
    while let Some(joined) = reads.join_next().await {
        let (name, listed, requests) = joined.into_diagnostic()?;
        let reality = listed
            .into_diagnostic()
            .wrap_err_with(|| format!("listing the organizations of provider `{name}`"))?;
        waiting.insert(name, Read { reality, requests });
        while let Some(read) = next.peek().and_then(|name| waiting.remove(*name)) {
            if let Some(name) = next.next() {
                made(name, read)?;
            }
        }
    }
    Ok(())
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

/// A file discover would write, being written and checked alone on a thread of its own; the
/// outcome (in the report) of its instance.
struct NewFile {
    path: PathBuf,
    outcome: usize,
    work: std::thread::JoinHandle<Result<Made, SpecErrors>>,
}

/// A file discover would write, checked alone: its text, what the report says of it, and the
/// names it declares.
struct Made {
    source: SourceFile,
    addresses: Vec<String>,
    secrets: Vec<String>,
    placeholders: usize,
    names: Vec<Declared>,
}

/// What the check of all files together needs of an organization a generated file declares:
/// the names that must be unique across the specs.
struct Declared {
    address: String,
    instance: InstanceName,
    natural_key: NaturalKey,
}

/// Bytes of generated text checked as one part: a file of twenty thousand organizations is
/// checked in parts at the same time (on every core), not on one thread, as a file's pieces
/// are read one after another.
const PART_BYTES: usize = 1 << 20;

/// `file` (generated, its organizations' tables starting at `starts`) cut into parts of about
/// [`PART_BYTES`], each where an organization's tables start. A part stands for its text as
/// the whole file would: an organization's tables are written together, and no value spans
/// lines; a name in two parts would still be told (declared twice).
fn parts(file: &SourceFile, starts: &[usize]) -> Vec<SourceFile> {
    let mut cuts = vec![0];
    for &start in starts {
        if cuts.last().is_some_and(|&last| start >= last + PART_BYTES) {
            cuts.push(start);
        }
    }
    cuts.push(file.source().len());
    cuts.windows(2).map(|w| file.part(w[0]..w[1])).collect()
}

/// One generated file (in parts) checked alone with the specs' providers, templates and
/// `[state]`: the address, instance and natural key of each organization it declares; or every
/// problem in it, told at its place in the file.
fn check_alone(shared: &[SourceFile], parts: Vec<SourceFile>) -> Result<Vec<Declared>, SpecErrors> {
    let Some(path) = parts.first().map(|part| part.path.clone()) else {
        return Ok(Vec::new());
    };
    let mut texts = shared.to_vec();
    texts.extend(parts);
    let spec = Spec::load(&texts)?;
    let declared = spec
        .orgs
        .values()
        .filter(|org| org.origin.path == path)
        .map(|org| Declared {
            address: org.address.clone(),
            instance: org.instance.clone(),
            natural_key: org.natural_key.clone(),
        })
        .collect();
    // Only the names matter here; the organizations (and the providers again) are left for the
    // system to take back when the process ends, not freed one at a time.
    std::mem::forget((spec, texts));
    Ok(declared)
}

/// Validates the generated files together with the specs, before anything is written: each
/// file checked alone as it was made (the check of an organization needs only the providers,
/// templates and `[state]` it was checked with), then what only the whole folder tells, from
/// the names those checks gave and the specs loaded already: an address declared twice, a
/// natural key shared on one instance. Should either turn up, every file is loaded again from
/// its text, so that the errors are the ones `validate` would show. A file that would not
/// validate (a provider reporting a value its own documents rule out, say) is reported with
/// what is wrong where, rather than left behind.
fn check_generated(
    specs: &[SourceFile],
    spec: &Spec,
    files: Vec<NewFile>,
    outcomes: &mut [Outcome],
) -> Result<Vec<(PathBuf, SourceFile)>> {
    let mut written = Vec::with_capacity(files.len());
    let mut declared = Vec::with_capacity(files.len());
    for file in files {
        let made = file
            .work
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .map_err(not_valid)?;
        if let Some(outcome) = outcomes.get_mut(file.outcome) {
            outcome.file = Some(file.path.display().to_string());
            outcome.addresses = made.addresses;
            outcome.secrets = made.secrets;
            outcome.placeholders = made.placeholders;
        }
        declared.push(made.names);
        written.push((file.path, made.source));
    }
    if !all_unique(spec, &declared) {
        let mut sources = specs.to_vec();
        sources.extend(written.iter().map(|(_, source)| source.clone()));
        let all = Spec::load(&sources);
        std::mem::forget(sources);
        all.map(std::mem::forget).map_err(not_valid)?;
    }
    std::mem::forget(declared);
    Ok(written)
}

/// Whether every address is declared once across the specs and the generated files, and every
/// natural key once on each instance: the checks across files of `Spec::load`, over names.
fn all_unique(spec: &Spec, declared: &[Vec<Declared>]) -> bool {
    let count = spec.orgs.len() + declared.iter().map(Vec::len).sum::<usize>();
    let mut addresses: HashSet<&str> = HashSet::with_capacity(count);
    let mut keys: HashSet<(&str, &NaturalKey)> = HashSet::with_capacity(count);
    let specs = spec.orgs.values().map(|org| {
        (
            org.address.as_str(),
            org.instance.as_str(),
            &org.natural_key,
        )
    });
    let generated = declared
        .iter()
        .flatten()
        .map(|d| (d.address.as_str(), d.instance.as_str(), &d.natural_key));
    specs
        .chain(generated)
        .all(|(address, instance, key)| addresses.insert(address) && keys.insert((instance, key)))
}

fn not_valid(errors: SpecErrors) -> miette::Report {
    miette::Report::new(errors).wrap_err("the specs discover would write do not validate, so nothing was written (the errors point into the files it would have written)")
}

/// Creates each file, refusing one that appeared since the check: written whole to a temporary
/// name, then linked into place, which fails rather than replace anything. The files are
/// written (and synced) at once, each on a thread of its own.
fn write_new_files(out: &Path, files: &[(PathBuf, SourceFile)]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(out)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create the folder {}", out.display()))?;
    let results: Vec<std::io::Result<()>> = std::thread::scope(|scope| {
        let writes: Vec<_> = files
            .iter()
            .map(|(path, source)| scope.spawn(move || write_new_file(path, source.text.as_bytes())))
            .collect();
        writes
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    for ((path, _), written) in files.iter().zip(results) {
        written.into_diagnostic().wrap_err_with(|| {
            format!(
                "cannot write {} (discover never overwrites a file)",
                path.display()
            )
        })?;
    }
    Ok(())
}

fn write_new_file(path: &Path, text: &[u8]) -> std::io::Result<()> {
    let temporary = crate::files::sibling(path, ".discover-tmp");
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(text)?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    written
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

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDERS: &str =
        "[provider.n]\ntype = \"neoncrm\"\norg_id = { env = \"N\" }\napi_key = { env = \"K\" }\n";

    fn org(address: &str, name: &str) -> String {
        format!("[org.{address}]\nprovider = \"n\"\norganization_name = \"{name}\"\n")
    }

    /// The specs (providers and `orgs`) and one generated file of `generated`, checked as
    /// discover checks them before writing.
    fn checked(orgs: &str, generated: &str) -> Result<Vec<(PathBuf, SourceFile)>> {
        let specs = vec![
            SourceFile::new("specs/providers.toml", PROVIDERS),
            SourceFile::new("specs/orgs.toml", orgs.to_string()),
        ];
        let spec = Spec::load(&specs).map_err(miette::Report::new)?;
        let shared: Vec<SourceFile> = specs[..1].to_vec();
        let source = SourceFile::new("found/n.toml", generated.to_string());
        let work = std::thread::spawn(move || {
            let names = check_alone(&shared, vec![source.clone()])?;
            Ok(Made {
                source,
                addresses: Vec::new(),
                secrets: Vec::new(),
                placeholders: 0,
                names,
            })
        });
        let file = NewFile {
            path: PathBuf::from("found/n.toml"),
            outcome: 0,
            work,
        };
        check_generated(&specs, &spec, vec![file], &mut [])
    }

    /// What only all files together tell is found from the names each file's own check gave,
    /// and told as `validate` tells it, pointing into the generated file.
    #[test]
    fn names_shared_with_the_specs_are_told_from_the_text() {
        let ok = checked(&org("a", "Acme"), &org("b", "Beta"));
        assert!(ok.is_ok_and(|written| written.len() == 1));
        for (generated, told) in [
            (org("a", "Other"), "organization `a` is declared twice"),
            (org("b", "Acme"), "have the same natural key `Acme`"),
        ] {
            let Err(report) = checked(&org("a", "Acme"), &generated) else {
                panic!("{generated} is refused");
            };
            let Some(errors) = report.downcast_ref::<SpecErrors>() else {
                panic!("{report:?}");
            };
            assert!(
                errors.errors.iter().any(|e| e.message.contains(told)
                    && (e.path == "found/n.toml" || format!("{e:?}").contains("found/n.toml"))),
                "{report:?}"
            );
        }
    }

    /// A problem in a generated file alone is found by its own check.
    #[test]
    fn a_file_that_does_not_validate_alone_is_refused() {
        let Err(report) = checked("", &org("b", "")) else {
            panic!("an empty name is refused");
        };
        let errors = report.downcast_ref::<SpecErrors>().map(|e| &e.errors);
        assert!(
            errors.is_some_and(|e| e.iter().all(|e| e.path == "found/n.toml" && e.line == 3)),
            "{report:?}"
        );
    }

    /// A file larger than a part is checked in parts, each cut where an organization's tables
    /// start: every organization is found once, and a problem is told at its line in the file.
    #[test]
    fn a_large_file_is_checked_in_parts_told_in_the_whole() {
        let (mut text, mut starts) = ("# found\n".to_string(), Vec::new());
        let mut wrong_line = 0;
        let count = 12_000;
        for i in 0..count {
            text.push('\n');
            starts.push(text.len());
            let name = if i == count - 7 {
                wrong_line = text.lines().count() + 4;
                String::new()
            } else {
                format!("Org {i}")
            };
            text.push_str(&format!(
                "# neoncrm id {i}\n[org.o{i}]\nprovider = \"n\"\norganization_name = \"{name}\"\n\n[org.o{i}.primary_contact]\nfirst_name = \"F\"\nlast_name = \"L\"\n"
            ));
        }
        let shared = [SourceFile::new("specs/providers.toml", PROVIDERS)];
        let file = SourceFile::new("found/n.toml", text.clone());
        let cut = parts(&file, &starts);
        assert!(cut.len() > 1, "{} bytes in one part", text.len());
        let joined: String = cut.iter().map(SourceFile::source).collect();
        assert_eq!(joined, text);
        let Err(errors) = check_alone(&shared, cut) else {
            panic!("an empty name is refused");
        };
        let lines: Vec<(String, usize)> = errors
            .errors
            .iter()
            .map(|e| (e.path.clone(), e.line))
            .collect();
        assert_eq!(lines, vec![("found/n.toml".to_string(), wrong_line)]);
        let valid = text.replace("organization_name = \"\"", "organization_name = \"Fixed\"");
        let file = SourceFile::new("found/n.toml", valid);
        match check_alone(&shared, parts(&file, &starts)) {
            Ok(names) => assert_eq!(names.len(), count),
            Err(errors) => panic!("{errors:?}"),
        }
    }
}
