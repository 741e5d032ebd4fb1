//! Reading the specs folder at the edge: every `*.toml` under it, each a regular file within
//! the cap, validated together; and, for commands that may reach a provider, where the specs
//! would send credentials, checked before anything else happens.

use std::path::{Path, PathBuf};

use miette::Result;

use crate::cli::GlobalArgs;
use crate::spec::endpoints::{self, EndpointWarning};
use crate::spec::{SourceFile, Spec};

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

/// Reads every `*.toml` under `dir`, in path order, and validates them together. Each is a
/// regular file of at most 32 MiB (a link is followed within `dir` only) and UTF-8 text with no
/// control character TOML forbids; a file that is not is named, and nothing of it is shown.
pub(crate) fn load_specs(dir: &Path) -> Result<Spec> {
    Ok(Spec::load(&read_spec_files(dir)?)?)
}

fn read_spec_files(dir: &Path) -> Result<Vec<SourceFile>> {
    let paths = spec_paths(dir)?;
    let folder = std::fs::canonicalize(dir).map_err(|source| UnreadableSpecsFolder {
        folder: dir.to_path_buf(),
        source,
    })?;
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
    let read = |path: &PathBuf| -> ReadSpec {
        crate::files::read_spec(folder, path)
            .map(|bytes| SourceFile::from_bytes(path.display().to_string(), bytes))
    };
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if threads <= 1 || paths.len() <= 1 {
        return paths.iter().map(read).collect();
    }
    let per_thread = paths.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || chunk.iter().map(read).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
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
    let (spec, warnings, _) = load_specs_checked_keeping_files(g, to)?;
    Ok((spec, warnings))
}

/// `load_specs_checked`, keeping the files read, for a command that validates more text with
/// them (`discover`) without reading the folder twice.
pub(crate) fn load_specs_checked_keeping_files(
    g: &GlobalArgs,
    to: Destination,
) -> Result<(Spec, Vec<EndpointWarning>, Vec<SourceFile>)> {
    let files = read_spec_files(&g.specs)?;
    let spec = Spec::load(&files)?;
    let warnings = match to {
        Destination::Specs => endpoints::check(&files, &spec, g.allowed_hosts.as_ref())?,
        Destination::Sandbox => Vec::new(),
    };
    Ok((spec, warnings, files))
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
