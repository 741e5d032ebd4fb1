//! `orgform man`: the man page (roff), generated from the clap structs. One page holds every
//! command (clap_mangen would point at an `orgform-plan(1)` page per command, which nothing
//! installs), and says what the exit codes and the environment variables mean.

use std::fmt::Write as _;
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};

pub(crate) fn run() -> Result<ExitCode> {
    let cmd = crate::cli::command_for_docs();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out).into_diagnostic()?;
    man.render_name_section(&mut out).into_diagnostic()?;
    man.render_synopsis_section(&mut out).into_diagnostic()?;
    man.render_description_section(&mut out).into_diagnostic()?;
    man.render_options_section(&mut out).into_diagnostic()?;
    let mut page = String::from_utf8_lossy(&out).into_owned();
    page.push_str(&commands_section(&cmd));
    page.push_str(EXIT_STATUS);
    page.push_str(ENVIRONMENT);
    let mut version = Vec::new();
    man.render_version_section(&mut version).into_diagnostic()?;
    page.push_str(&String::from_utf8_lossy(&version));
    crate::output::data(&page);
    Ok(ExitCode::SUCCESS)
}

/// Every command, with its help, on this page: `state list` under `state`.
fn commands_section(cmd: &clap::Command) -> String {
    let mut out = String::from(".SH COMMANDS\n");
    let mut each = |path: &str, sub: &clap::Command| {
        let _ = writeln!(out, ".TP\n\\fBorgform {}\\fR", roff(path));
        let help = sub
            .get_long_about()
            .or_else(|| sub.get_about())
            .map(ToString::to_string)
            .unwrap_or_default();
        for (i, paragraph) in help.split("\n\n").enumerate() {
            if i > 0 {
                out.push_str(".IP\n");
            }
            let _ = writeln!(out, "{}", roff(&paragraph.replace('\n', " ")));
        }
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        each(sub.get_name(), sub);
        for inner in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            each(&format!("{} {}", sub.get_name(), inner.get_name()), inner);
        }
    }
    out.push_str(".PP\n`orgform COMMAND \\-\\-help` shows the options of each command.\n");
    out
}

/// Text for roff: backslashes and hyphens written as roff reads them, and a line that would
/// start with a control character made literal.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with(['.', '\'']) {
        format!("\\&{text}")
    } else {
        text
    }
}

const EXIT_STATUS: &str = r".SH EXIT STATUS
.TP
\fB0\fR
Done, or nothing to do.
.TP
\fB1\fR
An error: invalid specs, a usage error, a refused or cancelled apply, a create that failed,
specs not in canonical form (\fBfmt \-\-check\fR).
.TP
\fB2\fR
\fBplan \-\-detailed\-exitcode\fR only: the plan has changes.
.TP
\fB130\fR
An apply interrupted twice (creates in flight stay pending in state; the next run settles them).
";

const ENVIRONMENT: &str = r".SH ENVIRONMENT
.TP
\fBORGFORM_ALLOWED_HOSTS\fR
The only hosts the specs may send credentials to, comma\-separated hosts and *.suffix patterns
(as \fB\-\-allowed\-hosts\fR). Set by CI, outside the specs; unset, hosts other than the
vendors' and loopback are warned about.
.TP
Variables the specs name
A secret is never written in the specs: \fB{ env = \(dqNAME\(dq }\fR reads it from the
variable NAME (and \fB{ file = \(dqPATH\(dq }\fR from a file). \fBorgform secrets\fR lists every
one the specs reference, and whether this machine can read it.
.TP
\fBPGPASSWORD\fR
The password of a PostgreSQL state (\fB\-\-state postgres://user@host:port/db\fR), kept out
of the URL.
.TP
\fBNO_COLOR\fR
Set and not empty: no colour, even on a terminal.
.TP
\fBRUST_LOG\fR
Which log lines go to stderr, as a tracing filter (\fBorgform=debug\fR); overrides \fB\-v\fR.
";
