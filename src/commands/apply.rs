//! `orgform apply` (plan, approve, execute) and `orgform refresh` (settle state, create nothing).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::io::IsTerminal as _;

use miette::{IntoDiagnostic as _, Result, miette};
use tokio::sync::oneshot;

use super::connection::{
    Connected, check_login_secrets, check_secrets, connect, read_reality, read_while_loading,
    with_connect_options,
};
use super::plan::{SavedPlan, load_plan, targets};
use super::specs::{Destination, load_specs_checked, warn_endpoints};
use super::state_store::{lock_and_load, open_state_locked, state_location_before_login};
use crate::apply::{ApplyOptions, ApplyReport, StateWriter, apply};
use crate::cli::{ApplyArgs, Format, GlobalArgs, RefreshArgs};
use crate::output;
use crate::plan::{
    Action, DeclaredAttributes, Plan, PlanContext, Targets, check_limits, guard_bindings, plan,
    plan_targeted, recheck_creates,
};
use crate::providers::ConnectOptions;
use crate::spec::Spec;
use crate::spec::endpoints::EndpointWarning;
use crate::state::State;
use crate::time;

pub(crate) async fn run(g: &GlobalArgs, args: &ApplyArgs) -> Result<ExitCode> {
    let result = run_unreported(g, args).await;
    // `--format json` promises one document on stdout however the run ends.
    if g.format == Format::Json
        && let Err(e) = &result
    {
        output::print_apply_refusal(&e.to_string());
    }
    result
}

async fn run_unreported(g: &GlobalArgs, args: &ApplyArgs) -> Result<ExitCode> {
    let sandbox = &args.remote.sandbox;
    let (spec, warnings) = load_specs_checked(g, Destination::of(sandbox.enabled))?;
    let spec = Arc::new(spec);
    // Read before the lock is taken: a plan file that is a FIFO or a device is refused, never
    // waited on while the state is held.
    let saved = args.plan_file.as_deref().map(load_plan).transpose()?;
    if saved.is_some() && !args.remote.targets.is_empty() {
        return Err(miette!(
            help = "make the plan with `orgform plan --target ADDRESS --out FILE`: a saved plan keeps its targets and is applied as it is",
            "--target can't be used with a saved plan"
        ));
    }
    let location = state_location_before_login(
        g,
        &spec,
        sandbox.enabled,
        spec.orgs.values().map(|o| o.instance.as_str()),
    )?;
    let loading = lock_and_load(&location, g).await?;
    // A plan made here of every organization, from what the providers hold, reads them while
    // the state is read; anything else needs the state first.
    let (state, targets) =
        if saved.is_none() && args.remote.targets.is_empty() && args.remote.refresh {
            (StateRead::Loading(loading), None)
        } else {
            let (backend, state) = loading.await.into_diagnostic()??;
            let targets = targets(&args.remote.targets, &spec, &state)?;
            (StateRead::Loaded(backend, state), targets)
        };
    let inputs = Inputs {
        spec: spec.clone(),
        warnings,
        saved,
        targets,
    };
    with_connect_options(g, sandbox, &spec, &location, async move |options| {
        run_locked(g, args, inputs, state, options).await
    })
    .await
}

/// The state as apply has it once its lock is held: read, or being read on a task of its own.
enum StateRead {
    Loaded(crate::state::Store, State),
    Loading(tokio::task::JoinHandle<Result<(crate::state::Store, State)>>),
}

/// What apply read before it took the state lock.
struct Inputs {
    spec: Arc<Spec>,
    /// Where the specs' credentials go, for the reviewer.
    warnings: Vec<EndpointWarning>,
    /// The plan file named on the command line, if any.
    saved: Option<SavedPlan>,
    /// `--target`, checked against the specs and state, for a plan made here.
    targets: Option<Targets>,
}

