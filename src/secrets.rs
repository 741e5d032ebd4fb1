//! Reading secrets at the edge, just before a request needs them.
//!
//! Specs hold references only (`{ env = "NAME" }`, `{ file = "PATH" }`); the values live in
//! [`SecretString`], whose `Debug` and `Display` print `***` and which has no `Serialize`, so a
//! secret can't reach state, plans or logs by accident.
//!
//! A provider can still send one back: an error that echoes the request it refused (a 422 with
//! the body, a login answer quoting the form). So every secret this process holds is
//! remembered, in the forms it takes on the wire, and [`scrub`] replaces them with `[secret]`
//! in what the run prints, logs or records as an error, at those edges, whatever path the text
//! took to get there.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::escape::Shown;
use crate::model::SecretRef;
use crate::plan::SecretUse;

/// A secret value. Printing it shows `***`; only [`SecretString::expose`] gives the text.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> SecretString {
        let value = value.into();
        remember(&value);
        SecretString(value)
    }

    /// The secret itself, for the one place that puts it on the wire.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What [`scrub`] looks for: every secret value this process has held, each as written, as
/// base64 (how Commvault's passwords travel), as a JSON string's inside and as a form value,
/// with a matcher built over them when one is first needed after a change.
struct Remembered {
    forms: std::collections::HashSet<String>,
    matcher: Option<std::sync::Arc<aho_corasick::AhoCorasick>>,
}

static REMEMBERED: std::sync::Mutex<Option<Remembered>> = std::sync::Mutex::new(None);

/// Shorter values are not scrubbed: a secret of a few characters matches ordinary words
/// everywhere (a `prod` password would blank out `heron_prod`), and no real credential is that
/// short.
const SHORTEST_SCRUBBED: usize = 6;

fn remember(value: &str) {
    use base64::Engine as _;
    if value.len() < SHORTEST_SCRUBBED {
        return;
    }
    // Known already (each create resolves its organization's secrets again): nothing to add.
    if REMEMBERED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .is_some_and(|r| r.forms.contains(value))
    {
        return;
    }
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(value)
        .to_string();
    let form = url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    let base64 = base64::engine::general_purpose::STANDARD.encode(value);
    let mut remembered = REMEMBERED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let remembered = remembered.get_or_insert_with(|| Remembered {
        forms: std::collections::HashSet::new(),
        matcher: None,
    });
    let mut added = false;
    for form in [value.to_string(), json, form, base64] {
        added |= remembered.forms.insert(form);
    }
    if added {
        remembered.matcher = None;
    }
}

/// `text` with every secret this process has held replaced by `[secret]` (see the module's
/// head). Borrowed when there is none in it, which is nearly always.
pub(crate) fn scrub(text: &str) -> std::borrow::Cow<'_, str> {
    let matcher = {
        let mut remembered = REMEMBERED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(remembered) = remembered.as_mut() else {
            return std::borrow::Cow::Borrowed(text);
        };
        match &remembered.matcher {
            Some(matcher) => matcher.clone(),
            None => {
                // Longest first, so that a value's base64 or JSON form is replaced whole.
                let mut forms: Vec<&String> = remembered.forms.iter().collect();
                forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
                let Ok(built) = aho_corasick::AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                    .build(forms)
                else {
                    return std::borrow::Cow::Borrowed(text);
                };
                let built = std::sync::Arc::new(built);
                remembered.matcher = Some(built.clone());
                built
            }
        }
    };
    if !matcher.is_match(text) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    matcher.replace_all_with(text, &mut out, |_, _, out| {
        out.push_str("[secret]");
        true
    });
    std::borrow::Cow::Owned(out)
}

/// [`scrub`] of text the caller owns, reusing it when there is nothing to scrub.
pub(crate) fn scrub_owned(text: String) -> String {
    match scrub(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(scrubbed) => scrubbed,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {reference} is not set: export {name} before running orgform")]
    EnvMissing { reference: String, name: String },
    #[error("secret {reference} cannot be read: {source}")]
    FileUnreadable {
        reference: String,
        #[source]
        source: crate::files::FileError,
    },
    #[error("secret {reference} is not UTF-8 text; its bytes are not shown")]
    NotText { reference: String },
    #[error("secret {reference} is empty")]
    Empty { reference: String },
}

/// What is wrong with a secret file, in a few words (its path is on the line already).
fn file_problem(error: &crate::files::FileError) -> String {
    use crate::files::FileError;
    match error {
        FileError::Io { .. } if error.is_not_found() => "not found".to_string(),
        FileError::NotRegular { kind, .. } => format!("{kind}, not a regular file"),
        FileError::TooLarge { cap, .. } => format!("larger than the {cap} cap"),
        FileError::Io { source, .. } => source.to_string(),
        outside @ FileError::LinkOutside { .. } => outside.to_string(),
    }
}

/// Every secret a run needs that can't be read, one line each: reported before any login or
/// create, so a plan never promises what apply can't do.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error(
    "{} this run needs cannot be read; nothing was created\n{}",
    crate::text::plural(.lines.len(), "secret"),
    .lines.join("\n")
)]
#[diagnostic(help(
    "export the variables and create the files named, then run again; a `{{ file = \"PATH\" }}` is read relative to the working directory orgform runs in"
))]
pub(crate) struct MissingSecrets {
    pub(crate) lines: Vec<String>,
}

