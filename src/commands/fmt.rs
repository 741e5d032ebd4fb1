//! `orgform fmt`: canonical key order in every spec file, comments kept; `--check` for CI.

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use crate::cli::{FmtArgs, GlobalArgs};
use crate::files::{OldVersion, write_atomically};
use crate::output;
use crate::spec::format::{format, instance_types};

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
    for (path, text) in paths.iter().zip(&texts) {
        let formatted = format(text, &types)
            .map_err(|e| miette!("{e}"))
            .wrap_err_with(|| format!("{} cannot be formatted", path.display()))?;
        if &formatted != text {
            changed.push(path.display().to_string());
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
        for path in &changed {
            output::message(&format!("not in canonical form: {path}"));
        }
        output::message("Run `orgform fmt` to fix them.");
        return Ok(ExitCode::from(1));
    }
    match changed.len() {
        0 => output::message("All specs were in canonical form already."),
        n => output::message(&format!("Formatted {n} of {} spec files.", paths.len())),
    }
    Ok(ExitCode::SUCCESS)
}
