//! The only place that prints. stdout carries data (plans, JSON, state); stderr carries
//! messages, prompts and progress, so that `orgform plan --format json > plan.json` stays clean.
//!
//! Renderers are pure functions from values to strings, so golden tests compare them whole.
//! Colour only where it is read by a person: a stream that is a terminal, without `NO_COLOR`
//! ([`init_errors`] decides once, for stdout and stderr apart); anywhere else no escape code at
//! all, so a CI log or a piped plan holds plain text.

#![expect(clippy::print_stderr, reason = "the one place that prints")]

use std::fmt::Write as _;
use std::io::Write as _;

use crate::apply::{ApplyReport, Event, Outcome, Waits};
use crate::escape::{self, Shown};
use crate::plan::{Action, Change, Plan, QuotaUse};
use crate::state::State;
use crate::text::plural;
use crate::time;

/// Whether stderr is coloured (error reports, logs; set once by [`init_errors`]): their SGR
/// sequences are the only escape sequences let through to stderr, beside the progress bar's.
static COLOUR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Whether stdout is coloured (a plan's actions; set once by [`init_errors`]).
static COLOUR_OUT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Whether what goes to stderr may be coloured: a terminal, and no `NO_COLOR`.
pub fn colour_on_stderr() -> bool {
    COLOUR.get().copied().unwrap_or(false)
}

/// Whether what goes to stdout may be coloured: a terminal, and no `NO_COLOR`.
pub fn colour_on_stdout() -> bool {
    COLOUR_OUT.get().copied().unwrap_or(false)
}

/// Writes data to stdout. Values are escaped where they are rendered; this last guard escapes
/// whatever control character a renderer let through, keeping line breaks and tabs (and, on a
/// coloured terminal, colours), and scrubs any secret a provider sent back.
pub fn data(text: &str) {
    let text = crate::secrets::scrub(text);
    let text = escape::keeping_lines(&text, colour_on_stdout());
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// The progress bar being drawn, if any: a message printed meanwhile (an interrupt, a warning)
/// goes above it rather than through it.
static BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

fn shown_bar() -> Option<indicatif::ProgressBar> {
    BAR.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Writes a message line to stderr, with control characters escaped (line breaks kept) and
/// secrets scrubbed.
pub fn message(text: &str) {
    let text = crate::secrets::scrub(text);
    let text = escape::keeping_lines(&text, false);
    match shown_bar() {
        Some(bar) => bar.suspend(|| eprintln!("{text}")),
        None => eprintln!("{text}"),
    }
}

/// Asks on stderr and reads one line from stdin.
pub fn ask(question: &str) -> Option<String> {
    eprint!("{question} ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok()?;
    Some(answer.trim().to_string())
}

fn sign(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Adopt => ">",
        Action::Unchanged => "=",
        Action::Recreate => "!",
        Action::Blocked => "x",
        Action::Orphan => "-",
        Action::Pending => "?",
        Action::Move => "~",
    }
}

/// The address a change is shown under: `OLD -> NEW` for a rename (a `move`, or one that is
/// blocked), raw; each format escapes it as any value.
fn address_label(c: &Change) -> std::borrow::Cow<'_, str> {
    match &c.from {
        Some(from) => format!("{from} -> {}", c.address).into(),
        None => c.address.as_str().into(),
    }
}

/// One quota's use, for the text and Markdown plans alike; `provider` is the instance's name
/// as the format shows it.
fn quota_line(q: &QuotaUse, provider: impl std::fmt::Display) -> String {
    format!(
        "Quota {provider}: {} of {} creates used in the last 24 hours; {} now, {} wait for a later apply.",
        q.used, q.limit, q.planned, q.deferred
    )
}

/// The one-line summary: `2 to create, 1 to adopt, 3 unchanged`.
pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    let mut parts = Vec::new();
    let mut push = |n: usize, text: &str| {
        if n > 0 {
            parts.push(format!("{n} {text}"));
        }
    };
    push(s.create, "to create");
    push(s.recreate, "to recreate");
    push(s.adopt, "to adopt");
    push(s.moves, "to move");
    push(s.pending, "pending");
    push(s.blocked, "blocked");
    push(s.orphan, if s.orphan == 1 { "orphan" } else { "orphans" });
    push(s.deferred, "deferred by quota");
    push(s.unchanged, "unchanged");
    if parts.is_empty() {
        "nothing declared and nothing in state".into()
    } else {
        parts.join(", ")
    }
}

/// The SGR colour of an action in a text plan: green what is created, cyan what is taken
/// over or renamed, yellow what waits or is left alone, red what is refused.
fn action_colour(action: Action) -> &'static str {
    match action {
        Action::Create | Action::Recreate => "32",
        Action::Adopt | Action::Move => "36",
        Action::Pending | Action::Orphan => "33",
        Action::Blocked => "31",
        Action::Unchanged => "0",
    }
}

