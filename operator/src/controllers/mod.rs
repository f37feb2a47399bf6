//! One kube-runtime controller per kind (`api` for Apis, `generic` for the others in this
//! release). Each follows one shape: read → validate (pure)
//! → compute the desired status (pure) → patch status once, and only when it changed.
//!
//! Controllers watch their kind as `DynamicObject`s and deserialize each object inside
//! the reconcile: an object that does not match the Rust type (stored before a schema
//! change, say) then becomes an `Accepted=False` condition naming the field, instead of
//! breaking the watch for every other object of the kind.

pub mod acceptance;
pub mod api;
pub mod application;
pub mod backoff;
pub mod cache;
pub mod clients;
pub mod context;
pub mod desired;
pub mod emit;
pub mod generic;
pub mod k8s_events;
pub mod merge_patch;
pub mod shared;
pub mod status;
pub mod subscription;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use context::Context;

/// Runs the controllers of the five kinds until `token` is cancelled.
pub async fn run_all(ctx: Arc<Context>, token: CancellationToken) {
    tokio::join!(
        api::run(ctx.clone(), token.clone()),
        application::run(ctx.clone(), token.clone()),
        subscription::run(ctx.clone(), token.clone()),
        generic::run::<crds::PromotionRequest>(ctx.clone(), token.clone()),
        generic::run::<crds::TeardownPolicy>(ctx.clone(), token.clone()),
    );
}

/// How many controllers `run_all` starts (each must sync its cache before readiness).
pub const CONTROLLER_COUNT: usize = 5;
