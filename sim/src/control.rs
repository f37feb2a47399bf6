//! `/_sim/...`: fault switches, read-only inspection, reset and call counters (no auth).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::Sim;
use crate::faults::FaultSpec;

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/_sim/faults", get(list_faults).delete(clear_all_faults))
        .route(
            "/_sim/faults/{target}",
            put(set_faults).delete(clear_faults),
        )
        .route("/_sim/state", get(all_state))
        .route("/_sim/state/{env}", get(env_state))
        .route("/_sim/reset", post(reset))
        .route("/_sim/calls", get(calls).delete(reset_calls))
        .route("/_sim/health", get(|| async { "ok" }))
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub(crate) fn known_target(sim: &Sim, target: &str) -> bool {
    target == "awx" || sim.config.environments.iter().any(|e| e == target)
}

async fn list_faults(State(sim): State<Sim>) -> Response {
    Json(json!(sim.faults.lock().all())).into_response()
}

async fn clear_all_faults(State(sim): State<Sim>) -> Response {
    sim.faults.lock().clear_all();
    StatusCode::NO_CONTENT.into_response()
}

async fn set_faults(State(sim): State<Sim>, Path(target): Path<String>, body: Bytes) -> Response {
    if !known_target(&sim, &target) {
        return error(StatusCode::NOT_FOUND, format!("unknown target {target}"));
    }
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid fault spec: {e}")),
    };
    if let Err(e) = spec.validate() {
        return error(StatusCode::BAD_REQUEST, e);
    }
    tracing::info!(%target, ?spec, "faults set");
    sim.faults.lock().set(&target, spec.clone());
    Json(json!(spec)).into_response()
}

async fn clear_faults(State(sim): State<Sim>, Path(target): Path<String>) -> Response {
    if !known_target(&sim, &target) {
        return error(StatusCode::NOT_FOUND, format!("unknown target {target}"));
    }
    sim.faults.lock().clear(&target);
    StatusCode::NO_CONTENT.into_response()
}

fn jobs_view(sim: &Sim) -> Vec<Value> {
    let state = sim.state.lock();
    state.jobs.values().map(|j| j.to_json(sim)).collect()
}

/// The whole inspection view (`GET /_sim/state`).
pub(crate) fn all_state_view(sim: &Sim) -> Value {
    let jobs = jobs_view(sim);
    let state = sim.state.lock();
    let envs: serde_json::Map<String, Value> = state
        .gateways
        .iter()
        .map(|(env, gw)| (env.clone(), gw.inspect()))
        .collect();
    json!({ "environments": envs, "awx": { "jobs": jobs } })
}

/// One environment's inspection view (`GET /_sim/state/{env}`).
pub(crate) fn env_state_view(sim: &Sim, env: &str) -> Option<Value> {
    sim.state.lock().gateways.get(env).map(|gw| gw.inspect())
}

/// Clears state, faults and counters, and cancels running jobs (`POST /_sim/reset`).
pub(crate) fn reset_sim(sim: &Sim) {
    let cancels: Vec<_> = std::mem::take(&mut *sim.cancels.lock())
        .into_values()
        .collect();
    for c in cancels {
        c.notify_one();
    }
    {
        let mut state = sim.state.lock();
        // Job ids keep growing across resets, so a runner still winding down can never
        // write into a job created after the reset.
        let last_job_id = state.last_job_id;
        *state = crate::state::SimState::new(&sim.config.environments);
        state.last_job_id = last_job_id;
    }
    sim.faults.lock().clear_all();
    tracing::info!("simulator reset");
}

async fn all_state(State(sim): State<Sim>) -> Response {
    Json(all_state_view(&sim)).into_response()
}

async fn env_state(State(sim): State<Sim>, Path(env): Path<String>) -> Response {
    match env_state_view(&sim, &env) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("unknown environment {env}")),
    }
}

async fn reset(State(sim): State<Sim>) -> Response {
    reset_sim(&sim);
    StatusCode::NO_CONTENT.into_response()
}

async fn calls(State(sim): State<Sim>) -> Response {
    let state = sim.state.lock();
    Json(json!(state.calls)).into_response()
}

async fn reset_calls(State(sim): State<Sim>) -> Response {
    sim.state.lock().calls.clear();
    StatusCode::NO_CONTENT.into_response()
}
