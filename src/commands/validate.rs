//! `orgform validate`: check the specs, and where they send credentials, without calling any
//! provider. With `--format json`, one document on stdout whether the specs are valid or not.

use std::process::ExitCode;

use miette::Result;

use crate::cli::{Format, GlobalArgs};
use crate::output;
use crate::spec::SpecErrors;
use crate::text::plural;

/// The version of the JSON document, raised when a field changes meaning or goes away.
const FORMAT_VERSION: u32 = 1;

pub(crate) fn run(g: &GlobalArgs) -> Result<ExitCode> {
    let loaded = super::specs::load_specs_checked(g, super::specs::Destination::Specs);
    let (spec, warnings) = match loaded {
        Ok(loaded) => loaded,
        Err(report) if g.format == Format::Json => {
            output::data(&invalid_json(&report));
            // The same problems for people, on stderr, as without --format json.
            output::error(&report);
            return Ok(ExitCode::from(1));
        }
        Err(report) => return Err(report),
    };
    super::specs::warn_endpoints(&warnings);
    match g.format {
        Format::Json => output::data(&pretty(&serde_json::json!({
            "format_version": FORMAT_VERSION,
            "valid": true,
            "providers": spec.providers.len(),
            "organizations": spec.orgs.len(),
            "diagnostics": [],
        }))),
        Format::Text | Format::Markdown => output::data(&format!(
            "The specs are valid: {} on {}.",
            plural(spec.orgs.len(), "organization"),
            plural(spec.providers.len(), "provider instance")
        )),
    }
    Ok(ExitCode::SUCCESS)
}

/// The document for specs that did not load: each spec problem with its place, or, for a
/// failure with no place in a file (a folder or file that can't be read), each problem it
/// lists (or itself) with a null place.
fn invalid_json(report: &miette::Report) -> String {
    let diagnostics: Vec<serde_json::Value> = match report.downcast_ref::<SpecErrors>() {
        Some(errors) => errors.errors.iter().map(|e| e.to_json()).collect(),
        None => {
            let related: Vec<serde_json::Value> = report
                .related()
                .into_iter()
                .flatten()
                .map(|d| unplaced(&d.to_string(), d.help().map(|h| h.to_string())))
                .collect();
            if related.is_empty() {
                let chain: Vec<String> = report.chain().map(ToString::to_string).collect();
                vec![unplaced(
                    &chain.join(": "),
                    report.help().map(|h| h.to_string()),
                )]
            } else {
                related
            }
        }
    };
    let more = report.downcast_ref::<SpecErrors>().map_or(0, |e| e.more);
    pretty(&serde_json::json!({
        "format_version": FORMAT_VERSION,
        "valid": false,
        "providers": null,
        "organizations": null,
        "diagnostics": diagnostics,
        // Problems past the first hundred, counted: fix these and the next run lists them.
        "more_diagnostics": more,
    }))
}

/// A problem with no place in a spec file.
fn unplaced(message: &str, help: Option<String>) -> serde_json::Value {
    serde_json::json!({
        "file": null,
        "line": null,
        "column": null,
        "code": "unreadable",
        "message": crate::escape::controls(message),
        "help": help.map(|h| crate::escape::controls(&h).into_owned()),
    })
}

fn pretty(value: &serde_json::Value) -> String {
    crate::escape::json(serde_json::to_string_pretty(value).unwrap_or_default())
}