/// Plan as text for a terminal or a CI log. Unchanged addresses are counted, not listed.
pub fn plan_text(plan: &Plan) -> String {
    plan_text_styled(plan, false)
}

/// Plan as text, the action sign and word of each change coloured when `colour` (for a
/// terminal): the same text otherwise.
pub fn plan_text_styled(plan: &Plan, colour: bool) -> String {
    let mut out = String::new();
    for warning in &plan.endpoint_warnings {
        let _ = writeln!(out, "Warning: {}.", escape::controls(&warning.to_string()));
    }
    if !plan.endpoint_warnings.is_empty() {
        out.push('\n');
    }
    if let Some(line) = partial_line(plan) {
        let _ = writeln!(out, "{line}\n");
    }
    if !plan.refreshed {
        out.push_str("Note: remote reality was not read (--refresh=false); the plan rests on specs and state alone.\n\n");
    }
    let shown: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .collect();
    if shown.is_empty() {
        let _ = writeln!(out, "No changes. {}.", capitalise(&summary_line(plan)));
        let _ = writeln!(out, "Plan digest: {}", plan.content_digest());
        return out;
    }
    let labels: Vec<std::borrow::Cow<'_, str>> = shown.iter().map(|c| address_label(c)).collect();
    let width = column_width(labels.iter().map(AsRef::as_ref));
    let pwidth = column_width(shown.iter().map(|c| c.provider.as_str()));
    for (c, label) in shown.iter().zip(&labels) {
        let deferred = if c.deferred { " (deferred)" } else { "" };
        let name = c.action.name();
        let word = format!("{} {name}", sign(c.action));
        if colour {
            let _ = write!(out, "  \x1b[{}m{word}\x1b[0m", action_colour(c.action));
        } else {
            let _ = write!(out, "  {word}");
        }
        out.extend(std::iter::repeat_n(' ', 10 - name.len().min(9)));
        padded(&mut out, label, width);
        out.push_str("  ");
        padded(&mut out, &c.provider, pwidth);
        let _ = writeln!(out, "  {}{deferred}", Shown(&c.natural_key.0));
        let _ = writeln!(out, "      {}", Shown(&c.reason));
        if let Some(id) = &c.remote_id {
            let _ = writeln!(out, "      remote id: {}", Shown(id));
        }
        for d in &c.diff {
            let _ = writeln!(
                out,
                "      ~ {}: {} -> {}",
                Shown(&d.path),
                json_value(d.before.as_ref()),
                json_value(d.after.as_ref())
            );
        }
    }
    for q in &plan.quotas {
        let _ = writeln!(out, "\n{}", quota_line(q, Shown(&q.provider)));
    }
    let _ = writeln!(out, "\nPlan: {}.", summary_line(plan));
    let _ = writeln!(out, "Plan digest: {}", plan.content_digest());
    out
}

/// For a plan limited by `--target`, the line that says so (patterns escaped); `None` for a
/// whole plan.
pub fn partial_line(plan: &Plan) -> Option<String> {
    plan.is_partial().then(|| {
        let patterns: Vec<String> = plan
            .targets
            .iter()
            .map(|t| Shown(t).to_string())
            .collect();
        format!(
            "Partial plan: only addresses matching --target {}; nothing else is planned or applied.",
            patterns.join(", ")
        )
    })
}

/// Alignment stops at this many characters: one long value (a state file's addresses are not
/// held to the spec rule) pushes its own line along, not every line of the plan.
const MAX_COLUMN: usize = 64;

/// The width of a column of values as they are shown, at most [`MAX_COLUMN`].
fn column_width<'a>(values: impl Iterator<Item = &'a str>) -> usize {
    values
        .map(escape::shown_width)
        .max()
        .unwrap_or(0)
        .min(MAX_COLUMN)
}

