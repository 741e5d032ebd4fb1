//! Reading the specs folder at the edge: every `*.toml` under it, each a regular file within
//! the cap, validated together; and, for commands that may reach a provider, where the specs
//! would send credentials, checked before anything else happens.
//!
//! A file that declares organizations only and is unchanged since a run that validated it (same
//! bytes, same provider and template files) is read back from the spec cache
//! ([`super::spec_cache`]) instead of parsed; the checks across files run over all of them.

use std::path::{Path, PathBuf};

use miette::Result;

use super::spec_cache::{self, SpecCache};
use crate::cli::GlobalArgs;
use crate::spec::endpoints::{self, EndpointWarning};
use crate::spec::{Input, NotLoaded, SourceFile, Spec, SpecError};

/// Every `*.toml` under `dir`, in path order.
pub(crate) fn spec_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    collect_toml(dir, &mut paths).map_err(|source| UnreadableSpecsFolder {
        folder: dir.to_path_buf(),
        source,
    })?;
    paths.sort();
    Ok(paths)
}

/// Every `*.toml` under `dir`, in path order, each with its bytes, read as the spec loader
/// reads them (a regular file within the cap, a link followed within `dir` only), and where
/// that file really is: the link's target inside the folder, or the path itself. For `fmt`,
/// which rewrites them: a link out of the folder is refused before anything of any file is
/// shown.
pub(crate) fn read_spec_bytes(dir: &Path) -> Result<Vec<(PathBuf, PathBuf, Vec<u8>)>> {
    let paths = spec_paths(dir)?;
    let folder = canonical_folder(dir)?;
    let mut read = Vec::with_capacity(paths.len());
    let mut refused = Vec::new();
    for path in paths {
        match crate::files::read_spec(&folder, &path) {
            Ok(bytes) => {
                let is_link =
                    std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
                // `read_spec` checked the target is inside the folder.
                let real = if is_link {
                    std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone())
                } else {
                    path.clone()
                };
                read.push((path, real, bytes));
            }
            Err(e) => refused.push(e),
        }
    }
    if !refused.is_empty() {
        return Err(UnreadableSpecFiles { errors: refused }.into());
    }
    Ok(read)
}

/// Reads every `*.toml` under `dir`, in path order, and validates them together. Each is a
/// regular file of at most 32 MiB (a link is followed within `dir` only) and UTF-8 text with no
/// control character TOML forbids; a file that is not is named, and nothing of it is shown.
pub(crate) fn load_specs(dir: &Path) -> Result<Spec> {
    Ok(load_through_cache(dir)?.0)
}

/// Loads the specs folder `dir` with the spec cache, when there is one: the spec, and the files
/// read as text (every file that may declare a provider among them, for messages that quote
/// one).
fn load_through_cache(dir: &Path) -> Result<(Spec, Vec<SourceFile>)> {
    let paths = spec_paths(dir)?;
    let folder = canonical_folder(dir)?;
    let Some(cache) = SpecCache::open(&folder) else {
        let files = read_spec_files(dir)?;
        return Ok((Spec::load(&files)?, files));
    };
    // Each file read, and hashed with its path in the folder.
    let read = crate::parallel::each_owned(paths, |path| {
        let bytes = crate::files::read_spec(&folder, &path)?;
        let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
        let content = spec_cache::content_hash(&relative, &bytes);
        let shared = crate::spec::may_declare_shared(&bytes);
        Ok::<_, crate::files::FileError>(Unchecked {
            shown: path.display().to_string().into(),
            relative,
            bytes,
            content,
            shared,
        })
    });
    let mut files = Vec::with_capacity(read.len());
    let mut refused = Vec::new();
    for file in read {
        match file {
            Ok(file) => files.push(file),
            Err(e) => refused.push(e),
        }
    }
    if !refused.is_empty() {
        return Err(UnreadableSpecFiles { errors: refused }.into());
    }
    let shared = spec_cache::shared_hash(files.iter().filter(|f| f.shared).map(|f| &f.content));
    let relatives: Vec<PathBuf> = files.iter().map(|f| f.relative.clone()).collect();
    // Each file a hit (what validation made of it before) or text, with the key it may be
    // kept under (none for a file that may declare what others depend on).
    let judged =
        crate::parallel::each_owned(files, |file| -> std::result::Result<_, Box<SpecError>> {
            let key = (!file.shared).then(|| cache.key(&shared, &file.content));
            if let Some(key) = &key
                && let Some(entry) = cache.get(&file.relative, key)
                && let Some(checked) =
                    crate::spec::checked::decode(file.shown.clone(), entry.payload())
            {
                return Ok((Input::Checked(checked), None));
            }
            let text = SourceFile::from_bytes(file.shown, file.bytes)?;
            Ok((Input::Text(text), key.map(|key| (file.relative, key))))
        });
    let mut not_text = Vec::new();
    let mut given = Vec::with_capacity(judged.len());
    let mut texts = Vec::new();
    // For each text input, in order: where and under which key it may be kept.
    let mut keys = Vec::new();
    for judged in judged {
        match judged {
            Ok((input, key)) => {
                if let Input::Text(file) = &input {
                    texts.push(file.clone());
                    keys.push(key);
                }
                given.push(input);
            }
            Err(e) => not_text.push(*e),
        }
    }
    if !not_text.is_empty() {
        return Err(crate::spec::SpecErrors::new(not_text).into());
    }
    let read_back = given.len() - texts.len();
    let loaded = match Spec::load_inputs(given, true) {
        Ok(loaded) => loaded,
        Err(NotLoaded::Problems(errors)) => return Err(errors.into()),
        // A problem is told from every file's text, as a run without the cache reads them.
        Err(NotLoaded::NeedsText) => {
            let files = read_spec_files(dir)?;
            return Ok((Spec::load(&files)?, files));
        }
    };
    let writes: Vec<_> = keys
        .into_iter()
        .zip(loaded.checked)
        .filter_map(|(key, payload)| Some((key?, payload?)))
        .collect();
    tracing::debug!(
        "spec cache: {read_back} of {} files read back, {} kept",
        relatives.len(),
        writes.len()
    );
    let kept_any = !writes.is_empty();
    crate::parallel::each_owned(writes, |((relative, key), payload)| {
        cache.put(&relative, &key, &payload);
    });
    cache.prune(relatives.iter().map(PathBuf::as_path), kept_any);
    Ok((loaded.spec, texts))
}

