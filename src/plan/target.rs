//! `--target`: the addresses a partial plan is limited to, as Terraform's `-target`.
//!
//! A pattern is an address with `*` standing for any run of characters (none included).
//! Addresses are `[A-Za-z0-9_-]`, so no other character needs a meaning and none is escaped.
//! Every pattern must match something declared or recorded: a typo would otherwise plan
//! nothing and say "No changes", which reads as success.

use crate::spec::Spec;
use crate::spec::diagnostic::did_you_mean;
use crate::state::State;

/// The patterns of `--target`, each known to match at least one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    patterns: Vec<String>,
}

/// A pattern that matches nothing declared and nothing in state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmatched {
    pub pattern: String,
    /// The closest address, for a "did you mean" hint.
    pub suggestion: Option<String>,
}

impl std::fmt::Display for Unmatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", crate::escape::Shown(&self.pattern))?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

/// Why `--target` was refused; every pattern at fault is named at once.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("--target with an empty address")]
    Empty,
    #[error(
        "--target {}: matches no declared address and nothing in state",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    Unmatched(Vec<Unmatched>),
}

impl Targets {
    /// Checks the patterns against what the specs declare and state records. Duplicates are
    /// dropped; the order given is kept, for the plan to show as typed.
    pub fn new(patterns: &[String], spec: &Spec, state: &State) -> Result<Targets, TargetError> {
        if patterns.iter().any(String::is_empty) {
            return Err(TargetError::Empty);
        }
        let addresses = || {
            spec.orgs
                .keys()
                .chain(state.orgs.keys())
                .map(String::as_str)
        };
        let mut kept: Vec<String> = Vec::with_capacity(patterns.len());
        let mut unmatched = Vec::new();
        for pattern in patterns {
            if kept.contains(pattern) {
                continue;
            }
            if addresses().any(|a| matches(pattern, a)) {
                kept.push(pattern.clone());
            } else {
                unmatched.push(Unmatched {
                    pattern: pattern.clone(),
                    suggestion: did_you_mean(pattern, addresses()).map(str::to_string),
                });
            }
        }
        if unmatched.is_empty() {
            Ok(Targets { patterns: kept })
        } else {
            Err(TargetError::Unmatched(unmatched))
        }
    }

    /// The targets a saved plan was limited to (checked when it was made); `None` for a whole
    /// plan.
    pub fn of_saved(patterns: &[String]) -> Option<Targets> {
        (!patterns.is_empty()).then(|| Targets {
            patterns: patterns.to_vec(),
        })
    }

    /// Whether `address` is one of the targets.
    pub fn contains(&self, address: &str) -> bool {
        self.patterns.iter().any(|p| matches(p, address))
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// Whether `address` matches `pattern`, whose `*` stands for any run of characters. Linear
/// backtracking to the last `*` only: a star can always absorb more, so no earlier choice needs
/// revisiting, and a pattern of many stars costs O(pattern × address) at worst.
pub fn matches(pattern: &str, address: &str) -> bool {
    let (p, a) = (pattern.as_bytes(), address.as_bytes());
    let (mut i, mut j) = (0, 0);
    // Where the last star was, and where in the address its run ends for now.
    let mut star: Option<(usize, usize)> = None;
    while j < a.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == a[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            // The star takes one more character; match again after it.
            star = Some((si, sj + 1));
            i = si + 1;
            j = sj + 1;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_match_any_run_and_the_rest_is_literal() {
        for (pattern, address, want) in [
            ("acme", "acme", true),
            ("acme", "acme2", false),
            ("acme", "acm", false),
            ("*", "", true),
            ("*", "anything", true),
            ("acme*", "acme", true),
            ("acme*", "acme-eu", true),
            ("*-eu", "acme-eu", true),
            ("*-eu", "acme-us", false),
            ("a*e", "acme", true),
            ("a*e", "acmex", false),
            ("a*c*e", "abcde", true),
            ("a*b*b", "abxbb", true),
            ("**", "x", true),
            ("a**", "a", true),
            ("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa", false),
            ("", "", true),
            ("", "a", false),
            ("Acme", "acme", false),
        ] {
            assert_eq!(matches(pattern, address), want, "{pattern} ~ {address}");
        }
    }
}
