//! Hostile values at the output edge (issue 12, cases 6 and 8), through the real binary: control
//! characters in names reach no terminal raw, no value turns a markdown plan into markup, an
//! address is held to a rule at `validate`, and no value, however long or strange, panics any
//! output format (the specs' own or a state file's, which is never validated).

use std::path::Path;

use crate::harness::{Run, run_on};

/// What a terminal or a log must never receive raw: C0 controls but the line break, DEL, C1
/// controls, every bidirectional control of "Trojan Source" (Unicode's `Bidi_Control`: the
/// embeddings, overrides, isolates and the three marks), and the line and paragraph separators.
fn is_dangerous(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    if let Some((i, c)) = text.char_indices().find(|(_, c)| is_dangerous(*c)) {
        let from = text[..i].char_indices().rev().nth(40).map_or(0, |(j, _)| j);
        let shown: String = text[from..].chars().take(80).collect();
        panic!("{what} holds {c:?} raw, near: {shown:?}");
    }
}

/// Every dangerous kind, as TOML escapes: the values arrive decoded, not as written.
const HOSTILE_TOML: &str = "Evil\\u001b]0;pwned\\u0007\\u001b[2J\\u001b[1A\\r\\n  + create    forged  neon  x\\t\\u007f\\u009b31m\\u202eexe.txt\\u061c\\u2028\\u2029\\u2066\\u200f";

fn write(dir: &Path, name: &str, text: &str) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    std::fs::write(specs.join(name), text).expect("write spec");
}

fn neon_org(address: &str, name_toml: &str) -> String {
    format!(
        "[provider.neon]\ntype = \"neoncrm\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\n\n[org.{address}]\nprovider = \"neon\"\norganization_name = \"{name_toml}\"\n"
    )
}

fn orgform(dir: &Path, args: &[&str]) -> Run {
    // A plan checks the credentials of the instance it would log in to, `--refresh=false`
    // included; these tests never reach a provider, so any value does.
    run_on(
        dir,
        args,
        &[
            ("NEON_ORG_ID", "hostile-org"),
            ("NEON_API_KEY", "hostile-key"),
        ],
    )
}

/// A state file holding `address` with `natural_key` (JSON-escaped by the caller), created.
fn write_state(dir: &Path, address: &str, natural_key: &str) {
    let record = serde_json::json!({
        "provider": "neon",
        "provider_type": "neoncrm",
        "remote_id": format!("id-{natural_key}"),
        "natural_key": natural_key,
        "digest": "5555555555555555555555555555555555555555555555555555555555555555",
        "status": "failed",
        "attributes": {"organization_name": natural_key},
        "attempted_at": "2026-09-21T10:00:00Z",
        "updated_at": "2026-09-21T10:00:05Z",
        "error": {"code": natural_key, "message": natural_key},
    });
    let state = serde_json::json!({
        "version": 1,
        "lineage": "6f1c2a3b-0000-4000-8000-00000000abcd",
        "serial": 3,
        "orgs": { address: record },
    });
    std::fs::write(dir.join("state.json"), state.to_string()).expect("write state");
}

/// A value written with TOML escapes, decoded: JSON writes these escapes the same way.
fn decoded(toml_escaped: &str) -> String {
    serde_json::from_str(&format!("\"{toml_escaped}\"")).expect("a JSON string too")
}

#[test]
fn the_text_plan_shows_control_characters_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "neon.toml", &neon_org("evil", HOSTILE_TOML));
    let run = orgform(dir.path(), &["plan", "--refresh=false"]).expect(0);
    assert_clean("the text plan", &run.stdout);
    assert!(
        !run.stdout
            .lines()
            .any(|l| l.starts_with("  + create    forged")),
        "a value forged a plan line:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(r"Evil\u{1b}]0;pwned\u{7}"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(r"\r\n  + create"), "{}", run.stdout);
    assert!(run.stdout.contains(r"\u{202e}exe.txt"), "{}", run.stdout);
}

