//! `orgform plan`: specs + state + remote reality -> a plan, printed and optionally saved.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

use super::connection::{
    check_login_secrets, check_secrets, connect, read_reality, with_connect_options,
};
use super::specs::{Destination, load_specs_checked};
use super::state_store::{read_state, state_location_before_login};
use crate::cli::{GlobalArgs, PlanArgs};
use crate::files::{OldVersion, write_atomically};
use crate::output;
use crate::plan::{Plan, PlanContext, Targets, plan_targeted};
use crate::providers::ConnectOptions;
use crate::spec::Spec;
use crate::state::State;
use crate::time;

pub(crate) async fn run(g: &GlobalArgs, args: &PlanArgs) -> Result<ExitCode> {
    let sandbox = &args.remote.sandbox;
    let (spec, warnings) = load_specs_checked(g, Destination::of(sandbox.enabled))?;
    let location = state_location_before_login(
        g,
        &spec,
        sandbox.enabled,
        spec.orgs.values().map(|o| o.instance.as_str()),
    )?;
    let state = read_state(&location, g).await?;
    let targets = targets(&args.remote.targets, &spec, &state)?;
    let mut plan = with_connect_options(g, sandbox, &spec, &location, async |options| {
        make_plan(
            &spec,
            &state,
            args.remote.refresh,
            targets.as_ref(),
            options,
        )
        .await
    })
    .await?;
    if args.out.is_some() {
        plan.state_digest = Some(state.records_digest());
    }
    plan.endpoint_warnings = warnings;
    let rendered = match (g.format, &args.out) {
        (crate::cli::Format::Markdown, Some(out)) => output::plan_markdown_within(
            &plan,
            output::MARKDOWN_BUDGET,
            &format!(
                "the saved plan {}",
                output::md_code(&out.display().to_string())
            ),
        ),
        (format, _) => output::plan(&plan, format),
    };
    output::data(&rendered);
    for broken in crate::plan::check_limits(&plan, &spec, args.max_creates) {
        output::message(&format!("Warning: {broken}; apply will refuse this plan."));
    }
    if let Some(out) = &args.out {
        let digest = save_plan(out, &plan)?;
        output::message(&format!(
            "Saved the plan to {} (digest {digest}). Apply exactly this plan with `orgform apply {}`.",
            crate::escape::ShownPath(out),
            crate::escape::ShownPath(out)
        ));
    }
    let code = if args.detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    };
    // The process ends next: freeing a hundred thousand organizations one by one would cost
    // a tenth of the plan's time for memory the operating system takes back at once.
    std::mem::forget((spec, state, plan, rendered));
    Ok(code)
}

/// The `--target` patterns checked against the specs and state (`None` without any), before
/// any provider is asked: a pattern that matches nothing is a mistake, never an empty plan.
pub(crate) fn targets(patterns: &[String], spec: &Spec, state: &State) -> Result<Option<Targets>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    Targets::new(patterns, spec, state)
        .map(Some)
        .map_err(|e| miette!(help = "`orgform show` lists the addresses in state", "{e}"))
}

/// Plans, reading remote reality unless `refresh` is off; only the `targets` when given.
pub(crate) async fn make_plan(
    spec: &Spec,
    state: &State,
    refresh: bool,
    targets: Option<&Targets>,
    options: &ConnectOptions,
) -> Result<Plan> {
    let reality = if refresh {
        check_login_secrets(spec, state, targets, options)?;
        let connected = connect(spec, state, targets, options).await?;
        Some(read_reality(spec, state, targets, &connected).await?)
    } else {
        None
    };
    let made = plan_targeted(
        spec,
        state,
        reality.as_ref(),
        PlanContext { now: time::now() },
        targets,
    );
    // A plan is a promise: one that says "create" must be one apply can carry out, so what
    // its creates and the logins need is checked even with `--refresh=false` (as Terraform
    // still configures its providers then), before the plan is shown.
    check_secrets(spec, state, Some(&made), targets, options)?;
    Ok(made)
}

/// Writes a plan file (JSON, 0600, atomically) and returns its content digest.
pub(crate) fn save_plan(path: &Path, plan: &Plan) -> Result<String> {
    let mut bytes = serde_json::to_vec_pretty(plan).into_diagnostic()?;
    bytes.push(b'\n');
    write_atomically(path, &bytes, OldVersion::Discard)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write the plan to {}", path.display()))?;
    Ok(plan.content_digest())
}

/// A plan file as read: the plan, where it was, and its content digest.
pub(crate) struct SavedPlan {
    pub(crate) plan: Plan,
    pub(crate) path: PathBuf,
    pub(crate) digest: String,
}

/// Reads a plan file, refusing anything malformed or from another orgform, and anything that is
/// not a regular file (a FIFO would hang the run) or is past the plan-file cap.
pub(crate) fn load_plan(path: &Path) -> Result<SavedPlan> {
    let bytes = crate::files::read_regular(path, crate::files::PLAN_FILE)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| miette!("{}: the plan file is not UTF-8 text", path.display()))?;
    let plan = crate::plan::parse_saved(&text)
        .into_diagnostic()
        .wrap_err_with(|| format!("{} cannot be applied", path.display()))?;
    Ok(SavedPlan {
        digest: plan.content_digest(),
        plan,
        path: path.to_path_buf(),
    })
}
