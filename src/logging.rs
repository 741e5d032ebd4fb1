//! Logs (tracing) on stderr: off by default, `-v` for info, `-vv` for debug, `RUST_LOG` to pick.
//! In colour only where error reports are ([`crate::output::colour_on_stderr`]: a terminal,
//! without `NO_COLOR`). The TLS libraries' own logs are off unless `RUST_LOG` asks for them:
//! a certificate they refuse is already orgform's error, said once.
//! Nothing logged ever carries a secret: secrets live in `SecretString`, which prints `***`, and
//! URLs are redacted before they are shown. Nothing logged reaches the terminal raw either: each
//! line is escaped as it is written (see [`Escaping`]).

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8, format: crate::cli::LogFormat) {
    let default = match verbose {
        0 => "warn,rustls=off,rustls_platform_verifier=off",
        1 => "orgform=info",
        _ => "orgform=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = matches!(format, crate::cli::LogFormat::Json);
    let colour = !json && crate::output::colour_on_stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || Escaping {
            out: std::io::stderr(),
            json,
            colour,
        })
        .with_target(false)
        .with_ansi(colour);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Writes log lines with what a logged value may hold escaped: tracing-subscriber escapes ESC,
/// BEL and C1 controls in values, but not a line break or carriage return (which forge log
/// lines) nor the bidirectional controls. The formatter writes each event whole, in one call,
/// ending with its line break: every other one came from a value. JSON lines are escaped as
/// JSON (`\uXXXX`), so they stay the same JSON. The formatter's own colours are kept only when
/// it was asked for them (`colour`); any other SGR sequence came from a value.
struct Escaping<W> {
    out: W,
    json: bool,
    colour: bool,
}

impl<W: std::io::Write> std::io::Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        // A secret a provider echoed, in a logged error, is scrubbed like any output.
        let text = crate::secrets::scrub(&text);
        let (line, end) = match text.strip_suffix('\n') {
            Some(line) => (line, "\n"),
            None => (text.as_ref(), ""),
        };
        let shown = if self.json {
            std::borrow::Cow::Owned(crate::escape::json(line.to_string()))
        } else {
            crate::escape::one_line(line, self.colour)
        };
        self.out.write_all(shown.as_bytes())?;
        self.out.write_all(end.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::Escaping;

    #[test]
    fn a_logged_value_cannot_forge_a_line_or_talk_to_the_terminal() {
        let mut human = Escaping {
            out: Vec::new(),
            json: false,
            colour: true,
        };
        let _ = human.write_all(b"\x1b[2mWARN\x1b[0m error=a\nFAKE line\r\xe2\x80\xae\n");
        assert_eq!(
            String::from_utf8_lossy(&human.out),
            "\x1b[2mWARN\x1b[0m error=a\\nFAKE line\\r\\u{202e}\n"
        );
        let mut json = Escaping {
            out: Vec::new(),
            json: true,
            colour: false,
        };
        let _ = json.write_all("{\"error\":\"a\u{202e}\u{9b}\"}\n".as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&json.out),
            "{\"error\":\"a\\u202e\\u009b\"}\n"
        );
        // Off a terminal the formatter writes no colour: one in a line came from a value.
        let mut plain = Escaping {
            out: Vec::new(),
            json: false,
            colour: false,
        };
        let _ = plain.write_all(b" WARN error=\x1b[31mred\n");
        assert_eq!(
            String::from_utf8_lossy(&plain.out),
            " WARN error=\\u{1b}[31mred\n"
        );
    }
}
