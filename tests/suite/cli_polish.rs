//! The command line's finish, through the real binary: outputs a machine can read in one piece
//! (`apply --format json`, `validate --format json` for invalid specs too), and the smaller
//! things a new user trips on: `refresh`'s last line, `forget` with several addresses, the diff
//! of `fmt --check`, help that lists only the flags a command reads, the man page, the
//! sandbox's help and address line, and counts in the singular.

use std::io::BufRead as _;
use std::path::Path;

use crate::e2e::orgform;

/// A Heron instance and the organizations `addresses`, in `specs/heron.toml` under `dir`, with
/// `extra` lines in the provider's table.
fn heron_specs(dir: &Path, addresses: &[&str], extra: &str) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let mut text = format!(
        "[provider.heron]\ntype = \"heron\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n{extra}"
    );
    for address in addresses {
        text.push_str(&format!(
            "\n[org.{address}]\nprovider = \"heron\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://{address}.my.salesforce.com\"\nauth = {{ client_secret = {{ env = \"ACME_CLIENT_SECRET\" }} }}\nsecret = {{ env = \"ACME_SECRET\" }}\nconfig = {{ default_id = {{ external_name = \"Account\", alias = \"Company\" }} }}\n"
        ));
    }
    std::fs::write(specs.join("heron.toml"), text).expect("write specs");
}

/// The one JSON document a run printed on stdout; fails the test if stdout is not exactly one.
fn one_document(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"))
}

/// Help text with its line wrapping undone, to look for phrases in.
fn unwrapped(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn addresses_in_state(dir: &Path) -> Vec<String> {
    let list = orgform(dir, &["state", "list", "--sandbox"]).expect(0);
    list.stdout.lines().map(str::to_string).collect()
}

#[test]
fn apply_format_json_prints_one_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &["acme", "beta"], "");
    let first = orgform(
        dir.path(),
        &["apply", "--sandbox", "--auto-approve", "--format", "json"],
    )
    .expect(0);
    let doc = one_document(&first.stdout);
    assert_eq!(doc["format_version"], 1, "{doc}");
    assert_eq!(doc["plan"]["summary"]["create"], 2, "{doc}");
    assert!(doc["plan"]["digest"].is_string(), "{doc}");
    assert_eq!(doc["outcomes"]["acme"]["result"], "created", "{doc}");
    assert_eq!(doc["outcomes"]["beta"]["action"], "create", "{doc}");
    assert!(doc["stopped"].is_null(), "{doc}");

    // Nothing to apply: still one document, the plan with no outcomes.
    let again = orgform(
        dir.path(),
        &["apply", "--sandbox", "--auto-approve", "--format", "json"],
    )
    .expect(0);
    let doc = one_document(&again.stdout);
    assert_eq!(doc["outcomes"], serde_json::json!({}), "{doc}");
    assert_eq!(doc["plan"]["summary"]["unchanged"], 2, "{doc}");

    // Refused: the plan that was refused, no outcomes, exit 1.
    heron_specs(dir.path(), &["acme", "beta", "gamma"], "");
    let refused = orgform(
        dir.path(),
        &[
            "apply",
            "--sandbox",
            "--auto-approve",
            "--format",
            "json",
            "--max-creates",
            "0",
        ],
    )
    .expect(1);
    let doc = one_document(&refused.stdout);
    assert_eq!(doc["plan"]["summary"]["create"], 1, "{doc}");
    assert_eq!(doc["outcomes"], serde_json::json!({}), "{doc}");

    let help = unwrapped(&orgform(dir.path(), &["apply", "--help"]).expect(0).stdout);
    for words in [
        "With --format json, stdout holds one JSON document",
        "{\"format_version\": 1, \"plan\":",
        "\"outcomes\": {ADDRESS:",
        "\"stopped\": null,",
    ] {
        assert!(help.contains(words), "{words}: {help}");
    }
}

