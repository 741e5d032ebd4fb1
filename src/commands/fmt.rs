//! `orgform fmt`: canonical key order in every spec file, comments kept; `--check` for CI, with
//! a unified diff of what formatting would change on stdout.

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use crate::cli::{FmtArgs, GlobalArgs};
use crate::files::{OldVersion, write_atomically};
use crate::output;
use crate::spec::format::{format, instance_types};
use crate::text::plural;

pub(crate) fn run(g: &GlobalArgs, args: &FmtArgs) -> Result<ExitCode> {
    let paths = super::specs::spec_paths(&g.specs)?;
    let mut texts = Vec::with_capacity(paths.len());
    for path in &paths {
        // As `validate` reads them: a regular file within the cap, never a FIFO or device.
        let bytes = crate::files::read_regular(path, crate::files::SPEC_FILE)?;
        texts.push(
            String::from_utf8(bytes).map_err(|_| {
                miette!("{} is not UTF-8 text; nothing was changed", path.display())
            })?,
        );
    }
    let types = instance_types(&texts.iter().map(String::as_str).collect::<Vec<_>>());
    let mut changed = Vec::new();
    let mut diffs = String::new();
    for (path, text) in paths.iter().zip(&texts) {
        let formatted = format(text, &types)
            .map_err(|e| miette!("{e}"))
            .wrap_err_with(|| format!("{} cannot be formatted", path.display()))?;
        if &formatted != text {
            let shown = path.display().to_string();
            if args.check {
                diffs.push_str(
                    &similar::TextDiff::from_lines(text.as_str(), formatted.as_str())
                        .unified_diff()
                        .context_radius(3)
                        .header(&shown, &format!("{shown} (formatted)"))
                        .to_string(),
                );
            }
            changed.push(shown);
            if !args.check {
                // Keep the file's permissions: specs are not secret, but the user chose them.
                let mode = std::fs::metadata(path).ok().map(|m| m.permissions());
                write_atomically(path, formatted.as_bytes(), OldVersion::Discard)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("cannot write {}", path.display()))?;
                if let Some(mode) = mode {
                    let _ = std::fs::set_permissions(path, mode);
                }
            }
        }
    }
    if args.check {
        if changed.is_empty() {
            output::message("All specs are in canonical form.");
            return Ok(ExitCode::SUCCESS);
        }
        output::data(&diffs);
        for path in &changed {
            output::message(&format!("not in canonical form: {path}"));
        }
        output::message("Run `orgform fmt` to fix them.");
        return Ok(ExitCode::from(1));
    }
    match changed.len() {
        0 => output::message("All specs were in canonical form already."),
        n => output::message(&format!(
            "Formatted {n} of {}.",
            plural(paths.len(), "spec file")
        )),
    }
    Ok(ExitCode::SUCCESS)
}