#[test]
fn spec_errors_show_decoded_values_and_raw_bytes_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A value decoded from TOML escapes, echoed by a message and a hint.
    write(
        dir.path(),
        "a.toml",
        &neon_org("evil", "Acme").replace(
            "provider = \"neon\"\norganization",
            "provider = \"\\u001b]0;pwned\\u0007\\u001b[2J\"\norganization",
        ),
    );
    for args in [&["validate"][..], &["plan", "--refresh=false"]] {
        let run = orgform(dir.path(), args).expect(1);
        assert_clean("a spec error", &run.stderr);
        assert!(
            run.stderr.contains(r"\u{1b}]0;pwned\u{7}"),
            "{}",
            run.stderr
        );
    }
    // Raw control bytes in the file itself: not TOML text, so the file is refused by place
    // with nothing of it quoted. (Characters TOML does allow raw, C1 and bidi controls, are
    // escaped in snippets: `a_snippet_shows_c1_and_bidi_characters_escaped`.)
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "b.toml",
        "[org.raw]\nprovider = \"neon\"\norganization_name = \"Acme\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}\"\n",
    );
    for args in [&["validate"][..], &["plan", "--refresh=false"]] {
        let run = orgform(dir.path(), args).expect(1);
        assert_clean("a spec error", &run.stderr);
        assert!(run.stderr.contains("b.toml:3:26"), "{}", run.stderr);
        assert!(!run.stderr.contains("pwned"), "{}", run.stderr);
    }
}

#[test]
fn a_snippet_shows_c1_and_bidi_characters_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Valid TOML text up to a C1 CSI and a right-to-left override, then a TOML error on the
    // same line, so that the snippet quotes them.
    write(
        dir.path(),
        "c.toml",
        "[org.raw]\nprovider = \"neon\"\norganization_name = \"Acme\u{9b}31m\u{202e}\" oops\n",
    );
    for args in [&["validate"][..], &["plan", "--refresh=false"]] {
        let run = orgform(dir.path(), args).expect(1);
        assert_clean("a spec error", &run.stderr);
        assert!(run.stderr.contains("c.toml:3:"), "{}", run.stderr);
        assert!(run.stderr.contains(r"\u{9b}31m\u{202e}"), "{}", run.stderr);
    }
}

#[test]
fn the_markdown_plan_renders_no_markup_from_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "x` <img src=x onerror=alert(1)> ``[link](https://evil.example) **bold** | cell \\\\| @octocat $x$ <b>";
    write(dir.path(), "neon.toml", &neon_org("evil", name));
    write_state(dir.path(), "gone", "`</code><img src=x onerror=alert(2)>`");
    let run = orgform(
        dir.path(),
        &["plan", "--refresh=false", "--format", "markdown"],
    )
    .expect(0);
    assert_clean("the markdown plan", &run.stdout);
    let md = &outside_code_blocks(&run.stdout);
    // The only tags are orgform's own.
    let mut rest = md.as_str();
    while let Some(at) = rest.find('<') {
        let tag = &rest[at..];
        assert!(
            [
                "<code>",
                "</code>",
                "<details>",
                "</details>",
                "<summary>",
                "</summary>"
            ]
            .iter()
            .any(|t| tag.starts_with(t)),
            "a value made a tag: {}",
            &tag[..tag.len().min(60)]
        );
        rest = &tag[1..];
    }
    for markup in ["](", "**bold**", "@octocat", "$x$", "https://"] {
        assert!(!md.contains(markup), "{markup} is live in:\n{md}");
    }
    // Each table row keeps its four cells: no value added a `|`.
    for row in md.lines().filter(|l| l.starts_with("| ")) {
        assert_eq!(row.matches(" | ").count(), 3, "{row}");
    }
    // The state, as markdown, is a code block: nothing of it renders.
    let show = orgform(dir.path(), &["show", "--format", "markdown"]).expect(0);
    assert_clean("show as markdown", &show.stdout);
    let outside = outside_code_blocks(&show.stdout);
    assert!(
        !outside.contains('<') && !outside.contains("]("),
        "{outside}"
    );
}

