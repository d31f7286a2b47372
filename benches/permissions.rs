//! Cost of the per-connection publish permission check (issue 6: publishing
//! with permissions on must cost ≤ 10% of the throughput without).
//!
//! Compares `can_publish` with no permissions (the baseline branch), the cached
//! path (same subject repeated, as a publisher usually does), the cached path
//! rotating over 100 subjects (map lookups), and the uncached wildcard walk
//! (`CompiledPermissions::publish_allowed`) it saves.
//!
//! Run: `cargo bench --bench permissions -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use natrium::auth::{CompiledPermissions, PermissionChecker};
use natrium::options::Permissions;

fn perms() -> Permissions {
    let allow: Vec<String> = (0..20)
        .map(|i| format!("svc{i}.*.requests"))
        .chain(["orders.>".to_string(), "telemetry.*.*".to_string()])
        .collect();
    Permissions {
        publish_allow: Some(allow),
        publish_deny: Some(vec!["orders.secret.>".into(), "telemetry.admin.*".into()]),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let subject = b"orders.eu.created".as_slice();
    let subjects: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("orders.region{i}.created").into_bytes())
        .collect();
    let p = perms();
    let mut g = c.benchmark_group("can_publish");

    let mut none = PermissionChecker::new(None);
    g.bench_function("no_permissions", |b| {
        b.iter(|| none.can_publish(black_box(subject)))
    });

    let mut cached = PermissionChecker::from_permissions(Some(&p)).expect("perms");
    g.bench_function("cached_same_subject", |b| {
        b.iter(|| cached.can_publish(black_box(subject)))
    });

    let mut rotating = PermissionChecker::from_permissions(Some(&p)).expect("perms");
    let mut i = 0;
    g.bench_function("cached_100_subjects", |b| {
        b.iter(|| {
            i = (i + 1) % subjects.len();
            rotating.can_publish(black_box(&subjects[i]))
        })
    });

    let compiled = CompiledPermissions::compile(&p).expect("perms");
    g.bench_function("uncached_wildcard_walk", |b| {
        b.iter(|| compiled.publish_allowed(black_box(subject)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
