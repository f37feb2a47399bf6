//! Decision latency without a server.
//!
//! - `decide/promotion_approve`: the validation rules on a parsed PromotionRequest UPDATE
//!   (a CPI approves; target p50 < 100 µs);
//! - `review/...`: the whole hot path of one review (parse body → decide → serialise);
//! - `mutate/promotion_approve`: the mutating path on the same request.
//!
//! `cargo bench -p apim-webhook --bench decide`

use std::hint::black_box;
use std::sync::Arc;

use apim_webhook::config::Config;
use apim_webhook::fixtures;
use apim_webhook::metrics::Metrics;
use apim_webhook::review;
use apim_webhook::rules::{Policy, mutate};
use apim_webhook::server::{App, Endpoint};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let policy = match Policy::new(Config::default()) {
        Ok(p) => p,
        Err(e) => panic!("default config must build: {e}"),
    };
    let approve_body = fixtures::review_body(&fixtures::promotion_approve());
    let approve = match review::parse(&approve_body) {
        Ok(r) => r,
        Err(e) => panic!("fixture must parse: {e:?}"),
    };
    assert!(policy.validate(&approve).allowed());

    let mut untagged = fixtures::api_create();
    untagged.object = Some(fixtures::untagged_api());
    let untagged_body = fixtures::review_body(&untagged);

    c.bench_function("decide/promotion_approve", |b| {
        b.iter(|| black_box(policy.validate_response(black_box(&approve))))
    });
    c.bench_function("mutate/promotion_approve", |b| {
        b.iter(|| black_box(mutate::mutations(black_box(&approve))))
    });
    c.bench_function("parse/promotion_approve", |b| {
        b.iter(|| black_box(review::parse(black_box(&approve_body))))
    });

    let app = App::new(policy, Arc::new(Metrics::new()));
    c.bench_function("review/promotion_approve", |b| {
        b.iter(|| black_box(app.review(Endpoint::Validate, black_box(&approve_body))))
    });
    c.bench_function("review/api_untagged_denied", |b| {
        b.iter(|| black_box(app.review(Endpoint::Validate, black_box(&untagged_body))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