/// The markdown outside fenced code blocks (whose text is literal), checking that each block
/// closes with the fence it opened with: a value can't close it early.
fn outside_code_blocks(md: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<&str> = None;
    for line in md.lines() {
        match fence {
            Some(f) if line == f => fence = None,
            Some(_) => assert!(
                !line.trim_start().starts_with("```"),
                "closed early: {line}"
            ),
            None if line.starts_with("```") => {
                fence = Some(&line[..line.len() - line.trim_start_matches('`').len()]);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    assert!(fence.is_none(), "a code block never closes");
    out
}

#[test]
fn an_address_of_65536_characters_is_refused_at_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let address = "a".repeat(65_536);
    write(dir.path(), "neon.toml", &neon_org(&address, "Acme"));
    for args in [&["validate"][..], &["plan", "--refresh=false"]] {
        let run = orgform(dir.path(), args).expect(1);
        assert!(run.stderr.contains("neon.toml:6:6"), "{}", &run.stderr);
        assert!(
            run.stderr.contains("at most 64 characters"),
            "{}",
            &run.stderr[..run.stderr.len().min(2000)]
        );
    }
}

#[test]
fn addresses_instances_and_odd_names_follow_the_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let longest = "a".repeat(64);
    write(
        dir.path(),
        "neon.toml",
        &format!(
            "{}\n[org.{longest}]\nprovider = \"neon\"\norganization_name = \"Longest\"\n\n[org._under]\nprovider = \"neon\"\norganization_name = \"Under\"\n",
            neon_org("with-dash_1", "Dash")
        ),
    );
    orgform(dir.path(), &["validate"]).expect(0);
    for bad in [
        "1starts_with_digit",
        "-dash",
        "\"with space\"",
        "\"dot.ted\"",
        "\"é\"",
    ] {
        write(
            dir.path(),
            "bad.toml",
            &format!("[org.{bad}]\nprovider = \"neon\"\norganization_name = \"Bad\"\n"),
        );
        let run = orgform(dir.path(), &["validate"]).expect(1);
        assert!(run.stderr.contains("bad.toml:1:6"), "{bad}: {}", run.stderr);
        assert!(
            run.stderr.contains("start with a letter or `_`"),
            "{bad}: {}",
            run.stderr
        );
    }
    std::fs::remove_file(dir.path().join("specs/bad.toml")).expect("rm");
    write(
        dir.path(),
        "bad.toml",
        &neon_org("ok", "Ok")
            .replace("neon", "9neon")
            .replace("[org.ok]", "[org.other]"),
    );
    let run = orgform(dir.path(), &["validate"]).expect(1);
    assert!(
        run.stderr.contains("`9neon` is not a valid provider name"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_state_with_a_65536_character_address_renders_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "neon.toml", &neon_org("acme", "Acme"));
    let address = "a".repeat(65_536);
    write_state(dir.path(), &address, &decoded(HOSTILE_TOML));
    for format in ["text", "json", "markdown"] {
        let show = orgform(dir.path(), &["show", "--format", format]).expect(0);
        let plan = orgform(dir.path(), &["plan", "--refresh=false", "--format", format]).expect(0);
        assert_clean("show", &show.stdout);
        assert_clean("the plan", &plan.stdout);
        assert!(
            show.stdout.contains(&address),
            "show {format} drops the address"
        );
        // Markdown cuts a row past a pull-request comment's size, with a note saying so.
        if format != "markdown" {
            assert!(
                plan.stdout.contains(&address),
                "plan {format} drops the address"
            );
        }
    }
}

#[test]
fn the_longest_and_strangest_values_pass_every_output_format() {
    let strange = [
        "x".repeat(65_536),
        "\\u0000NUL\\u0000".to_string(),
        "e\\u0301\\u200d👩‍👩‍👧 مرحبا 漢字 \\uD7FF\\uFEFF\\uFFFD".to_string(),
        HOSTILE_TOML.to_string(),
        "`".repeat(70),
        "|".repeat(40),
        "<".repeat(40),
        "\\\\".repeat(40),
    ];
    for (i, value) in strange.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "neon.toml", &neon_org("strange", value));
        write_state(dir.path(), &format!("state_{i}"), &decoded(value));
        for format in ["text", "json", "markdown"] {
            let validate = orgform(dir.path(), &["validate", "--format", format]);
            assert_eq!(
                validate.code, 0,
                "validate {i} {format}: {}",
                validate.stderr
            );
            let plan = orgform(dir.path(), &["plan", "--refresh=false", "--format", format]);
            assert_eq!(plan.code, 0, "plan {i} {format}: {}", plan.stderr);
            let show = orgform(dir.path(), &["show", "--format", format]);
            assert_eq!(show.code, 0, "show {i} {format}: {}", show.stderr);
            // JSON too: serde_json leaves DEL, C1 and bidi controls raw; orgform writes them
            // as `\uXXXX`, the same JSON.
            assert_clean("the plan", &plan.stdout);
            assert_clean("show", &show.stdout);
            if format == "markdown" {
                outside_code_blocks(&plan.stdout);
            }
            if format == "json" {
                let _: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json plan");
                let _: serde_json::Value = serde_json::from_str(&show.stdout).expect("json state");
            }
        }
    }
}