async fn run_locked(
    g: &GlobalArgs,
    args: &ApplyArgs,
    inputs: Inputs,
    state: StateRead,
    options: &ConnectOptions,
) -> Result<ExitCode> {
    let Inputs {
        spec,
        warnings,
        saved,
        targets,
    } = inputs;

    // Every secret the logins and the creates need is read before the first login, and all
    // that are missing are named at once: a saved plan says what it creates; otherwise what
    // the creates need is checked again once the plan is made.
    // A saved partial plan keeps its targets: only the instances they use are contacted.
    let targets = match &saved {
        Some(saved) => Targets::of_saved(&saved.plan.targets),
        None => targets,
    };
    // One login per provider for the whole run: the plan's reads and the creates share it.
    let (backend, state, connected, read_early) = match state {
        StateRead::Loading(loading) => {
            let loading = async { loading.await.into_diagnostic()? };
            let ((backend, state), connected, reality) =
                read_while_loading(&spec, loading, options).await?;
            (backend, state, connected, Some(reality))
        }
        StateRead::Loaded(backend, state) => {
            match &saved {
                Some(saved) => {
                    check_fresh(&saved.plan, &spec, &state)?;
                    check_secrets(&spec, &state, Some(&saved.plan), targets.as_ref(), options)?;
                }
                None => check_login_secrets(&spec, &state, targets.as_ref(), options)?,
            }
            let connected = connect(&spec, &state, targets.as_ref(), options).await?;
            (backend, state, connected, None)
        }
    };
    let is_saved = saved.is_some();
    // The instances read before the creates were decided: their reads answer for them.
    let mut read = std::collections::BTreeSet::new();
    let mut plan = match saved {
        Some(SavedPlan {
            plan: mut saved,
            path,
            digest,
        }) => {
            // A plan file is only as trustworthy as the state it was checked against: never
            // bind a remote id there that state records for another address.
            guard_bindings(&state, &mut saved.changes);
            output::message(&format!(
                "Applying the saved plan {} (digest {digest}).",
                path.display()
            ));
            if let Some(line) = output::partial_line(&saved) {
                output::message(&line);
            }
            warn_endpoints(&warnings);
            saved
        }
        None => {
            let reality = match read_early {
                Some(reality) => Some(reality),
                None if args.remote.refresh => {
                    Some(read_reality(&spec, &state, targets.as_ref(), &connected).await?)
                }
                None => None,
            };
            if let Some(reality) = &reality {
                read.extend(reality.instances.keys().cloned());
            }
            let mut fresh = plan_targeted(
                &spec,
                &state,
                reality.as_ref(),
                PlanContext { now: time::now() },
                targets.as_ref(),
            );
            check_secrets(&spec, &state, Some(&fresh), targets.as_ref(), options)?;
            fresh.endpoint_warnings = warnings;
            // JSON is one document, printed at the end with what became of each address.
            if g.format != Format::Json {
                output::data(&output::plan(&fresh, g.format));
            }
            free_aside(reality);
            fresh
        }
    };
    if let Some(code) =
        before_apply(g, args, &plan, &spec, is_saved).inspect_err(|_| unapplied(g, &plan))?
    {
        unapplied(g, &plan);
        return Ok(code);
    }
    if g.format != Format::Json {
        // Shown and checked: apply never reads the declared attributes of a change again (it
        // creates from the specs), and a large plan's would be held through the whole run.
        for change in &mut plan.changes {
            change.attributes = DeclaredAttributes::None;
        }
    }
    if is_saved || !plan.refreshed {
        // The plan's view of the providers may be old or absent: look again, in bulk, so that
        // nothing that exists by now is created twice.
        let reality = read_reality(&spec, &state, targets.as_ref(), &connected).await?;
        recheck_creates(&mut plan, &reality);
        guard_bindings(&state, &mut plan.changes);
        read = reality.instances.keys().cloned().collect();
        free_aside(reality);
    }
    let apply_options = ApplyOptions {
        settle_timeout: args.settle_timeout,
        poll_interval: args.poll_interval,
        read,
        ..ApplyOptions::default()
    };
    // Kept to the end, and then not freed: the process ends next, and freeing a hundred
    // thousand organizations and their changes one by one would cost a tenth of an incremental
    // apply for memory the operating system takes back at once.
    let kept = spec.clone();
    let report = execute(g, &plan, spec, connected, state, backend, apply_options).await?;
    let code = finish(g, &plan, &report, "Apply complete");
    std::mem::forget((kept, plan));
    code
}

/// Frees what the plan was made from on a thread of its own: a hundred thousand organizations
/// read back take a tenth of an incremental apply's time to free one by one, and the creates
/// need not wait for it.
fn free_aside<T: Send + 'static>(value: T) {
    std::thread::spawn(move || drop(value));
}

