//! Logs (tracing) on stderr: off by default, `-v` for info, `-vv` for debug, `RUST_LOG` to pick.
//! Nothing logged ever carries a secret: secrets live in `SecretString`, which prints `***`, and
//! URLs are redacted before they are shown.

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8, format: crate::cli::LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "orgform=info",
        _ => "orgform=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        crate::cli::LogFormat::Human => builder.try_init(),
        crate::cli::LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