/// Writes `text` escaped, then spaces up to `width` characters. Padding by hand rather than
/// with `{:<width$}`, whose width past 65,535 panics.
fn padded(out: &mut String, text: &str, width: usize) {
    let _ = write!(out, "{}", Shown(text));
    let shown = escape::shown_width(text);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(shown)));
}

/// A JSON value (or `(absent)`) on one line, with nothing a terminal obeys.
fn json_value(value: Option<&serde_json::Value>) -> String {
    value.map_or_else(
        || "(absent)".to_string(),
        |v| escape::json(serde_json::to_string(v).unwrap_or_default()),
    )
}

/// Plan as JSON: the plan itself plus its summary, stable and versioned.
pub fn plan_json(plan: &Plan) -> String {
    escape::json(serde_json::to_string_pretty(&plan_value(plan)).unwrap_or_default())
}

/// The JSON plan as a value, for the documents that hold one (`apply --format json`).
fn plan_value(plan: &Plan) -> serde_json::Value {
    let mut value = serde_json::to_value(plan).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut value {
        map.insert(
            "summary".into(),
            serde_json::to_value(plan.summary()).unwrap_or(serde_json::Value::Null),
        );
        map.insert("digest".into(), plan.content_digest().into());
    }
    value
}

/// GitHub refuses comments over 65,536 characters; stay under with room for a wrapper.
pub const MARKDOWN_BUDGET: usize = 65_000;

/// Plan as markdown for a pull-request comment: the summary, a table per provider, each
/// organization's attributes in a collapsed block, secrets by reference only. Never longer
/// than `budget` characters: past it, details and then table rows are cut, with a note that
/// points at the full JSON plan (`json_hint`, markdown the caller wrote, any value in it through
/// [`md_code`]). The summary is never cut.
pub fn plan_markdown_within(plan: &Plan, budget: usize, json_hint: &str) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "### orgform plan\n");
    // First, where no reviewer can miss it: a pull request that edits a `base_url` would get
    // the CI job's credentials. The names are the specs' text: shown through `md_code`.
    // The head is bounded too (a quarter of the budget for warnings, another for quotas): a
    // pull request that declares many instances with long hosts must not push the summary,
    // the digest and every row out of a comment GitHub would then refuse.
    let lines = plan.endpoint_warnings.iter().map(|w| {
        format!(
            "> **Warning:** credentials for {} go to {} ({}), which is not a vendor host of {}; check that the specs mean it.\n\n",
            md_code(&w.provider),
            md_code(&w.host),
            md_code(&w.setting),
            w.provider_type
        )
    });
    let cut = push_within(&mut head, lines, budget / 4);
    if cut > 0 {
        let _ = writeln!(
            head,
            "> **Warning:** {cut} more provider instances send credentials to hosts that are not their vendor's; `orgform plan` lists them all.\n"
        );
    }
    let _ = writeln!(head, "**{}**\n", capitalise(&summary_line(plan)));
    let _ = writeln!(head, "Plan digest: `{}`\n", plan.content_digest());
    if plan.is_partial() {
        let patterns: Vec<String> = plan.targets.iter().map(|t| md_code(t)).collect();
        let _ = writeln!(
            head,
            "> **Partial plan:** only addresses matching `--target` {}; nothing else is planned or applied.\n",
            patterns.join(", ")
        );
    }
    if !plan.refreshed {
        head.push_str("> Remote reality was not read (`--refresh=false`): this plan rests on specs and state alone.\n\n");
    }
    let lines = plan
        .quotas
        .iter()
        .map(|q| format!("> {}\n\n", quota_line(q, md_code(&q.provider))));
    let cut = push_within(&mut head, lines, budget / 4);
    if cut > 0 {
        let _ = writeln!(
            head,
            "> {cut} more quota lines; `orgform plan` shows them all.\n"
        );
    }

    let mut by_provider: std::collections::BTreeMap<&str, Vec<&Change>> =
        std::collections::BTreeMap::new();
    for c in plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
    {
        by_provider.entry(&c.provider).or_default().push(c);
    }
    if by_provider.is_empty() {
        head.push_str("No changes.\n");
        return head;
    }

    // Tables first: they are what a reviewer reads. Details only with what room is left.
    let note_room = 400;
    let mut tables = String::new();
    let mut rows_cut = 0usize;
    for (provider, changes) in &by_provider {
        let mut table = format!(
            "#### {} ({})\n\n| action | address | natural key | why |\n|---|---|---|---|\n",
            md_code(provider),
            changes[0].provider_type
        );
        for (i, c) in changes.iter().enumerate() {
            let row = format!(
                "| {} {}{} | {} | {} | {} |\n",
                sign(c.action),
                c.action.name(),
                if c.deferred { " (deferred)" } else { "" },
                md_code(&address_label(c)),
                md_code(&c.natural_key.0),
                md_code(&c.reason)
            );
            if head.len() + tables.len() + table.len() + row.len() + note_room > budget {
                rows_cut += changes.len() - i;
                break;
            }
            table.push_str(&row);
        }
        table.push('\n');
        if head.len() + tables.len() + table.len() + note_room <= budget {
            tables.push_str(&table);
        }
    }

    let mut details = String::new();
    let mut details_cut = 0usize;
    let total: usize = by_provider.values().map(Vec::len).sum();
    if rows_cut == 0 {
        for changes in by_provider.values() {
            for c in changes {
                let attrs =
                    escape::json(serde_json::to_string_pretty(&c.attributes).unwrap_or_default());
                let fence = fence_for(&attrs);
                let mut block = format!(
                    "<details><summary>{}: {}</summary>\n\n{fence}json\n{attrs}\n{fence}\n",
                    md_code(&address_label(c)),
                    c.action.name()
                );
                for d in &c.diff {
                    let _ = writeln!(
                        block,
                        "- {}: {} → {}",
                        md_code(&d.path),
                        md_code(&json_value(d.before.as_ref())),
                        md_code(&json_value(d.after.as_ref()))
                    );
                }
                block.push_str("</details>\n\n");
                if details_cut > 0
                    || head.len() + tables.len() + details.len() + block.len() + note_room > budget
                {
                    details_cut += 1;
                } else {
                    details.push_str(&block);
                }
            }
        }
    } else {
        details_cut = total;
    }

    let mut out = head;
    out.push_str(&tables);
    out.push_str(&details);
    if rows_cut > 0 || details_cut > 0 {
        let mut note = String::from("> **Cut to fit a pull-request comment:** ");
        if rows_cut > 0 {
            let _ = write!(note, "{} and ", plural(rows_cut, "table row"));
        }
        let _ = writeln!(
            note,
            "the attributes of {details_cut} of {} are not shown. The full plan is in {json_hint}.",
            plural(total, "organization")
        );
        out.push_str(&note);
    }
    out
}

