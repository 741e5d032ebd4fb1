//! Micro-benchmarks of the pure core: the spec loader and the planner, on generated specs of
//! 1,000 and 10,000 organizations (`cargo bench --bench core`). The whole-binary figures, with
//! targets, come from `./scripts/bench`.

#![expect(
    clippy::unwrap_used,
    reason = "a benchmark stops at the first broken input"
)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use orgform::plan::{PlanContext, plan};
use orgform::spec::{SourceFile, Spec};
use orgform::state::{Detail, Record, State, Status};

/// `n` Heron organizations in 10 files.
fn files(n: usize) -> Vec<SourceFile> {
    let mut out = vec![SourceFile::new(
        "providers.toml",
        "[provider.h]\ntype = \"heron\"\napi_key = { env = \"K\" }\n",
    )];
    for f in 0..10 {
        let mut text = String::new();
        for i in (f * n / 10)..((f + 1) * n / 10) {
            text.push_str(&format!(
                "[org.o{i:06}]\nprovider = \"h\"\ncrm_provider = \"salesforce\"\ninstance_url = \"https://o{i:06}.my.salesforce.com\"\nauth = {{ client_secret = {{ env = \"CS\" }} }}\nsecret = {{ env = \"WS\" }}\nconfig = {{ default_id = {{ external_name = \"Account\", alias = \"Company\" }} }}\n\n"
            ));
        }
        out.push(SourceFile::new(format!("orgs{f}.toml"), text));
    }
    out
}

/// A state in which every organization of `spec` exists, unchanged.
fn state_for(spec: &Spec) -> State {
    let mut state = State::new("bench".into());
    state.serial = 1;
    for org in spec.orgs.values() {
        state.orgs.insert(
            org.address.clone(),
            Record {
                provider: org.instance.clone(),
                provider_type: org.provider_type,
                remote_id: Some(org.address.clone()),
                natural_key: org.natural_key.clone(),
                digest: org.digest.clone(),
                status: Status::Created,
                attributes: org.public_attributes_text(),
                attempted_at: None,
                updated_at: 0,
                error: None,
                detail: Detail::default(),
            },
        );
    }
    state
}

fn spec_loader(c: &mut Criterion) {
    let mut group = c.benchmark_group("spec_loader");
    group.sample_size(10);
    for n in [1_000, 10_000] {
        let sources = files(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &sources, |b, sources| {
            b.iter(|| Spec::load(std::hint::black_box(sources)).unwrap());
        });
    }
    group.finish();
}

fn planner(c: &mut Criterion) {
    let mut group = c.benchmark_group("planner");
    group.sample_size(10);
    for n in [1_000, 10_000] {
        let spec = Spec::load(&files(n)).unwrap();
        let unchanged = state_for(&spec);
        let empty = State::new("bench".into());
        let context = PlanContext { now: 1_790_000_000 };
        group.bench_with_input(BenchmarkId::new("all_unchanged", n), &n, |b, _| {
            b.iter(|| plan(&spec, std::hint::black_box(&unchanged), None, context));
        });
        group.bench_with_input(BenchmarkId::new("all_create", n), &n, |b, _| {
            b.iter(|| plan(&spec, std::hint::black_box(&empty), None, context));
        });
    }
    group.finish();
}

criterion_group!(benches, spec_loader, planner);
criterion_main!(benches);
