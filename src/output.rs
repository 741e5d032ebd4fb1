//! The only place that prints. stdout carries data (plans, JSON, state); stderr carries
//! messages, prompts and progress, so that `orgform plan --format json > plan.json` stays clean.
//!
//! Renderers are pure functions from values to strings, so golden tests compare them whole.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::io::Write as _;

use crate::apply::{ApplyReport, Event, Outcome};
use crate::plan::{Action, Change, Plan};
use crate::spec::diagnostic::plural;
use crate::state::{State, time};

/// Writes data to stdout.
pub fn data(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// Writes a message line to stderr.
pub fn message(text: &str) {
    eprintln!("{text}");
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
    }
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

/// Plan as text for a terminal or a CI log. Unchanged addresses are counted, not listed.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    for warning in &plan.endpoint_warnings {
        let _ = writeln!(out, "Warning: {warning}.");
    }
    if !plan.endpoint_warnings.is_empty() {
        out.push('\n');
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
        return out;
    }
    let width = shown.iter().map(|c| c.address.len()).max().unwrap_or(0);
    let pwidth = shown.iter().map(|c| c.provider.len()).max().unwrap_or(0);
    for c in &shown {
        let deferred = if c.deferred { " (deferred)" } else { "" };
        let _ = writeln!(
            out,
            "  {} {:<9} {:<width$}  {:<pwidth$}  {}{deferred}",
            sign(c.action),
            c.action.name(),
            c.address,
            c.provider,
            c.natural_key,
        );
        let _ = writeln!(out, "      {}", c.reason);
        if let Some(id) = &c.remote_id {
            let _ = writeln!(out, "      remote id: {id}");
        }
        for d in &c.diff {
            let show = |v: &Option<serde_json::Value>| {
                v.as_ref()
                    .map_or("(absent)".to_string(), ToString::to_string)
            };
            let _ = writeln!(
                out,
                "      ~ {}: {} -> {}",
                d.path,
                show(&d.before),
                show(&d.after)
            );
        }
    }
    for q in &plan.quotas {
        let _ = writeln!(
            out,
            "\nQuota {}: {} of {} creates used in the last 24 hours; {} now, {} wait for a later apply.",
            q.provider, q.used, q.limit, q.planned, q.deferred
        );
    }
    let _ = writeln!(out, "\nPlan: {}.", summary_line(plan));
    out
}