/// Plan as markdown within the pull-request comment budget.
pub fn plan_markdown(plan: &Plan) -> String {
    plan_markdown_within(
        plan,
        MARKDOWN_BUDGET,
        "the JSON plan (`orgform plan --format json`)",
    )
}

/// A value in a markdown plan: in `<code>`, with its controls escaped as on a terminal and
/// every character that markdown, GitHub's extensions or HTML give a meaning written as a
/// numeric character reference, which CommonMark always reads as literal text. So the value
/// is shown as written and nothing in it becomes markup: no tag, no link or autolink, no
/// emphasis, no code span closed early, no table cell split, no math. One form for every
/// place a value goes (inline text, table cells, the HTML of `<summary>`), unlike a backtick
/// code span, which needs the `|` of a table cell escaped in ways GFM renderers disagree on
/// and means nothing inside HTML.
pub fn md_code(text: &str) -> String {
    /// Code spans, emphasis, strikethrough, links, images, HTML and entities, escapes, table
    /// cells, math, autolinks (`:` of a scheme, `.` of `www.`, `@` of an address), headings,
    /// footnotes.
    const MARKUP: &str = "`*_~[]()!<>&\"'\\|$:@.#^{}";
    let shown = escape::controls(text);
    let mut out = String::with_capacity(shown.len() + 16);
    out.push_str("<code>");
    for c in shown.chars() {
        if MARKUP.contains(c) {
            let _ = write!(out, "&#{};", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out.push_str("</code>");
    out
}

/// A fence for a fenced code block holding `text`: backticks, one more than the longest run in
/// it (three at least), so that no line of the text can close the block.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

pub fn plan(plan: &Plan, format: crate::cli::Format) -> String {
    match format {
        crate::cli::Format::Text => plan_text_styled(plan, colour_on_stdout()),
        crate::cli::Format::Json => plan_json(plan),
        crate::cli::Format::Markdown => plan_markdown(plan),
    }
}

/// One line per finished address, for the CI log.
pub fn event_line(address: &str, outcome: &Outcome) -> String {
    let what = match outcome {
        Outcome::Created { remote_id } => format!("created ({remote_id})"),
        Outcome::Adopted { remote_id } => format!("adopted ({remote_id})"),
        Outcome::Moved { from } => format!("moved from {from} in state (no request)"),
        Outcome::StillPending { why } => format!("pending: {why}"),
        Outcome::FailedAtProvider { code, message } => {
            format!("failed at the provider: {code}: {message}")
        }
        Outcome::Error { message } => format!("error: {message}"),
        Outcome::NotStarted { why } => format!("not started: {why}"),
    };
    // One line of values (addresses, ids, what a provider answered): escaped whole.
    escape::controls(&format!("{address}: {what}")).into_owned()
}

/// The end-of-apply summary, after `heading` (`Apply complete`, `Refresh complete`).
pub fn apply_summary(report: &ApplyReport, heading: &str) -> String {
    let mut created = 0;
    let mut adopted = 0;
    let mut pending = 0;
    let mut failed = 0;
    let mut not_started = 0;
    let mut moved = 0;
    for (_, outcome) in report.outcomes.values() {
        match outcome {
            Outcome::Created { .. } => created += 1,
            Outcome::Adopted { .. } => adopted += 1,
            Outcome::Moved { .. } => moved += 1,
            Outcome::StillPending { .. } => pending += 1,
            Outcome::FailedAtProvider { .. } | Outcome::Error { .. } => failed += 1,
            Outcome::NotStarted { .. } => not_started += 1,
        }
    }
    let mut line = format!(
        "{heading}: {created} created, {adopted} adopted, {pending} pending, {failed} failed"
    );
    if moved > 0 {
        let _ = write!(line, ", {moved} moved");
    }
    if not_started > 0 {
        let _ = write!(line, ", {not_started} not started");
    }
    line.push('.');
    if let Some(why) = &report.stopped {
        let _ = write!(line, "\nStopped early: {}", Shown(why));
    }
    line
}

/// Appends `lines` to `head` while they fit in `room` more characters; the number left out.
fn push_within(head: &mut String, lines: impl Iterator<Item = String>, room: usize) -> usize {
    let end = head.len() + room;
    let mut cut = 0;
    for line in lines {
        if head.len() + line.len() > end {
            cut += 1;
        } else {
            head.push_str(&line);
        }
    }
    cut
}

/// Whether this run printed its `apply --format json` document: a run refused after that has
/// said what it had to; one refused before it still owes one.
static APPLY_DOCUMENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints `apply --format json`'s one document ([`apply_json`]) on stdout.
pub fn print_apply_document(plan: Option<&Plan>, report: Option<&ApplyReport>) {
    APPLY_DOCUMENT.store(true, std::sync::atomic::Ordering::SeqCst);
    data(&apply_json(plan, report));
}

/// With `--format json`, the document of an apply refused or ended before it printed one: no
/// plan (or none it could stand by), no outcomes, and why it stopped, so that a script reading
/// stdout always gets its one document.
pub fn print_apply_refusal(why: &str) {
    if APPLY_DOCUMENT.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "format_version": 1,
        "plan": null,
        "outcomes": {},
        "stopped": why,
    }))
    .unwrap_or_default();
    data(&escape::json(text));
}