#[test]
fn validate_format_json_lists_every_problem_in_one_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &["acme"], "api_kee = 1\n");
    let run = orgform(dir.path(), &["validate", "--format", "json"]).expect(1);
    let doc = one_document(&run.stdout);
    assert_eq!(doc["format_version"], 1, "{doc}");
    assert_eq!(doc["valid"], false, "{doc}");
    let unknown = doc["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["code"] == "unknown-key")
        .unwrap_or_else(|| panic!("no unknown-key diagnostic: {doc}"));
    assert_eq!(unknown["file"], "specs/heron.toml", "{doc}");
    assert_eq!(unknown["line"], 4, "{doc}");
    assert_eq!(unknown["column"], 1, "{doc}");
    assert_eq!(
        unknown["message"], "unknown key `api_kee` in `provider.heron`",
        "{doc}"
    );
    assert_eq!(unknown["help"], "did you mean `api_key`?", "{doc}");
    // The same problems for people, on stderr.
    assert!(run.stderr.contains("api_kee"), "{}", run.stderr);

    // A folder that can't be read has no place in a file.
    let missing = orgform(
        dir.path(),
        &["validate", "--format", "json", "--specs", "nowhere"],
    )
    .expect(1);
    let doc = one_document(&missing.stdout);
    assert_eq!(doc["diagnostics"][0]["code"], "unreadable", "{doc}");
    assert!(doc["diagnostics"][0]["line"].is_null(), "{doc}");

    heron_specs(dir.path(), &["acme"], "");
    let valid = orgform(dir.path(), &["validate", "--format", "json"]).expect(0);
    let doc = one_document(&valid.stdout);
    assert_eq!(
        doc,
        serde_json::json!({
            "format_version": 1,
            "valid": true,
            "providers": 1,
            "organizations": 1,
            "diagnostics": [],
        })
    );
}

#[test]
fn forget_takes_several_addresses_and_refuses_all_for_one_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &["acme", "beta", "gamma"], "");
    orgform(dir.path(), &["apply", "--sandbox", "--auto-approve"]).expect(0);
    let state = dir.path().join("state/sandbox/orgform.state.json");
    let before = std::fs::read(&state).expect("state");

    let refused = orgform(
        dir.path(),
        &["forget", "--sandbox", "acme", "nope", "beta", "nada"],
    )
    .expect(1);
    assert!(
        refused.stderr.contains("`nope`, `nada` are not in state")
            && refused.stderr.contains("nothing was forgotten"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read(&state).expect("state"),
        before,
        "nothing written"
    );

    let forgot = orgform(dir.path(), &["forget", "--sandbox", "acme", "beta"]).expect(0);
    assert!(
        forgot.stderr.contains("Forgot `acme`") && forgot.stderr.contains("Forgot `beta`"),
        "{}",
        forgot.stderr
    );
    assert_eq!(addresses_in_state(dir.path()), ["gamma"]);
}

#[test]
fn refresh_ends_with_refresh_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &["acme"], "");
    orgform(dir.path(), &["apply", "--sandbox", "--auto-approve"]).expect(0);
    // Forgotten, it is still at the provider: refresh adopts it.
    orgform(dir.path(), &["forget", "--sandbox", "acme"]).expect(0);
    let refresh = orgform(dir.path(), &["refresh", "--sandbox"]).expect(0);
    assert!(
        refresh
            .stderr
            .contains("Refresh complete: 0 created, 1 adopted"),
        "{}",
        refresh.stderr
    );
    assert!(
        !refresh.stderr.contains("Apply complete"),
        "{}",
        refresh.stderr
    );
    assert_eq!(addresses_in_state(dir.path()), ["acme"]);
}

