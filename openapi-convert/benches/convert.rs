//! Criterion benchmark of the converter on the ≥ 1 MB benchmark document
//! (`bench/openapi/github-webhooks-as-paths.3.1.json`: GitHub's webhooks description,
//! 261 paths). `convert` is the transform alone, on an already parsed value;
//! `parse+convert` starts from the text, as `convert_str` does.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const DOC: &str = "../bench/openapi/github-webhooks-as-paths.3.1.json";

fn bench(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let (doc, _) = match openapi_convert::parse(&text) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };

    let mut group = c.benchmark_group("openapi-convert");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("convert", |b| {
        b.iter_batched(
            || doc.clone(),
            |d| black_box(openapi_convert::convert(d)),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("parse+convert", |b| {
        b.iter(|| black_box(openapi_convert::convert_str(black_box(&text))));
    });
    group.bench_function("parse (serde_json, for reference)", |b| {
        b.iter(|| black_box(openapi_convert::parse(black_box(&text))));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
