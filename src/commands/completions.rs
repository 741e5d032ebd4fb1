//! `orgform completions SHELL`: the shell completions, generated from the clap structs.

use std::process::ExitCode;

use miette::Result;

pub(crate) fn run(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(
        shell,
        &mut crate::cli::command_for_docs(),
        "orgform",
        &mut out,
    );
    crate::output::data(&String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}