/// `apply --format json` (and `refresh`): one document, the plan and what became of each
/// address: `{"format_version": 1, "plan": PLAN, "outcomes": {ADDRESS: {"action", "result",
/// "detail"}}, "stopped": null or why}`. With no report (nothing to apply, or refused before
/// anything was sent), the outcomes are empty.
pub fn apply_json(plan: Option<&Plan>, report: Option<&ApplyReport>) -> String {
    let outcomes: serde_json::Map<String, serde_json::Value> = report
        .iter()
        .flat_map(|r| &r.outcomes)
        .map(|(address, (action, outcome))| {
            let (result, detail) = match outcome {
                Outcome::Created { remote_id } => ("created", remote_id.clone()),
                Outcome::Adopted { remote_id } => ("adopted", remote_id.clone()),
                Outcome::Moved { from } => ("moved", from.clone()),
                Outcome::StillPending { why } => ("pending", why.clone()),
                Outcome::FailedAtProvider { code, message } => {
                    ("failed", format!("{code}: {message}"))
                }
                Outcome::Error { message } => ("error", message.clone()),
                Outcome::NotStarted { why } => ("not_started", why.clone()),
            };
            (
                address.clone(),
                serde_json::json!({"action": action.name(), "result": result, "detail": detail}),
            )
        })
        .collect();
    escape::json(
        serde_json::to_string_pretty(&serde_json::json!({
            "format_version": 1,
            "plan": plan.map(plan_value),
            "outcomes": outcomes,
            "stopped": report.and_then(|r| r.stopped.as_ref()),
        }))
        .unwrap_or_default(),
    )
}

