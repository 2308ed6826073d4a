//! Normalization throughput over the fixture mix, per core: webhooks/s and MB/s of JSON.
//!
//! The mix is every fixture of a provider with an adapter (Meta Cloud API, Sinch, Sunshine
//! Conversations, Gupshup), each a real payload from public docs and libraries
//! (`../shared/fixtures/webhooks/SOURCES.md`), normalized in turn.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ledger_core::Timestamp;
use ledger_ingest::{normalize, Limits, Provider};

fn fixture_mix() -> Vec<(Provider, Vec<u8>)> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/webhooks");
    let route = |folder: &str, file: &str| match folder {
        "meta-cloud" => Some(Provider::MetaCloud),
        "sinch" => Some(Provider::Sinch),
        "sunshine" => Some(Provider::Sunshine),
        _ if file.starts_with("gupshup-") => Some(Provider::Gupshup),
        _ => None,
    };
    let mut mix = Vec::new();
    for folder in ["meta-cloud", "sinch", "sunshine", "other"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(folder))
            .expect("fixtures")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        paths.sort();
        for path in paths {
            let file = path.file_name().expect("file").to_string_lossy().into_owned();
            if let Some(provider) = route(folder, &file) {
                mix.push((provider, std::fs::read(&path).expect("readable")));
            }
        }
    }
    mix
}

fn throughput(c: &mut Criterion) {
    let mix = fixture_mix();
    let limits = Limits::default();
    let bytes: usize = mix.iter().map(|(_, body)| body.len()).sum();
    let mut group = c.benchmark_group("normalize");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(format!("fixture_mix_{}_webhooks_{}_bytes", mix.len(), bytes), |b| {
        b.iter(|| {
            for (provider, body) in &mix {
                let _ = black_box(normalize(*provider, body, Timestamp(0), &limits));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