#[test]
fn errors_and_messages_outside_the_specs_show_control_characters_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "neon.toml", &neon_org("acme", "Acme"));
    // A path is user input too: here a state file named to retitle the terminal, holding
    // what is not a state.
    let state = dir.path().join("state\u{1b}]0;pwned\u{7}\u{9b}2J.json");
    std::fs::write(&state, "not json \u{1b}[2J").expect("write");
    let state = state.to_str().expect("utf-8");
    for args in [
        &["show", "--state", state][..],
        &["plan", "--refresh=false", "--state", state],
    ] {
        let run = crate::harness::run(dir.path(), args, &[]).expect(1);
        assert_clean("an error", &run.stderr);
        assert!(
            run.stderr.contains(r"state\u{1b}]0;pwned\u{7}"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn apply_and_its_progress_show_values_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "neon.toml",
        &neon_org("evil", &format!("{HOSTILE_TOML}\\u0000")),
    );
    let run = |args: &[&str]| crate::harness::run(dir.path(), args, &[]);
    let apply = run(&["apply", "--sandbox", "--auto-approve"]).expect(0);
    assert_clean("apply's plan", &apply.stdout);
    assert_clean("apply's progress", &apply.stderr);
    assert!(apply.stderr.contains("evil: created"), "{}", apply.stderr);
    let json = run(&["apply", "--sandbox", "--auto-approve", "--format", "json"]).expect(0);
    assert_clean("apply's JSON report", &json.stdout);
    let show = run(&["show", "--state", "state/sandbox/orgform.state.json"]).expect(0);
    assert_clean("show", &show.stdout);
    assert!(
        show.stdout.contains(r"\u{1b}]0;pwned\u{7}"),
        "{}",
        show.stdout
    );
    // Stored as declared: the next plan finds it, unchanged.
    let again = run(&["plan", "--sandbox", "--detailed-exitcode"]).expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
}

/// What a state file or a provider says reaches messages outside the plan too: the state's
/// lineage (in `show` and `state migrate`), a remote id in `forget`'s and `import`'s messages,
/// a provider's error text in an error report. A line break or tab in any of them is escaped,
/// so that none forges a line of the report.
#[tokio::test(flavor = "multi_thread")]
async fn state_values_and_provider_errors_forge_no_lines_in_messages() {
    const FORGED: &str = "\n  + create    forged  neon  x\t";
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "neon.toml", &neon_org("acme", "Acme"));
    write_state(dir.path(), "acme", "Acme");
    let mut state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state.json")).expect("read"),
    )
    .expect("json");
    state["lineage"] = format!("L1{FORGED}").into();
    state["orgs"]["acme"]["remote_id"] = format!("id{FORGED}").into();
    std::fs::write(dir.path().join("state.json"), state.to_string()).expect("write");
    let forged = |text: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with("+ create    forged"))
            || text.contains('\t')
    };
    for format in ["text", "markdown"] {
        let show = orgform(dir.path(), &["show", "--format", format]).expect(0);
        assert!(!forged(&show.stdout), "show {format}: {}", show.stdout);
    }
    let moved = orgform(dir.path(), &["state", "migrate", "--to", "moved.json"]).expect(0);
    assert!(!forged(&moved.stderr), "migrate: {}", moved.stderr);
    let forget = orgform(dir.path(), &["forget", "acme"]).expect(0);
    assert!(!forged(&forget.stderr), "forget: {}", forget.stderr);

    // A provider whose refusal says more than one line.
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::FORBIDDEN,
            serde_json::json!({"code": 403, "name": "Forbidden", "description": format!("no{FORGED}")})
                .to_string(),
        )
    });
    let base_url = crate::harness::serve_app(app).await;
    let heron = tempfile::tempdir().expect("tempdir");
    write(
        heron.path(),
        "heron.toml",
        &format!(
            "[provider.h]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"NEON_API_KEY\" }}\n\n\
             [org.acme]\nprovider = \"h\"\ncrm_provider = \"hubspot\"\ninstance_url = \"https://acme.example\"\n\
             auth = {{ access_token = {{ env = \"NEON_API_KEY\" }} }}\nsecret = {{ env = \"NEON_API_KEY\" }}\n\
             config = {{ default_id = {{ external_name = \"Company\" }} }}\n"
        ),
    );
    let plan = orgform(heron.path(), &["plan"]).expect(1);
    assert!(plan.stderr.contains(r"no\n  + create"), "{}", plan.stderr);
    assert!(!forged(&plan.stderr), "plan: {}", plan.stderr);
}