/// State as a table.
pub fn state_text(state: &State) -> String {
    if state.orgs.is_empty() {
        return format!(
            "State is empty (lineage {}, serial {}).\n",
            escape::Shown(&state.lineage),
            state.serial
        );
    }
    let mut out = format!(
        "State: {} (lineage {}, serial {})\n\n",
        plural(state.orgs.len(), "organization"),
        escape::Shown(&state.lineage),
        state.serial
    );
    let width = column_width(state.orgs.keys().map(String::as_str));
    for (address, r) in &state.orgs {
        out.push_str("  ");
        padded(&mut out, address, width);
        let _ = write!(out, "  {:<8} ", r.status.name());
        padded(&mut out, &r.provider, 20);
        out.push(' ');
        padded(&mut out, r.remote_id.as_deref().unwrap_or("-"), 24);
        let _ = writeln!(out, " {}", Shown(&r.natural_key.0));
        if let Some(e) = &r.error {
            out.push_str("  ");
            padded(&mut out, "", width);
            let _ = writeln!(out, "  error {}: {}", Shown(&e.code), Shown(&e.message));
        }
    }
    let _ = writeln!(
        out,
        "\nLast written {}.",
        state
            .orgs
            .values()
            .map(|r| r.updated_at)
            .max()
            .map_or_else(String::new, time::format)
    );
    out
}

/// State for a pull-request comment: the text table in a fenced code block, whose fence no
/// line of it can close, so nothing a state file holds renders as markup.
pub fn state_markdown(state: &State) -> String {
    let text = state_text(state);
    let fence = fence_for(&text);
    format!("{fence}text\n{text}{fence}\n")
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Sets how errors look: annotated snippets everywhere, but wrapped to the width of a terminal
/// only on one (a CI log keeps each message on one line, so it can be searched), in colour only
/// on a terminal and without `NO_COLOR`.
///
/// Decides colour for everything else too, stdout and stderr apart: a plan piped to a file has
/// none while its messages on the terminal do.
pub fn init_errors() {
    use std::io::IsTerminal as _;
    let terminal = std::io::stderr().is_terminal();
    #[expect(clippy::disallowed_methods, reason = "a config reader: NO_COLOR")]
    let wanted = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let color = terminal && wanted;
    let _ = COLOUR.set(color);
    let _ = COLOUR_OUT.set(wanted && std::io::stdout().is_terminal());
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .wrap_lines(terminal)
                .color(color)
                .unicode(terminal)
                .build(),
        )
    }));
}

/// Prints an error with its chain (and, for spec problems, annotated snippets) on stderr.
/// Spec problems escape what they quote; other errors quote paths, names and what providers
/// answered, so the whole report is escaped too, keeping its line breaks and its colours.
pub fn error(report: &miette::Report) {
    let text = format!("{report:?}");
    let text = crate::secrets::scrub(&text);
    eprintln!("{}", escape::keeping_lines(&text, colour_on_stderr()));
}

/// Says once, on stderr, that a run waits for the state lock and who holds it (`holder`, as
/// [`crate::state::LockInfo`] shows it, or `None` where the holder left no record), and how long
/// it waits.
pub fn waiting_for_lock(holder: Option<&str>, timeout: std::time::Duration) {
    let holder = holder.map_or_else(String::new, |h| format!(" (held by {h})"));
    message(&format!(
        "Acquiring state lock...{holder}; waiting up to {} (--lock-timeout).",
        humantime::format_duration(timeout)
    ));
}

