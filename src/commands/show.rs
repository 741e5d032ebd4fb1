//! `orgform show`: print the state.

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};

use crate::cli::{Format, GlobalArgs, SandboxArg};
use crate::output;

pub(crate) async fn run(g: &GlobalArgs, sandbox: &SandboxArg) -> Result<ExitCode> {
    // The specs only matter for a `[state] path`; show works without valid specs.
    let spec = super::specs::load_specs(&g.specs).ok();
    let location = super::state_store::state_location(g, spec.as_ref(), sandbox.enabled)?;
    let state = super::state_store::read_state_asked(&location, g).await?;
    match g.format {
        Format::Json => output::data(&crate::escape::json(
            serde_json::to_string_pretty(&state).into_diagnostic()?,
        )),
        Format::Text => output::data(&output::state_text(&state)),
        Format::Markdown => output::data(&output::state_markdown(&state)),
    }
    Ok(ExitCode::SUCCESS)
}