/// What is checked between the plan and the first request: the reviewed digest, whether there
/// is anything to do, the limits, and approval. `Some(code)` ends the run there, `None` applies.
fn before_apply(
    g: &GlobalArgs,
    args: &ApplyArgs,
    plan: &Plan,
    spec: &Spec,
    is_saved: bool,
) -> Result<Option<ExitCode>> {
    // Nothing to send is success whatever the digest: a rerun of an apply that went through
    // finds nothing left, and sends nothing either way.
    if !plan.has_work() {
        output::message("Nothing to apply.");
        return Ok(Some(ExitCode::SUCCESS));
    }
    if let Some(expected) = &args.expect_digest {
        check_digest(plan, expected)?;
    }
    let broken = check_limits(plan, spec, args.max_creates);
    if !broken.is_empty() {
        return Err(miette!(
            help = "raise the limit if this is intended, or fix the specs",
            "refusing to apply: {}; nothing was created",
            broken.join("; ")
        ));
    }
    // A saved plan is the approval: it was reviewed as it is, and is refused if anything moved.
    if !is_saved && !args.auto_approve {
        if g.format == Format::Json {
            // The JSON document comes at the end: say on the terminal what is asked about.
            output::message(&format!("Plan: {}.", output::summary_line(plan)));
        }
        if !approved()? {
            output::message("Apply cancelled; nothing was changed.");
            return Ok(Some(ExitCode::from(1)));
        }
    }
    Ok(None)
}

/// With `--format json`, the one document for a run that sent nothing: the plan, no outcomes.
fn unapplied(g: &GlobalArgs, plan: &Plan) {
    if g.format == Format::Json {
        output::print_apply_document(Some(plan), None);
    }
}

/// Refuses a plan whose content digest is not the reviewed one: what would be applied is not
/// what was reviewed (the specs, the state or the providers moved on since).
fn check_digest(plan: &Plan, expected: &str) -> Result<()> {
    let digest = plan.content_digest();
    let expected = expected.trim();
    if !expected.is_empty() && digest.eq_ignore_ascii_case(expected) {
        output::message(&format!(
            "The plan's digest is the reviewed one ({digest})."
        ));
        return Ok(());
    }
    Err(miette!(
        help = "review the new plan (plan again where it was reviewed) and apply that one",
        "refusing to apply: this plan's digest is {digest}, the reviewed one {}; nothing was created",
        crate::escape::Shown(expected)
    ))
}

/// A second interrupt during an apply: the run ends at once, without waiting for the creates in
/// flight (they stay `pending` in state, and the next run settles them). `main` exits 130 for
/// it, the shell's code for a run ended by a signal.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("interrupted again: exited at once; creates in flight stay `pending` in state")]
pub struct Interrupted;

/// Runs the plan with signals handled: the first interrupt stops new creates, the second ends
/// the run at once with [`Interrupted`].
async fn execute(
    g: &GlobalArgs,
    plan: &Plan,
    spec: Arc<Spec>,
    connected: Connected,
    state: State,
    backend: crate::state::Store,
    options: ApplyOptions,
) -> Result<ApplyReport, Interrupted> {
    let writer = StateWriter::start(state, backend);
    let stop = Arc::new(AtomicBool::new(false));
    let (exit_now, mut exit_asked) = oneshot::channel();
    let watcher = tokio::spawn(watch_signals(stop.clone(), exit_now));
    let work = plan.changes.iter().filter(|c| c.is_work()).count();
    let progress = Arc::new(output::Progress::new(work, g.format == Format::Json));
    let events = progress.clone();
    let on_event = Arc::new(move |event: &crate::apply::Event| events.event(event));
    let applied = apply(
        plan,
        spec,
        connected.providers,
        writer,
        options,
        stop,
        on_event,
    );
    // On a second interrupt the apply is dropped where it stands: its tasks are aborted and
    // nothing more is sent, as an exit would; what was recorded stays recorded.
    let report = tokio::select! {
        report = applied => Ok(report),
        Ok(()) = &mut exit_asked => Err(Interrupted),
    };
    progress.finish();
    watcher.abort();
    report
}

