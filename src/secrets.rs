//! Reading secrets at the edge, just before a request needs them.
//!
//! Specs hold references only (`{ env = "NAME" }`, `{ file = "PATH" }`); the values live in
//! [`SecretString`], whose `Debug` and `Display` print `***` and which has no `Serialize`, so a
//! secret can't reach state, plans or logs by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::model::SecretRef;

/// A secret value. Printing it shows `***`; only [`SecretString::expose`] gives the text.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> SecretString {
        SecretString(value.into())
    }

    /// The secret itself, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
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
    pub fn resolve(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        if let Some(value) = self.overrides.get(reference) {
            return Ok(value.clone());
        }
        let shown = reference.to_string();
        let value = match reference {
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
                let full = match &self.base_dir {
                    Some(dir) => dir.join(path),
                    None => PathBuf::from(path),
                };
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
        Ok(SecretString(value))
    }
}