/// Plan as JSON: the plan itself plus its summary, stable and versioned.
pub fn plan_json(plan: &Plan) -> String {
    let mut value = serde_json::to_value(plan).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut value {
        map.insert(
            "summary".into(),
            serde_json::to_value(plan.summary()).unwrap_or(serde_json::Value::Null),
        );
    }
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// GitHub refuses comments over 65,536 characters; stay under with room for a wrapper.
pub const MARKDOWN_BUDGET: usize = 65_000;

/// Plan as markdown for a pull-request comment: the summary, a table per provider, each
/// organization's attributes in a collapsed block, secrets by reference only. Never longer
/// than `budget` characters: past it, details and then table rows are cut, with a note that
/// points at the full JSON plan. The summary is never cut.
pub fn plan_markdown_within(plan: &Plan, budget: usize, json_hint: &str) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "### orgform plan\n");
    // First, where no reviewer can miss it: a pull request that edits a `base_url` would get
    // the CI job's credentials. The host is the specs' text: in a code span it cannot close.
    for w in &plan.endpoint_warnings {
        let _ = writeln!(
            head,
            "> **Warning:** credentials for `{}` go to {} ({}), which is not a {} vendor host; check that the specs mean it.\n",
            w.provider,
            code_span(&w.host),
            w.setting,
            w.provider_type
        );
    }
    let _ = writeln!(head, "**{}**\n", capitalise(&summary_line(plan)));
    if !plan.refreshed {
        head.push_str("> Remote reality was not read (`--refresh=false`): this plan rests on specs and state alone.\n\n");
    }
    for q in &plan.quotas {
        let _ = writeln!(
            head,
            "> Quota `{}`: {} of {} creates used in the last 24 hours; {} now, {} wait for a later apply.\n",
            q.provider, q.used, q.limit, q.planned, q.deferred
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
            "#### `{provider}` ({})\n\n| action | address | natural key | why |\n|---|---|---|---|\n",
            changes[0].provider_type
        );
        for (i, c) in changes.iter().enumerate() {
            let row = format!(
                "| {} {}{} | `{}` | `{}` | {} |\n",
                sign(c.action),
                c.action.name(),
                if c.deferred { " (deferred)" } else { "" },
                c.address,
                escape_cell(&c.natural_key.0),
                escape_cell(&c.reason)
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
                let attrs = serde_json::to_string_pretty(&c.attributes).unwrap_or_default();
                let mut block = format!(
                    "<details><summary><code>{}</code>: {}</summary>\n\n```json\n{attrs}\n```\n",
                    c.address,
                    c.action.name()
                );
                for d in &c.diff {
                    let show = |v: &Option<serde_json::Value>| {
                        v.as_ref()
                            .map_or("(absent)".to_string(), ToString::to_string)
                    };
                    let _ = writeln!(
                        block,
                        "- `{}`: `{}` → `{}`",
                        d.path,
                        show(&d.before),
                        show(&d.after)
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
            let _ = write!(note, "{rows_cut} table rows and ");
        }
        let _ = writeln!(
            note,
            "the attributes of {details_cut} of {total} organizations are not shown. The full plan is in {json_hint}."
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

/// `text` as a markdown code span that nothing in it can close: fenced by one more backtick
/// than its longest run of them, padded with a space where it starts or ends with one.
fn code_span(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let text = text.replace(['\n', '\r'], " ");
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn plan(plan: &Plan, format: crate::cli::Format) -> String {
    match format {
        crate::cli::Format::Text => plan_text(plan),
        crate::cli::Format::Json => plan_json(plan),
        crate::cli::Format::Markdown => plan_markdown(plan),
    }
}

/// One line per finished address, for the CI log.
pub fn event_line(event: &Event) -> String {
    let what = match &event.outcome {
        Outcome::Created { remote_id } => format!("created ({remote_id})"),
        Outcome::Adopted { remote_id } => format!("adopted ({remote_id})"),
        Outcome::StillPending { why } => format!("pending: {why}"),
        Outcome::FailedAtProvider { code, message } => {
            format!("failed at the provider: {code}: {message}")
        }
        Outcome::Error { message } => format!("error: {message}"),
        Outcome::NotStarted { why } => format!("not started: {why}"),
    };
    format!("{}: {what}", event.address)
}

/// The end-of-apply summary.
pub fn apply_summary(report: &ApplyReport) -> String {
    let mut created = 0;
    let mut adopted = 0;
    let mut pending = 0;
    let mut failed = 0;
    let mut not_started = 0;
    for (_, outcome) in report.outcomes.values() {
        match outcome {
            Outcome::Created { .. } => created += 1,
            Outcome::Adopted { .. } => adopted += 1,
            Outcome::StillPending { .. } => pending += 1,
            Outcome::FailedAtProvider { .. } | Outcome::Error { .. } => failed += 1,
            Outcome::NotStarted { .. } => not_started += 1,
        }
    }
    let mut line = format!(
        "Apply complete: {created} created, {adopted} adopted, {pending} pending, {failed} failed"
    );
    if not_started > 0 {
        let _ = write!(line, ", {not_started} not started");
    }
    line.push('.');
    if let Some(why) = &report.stopped {
        let _ = write!(line, "\nStopped early: {why}");
    }
    line
}

pub fn apply_json(report: &ApplyReport) -> String {
    let outcomes: serde_json::Map<String, serde_json::Value> = report
        .outcomes
        .iter()
        .map(|(address, (action, outcome))| {
            let (result, detail) = match outcome {
                Outcome::Created { remote_id } => ("created", remote_id.clone()),
                Outcome::Adopted { remote_id } => ("adopted", remote_id.clone()),
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
    serde_json::to_string_pretty(&serde_json::json!({
        "format_version": 1,
        "outcomes": outcomes,
        "stopped": report.stopped,
    }))
    .unwrap_or_default()
}

/// State as a table.
pub fn state_text(state: &State) -> String {
    if state.orgs.is_empty() {
        return format!(
            "State is empty (lineage {}, serial {}).\n",
            state.lineage, state.serial
        );
    }
    let mut out = format!(
        "State: {} (lineage {}, serial {})\n\n",
        plural(state.orgs.len(), "organization"),
        state.lineage,
        state.serial
    );
    let width = state.orgs.keys().map(String::len).max().unwrap_or(0);
    for (address, r) in &state.orgs {
        let _ = writeln!(
            out,
            "  {address:<width$}  {:<8} {:<20} {:<24} {}",
            r.status.name(),
            r.provider,
            r.remote_id.as_deref().unwrap_or("-"),
            r.natural_key
        );
        if let Some(e) = &r.error {
            let _ = writeln!(out, "  {:width$}  error {}: {}", "", e.code, e.message);
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
pub fn init_errors() {
    use std::io::IsTerminal as _;
    let terminal = std::io::stderr().is_terminal();
    let color = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
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
pub fn error(report: &miette::Report) {
    eprintln!("{report:?}");
}

/// Progress of an apply on stderr: a bar on a terminal, with each finished address printed
/// above it; plain lines, one per address, anywhere else (CI logs).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Progress {
    /// `quiet` prints nothing per address (for `--format json`, whose report goes to stdout).
    pub fn new(total: usize, quiet: bool) -> Progress {
        use std::io::IsTerminal as _;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} organizations [{elapsed_precise}] {wide_bar} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar, quiet }
    }

    pub fn event(&self, event: &Event) {
        if self.quiet {
            return;
        }
        let line = event_line(event);
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => message(&line),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