/// A pull request that declares many instances with long hosts must not push the markdown
/// plan past GitHub's 65,536-character comment: the warnings at its head are bounded like its
/// rows, and the summary and digest stay in it.
#[test]
fn the_markdown_plan_stays_a_comment_whatever_the_head_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = format!("{}ex", "a.".repeat(120));
    let mut text = String::new();
    for i in 0..80 {
        text.push_str(&format!(
            "[provider.neon{i}]\ntype = \"neoncrm\"\nbase_url = \"https://{host}\"\norg_id = {{ env = \"NEON_ORG_ID\" }}\napi_key = {{ env = \"NEON_API_KEY\" }}\n\n\
             [org.acme{i}]\nprovider = \"neon{i}\"\norganization_name = \"Acme {i}\"\n\n"
        ));
    }
    write(dir.path(), "neon.toml", &text);
    let run = orgform(
        dir.path(),
        &["plan", "--refresh=false", "--format", "markdown"],
    )
    .expect(0);
    assert!(
        run.stdout.chars().count() <= 65_536,
        "{} characters",
        run.stdout.chars().count()
    );
    assert!(run.stdout.contains("Plan digest:"), "{}", run.stdout);
    assert!(run.stdout.contains("80 to create"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("more provider instances send credentials")
    );
}

/// `validate --format json` names a file by its real path (JSON escapes it as a string), not by
/// the terminal's escaped text of it, which no script could open.
#[test]
fn validate_json_names_a_file_by_its_real_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "odd\tname\u{1b}.toml";
    write(dir.path(), name, "[org.x]\nprovider = \"missing\"\n");
    let run = orgform(dir.path(), &["validate", "--format", "json"]).expect(1);
    assert_clean("validate's JSON", &run.stdout);
    let document: serde_json::Value = serde_json::from_str(&run.stdout).expect("one document");
    let file = document["diagnostics"][0]["file"].as_str().expect("a file");
    assert!(
        std::path::Path::new(file).ends_with(name),
        "{file:?} is not the file"
    );
}

/// What the operator types is echoed escaped too: a `--target` pattern that matches nothing,
/// an address `import` or `forget` can't find, and a `--state` path, each with a line break
/// (a CI job may build them from a pull request's labels or comments).
#[test]
fn operator_text_is_echoed_without_line_breaks() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "neon.toml", &neon_org("acme", "Acme"));
    let forged = "x\n  + create    forged";
    let state = format!("st{forged}.json");
    let forges = |text: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with("+ create    forged"))
    };
    for args in [
        &["plan", "--sandbox", "--target", forged][..],
        &["import", "--sandbox", forged, "1"],
        &["forget", "--state", &state, forged],
        &["state", "list", "--state", &state],
        &["plan", "--sandbox", "--out", &state],
    ] {
        let run = crate::harness::run(dir.path(), args, &[]);
        assert!(
            !forges(&run.stdout) && !forges(&run.stderr),
            "{args:?}:\n{}{}",
            run.stdout,
            run.stderr
        );
    }
}
