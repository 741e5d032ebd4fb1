//! The `orgform` binary: parse the command line, run, print the error chain, exit with a code
//! that means something (0 nothing to do or done, 1 error, 2 changes present).

use std::process::ExitCode;

/// mimalloc rather than the system allocator: loading 100,000 organizations makes millions of
/// small allocations, and glibc's spent a quarter of the plan's time in malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    orgform::output::init_errors();
    let cli = orgform::cli::Cli::parse_noting_sources();
    orgform::logging::init(cli.global.verbose, cli.global.log_format);
    match orgform::commands::run(cli) {
        Ok(code) => code,
        Err(report) => {
            orgform::output::error(&report);
            ExitCode::from(1)
        }
    }
}
