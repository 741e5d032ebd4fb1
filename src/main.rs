//! The `orgform` binary: parse the command line, run, print the error chain, exit with a code
//! that means something (0 nothing to do or done, 1 error, 2 changes present, 130 interrupted
//! twice during an apply).

use std::process::ExitCode;

use clap::error::ErrorKind;
use orgform::commands::Interrupted;

/// mimalloc rather than the system allocator: loading 100,000 organizations makes millions of
/// small allocations, and glibc's spent a quarter of the plan's time in malloc and free.
/// Built with `no_thp` (Cargo.toml): asked for transparent huge pages, the kernel spent 45% of
/// a 100,000-organization `validate` zeroing them (sys time 1.4 s of 4.2 s; 0.4 s without).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    orgform::output::init_errors();
    let cli = match orgform::cli::Cli::parse_noting_sources() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    orgform::logging::init(cli.global.verbose, cli.global.log_format);
    match orgform::commands::run(cli) {
        Ok(code) => code,
        // Said on stderr when the second signal came; 130 is the shell's code for SIGINT.
        Err(report) if report.downcast_ref::<Interrupted>().is_some() => ExitCode::from(130),
        Err(report) => {
            orgform::output::error(&report);
            ExitCode::from(1)
        }
    }
}

/// clap exits 2 on a usage error, the code `plan --detailed-exitcode` gives to "changes
/// present": a CI script would read a typo as a plan to review. Every error is 1 here; help
/// and the version, which clap reports as errors too, are 0; a bare `orgform`, which shows
/// the help because a command is missing, is 1.
fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}
