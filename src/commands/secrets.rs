//! `orgform secrets`: every secret reference the specs make (environment variable names and
//! file paths, never a value), with where each is used and whether this machine can read it:
//! the list a CI job's secrets are set up from.

use std::process::ExitCode;

use miette::Result;

use crate::cli::{Format, GlobalArgs};
use crate::escape::Shown;
use crate::model::SecretRef;
use crate::output;
use crate::text::plural;

/// Uses shown per reference in text: a secret a thousand organizations share would make a
/// line no one reads (JSON lists them all).
const SHOWN_USES: usize = 3;

pub(crate) fn run(g: &GlobalArgs) -> Result<ExitCode> {
    let spec = super::specs::load_specs(&g.specs)?;
    let all = crate::plan::all_secrets(&spec);
    let resolver = crate::secrets::SecretResolver::default();
    // Read once to tell whether it can be; the value is dropped at once.
    let readable: Vec<bool> = all.keys().map(|r| resolver.resolve(r).is_ok()).collect();
    match g.format {
        Format::Json => {
            let secrets: Vec<serde_json::Value> = all
                .iter()
                .zip(&readable)
                .map(|((reference, uses), readable)| {
                    let (kind, name) = parts(reference);
                    serde_json::json!({
                        "kind": kind,
                        "name": name,
                        "readable": readable,
                        "used_by": uses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    })
                })
                .collect();
            output::data(&crate::escape::json(
                serde_json::to_string_pretty(&serde_json::json!({
                    "format_version": 1,
                    "secrets": secrets,
                }))
                .unwrap_or_default(),
            ));
        }
        Format::Text | Format::Markdown => {
            let shown: Vec<String> = all
                .keys()
                .map(|r| {
                    let (kind, name) = parts(r);
                    format!("{kind:<4} {}", Shown(name))
                })
                .collect();
            let width = shown
                .iter()
                .map(|s| crate::escape::shown_width(s))
                .max()
                .unwrap_or(0);
            let mut text = String::new();
            for ((uses, readable), shown) in all.values().zip(&readable).zip(&shown) {
                let pad = width.saturating_sub(crate::escape::shown_width(shown));
                let mut used: Vec<String> = uses
                    .iter()
                    .take(SHOWN_USES)
                    .map(ToString::to_string)
                    .collect();
                if uses.len() > SHOWN_USES {
                    used.push(format!("and {} more", uses.len() - SHOWN_USES));
                }
                text.push_str(&format!(
                    "{shown}{:pad$}  {:<8}  {}\n",
                    "",
                    if *readable { "readable" } else { "MISSING" },
                    used.join("; ")
                ));
            }
            let missing = readable.iter().filter(|r| !**r).count();
            text.push_str(&format!(
                "\n{} referenced by the specs; {}.\n",
                plural(all.len(), "secret"),
                if missing == 0 {
                    "this machine can read every one".to_string()
                } else {
                    format!("{missing} cannot be read here")
                }
            ));
            output::data(&text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parts(reference: &SecretRef) -> (&'static str, &str) {
    match reference {
        SecretRef::Env(name) => ("env", name),
        SecretRef::File(path) => ("file", path),
    }
}