/// A spec file read, not yet judged as text.
struct Unchecked {
    /// Its path as the user would write it: what messages and origins name.
    shown: std::sync::Arc<str>,
    /// Its path in the specs folder: part of its key, and what names its entry.
    relative: PathBuf,
    bytes: Vec<u8>,
    content: spec_cache::Hash,
    /// Whether it may declare providers, templates or `[state]`: never kept, and part of every
    /// other file's key.
    shared: bool,
}

fn read_spec_files(dir: &Path) -> Result<Vec<SourceFile>> {
    let paths = spec_paths(dir)?;
    let folder = canonical_folder(dir)?;
    let mut files = Vec::with_capacity(paths.len());
    let mut refused = Vec::new();
    let mut not_text = Vec::new();
    for read in read_in_parallel(&folder, &paths) {
        match read {
            Ok(Ok(file)) => files.push(file),
            Ok(Err(e)) => not_text.push(*e),
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

/// One spec file read: refused (not a regular file within the folder, unreadable), or its
/// bytes judged as text.
type ReadSpec = std::result::Result<
    std::result::Result<SourceFile, Box<crate::spec::SpecError>>,
    crate::files::FileError,
>;

/// Reads and checks `paths` on every core, results in path order: a hundred thousand
/// organizations are 65 MB of text, whose reading and byte scans (UTF-8, control characters,
/// line starts) took a quarter of a plan's time on one core while the other waited.
fn read_in_parallel(folder: &Path, paths: &[PathBuf]) -> Vec<ReadSpec> {
    crate::parallel::each_owned(paths.iter().collect(), |path| {
        crate::files::read_spec(folder, path)
            .map(|bytes| SourceFile::from_bytes(path.display().to_string(), bytes))
    })
}

/// Where a run sends requests: the hosts the specs name, or the embedded sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    Specs,
    /// `--sandbox`: every request goes to the sandbox on loopback, with the sandbox's own
    /// credentials, so the specs' hosts receive nothing and are not checked.
    Sandbox,
}

impl Destination {
    /// Where a command with `--sandbox` set to `sandbox` sends requests.
    pub(crate) fn of(sandbox: bool) -> Destination {
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
pub(crate) fn load_specs_checked(
    g: &GlobalArgs,
    to: Destination,
) -> Result<(Spec, Vec<EndpointWarning>)> {
    let (spec, files) = load_through_cache(&g.specs)?;
    let warnings = check_endpoints(g, to, &files, &spec)?;
    Ok((spec, warnings))
}

/// `load_specs_checked`, keeping the text of every file, for a command that validates more text
/// with them (`discover`) without reading the folder twice; so without the spec cache.
pub(crate) fn load_specs_checked_keeping_files(
    g: &GlobalArgs,
    to: Destination,
) -> Result<(Spec, Vec<EndpointWarning>, Vec<SourceFile>)> {
    let files = read_spec_files(&g.specs)?;
    let spec = Spec::load(&files)?;
    let warnings = check_endpoints(g, to, &files, &spec)?;
    Ok((spec, warnings, files))
}

/// Where the specs would send credentials, judged; `files` hold (at least) every file that
/// declares a provider, for a refusal to quote.
fn check_endpoints(
    g: &GlobalArgs,
    to: Destination,
    files: &[SourceFile],
    spec: &Spec,
) -> Result<Vec<EndpointWarning>> {
    Ok(match to {
        Destination::Specs => endpoints::check(files, spec, g.allowed_hosts.as_ref())?,
        Destination::Sandbox => Vec::new(),
    })
}

/// Shows endpoint warnings on stderr, for commands that print no plan.
pub(crate) fn warn_endpoints(warnings: &[EndpointWarning]) {
    for warning in warnings {
        crate::output::message(&format!("Warning: {warning}."));
    }
}

/// The specs folder could not be listed: missing, not a folder, or not readable.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot read the specs folder {}", .folder.display())]
#[diagnostic(help("pass --specs DIR to point at your specs"))]
struct UnreadableSpecsFolder {
    folder: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Spec files that could not be read at all, every one of them named.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{} cannot be read", crate::text::plural(.errors.len(), "spec file"))]
struct UnreadableSpecFiles {
    #[related]
    errors: Vec<crate::files::FileError>,
}

/// The specs folder as links resolve it: what a spec link must stay inside.
fn canonical_folder(dir: &Path) -> Result<PathBuf> {
    Ok(
        std::fs::canonicalize(dir).map_err(|source| UnreadableSpecsFolder {
            folder: dir.to_path_buf(),
            source,
        })?,
    )
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
