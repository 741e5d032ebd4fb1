//! The benchmark of orgform's speed and memory, against the sandbox, with the targets beside
//! each figure. Run it with `./scripts/bench` (a release build first); `--quick` skips the
//! slowest workloads (the 100-second sequential baseline and the 100,000-create apply), and
//! naming workloads runs only those: `./scripts/bench plan reads plan-reads discover apply scale`.
//!
//! Every figure is measured on the real binary as a separate process: wall time by the clock,
//! peak memory from the kernel's high-water mark (`VmHWM`), CPU time from the shell's `times`,
//! and request counts from the sandbox's own `/_sandbox/stats`, so they are exact.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark prints its figures and its progress"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "the benchmark reads its own knobs (ORGFORM_BIN, ORGFORM_BENCH_KEEP) and reads the \
              sandbox's stats with a plain reqwest client"
)]
#![expect(
    clippy::cast_precision_loss,
    clippy::unused_async,
    reason = "figures shown as f64 are small; fix with the next change to the benchmark"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use orgform::sandbox::{Sandbox, SandboxConfig};
use orgform::spec::{SourceFile, Spec};
use orgform::state::{Record, State, Status};

/// One row of the result table.
struct Row {
    name: String,
    measured: String,
    target: String,
    met: Option<bool>,
}

/// What one run of the binary cost.
struct Measured {
    wall: Duration,
    peak_kib: u64,
    cpu: Duration,
    code: i32,
    stderr: String,
}

fn orgform_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ORGFORM_BIN") {
        return PathBuf::from(path);
    }
    // target/release/examples/bench -> target/release/orgform
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("orgform")
}

