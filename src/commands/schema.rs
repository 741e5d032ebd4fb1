//! `orgform schema`: the JSON Schema of the spec format, for editors.

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};

use crate::output;
use crate::spec::json_schema::json_schema;

pub(crate) fn run() -> Result<ExitCode> {
    output::data(&serde_json::to_string_pretty(&json_schema()).into_diagnostic()?);
    Ok(ExitCode::SUCCESS)
}