/// Resolves secret references from the environment and from files.
#[derive(Clone, Debug, Default)]
pub struct SecretResolver {
    /// Files are read relative to this folder (the working directory by default).
    pub base_dir: Option<PathBuf>,
    /// In `--sandbox` runs, a reference that is not set resolves to a placeholder, so that a
    /// new user sees the whole flow without exporting anything. Never set for real endpoints.
    pub sandbox_placeholders: bool,
    /// Values that stand in for references: the sandbox's own credentials in `--sandbox` runs.
    pub overrides: BTreeMap<SecretRef, SecretString>,
}

impl SecretResolver {
    /// Where a `{ file = "PATH" }` is read from: `PATH` under [`SecretResolver::base_dir`], or
    /// as it stands (relative to the working directory) without one.
    pub(crate) fn file_path(&self, path: &str) -> PathBuf {
        match &self.base_dir {
            Some(dir) => dir.join(path),
            None => PathBuf::from(path),
        }
    }

    /// Resolves every reference in `needed`, reading each once, and reports every one that
    /// can't be read in one error, so that a run names all of them instead of one per run.
    /// Values are dropped at once: this is a check, the requests resolve again when they go.
    pub(crate) fn check_all(
        &self,
        needed: &BTreeMap<SecretRef, BTreeSet<SecretUse>>,
    ) -> Result<(), MissingSecrets> {
        let lines: Vec<String> = needed
            .iter()
            .filter_map(|(reference, uses)| {
                let error = self.resolve(reference).err()?;
                Some(self.missing_line(reference, uses, &error))
            })
            .collect();
        if lines.is_empty() {
            Ok(())
        } else {
            Err(MissingSecrets { lines })
        }
    }

    /// `env NAME (org acme, secret): not set`, or for a file what was wrong with it and the
    /// absolute path tried, so that a CI log shows where orgform looked. Names and paths only.
    fn missing_line(
        &self,
        reference: &SecretRef,
        uses: &BTreeSet<SecretUse>,
        error: &SecretError,
    ) -> String {
        // A secret a thousand organizations share would make a line no one reads.
        const SHOWN_USES: usize = 3;
        let mut used_by = uses
            .iter()
            .take(SHOWN_USES)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        if uses.len() > SHOWN_USES {
            used_by.push_str(&format!("; and {} more", uses.len() - SHOWN_USES));
        }
        let why = match error {
            SecretError::EnvMissing { .. } => "not set".to_string(),
            SecretError::Empty { .. } => "empty".to_string(),
            SecretError::NotText { .. } => "not UTF-8 text".to_string(),
            SecretError::FileUnreadable { source, .. } => file_problem(source),
        };
        match reference {
            SecretRef::Env(name) => format!("env {} ({used_by}): {why}", Shown(name)),
            SecretRef::File(path) => {
                let full = self.file_path(path);
                let tried = if full.is_absolute() {
                    full
                } else {
                    std::env::current_dir()
                        .map(|cwd| cwd.join(&full))
                        .unwrap_or(full)
                };
                let relative_to = if Path::new(path).is_absolute() {
                    "an absolute path".to_string()
                } else {
                    match &self.base_dir {
                        Some(dir) => format!("relative to {}", Shown(&dir.display().to_string())),
                        None => "relative to the working directory".to_string(),
                    }
                };
                format!(
                    "file {} ({used_by}): {why}; tried {}, {relative_to}",
                    Shown(path),
                    Shown(&tried.display().to_string())
                )
            }
        }
    }

    pub(crate) fn resolve(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        if let Some(value) = self.overrides.get(reference) {
            return Ok(value.clone());
        }
        let shown = reference.to_string();
        let value = match reference {
            #[expect(
                clippy::disallowed_methods,
                reason = "the secret reader: `{ env }` references are read here"
            )]
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) => v,
                Err(_) if self.sandbox_placeholders => format!("sandbox-placeholder-{name}"),
                Err(_) => {
                    return Err(SecretError::EnvMissing {
                        reference: shown,
                        name: name.clone(),
                    });
                }
            },
            SecretRef::File(path) => {
                let full = self.file_path(path);
                // A regular file (links resolved), at most 64 KiB: a FIFO, a device or a huge
                // file is refused before it can hang or exhaust the run.
                match crate::files::read_regular(&full, crate::files::SECRET_FILE) {
                    // A trailing newline is an artefact of the editor, not part of the secret.
                    Ok(bytes) => match String::from_utf8(bytes) {
                        Ok(v) => v.trim_end_matches(['\n', '\r']).to_string(),
                        Err(_) => return Err(SecretError::NotText { reference: shown }),
                    },
                    // Only a missing file stands in for a placeholder: anything else at the
                    // path is a problem to report, sandbox or not.
                    Err(e) if self.sandbox_placeholders && e.is_not_found() => {
                        format!("sandbox-placeholder-{path}")
                    }
                    Err(source) => {
                        return Err(SecretError::FileUnreadable {
                            reference: shown,
                            source,
                        });
                    }
                }
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty { reference: shown });
        }
        Ok(SecretString::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_every_form_a_secret_travels_in_and_leaves_short_values() {
        use base64::Engine as _;
        let long = "p@ss \"word\"+/é-scrub-test";
        let _ = SecretString::new(long);
        let _ = SecretString::new("abc");
        let echoed = format!(
            "raw {long}; json {}; form {}; base64 {}; short abc",
            serde_json::to_string(long).unwrap_or_default(),
            url::form_urlencoded::byte_serialize(long.as_bytes()).collect::<String>(),
            base64::engine::general_purpose::STANDARD.encode(long),
        );
        assert_eq!(
            scrub(&echoed),
            "raw [secret]; json \"[secret]\"; form [secret]; base64 [secret]; short abc"
        );
        assert!(matches!(
            scrub("nothing here"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