#[test]
fn fmt_check_shows_a_unified_diff_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    let spec = dir.path().join("specs/a.toml");
    // `type` belongs first in a provider table.
    let text = "[provider.heron]\napi_key = { env = \"HERON_API_KEY\" }\ntype = \"heron\"\n";
    std::fs::write(&spec, text).expect("write");
    let check = orgform(dir.path(), &["fmt", "--check"]).expect(1);
    assert!(
        check
            .stdout
            .contains("--- specs/a.toml\n+++ specs/a.toml (formatted)\n@@"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("\n+type = \"heron\"\n")
            && check.stdout.contains("\n-type = \"heron\"\n"),
        "{}",
        check.stdout
    );
    assert!(
        check.stderr.contains("not in canonical form: specs/a.toml"),
        "{}",
        check.stderr
    );
    assert_eq!(std::fs::read_to_string(&spec).expect("read"), text);
    let fixed = orgform(dir.path(), &["fmt"]).expect(0);
    assert!(
        fixed.stderr.contains("Formatted 1 of 1 spec file."),
        "{}",
        fixed.stderr
    );
    let clean = orgform(dir.path(), &["fmt", "--check"]).expect(0);
    assert_eq!(clean.stdout, "", "no diff when nothing would change");
}

/// Global flags a command does not read are out of its help, but still accepted where they
/// were before (a script that passes them keeps working).
#[test]
fn help_lists_only_the_global_flags_a_command_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &["acme"], "");
    let unread = ["--state", "--workspace", "--lock-timeout", "--http-timeout"];
    for command in [
        &["fmt"][..],
        &["schema"],
        &["completions"],
        &["man"],
        &["sandbox"],
    ] {
        // `-h`: the short help lists the same flags, without the sandbox's credentials.
        let help = orgform(dir.path(), &[command, &["-h"]].concat()).expect(0);
        for flag in unread {
            assert!(
                !help.stdout.contains(flag),
                "`{} --help` shows {flag}:\n{}",
                command.join(" "),
                help.stdout
            );
        }
        assert!(help.stdout.contains("--verbose"), "{}", help.stdout);
    }
    let validate = orgform(dir.path(), &["validate", "--help"]).expect(0);
    assert!(
        !validate.stdout.contains("--lock-timeout"),
        "{}",
        validate.stdout
    );
    assert!(
        validate.stdout.contains("--allowed-hosts"),
        "{}",
        validate.stdout
    );
    let forget = orgform(dir.path(), &["forget", "--help"]).expect(0);
    assert!(!forget.stdout.contains("--format"), "{}", forget.stdout);
    assert!(
        forget.stdout.contains("--lock-timeout"),
        "{}",
        forget.stdout
    );
    let list = orgform(dir.path(), &["state", "list", "--help"]).expect(0);
    assert!(!list.stdout.contains("--lock-timeout"), "{}", list.stdout);
    assert!(list.stdout.contains("--workspace"), "{}", list.stdout);
    let apply = orgform(dir.path(), &["apply", "--help"]).expect(0);
    for flag in unread {
        assert!(apply.stdout.contains(flag), "{flag}: {}", apply.stdout);
    }
    // Nor in the completions.
    let bash = orgform(dir.path(), &["completions", "bash"]).expect(0);
    let fmt_options = bash
        .stdout
        .split("orgform__subcmd__fmt)")
        .nth(1)
        .and_then(|rest| rest.lines().find(|l| l.contains("opts=")))
        .expect("fmt's options in the bash completions");
    assert!(!fmt_options.contains("--state"), "{fmt_options}");

    // Every command line that worked still does: before and after the command.
    orgform(
        dir.path(),
        &[
            "--state",
            "x.json",
            "--lock-timeout",
            "1s",
            "fmt",
            "--check",
        ],
    )
    .expect(0);
    orgform(
        dir.path(),
        &[
            "fmt",
            "--check",
            "--state",
            "x.json",
            "--workspace",
            "w",
            "--lock-timeout",
            "1s",
        ],
    )
    .expect(0);
    orgform(
        dir.path(),
        &["schema", "--state", "x.json", "--format", "json"],
    )
    .expect(0);
    orgform(dir.path(), &["man", "--http-timeout", "5s"]).expect(0);
    let shown = orgform(
        dir.path(),
        &["validate", "--state", "x.json", "--format", "json"],
    )
    .expect(0);
    one_document(&shown.stdout);
}

