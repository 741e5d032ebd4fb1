//! `orgform validate`: check the specs, and where they send credentials, without calling any
//! provider.

use std::process::ExitCode;

use miette::Result;

use crate::cli::{Format, GlobalArgs};
use crate::output;
use crate::text::plural;

pub(crate) fn run(g: &GlobalArgs) -> Result<ExitCode> {
    let (spec, warnings) = super::specs::load_specs_checked(g, super::specs::Destination::Specs)?;
    super::specs::warn_endpoints(&warnings);
    match g.format {
        Format::Json => output::data(
            &serde_json::json!({
                "valid": true,
                "providers": spec.providers.len(),
                "organizations": spec.orgs.len(),
            })
            .to_string(),
        ),
        Format::Text | Format::Markdown => output::data(&format!(
            "The specs are valid: {} on {}.",
            plural(spec.orgs.len(), "organization"),
            plural(spec.providers.len(), "provider instance")
        )),
    }
    Ok(ExitCode::SUCCESS)
}