/// How often the bar is drawn again while nothing finishes: its clock, spinner, estimate and
/// countdowns move on their own.
const TICK: std::time::Duration = std::time::Duration::from_millis(200);

/// Progress of an apply on stderr. On a terminal, a bar that ticks on a timer, with an estimate
/// of the time left and what the run waits for, each finished address printed above it; off a
/// terminal (CI logs), plain lines: one per address, and one when a long wait starts.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    /// What the run waits for now, read by the bar at each tick.
    waits: std::sync::Arc<std::sync::Mutex<Waits>>,
    /// Set by [`Progress::finish`]: an event after it (from a task being torn down) shows nothing.
    finished: std::sync::atomic::AtomicBool,
}

impl Progress {
    /// `quiet` prints nothing per address (for `--format json`, whose report goes to stdout).
    pub fn new(total: usize, quiet: bool) -> Progress {
        use std::io::IsTerminal as _;
        let waits = std::sync::Arc::new(std::sync::Mutex::new(Waits::default()));
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            let shown = waits.clone();
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} organizations [{elapsed_precise}] {wide_bar} {status}",
            ) {
                bar.set_style(style.with_key(
                    "status",
                    move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let waits = lock_waits(&shown);
                        let now = time::now();
                        let left = time_left(
                            state.pos(),
                            state.len().unwrap_or(0),
                            state.elapsed(),
                            &waits,
                            now,
                        );
                        let waiting = waits_text(&waits, now);
                        let sep = if left.is_empty() || waiting.is_empty() {
                            ""
                        } else {
                            "; "
                        };
                        let _ = write!(w, "{left}{sep}{waiting}");
                    },
                ));
            }
            bar.enable_steady_tick(TICK);
            *BAR.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar.clone());
            bar
        });
        Progress {
            bar,
            quiet,
            waits,
            finished: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn event(&self, event: &Event) {
        if self.quiet || self.finished.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        match event {
            Event::Finished { address, outcome } => {
                let line = event_line(address, outcome);
                match &self.bar {
                    Some(bar) => {
                        bar.println(crate::secrets::scrub(&line));
                        bar.inc(1);
                    }
                    None => message(&line),
                }
            }
            Event::Waiting(now) => {
                let before = std::mem::replace(&mut *lock_waits(&self.waits), now.clone());
                if self.bar.is_none() {
                    for line in wait_lines(&before, now, time::now()) {
                        message(&line);
                    }
                }
            }
        }
    }

    pub fn finish(&self) {
        self.finished
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(bar) = &self.bar {
            BAR.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            bar.finish_and_clear();
        }
    }
}

fn lock_waits(waits: &std::sync::Mutex<Waits>) -> std::sync::MutexGuard<'_, Waits> {
    waits
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `HH:MM:SS UTC` of a Unix time, for a wait that ends today or soon.
fn clock_time(at: u64) -> String {
    let text = time::format(at);
    let clock = text
        .split_once('T')
        .map_or(text.as_str(), |(_, clock)| clock.trim_end_matches('Z'));
    format!("{clock} UTC")
}

