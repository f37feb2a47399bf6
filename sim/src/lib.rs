//! Faithful simulators of the webMethods API Gateway and AWX REST APIs
//! (`GATEWAY-AWX-API.md` is the contract).
//!
//! One axum server serves:
//! - one gateway per environment under `/gateways/{env}/rest/apigateway/...`,
//! - AWX under `/api/v2/...` (launches really run `ansible-playbook`),
//! - unauthenticated control endpoints under `/_sim/...` (faults, inspection, reset, calls).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = apim_sim::spawn(apim_sim::SimConfig::default()).await?;
//! let dev_gateway = sim.gateway_url("dev"); // http://127.0.0.1:PORT/gateways/dev
//! let awx = sim.awx_url(); // http://127.0.0.1:PORT
//! # Ok(()) }
//! ```

pub mod assumed;
pub mod awx;
mod control;
pub mod error;
pub mod faults;
pub mod gateway;
mod layer;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

pub use assumed::Assumed;
pub use faults::FaultSpec;

/// The environments served by default.
pub const DEFAULT_ENVIRONMENTS: [&str; 5] = ["dev", "staging", "sandbox", "demo", "prod"];

/// Everything the simulator can be configured with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Environment names; each gets its own gateway under `/gateways/{env}`.
    pub environments: Vec<String>,
    /// Gateway HTTP Basic user.
    pub gateway_user: String,
    /// Gateway HTTP Basic password.
    pub gateway_password: String,
    /// Gateway bearer token accepted besides Basic (`None`: Basic only).
    pub gateway_token: Option<String>,
    /// Environments whose gateway accepts OpenAPI 3.1 (default: none, like 10.15).
    pub gateway_31: BTreeSet<String>,
    /// AWX bearer token.
    pub awx_token: String,
    /// AWX Basic user.
    pub awx_user: String,
    /// AWX Basic password.
    pub awx_password: String,
    /// Directory holding the playbooks the job templates point at.
    pub playbook_dir: PathBuf,
    /// The `ansible-playbook` executable (a bare name is looked up on PATH).
    pub ansible_playbook: PathBuf,
    /// Job timeout for every template without its own entry in `template_timeouts`.
    pub job_timeout: Duration,
    /// Per-template job timeout, by template name.
    pub template_timeouts: BTreeMap<String, Duration>,
    /// Extra environment variables for every job (besides the injected credentials).
    pub job_env: BTreeMap<String, String>,
    /// The behaviours the contract marks assumed.
    pub assumed: Assumed,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            environments: DEFAULT_ENVIRONMENTS
                .iter()
                .map(|e| (*e).to_owned())
                .collect(),
            gateway_user: "Administrator".to_owned(),
            gateway_password: "manage".to_owned(),
            gateway_token: None,
            gateway_31: BTreeSet::new(),
            awx_token: "awx-token".to_owned(),
            awx_user: "admin".to_owned(),
            awx_password: "password".to_owned(),
            playbook_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../ansible")),
            ansible_playbook: PathBuf::from("ansible-playbook"),
            job_timeout: Duration::from_secs(300),
            template_timeouts: BTreeMap::new(),
            job_env: BTreeMap::new(),
            assumed: Assumed::default(),
        }
    }
}

/// Shared simulator state handed to every handler.
#[derive(Clone)]
pub(crate) struct Sim(Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) config: SimConfig,
    pub(crate) state: Mutex<state::SimState>,
    pub(crate) faults: Mutex<faults::Faults>,
    /// Cancel signals of the jobs still running, by job id.
    pub(crate) cancels: Mutex<BTreeMap<u64, Arc<Notify>>>,
}

impl std::ops::Deref for Sim {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Sim {
    fn new(config: SimConfig) -> Self {
        let state = state::SimState::new(&config.environments);
        Self(Arc::new(Inner {
            config,
            state: Mutex::new(state),
            faults: Mutex::new(faults::Faults::default()),
            cancels: Mutex::new(BTreeMap::new()),
        }))
    }
}

/// The whole simulator as an axum router (gateways, AWX and `/_sim`).
pub fn router(config: SimConfig) -> Router {
    router_for(Sim::new(config))
}

fn router_for(sim: Sim) -> Router {
    Router::new()
        .merge(gateway::routes())
        .merge(awx::routes())
        .merge(control::routes())
        .fallback(layer::not_found)
        .method_not_allowed_fallback(layer::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            layer::sim_layer,
        ))
        .with_state(sim)
}

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn serve(
    config: SimConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_sim(Sim::new(config), listener, shutdown).await
}

async fn serve_sim(
    sim: Sim,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router_for(sim))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Why a fault switch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The target is neither a configured environment nor `awx`.
    #[error("unknown fault target {0}: expected an environment name or awx")]
    UnknownTarget(String),
    /// A field is out of range.
    #[error("invalid fault spec: {0}")]
    Invalid(String),
}

/// A simulator serving in a background task; dropping it stops the server.
///
/// Besides the URLs, it offers in-process shortcuts to the `/_sim` endpoints for tests
/// that have no HTTP client at hand.
pub struct RunningSim {
    /// The bound address (127.0.0.1 and an ephemeral port).
    pub addr: SocketAddr,
    sim: Sim,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSim {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The gateway base URL of one environment: `http://127.0.0.1:PORT/gateways/{env}`
    /// (the REST API is under `/rest/apigateway` below it).
    pub fn gateway_url(&self, env: &str) -> String {
        format!("{}/gateways/{env}", self.base_url())
    }

    /// The AWX base URL (`/api/v2/...` below it).
    pub fn awx_url(&self) -> String {
        self.base_url()
    }

    /// Everything, as `GET /_sim/state` shows it.
    pub fn state(&self) -> serde_json::Value {
        control::all_state_view(&self.sim)
    }

    /// One environment, as `GET /_sim/state/{env}` shows it (`None`: unknown environment).
    pub fn env_state(&self, env: &str) -> Option<serde_json::Value> {
        control::env_state_view(&self.sim, env)
    }

    /// The call counters, as `GET /_sim/calls` shows them.
    pub fn calls(&self) -> serde_json::Value {
        serde_json::json!(self.sim.state.lock().calls)
    }

    /// Write calls (not GET/HEAD/OPTIONS) received by `target` (an environment or `awx`).
    pub fn writes(&self, target: &str) -> u64 {
        self.sim
            .state
            .lock()
            .calls
            .get(target)
            .map_or(0, |c| c.writes)
    }

    /// Sets the faults of `target`, like `PUT /_sim/faults/{target}`.
    pub fn set_faults(&self, target: &str, spec: FaultSpec) -> Result<(), FaultError> {
        if !control::known_target(&self.sim, target) {
            return Err(FaultError::UnknownTarget(target.to_owned()));
        }
        spec.validate().map_err(FaultError::Invalid)?;
        self.sim.faults.lock().set(target, spec);
        Ok(())
    }

    /// Clears the faults of `target`, like `DELETE /_sim/faults/{target}`.
    pub fn clear_faults(&self, target: &str) {
        self.sim.faults.lock().clear(target);
    }

    /// Like `POST /_sim/reset`.
    pub fn reset(&self) {
        control::reset_sim(&self.sim);
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `127.0.0.1:0` and serves the simulator in a background task.
pub async fn spawn(config: SimConfig) -> std::io::Result<RunningSim> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let sim = Sim::new(config);
    let task = tokio::spawn(serve_sim(sim.clone(), listener, async move {
        let _ = rx.await;
    }));
    Ok(RunningSim {
        addr,
        sim,
        shutdown: Some(tx),
        task: Some(task),
    })
}
