//! `orgform fmt`: canonical key order in every spec file, comments kept; `--check` for CI, with
//! a unified diff of what formatting would change on stdout.

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use crate::cli::{FmtArgs, GlobalArgs};
use crate::escape::ShownPath;
use crate::files::{OldVersion, write_atomically};
use crate::output;
use crate::spec::format::{format, instance_types};
use crate::text::plural;

pub(crate) fn run(g: &GlobalArgs, args: &FmtArgs) -> Result<ExitCode> {
    // As `validate` reads them: regular files within the cap, a link followed only within the
    // folder (one out of it would show another file in the diff or the errors).
    let mut read = super::specs::read_spec_bytes(&g.specs)?;
    let count = read.len();
    // A link within the folder is formatted at its target, once, and stays a link.
    let mut seen = std::collections::HashSet::new();
    read.retain(|(_, real, _)| seen.insert(real.clone()));
    let mut texts = Vec::with_capacity(read.len());
    for (path, real, bytes) in read {
        let text = String::from_utf8(bytes).map_err(|_| {
            miette!(
                "{} is not UTF-8 text; nothing was changed",
                ShownPath(&path)
            )
        })?;
        texts.push((path, real, text));
    }
    let types = instance_types(&texts.iter().map(|(_, _, t)| t.as_str()).collect::<Vec<_>>());
    // Each file formatting changes: where it really is, its name as shown, and its new text.
    let mut changed = Vec::new();
    let mut diffs = String::new();
    for (path, real, text) in &texts {
        let shown = ShownPath(path).to_string();
        let formatted = format(text, &types)
            .map_err(|e| miette!("{e}"))
            .wrap_err_with(|| format!("{shown} cannot be formatted"))?;
        if &formatted != text {
            if args.check {
                diffs.push_str(
                    &similar::TextDiff::from_lines(text.as_str(), formatted.as_str())
                        .unified_diff()
                        .context_radius(3)
                        .header(&shown, &format!("{shown} (formatted)"))
                        .to_string(),
                );
            }
            changed.push((real, shown, formatted));
        }
    }
    if args.check {
        if changed.is_empty() {
            output::message("All specs are in canonical form.");
            return Ok(ExitCode::SUCCESS);
        }
        output::data(&diffs);
        for (_, shown, _) in &changed {
            output::message(&format!("not in canonical form: {shown}"));
        }
        output::message("Run `orgform fmt` to fix them.");
        return Ok(ExitCode::from(1));
    }
    for (real, shown, formatted) in &changed {
        // Written where the file really is: through a link within the folder, its target.
        // Keep the file's permissions: specs are not secret, but the user chose them.
        let mode = std::fs::metadata(real).ok().map(|m| m.permissions());
        write_atomically(real, formatted.as_bytes(), OldVersion::Discard)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write {shown}"))?;
        if let Some(mode) = mode {
            let _ = std::fs::set_permissions(real, mode);
        }
    }
    match changed.len() {
        0 => output::message("All specs were in canonical form already."),
        n => output::message(&format!("Formatted {n} of {}.", plural(count, "spec file"))),
    }
    Ok(ExitCode::SUCCESS)
}