/// Seconds in words: `42s`, `3m 5s`.
fn seconds(secs: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

/// What the bar says the run waits for: a rate limit (until when, counting down), sign-ups
/// being polled, the creates in flight after an interrupt; empty when it waits for nothing in
/// particular. Names are escaped.
fn waits_text(waits: &Waits, now: u64) -> String {
    let mut parts = Vec::new();
    for (instance, until) in &waits.rate_limits {
        parts.push(format!(
            "the rate limit of `{}` until {} (in {})",
            Shown(instance),
            clock_time(*until),
            seconds(until.saturating_sub(now))
        ));
    }
    if waits.polling > 0 {
        parts.push(format!("{} being polled", plural(waits.polling, "sign-up")));
    }
    if waits.stopping && waits.in_flight > 0 {
        parts.push(format!(
            "{} in flight to finish",
            plural(waits.in_flight, "create")
        ));
    }
    let waiting = if parts.is_empty() {
        String::new()
    } else {
        format!("waiting for {}", parts.join("; "))
    };
    match (waits.stopping, waiting.is_empty()) {
        (true, true) => "interrupted".to_string(),
        (true, false) => format!("interrupted, {waiting}"),
        (false, _) => waiting,
    }
}

/// The estimate of the time left: the average time per finished organization so far, times
/// those left, and never less than a rate limit that holds; empty before the first one
/// finishes (nothing to go by) and at the end.
fn time_left(
    done: u64,
    total: u64,
    elapsed: std::time::Duration,
    waits: &Waits,
    now: u64,
) -> String {
    if done >= total {
        return String::new();
    }
    let held = waits
        .rate_limits
        .values()
        .map(|until| until.saturating_sub(now))
        .max()
        .unwrap_or(0);
    let average = (done > 0).then(|| {
        let left_ms = elapsed.as_millis() * u128::from(total - done) / u128::from(done);
        u64::try_from(left_ms.div_ceil(1000)).unwrap_or(u64::MAX)
    });
    match average {
        Some(left) => format!("~{} left", seconds(left.max(held))),
        None if held > 0 => format!("at least {} left", seconds(held)),
        None => String::new(),
    }
}

/// Off a terminal, the lines that say a long wait started (a CI log has no bar to read it
/// from): a rate limit met or pushed later, in-flight creates finished after an interrupt.
/// Sign-ups being polled are not said: each one's line comes when it finishes, within
/// `--settle-timeout`.
fn wait_lines(before: &Waits, now: &Waits, at: u64) -> Vec<String> {
    let mut lines = Vec::new();
    for (instance, until) in &now.rate_limits {
        if before.rate_limits.get(instance).is_none_or(|b| b < until) {
            lines.push(format!(
                "Waiting for the rate limit of `{}` until {} (in {}).",
                Shown(instance),
                clock_time(*until),
                seconds(until.saturating_sub(at))
            ));
        }
    }
    if now.stopping && !before.stopping && now.in_flight > 0 {
        lines.push(format!(
            "Waiting for {} in flight to finish.",
            plural(now.in_flight, "create")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Waits, time_left, wait_lines, waits_text};

    /// 2026-12-03T12:00:00Z.
    const NOON: u64 = 1_796_299_200;

    #[test]
    fn the_bar_says_what_it_waits_for_and_how_long_is_left() {
        let idle = Waits::default();
        assert_eq!(waits_text(&idle, NOON), "");
        let limited = Waits {
            in_flight: 3,
            polling: 2,
            rate_limits: [("heron_prod".to_string(), NOON + 42)].into(),
            stopping: false,
        };
        assert_eq!(
            waits_text(&limited, NOON),
            "waiting for the rate limit of `heron_prod` until 12:00:42 UTC (in 42s); 2 sign-ups being polled"
        );
        let stopping = Waits {
            stopping: true,
            rate_limits: [].into(),
            ..limited.clone()
        };
        assert_eq!(
            waits_text(&stopping, NOON),
            "interrupted, waiting for 2 sign-ups being polled; 3 creates in flight to finish"
        );
        // Nothing finished yet: only a rate limit gives an estimate; then the average, never
        // shorter than the rate limit.
        assert_eq!(time_left(0, 4, Duration::from_secs(5), &idle, NOON), "");
        assert_eq!(
            time_left(0, 4, Duration::from_secs(5), &limited, NOON),
            "at least 42s left"
        );
        assert_eq!(
            time_left(1, 4, Duration::from_secs(20), &idle, NOON),
            "~1m left"
        );
        assert_eq!(
            time_left(3, 4, Duration::from_secs(3), &limited, NOON),
            "~42s left"
        );
        assert_eq!(time_left(4, 4, Duration::from_secs(3), &idle, NOON), "");
    }

    #[test]
    fn off_a_terminal_a_wait_is_said_when_it_starts() {
        let idle = Waits::default();
        let limited = Waits {
            in_flight: 1,
            rate_limits: [("heron_prod".to_string(), NOON + 30)].into(),
            ..Waits::default()
        };
        assert_eq!(
            wait_lines(&idle, &limited, NOON),
            ["Waiting for the rate limit of `heron_prod` until 12:00:30 UTC (in 30s)."]
        );
        // The same wait, or fewer in flight: nothing new to say.
        assert!(wait_lines(&limited, &limited, NOON + 5).is_empty());
        let stopping = Waits {
            stopping: true,
            polling: 1,
            ..limited.clone()
        };
        assert_eq!(
            wait_lines(&limited, &stopping, NOON),
            ["Waiting for 1 create in flight to finish."]
        );
    }
}