/// Runs the binary in `dir`, measuring wall time, peak memory and CPU time.
fn measure(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Measured {
    // The shell's `times` reports the CPU its child used, once the child has been waited for.
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(r#""$0" "$@"; rc=$?; times >&2; exit $rc"#)
        .arg(orgform_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let shell = child.id();
    let mut peak_kib = 0;
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    loop {
        // The high-water mark of orgform itself: the shell's only child.
        if let Some(kib) = child_of(shell).and_then(peak_of) {
            peak_kib = peak_kib.max(kib);
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = started.elapsed();
    let status = child.wait().expect("wait");
    stderr.push_str(&reader.join().unwrap_or_default());
    let cpu = children_cpu(&stderr);
    Measured {
        wall,
        peak_kib,
        cpu,
        code: status.code().unwrap_or(-1),
        stderr,
    }
}

fn child_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn peak_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The second line of `times`: the user and system CPU of the shell's children.
fn children_cpu(stderr: &str) -> Duration {
    let line = stderr.lines().next_back().unwrap_or("");
    line.split_whitespace()
        .filter_map(|t| {
            let (m, s) = t.trim_end_matches('s').split_once('m')?;
            Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
        })
        .map(Duration::from_secs_f64)
        .sum()
}

const HERON_ORG: &str = r#"
[org.{address}]
provider = "heron"
crm_provider = "salesforce"
instance_url = "https://{address}.my.salesforce.com"
auth = { client_secret = { env = "CS" } }
secret = { env = "WS" }
config = { default_id = { external_name = "Account", alias = "Company" } }
"#;

/// Writes `n` Heron organizations in `files` spec files, with the provider at `base_url`.
fn heron_specs(dir: &Path, base_url: &str, n: usize, files: usize, limits: &str) {
    let specs = dir.join("specs");
    let _ = std::fs::remove_dir_all(&specs);
    std::fs::create_dir_all(&specs).expect("mkdir");
    std::fs::write(
        specs.join("providers.toml"),
        format!("[provider.heron]\ntype = \"heron\"\nbase_url = \"{base_url}\"\napi_key = {{ env = \"HERON_API_KEY\" }}\n{limits}\n"),
    )
    .expect("write");
    let per_file = n.div_ceil(files);
    for f in 0..files {
        let mut text = String::new();
        for i in (f * per_file)..((f + 1) * per_file).min(n) {
            text.push_str(&HERON_ORG.replace("{address}", &format!("o{i:06}")));
        }
        std::fs::write(specs.join(format!("orgs{f:03}.toml")), text).expect("write");
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read").flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// A state in which every declared organization exists: what an "all unchanged" plan reads.
fn state_for(dir: &Path) {
    let paths: Vec<PathBuf> = {
        let mut p: Vec<_> = std::fs::read_dir(dir.join("specs"))
            .expect("specs")
            .flatten()
            .map(|e| e.path())
            .collect();
        p.sort();
        p
    };
    let files: Vec<SourceFile> = paths
        .iter()
        .map(|p| {
            SourceFile::new(
                p.display().to_string(),
                std::fs::read_to_string(p).expect("read"),
            )
        })
        .collect();
    let spec = Spec::load(&files).expect("valid specs");
    let mut state = State::new("bench-0000-4000-8000-000000000000".into());
    state.serial = 1;
    for org in spec.orgs.values() {
        state.orgs.insert(
            org.address.clone(),
            Record {
                provider: org.instance.clone(),
                provider_type: org.provider_type,
                remote_id: Some(format!("id-{}", org.address)),
                natural_key: org.natural_key.clone(),
                digest: org.digest.clone(),
                status: Status::Created,
                attributes: org.public_attributes_text(),
                attempted_at: Some(1_790_000_000),
                updated_at: 1_790_000_000,
                error: None,
                detail: std::collections::BTreeMap::new(),
            },
        );
    }
    std::fs::create_dir_all(dir.join("state")).expect("mkdir");
    std::fs::write(
        dir.join("state/orgform.state.json"),
        serde_json::to_vec(&state).expect("json"),
    )
    .expect("write state");
}

const ENV: &[(&str, &str)] = &[
    ("HERON_API_KEY", orgform::sandbox::HERON_API_KEY),
    ("CS", "x"),
    ("WS", "y"),
    ("SF_USERNAME", orgform::sandbox::salesforce::USERNAME),
    ("SF_PASSWORD", orgform::sandbox::salesforce::PASSWORD),
    ("SF_CLIENT_ID", orgform::sandbox::salesforce::CLIENT_ID),
    (
        "SF_CLIENT_SECRET",
        orgform::sandbox::salesforce::CLIENT_SECRET,
    ),
    ("NEON_ORG_ID", orgform::sandbox::neoncrm::ORG_ID),
    ("NEON_API_KEY", orgform::sandbox::neoncrm::API_KEY),
    ("CV_USERNAME", orgform::sandbox::commvault::USERNAME),
    ("CV_PASSWORD", orgform::sandbox::commvault::PASSWORD),
    ("OCC_APP_KEY", orgform::sandbox::oracle::APP_KEY),
];

/// What the benchmark needs to know about one provider: its spec, its credentials and what its
/// API allows, for the request-count targets.
struct Kit {
    /// The provider's name in `/_sandbox/stats`.
    name: &'static str,
    /// The `[provider.NAME]` table, at `{base_url}`.
    provider: &'static str,
    /// One organization, `{address}` in its natural key.
    org: &'static str,
    /// Requests a run spends logging in (once per run).
    logins: u64,
    /// Records per page of a look-up (`None`: one call lists everything).
    page: Option<u64>,
    /// Requests besides login and pages: Salesforce's count of the day's sign-ups for its
    /// quota (a SOQL `COUNT()` can't ride on a page of records).
    counts: u64,
    /// Records per page when `discover` lists everything (`None`: one call lists everything).
    list_page: Option<u64>,
    /// Whether `discover` reads each organization once more, because the list leaves
    /// declarable fields out.
    reads_each: bool,
}

impl Kit {
    /// The requests `discover` may send to list `n` organizations: login, pages, and one read
    /// each where the list is not enough.
    fn discover_floor(&self, n: u64) -> u64 {
        self.logins
            + self.list_page.map_or(1, |p| n.div_ceil(p))
            + if self.reads_each { n } else { 0 }
    }
}

const KITS: &[Kit] = &[
    Kit {
        name: "heron",
        provider: r#"[provider.p_heron]
type = "heron"
base_url = "{base_url}"
api_key = { env = "HERON_API_KEY" }
max_concurrency = 32
"#,
        org: r#"[org.{address}]
provider = "p_heron"
crm_provider = "salesforce"
instance_url = "https://{address}.my.salesforce.com"
auth = { client_secret = { env = "CS" } }
secret = { env = "WS" }
config = { default_id = { external_name = "Account", alias = "Company" } }
"#,
        logins: 0,
        page: None,
        counts: 0,
        list_page: None,
        reads_each: false,
    },
    Kit {
        name: "salesforce",
        provider: r#"[provider.p_salesforce]
type = "salesforce_signup"
base_url = "{base_url}"
username = { env = "SF_USERNAME" }
password = { env = "SF_PASSWORD" }
client_id = { env = "SF_CLIENT_ID" }
client_secret = { env = "SF_CLIENT_SECRET" }
max_concurrency = 32
creates_per_day = 1000000
"#,
        org: r#"[org.{address}]
provider = "p_salesforce"
company = "Acme"
country = "US"
last_name = "Doe"
signup_email = "admin@acme.example"
username = "admin@{address}.example"
edition = "Enterprise"
"#,
        logins: 1,
        page: Some(2000),
        counts: 1,
        list_page: Some(2000),
        reads_each: false,
    },
    Kit {
        name: "neoncrm",
        provider: r#"[provider.p_neoncrm]
type = "neoncrm"
base_url = "{base_url}/neonws/services/api"
org_id = { env = "NEON_ORG_ID" }
api_key = { env = "NEON_API_KEY" }
max_concurrency = 32
"#,
        org: r#"[org.{address}]
provider = "p_neoncrm"
organization_name = "Organization {address}"
"#,
        logins: 1,
        page: Some(200),
        counts: 0,
        list_page: Some(200),
        reads_each: true,
    },
    Kit {
        name: "commvault_salesforce",
        provider: r#"[provider.p_commvault]
type = "commvault_salesforce"
base_url = "{base_url}/commandcenter/api"
username = { env = "CV_USERNAME" }
password = { env = "CV_PASSWORD" }
max_concurrency = 32
"#,
        org: r#"[org.{address}]
provider = "p_commvault"
organization_name = "{address}"
download_cache_path = "/opt/cache"
plan = { plan_name = "Gold", plan_id = 12, entity_info = { company_id = 0 } }
access_nodes = [{ client = { client_id = 7, client_name = "node01" } }]
salesforce_account = { authentication_type = 2, user_credentials = { user_name = "b@acme.example", password = { env = "CS" } }, consumer_id = "3MVG9", consumer_secret = { env = "WS" } }
sync_database = { db_enabled = true, db_type = "3", db_host = "db", db_port = "5432", db_name = "sync", db_user_password = { user_name = "u", password = { env = "CS" } } }
"#,
        logins: 1,
        page: None,
        counts: 0,
        list_page: None,
        reads_each: false,
    },
    Kit {
        name: "oracle_commerce",
        provider: r#"[provider.p_oracle]
type = "oracle_commerce"
base_url = "{base_url}"
app_key = { env = "OCC_APP_KEY" }
max_concurrency = 32
"#,
        org: r#"[org.{address}]
provider = "p_oracle"
name = "Registration {address}"
profile = { email = "{address}@acme.example", first_name = "Dana", last_name = "Reyes" }
"#,
        logins: 1,
        page: Some(250),
        counts: 0,
        list_page: Some(250),
        reads_each: true,
    },
];

/// Writes specs for `per_kit` organizations on each kit's provider, in 100 files.
fn kit_specs(dir: &Path, base_url: &str, kits: &[&Kit], per_kit: usize) {
    let specs = dir.join("specs");
    let _ = std::fs::remove_dir_all(&specs);
    std::fs::create_dir_all(&specs).expect("mkdir");
    let providers: Vec<String> = kits
        .iter()
        .map(|k| k.provider.replace("{base_url}", base_url))
        .collect();
    std::fs::write(specs.join("providers.toml"), providers.join("\n")).expect("write");
    let mut files = vec![String::new(); 100];
    let mut n = 0;
    for kit in kits {
        for i in 0..per_kit {
            let address = format!("{}_{i:06}", kit.name);
            files[n % 100].push_str(&kit.org.replace("{address}", &address));
            files[n % 100].push('\n');
            n += 1;
        }
    }
    for (f, text) in files.iter().enumerate() {
        std::fs::write(specs.join(format!("orgs{f:03}.toml")), text).expect("write");
    }
}

/// A sandbox for the benchmark: no rate limit, sign-ups that finish at once and no quota.
async fn bench_sandbox(latency: Duration) -> Sandbox {
    let config = SandboxConfig {
        latency,
        heron_rate_limit: 0,
        salesforce: orgform::sandbox::salesforce::SalesforceConfig {
            new_for: Duration::ZERO,
            in_progress_for: Duration::ZERO,
            signups_per_day: u32::MAX,
            api_requests_per_day: u32::MAX,
            ..Default::default()
        },
        oracle: orgform::sandbox::oracle::OracleConfig {
            new_for: Duration::ZERO,
            review_for: Some(Duration::ZERO),
            ..Default::default()
        },
        ..SandboxConfig::default()
    };
    Sandbox::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("sandbox")
}

async fn requests(sandbox: &Sandbox, provider: &str) -> u64 {
    sandbox
        .stats()
        .requests
        .get(provider)
        .map_or(0, |m| m.values().sum())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Plan with `--refresh=false`, all unchanged, at 10,000 and 100,000 organizations.
fn plan_without_reads(rows: &mut Vec<Row>) {
    const SIZES: [(usize, f64, Option<u64>); 2] = [(10_000, 0.15, None), (100_000, 1.0, Some(400))];
    let dirs: Vec<tempfile::TempDir> = SIZES
        .iter()
        .map(|&(n, _, _)| {
            let dir = tempfile::tempdir().expect("tempdir");
            heron_specs(dir.path(), "https://app.herondata.io", n, 100, "");
            state_for(dir.path());
            if let Some(keep) = std::env::var_os("ORGFORM_BENCH_KEEP") {
                // For profiling: the same workload, left where a profiler can run it.
                let kept = Path::new(&keep).join(format!("plan-{n}"));
                let _ = std::fs::remove_dir_all(&kept);
                std::fs::create_dir_all(&kept).expect("mkdir");
                for sub in ["specs", "state"] {
                    copy_tree(&dir.path().join(sub), &kept.join(sub));
                }
            }
            dir
        })
        .collect();
    // Best of seven, the two sizes taking turns: the first run also warms the page cache, and
    // this machine is noisy, in spells longer than one run. Taking turns puts both sizes
    // through the same spells, so that their ratio compares like with like.
    let mut best: Vec<Option<Measured>> = vec![None, None];
    for _ in 0..7 {
        for (dir, best) in dirs.iter().zip(&mut best) {
            let m = measure(dir.path(), &["plan", "--refresh=false"], ENV);
            assert_eq!(m.code, 0, "{}", m.stderr);
            if best.as_ref().is_none_or(|b| m.wall < b.wall) {
                *best = Some(m);
            }
        }
    }
    let mut walls = Vec::new();
    for ((n, wall_target, mem_target), m) in SIZES.into_iter().zip(best.into_iter().flatten()) {
        walls.push(m.wall.as_secs_f64());
        rows.push(Row {
            name: format!("plan --refresh=false, {n} unchanged in 100 files: wall"),
            measured: ms(m.wall),
            target: format!("< {} ms", wall_target * 1000.0),
            met: Some(m.wall.as_secs_f64() < wall_target),
        });
        rows.push(Row {
            name: format!("plan --refresh=false, {n} unchanged: peak memory"),
            measured: format!("{} MiB", m.peak_kib / 1024),
            target: mem_target.map_or("-".into(), |t| format!("< {t} MiB")),
            met: mem_target.map(|t| m.peak_kib / 1024 < t),
        });
    }
    let growth = walls[1] / walls[0];
    rows.push(Row {
        name: "plan --refresh=false: growth from 10,000 to 100,000".into(),
        measured: format!("{growth:.1}x"),
        target: "<= 10x (linear)".into(),
        met: Some(growth <= 10.0),
    });
}

/// Requests a plan sends to read remote reality, per provider: exact counts from the sandbox.
async fn remote_read_requests(rows: &mut Vec<Row>) {
    let n = 10_000;
    for kit in KITS {
        let sandbox = bench_sandbox(Duration::ZERO).await;
        let dir = tempfile::tempdir().expect("tempdir");
        kit_specs(dir.path(), &sandbox.base_url(), &[kit], n);
        let m = measure(
            dir.path(),
            &["apply", "--auto-approve", "--poll-interval", "10ms"],
            ENV,
        );
        assert_eq!(m.code, 0, "{}", m.stderr);
        eprintln!("  {}: {n} created in {}", kit.name, ms(m.wall));
        let before = requests(&sandbox, kit.name).await;
        let m = measure(dir.path(), &["plan", "--detailed-exitcode"], ENV);
        assert_eq!(
            m.code, 0,
            "a plan after apply has nothing to do: {}",
            m.stderr
        );
        let sent = requests(&sandbox, kit.name).await - before;
        let allowed = kit.logins + kit.page.map_or(1, |p| (n as u64).div_ceil(p)) + kit.counts;
        rows.push(Row {
            name: format!("plan with reads, {} x {n} orgs: requests", kit.name),
            measured: sent.to_string(),
            target: format!("<= {allowed} (login + pages + quota count)"),
            met: Some(sent <= allowed),
        });
        let _ = sandbox.shutdown().await;
    }
}

/// `total` organizations spread over every provider, created through orgform on a sandbox
/// with no latency: the sandbox, the folder, the kits and how many each holds.
async fn made_over_every_provider(
    total: usize,
) -> (Sandbox, tempfile::TempDir, Vec<&'static Kit>, usize) {
    let kits: Vec<&Kit> = KITS.iter().collect();
    let per_kit = total / kits.len();
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = bench_sandbox(Duration::ZERO).await;
    kit_specs(dir.path(), &sandbox.base_url(), &kits, per_kit);
    let m = measure(
        dir.path(),
        &["apply", "--auto-approve", "--poll-interval", "10ms"],
        ENV,
    );
    assert_eq!(m.code, 0, "{}", m.stderr);
    eprintln!("  {} created in {}", per_kit * kits.len(), ms(m.wall));
    (sandbox, dir, kits, per_kit)
}

/// `discover` of 10,000 organizations over every provider, made beforehand and then forgotten
/// (specs and state gone): requests per provider, exactly against login and list pages (and
/// one read per organization where the list leaves fields out), wall time and peak memory; and
/// the specs it writes validate.
async fn discover_at_scale(rows: &mut Vec<Row>) {
    let (sandbox, dir, kits, per_kit) = made_over_every_provider(10_000).await;
    // Forget them: the providers stay declared, the organizations and the state go.
    for entry in std::fs::read_dir(dir.path().join("specs")).expect("specs") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n != "providers.toml") {
            std::fs::remove_file(path).expect("remove");
        }
    }
    std::fs::remove_dir_all(dir.path().join("state")).expect("state");
    let mut before = Vec::new();
    for kit in &kits {
        before.push(requests(&sandbox, kit.name).await);
    }
    let m = measure(dir.path(), &["discover", "--out", "specs/found"], ENV);
    assert_eq!(m.code, 0, "{}", m.stderr);
    for (kit, before) in kits.iter().zip(before) {
        let sent = requests(&sandbox, kit.name).await - before;
        let floor = kit.discover_floor(per_kit as u64);
        rows.push(Row {
            name: format!("discover, {} x {per_kit} orgs: requests", kit.name),
            measured: sent.to_string(),
            target: format!(
                "= {floor} (login + pages{})",
                if kit.reads_each {
                    " + one read each"
                } else {
                    ""
                }
            ),
            met: Some(sent == floor),
        });
    }
    rows.push(Row {
        name: format!(
            "discover, {} orgs over {} providers: wall",
            per_kit * kits.len(),
            kits.len()
        ),
        measured: ms(m.wall),
        target: "(reported)".into(),
        met: None,
    });
    rows.push(Row {
        name: format!("discover, {} orgs: peak memory", per_kit * kits.len()),
        measured: format!("{} MiB", m.peak_kib / 1024),
        target: "(reported)".into(),
        met: None,
    });
    let validated = measure(dir.path(), &["validate"], ENV);
    rows.push(Row {
        name: "discover, the specs it wrote: validate".into(),
        measured: if validated.code == 0 {
            "valid".into()
        } else {
            validated
                .stderr
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ")
        },
        target: "valid".into(),
        met: Some(validated.code == 0),
    });
    let _ = sandbox.shutdown().await;
}

/// Plan with remote reads of 10,000 organizations over every provider, at 20 ms a request.
async fn plan_with_reads(rows: &mut Vec<Row>) {
    // Created with no latency, then planned against the same sandbox with 20 ms a request.
    let (sandbox, dir, kits, per_kit) = made_over_every_provider(10_000).await;
    sandbox.set_latency(Duration::from_millis(20));
    let m = (0..3)
        .map(|_| measure(dir.path(), &["plan", "--detailed-exitcode"], ENV))
        .min_by_key(|m| m.wall)
        .expect("runs");
    assert_eq!(m.code, 0, "{}", m.stderr);
    rows.push(Row {
        name: format!(
            "plan with reads, {} orgs over {} providers, 20 ms latency: wall",
            per_kit * kits.len(),
            kits.len()
        ),
        measured: ms(m.wall),
        target: "< 2000 ms".into(),
        met: Some(m.wall.as_secs_f64() < 2.0),
    });
    let _ = sandbox.shutdown().await;
}

/// Apply of 1,000 creates at 50 ms per request with 16 in flight, against the physical limit,
/// and the same creates done the way the seed's sample driver does them: one after another.
async fn apply_near_the_limit(rows: &mut Vec<Row>, quick: bool) {
    let n = 1000;
    let latency = Duration::from_millis(50);
    let config = SandboxConfig {
        latency,
        heron_rate_limit: 0,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start("127.0.0.1:0".parse().expect("addr"), config.clone())
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(
        dir.path(),
        &sandbox.base_url(),
        n,
        10,
        "max_concurrency = 16",
    );
    let m = measure(dir.path(), &["apply", "--auto-approve"], ENV);
    assert_eq!(m.code, 0, "{}", m.stderr);
    let limit = latency.as_secs_f64() * n as f64 / 16.0;
    rows.push(Row {
        name: format!("apply {n} creates, 50 ms latency, max_concurrency 16: wall"),
        measured: ms(m.wall),
        target: format!(
            "<= {:.0} ms (1.2 x {:.0} ms)",
            limit * 1200.0,
            limit * 1000.0
        ),
        met: Some(m.wall.as_secs_f64() <= 1.2 * limit),
    });
    let per_create = m.cpu.as_secs_f64() * 1000.0 / n as f64;
    rows.push(Row {
        name: "apply: orgform's own CPU per create".into(),
        measured: format!("{per_create:.3} ms"),
        target: "< 0.5 ms".into(),
        met: Some(per_create < 0.5),
    });
    let _ = sandbox.shutdown().await;

    if quick {
        return;
    }
    // The sample driver: log in, then for each organization look it up and create it, one
    // after another (the look-up is what keeps a rerun from duplicating).
    let sandbox = Sandbox::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("sandbox");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let base = sandbox.base_url();
    let started = Instant::now();
    for i in 0..n {
        let _ = client
            .get(format!("{base}/api/crm_integrations"))
            .header("x-api-key", orgform::sandbox::HERON_API_KEY)
            .send()
            .await
            .expect("list");
        let body = serde_json::json!({
            "provider": "salesforce",
            "instance_url": format!("https://seq{i:05}.my.salesforce.com"),
            "auth": {"client_secret": "x"},
            "secret": "y",
            "config": {"default_id": {"external_name": "Account", "alias": "Company"}},
        });
        let _ = client
            .post(format!("{base}/api/crm_integrations"))
            .header("x-api-key", orgform::sandbox::HERON_API_KEY)
            .json(&body)
            .send()
            .await
            .expect("create");
    }
    let sequential = started.elapsed();
    rows.push(Row {
        name: format!("baseline: the sample driver's way, {n} creates one after another"),
        measured: ms(sequential),
        target: ">= 100000 ms".into(),
        met: Some(sequential.as_secs_f64() >= 100.0),
    });
    let speedup = sequential.as_secs_f64() / m.wall.as_secs_f64();
    rows.push(Row {
        name: "orgform apply against the baseline, same sandbox".into(),
        measured: format!("{speedup:.1}x faster"),
        target: ">= 25x".into(),
        met: Some(speedup >= 25.0),
    });
    let _ = sandbox.shutdown().await;
}

/// Apply of 100,000 creates with no added latency: every create still made durable as pending
/// before its request leaves.
async fn apply_at_scale(rows: &mut Vec<Row>) {
    let n = 100_000;
    let sandbox = Sandbox::start(
        "127.0.0.1:0".parse().expect("addr"),
        SandboxConfig {
            heron_rate_limit: 0,
            ..SandboxConfig::default()
        },
    )
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    heron_specs(
        dir.path(),
        &sandbox.base_url(),
        n,
        100,
        "max_concurrency = 64",
    );
    let m = measure(dir.path(), &["apply", "--auto-approve"], ENV);
    assert_eq!(m.code, 0, "{}", m.stderr);
    let creates = sandbox.stats().requests["heron"]
        .get("POST /api/crm_integrations")
        .copied()
        .unwrap_or(0);
    rows.push(Row {
        name: format!("apply {n} creates, no latency: wall ({creates} creates sent)"),
        measured: ms(m.wall),
        target: "< 60000 ms".into(),
        met: Some(m.wall.as_secs_f64() < 60.0 && creates == n as u64),
    });
    rows.push(Row {
        name: "apply 100,000 creates: peak memory".into(),
        measured: format!("{} MiB", m.peak_kib / 1024),
        target: "-".into(),
        met: None,
    });
    let _ = sandbox.shutdown().await;
}

fn print(rows: &[Row]) -> bool {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    println!("| {:width$} | measured | target | met |", "workload");
    println!("|{}|---|---|---|", "-".repeat(width + 2));
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!(
            "| {:width$} | {} | {} | {} |",
            r.name, r.measured, r.target, met
        );
    }
    rows.iter().all(|r| r.met != Some(false))
}

/// The workloads, by the names `./scripts/bench ONLY...` takes.
const SECTIONS: &[&str] = &["plan", "reads", "plan-reads", "discover", "apply", "scale"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Some(unknown) = only.iter().find(|a| !SECTIONS.contains(a)) {
        eprintln!(
            "unknown workload {unknown}: the workloads are {}",
            SECTIONS.join(", ")
        );
        return ExitCode::from(2);
    }
    let runs = |section: &str| only.is_empty() || only.contains(&section);
    let bin = orgform_bin();
    if !bin.exists() {
        eprintln!(
            "{} is missing: build it with `cargo build --release` (./scripts/bench does)",
            bin.display()
        );
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut rows = Vec::new();
    if runs("plan") {
        eprintln!("plan without remote reads ...");
        plan_without_reads(&mut rows);
    }
    if runs("reads") {
        eprintln!("requests to read remote reality, per provider ...");
        runtime.block_on(remote_read_requests(&mut rows));
    }
    if runs("plan-reads") {
        eprintln!("plan with remote reads over every provider ...");
        runtime.block_on(plan_with_reads(&mut rows));
    }
    if runs("discover") {
        eprintln!("discover of 10,000 organizations over every provider ...");
        runtime.block_on(discover_at_scale(&mut rows));
    }
    if runs("apply") {
        eprintln!(
            "apply near the physical limit{} ...",
            if quick {
                ""
            } else {
                ", and the sequential baseline (about 100 s)"
            }
        );
        runtime.block_on(apply_near_the_limit(&mut rows, quick));
    }
    if runs("scale") && !quick {
        eprintln!("apply of 100,000 creates ...");
        runtime.block_on(apply_at_scale(&mut rows));
    }
    if print(&rows) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