/// Raises `stop` on the first SIGINT or SIGTERM, and sends on `exit_now` at the second.
async fn watch_signals(stop: Arc<AtomicBool>, exit_now: oneshot::Sender<()>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    let mut interrupts = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        interrupts += 1;
        stop.store(true, Ordering::SeqCst);
        if interrupts == 1 {
            output::message(
                "Interrupted: no new creates will start; finishing and recording those in flight. Interrupt again to exit at once (state stays safe).",
            );
        } else {
            output::message(
                "Exiting now. Creates in flight stay `pending` in state; the next run settles them.",
            );
            let _ = exit_now.send(());
            return;
        }
    }
}

/// Reports the run: with `--format json` its one document on stdout, and the summary under
/// `heading` on stderr; exit 1 if anything failed or the run stopped early.
fn finish(g: &GlobalArgs, plan: &Plan, report: &ApplyReport, heading: &str) -> Result<ExitCode> {
    if g.format == Format::Json {
        output::print_apply_document(Some(plan), Some(report));
    }
    output::message(&output::apply_summary(report, heading));
    if report.errors() > 0 || report.stopped.is_some() {
        Ok(ExitCode::from(1))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// Refuses a saved plan made from other specs or another state, naming what moved.
fn check_fresh(saved: &Plan, spec: &Spec, state: &State) -> Result<()> {
    if saved.specs_digest != spec.digest() {
        return Err(miette!(
            help = "make a new plan with `orgform plan --out FILE` and review it",
            "the saved plan is stale: the specs changed since it was made"
        ));
    }
    let lineage = (state.serial > 0).then(|| state.lineage.clone());
    if saved.state_lineage != lineage || saved.state_serial != state.serial {
        return Err(miette!(
            help = "make a new plan with `orgform plan --out FILE` and review it",
            "the saved plan is stale: the state changed since it was made (plan at serial {}, state now at serial {})",
            saved.state_serial,
            state.serial
        ));
    }
    // Same serial, other records: a killed apply's journal (replayed on load) recorded creates.
    let Some(saved_digest) = &saved.state_digest else {
        return Err(miette!(
            help = "make a new plan with `orgform plan --out FILE` and review it",
            "the saved plan does not record the state it was made from (an older orgform saved it), so it can't be shown to be fresh"
        ));
    };
    if *saved_digest != state.records_digest() {
        return Err(miette!(
            help = "make a new plan with `orgform plan --out FILE` and review it",
            "the saved plan is stale: the state changed since it was made (its records differ at serial {}, as a run that was interrupted leaves them)",
            state.serial
        ));
    }
    Ok(())
}

/// Asks for approval on a terminal; refuses without one.
fn approved() -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = "pass --auto-approve to apply without asking (as CI jobs do)",
            "apply needs approval, and there is no terminal to ask on"
        ));
    }
    let answer = output::ask("Apply these changes? Only 'yes' is accepted:").unwrap_or_default();
    Ok(answer == "yes")
}

/// `orgform refresh`: adopt what exists and settle pending creates; never create.
pub(crate) async fn refresh(g: &GlobalArgs, args: &RefreshArgs) -> Result<ExitCode> {
    let (spec, warnings) = load_specs_checked(g, Destination::of(args.sandbox.enabled))?;
    warn_endpoints(&warnings);
    let spec = Arc::new(spec);
    let location = state_location_before_login(
        g,
        &spec,
        args.sandbox.enabled,
        spec.orgs.values().map(|o| o.instance.as_str()),
    )?;
    let (backend, state) = open_state_locked(&location, g).await?;
    let settle = async |options: &ConnectOptions| {
        // Refresh creates nothing: only the logins' credentials, every missing one named.
        check_secrets(&spec, &state, None, None, options)?;
        let connected = connect(&spec, &state, None, options).await?;
        let reality = read_reality(&spec, &state, None, &connected).await?;
        let mut full = plan(
            &spec,
            &state,
            Some(&reality),
            PlanContext { now: time::now() },
        );
        full.changes
            .retain(|c| matches!(c.action, Action::Adopt | Action::Pending));
        if full.changes.is_empty() {
            unapplied(g, &full);
            output::message("State agrees with the providers: nothing to settle.");
            return Ok(ExitCode::SUCCESS);
        }
        let options = ApplyOptions {
            allow_creates: false,
            ..ApplyOptions::default()
        };
        let report = execute(g, &full, spec.clone(), connected, state, backend, options).await?;
        finish(g, &full, &report, "Refresh complete")
    };
    with_connect_options(g, &args.sandbox, &spec, &location, settle).await
}