#[test]
fn the_man_page_is_one_page_with_exit_status_and_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let man = orgform(dir.path(), &["man"]).expect(0);
    let page = &man.stdout;
    assert!(
        !names_other_pages(page),
        "points at pages that do not exist:\n{page}"
    );
    for section in [".SH COMMANDS", ".SH EXIT STATUS", ".SH ENVIRONMENT"] {
        assert!(page.contains(section), "{section}:\n{page}");
    }
    for words in [
        "ORGFORM_ALLOWED_HOSTS",
        "NO_COLOR",
        "RUST_LOG",
        "PGPASSWORD",
        "orgform secrets",
        "\\fBorgform state mv\\fR",
        "\\fB130\\fR",
    ] {
        assert!(page.contains(words), "{words}:\n{page}");
    }
}

/// Whether the page names another man page of orgform's, like `orgform-plan(1)`.
fn names_other_pages(page: &str) -> bool {
    page.match_indices("orgform-").any(|(at, _)| {
        page[at..]
            .split(|c: char| c.is_whitespace())
            .next()
            .is_some_and(|word| word.contains("(1)"))
    })
}

#[test]
fn sandbox_help_names_each_base_url_and_the_address_goes_to_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = crate::harness::orgform(dir.path())
        .args(["sandbox", "--help"])
        .shows_sandbox_credentials()
        .run()
        .expect(0);
    for line in [
        "commvault_salesforce base_url = \"http://127.0.0.1:8080/commandcenter/api\"",
        "heron            base_url = \"http://127.0.0.1:8080\"",
        "neoncrm          base_url = \"http://127.0.0.1:8080/neonws/services/api\"",
        "oracle_commerce  base_url = \"http://127.0.0.1:8080\"",
        "salesforce_signup base_url = \"http://127.0.0.1:8080\"",
    ] {
        assert!(help.stdout.contains(line), "{line}:\n{}", help.stdout);
    }

    let mut child = crate::harness::orgform(dir.path())
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .spawn();
    let mut stdout = std::io::BufReader::new(child.take_stdout());
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    assert!(
        line.starts_with("orgform sandbox listening on http://127.0.0.1:"),
        "{line}"
    );
    child.kill();
}

/// "creates 1 organizations": every count in the singular where it is one. The per-provider
/// `max_creates` is a key the specs accept, and refuses what is over it.
#[test]
fn counts_of_one_are_singular_and_max_creates_is_a_provider_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(dir.path(), &["acme"], "max_creates = 0\n");
    orgform(dir.path(), &["validate"]).expect(0);
    let refused = orgform(dir.path(), &["apply", "--sandbox", "--auto-approve"]).expect(1);
    assert!(
        refused
            .stderr
            .contains("the plan creates 1 organization on `heron`, more than its max_creates = 0"),
        "{}",
        refused.stderr
    );
    heron_specs(dir.path(), &["acme"], "");
    let refused = orgform(
        dir.path(),
        &["apply", "--sandbox", "--auto-approve", "--max-creates", "0"],
    )
    .expect(1);
    assert!(
        refused
            .stderr
            .contains("the plan creates 1 organization, more than --max-creates 0"),
        "{}",
        refused.stderr
    );
    let help = unwrapped(&orgform(dir.path(), &["apply", "--help"]).expect(0).stdout);
    assert!(
        help.contains("`max_creates = N` in a `[provider.NAME]` table of the specs refuses"),
        "{help}"
    );
}

/// clap's own checks of the command line as parsed and as documented (a hidden copy of a global
/// flag that clashed with the flag would fail here), and every command named in the table of
/// the global flags each reads (a new command not listed there shows them all).
#[test]
fn the_command_line_passes_clap_checks_and_every_command_says_what_it_reads() {
    orgform::cli::command().debug_assert();
    orgform::cli::command_for_docs().debug_assert();
    let docs = orgform::cli::command_for_docs();
    for sub in docs.get_subcommands() {
        let leaves: Vec<&clap::Command> = if sub.has_subcommands() {
            sub.get_subcommands().collect()
        } else {
            vec![sub]
        };
        for leaf in leaves {
            assert!(
                leaf.get_arguments()
                    .any(|a| a.get_id().as_str() == "verbose"),
                "`{}` is not in cli::FLAGS_READ",
                leaf.get_name()
            );
        }
    }
}
