//! `orgform man`: the man page (roff), generated from the clap structs.

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};

use crate::cli::Cli;

pub(crate) fn run() -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
        .render(&mut out)
        .into_diagnostic()?;
    crate::output::data(&String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}
