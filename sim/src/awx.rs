//! The AWX API v2 subset: job templates, launch, jobs, stdout, cancel. A launch really runs
//! `ansible-playbook` in a background task.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::Notify;

use crate::Sim;
use crate::assumed;
use crate::error::AwxError;

type AwxResult = Result<Response, AwxError>;

/// The organization every template belongs to.
pub const ORGANIZATION: &str = "Default";

/// A job template configured at start.
#[derive(Debug, Clone, Copy)]
pub struct JobTemplate {
    pub id: u64,
    pub name: &'static str,
    pub playbook: &'static str,
    pub description: &'static str,
    /// Survey variables that must be given at launch.
    pub required: &'static [&'static str],
    /// Survey variables that may be given at launch.
    pub optional: &'static [&'static str],
}

/// The four templates, ids 1..4.
pub const TEMPLATES: [JobTemplate; 4] = [
    JobTemplate {
        id: 1,
        name: "apim-deploy-api",
        playbook: "deploy-api.yaml",
        description: "Create or update an API on a gateway, set its aliases, activate it",
        required: &["gateway_url", "api_name", "api_version", "api_definition"],
        optional: &[
            "environment",
            "api_description",
            "api_type",
            "activate",
            "aliases",
            "state",
            "trace_id",
            "apim_convert_command",
        ],
    },
    JobTemplate {
        id: 2,
        name: "apim-delete-api",
        playbook: "delete-api.yaml",
        description: "Deactivate and delete an API on a gateway",
        // The playbook needs api_id, or api_name + api_version: it checks that itself.
        required: &["gateway_url"],
        optional: &[
            "environment",
            "api_id",
            "api_name",
            "api_version",
            "trace_id",
        ],
    },
    JobTemplate {
        id: 3,
        name: "apim-application",
        playbook: "application.yaml",
        description: "Create, update or delete an application and return its key",
        required: &["gateway_url", "application_name"],
        optional: &[
            "environment",
            "application_description",
            "contact_emails",
            "credential_type",
            "application_id",
            "state",
            "rotate_key",
            "trace_id",
        ],
    },
    JobTemplate {
        id: 4,
        name: "apim-subscription",
        playbook: "subscription.yaml",
        description: "Associate an API with an application, or dissociate it",
        required: &["gateway_url", "api_id", "application_id"],
        optional: &["environment", "state", "trace_id"],
    },
];

/// AWX job status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    New,
    Pending,
    Waiting,
    Running,
    Successful,
    Failed,
    Error,
    Canceled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Pending => "pending",
            Self::Waiting => "waiting",
            Self::Running => "running",
            Self::Successful => "successful",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::Canceled => "canceled",
        }
    }

    /// new, pending, waiting and running are active.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::New | Self::Pending | Self::Waiting | Self::Running
        )
    }
}

/// One job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    pub template: JobTemplate,
    pub status: JobStatus,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub job_explanation: String,
    pub result_traceback: String,
    pub artifacts: Value,
    pub event_processing_finished: bool,
    pub extra_vars: Map<String, Value>,
    pub stdout: String,
    pub timeout: Duration,
}

fn ts(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))
        .unwrap_or(Value::Null)
}

impl Job {
    /// The job as `GET /jobs/{id}/` prints it.
    pub(crate) fn to_json(&self, sim: &Sim) -> Value {
        let failed = match self.status {
            JobStatus::Failed | JobStatus::Error => true,
            JobStatus::Canceled => sim.config.assumed.awx_canceled_is_failed,
            _ => false,
        };
        let elapsed = match (self.started, self.finished) {
            (Some(s), Some(f)) => (f - s).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        };
        let id = self.id;
        json!({
            "id": id,
            "type": "job",
            "url": format!("/api/v2/jobs/{id}/"),
            "related": {
                "stdout": format!("/api/v2/jobs/{id}/stdout/"),
                "cancel": format!("/api/v2/jobs/{id}/cancel/"),
                "job_template": format!("/api/v2/job_templates/{}/", self.template.id),
            },
            "summary_fields": {
                "job_template": {"id": self.template.id, "name": self.template.name},
                "organization": {"id": 1, "name": ORGANIZATION},
            },
            "created": ts(Some(self.created)),
            "modified": ts(Some(self.modified)),
            "name": self.template.name,
            "description": self.template.description,
            "job_type": "run",
            "launch_type": "manual",
            "inventory": 1,
            "project": 1,
            "organization": 1,
            "playbook": self.template.playbook,
            "job_template": self.template.id,
            "status": self.status.as_str(),
            "failed": failed,
            "started": ts(self.started),
            "finished": ts(self.finished),
            "elapsed": elapsed,
            "job_explanation": self.job_explanation,
            "result_traceback": self.result_traceback,
            "artifacts": self.artifacts,
            "event_processing_finished": self.event_processing_finished,
            "extra_vars": Value::Object(self.extra_vars.clone()).to_string(),
            "timeout": self.timeout.as_secs(),
            "execution_node": "localhost",
        })
    }
}

/// Registers a handler at `path` and at `path` without its trailing slash.
fn both(router: Router<Sim>, path: &str, handler: MethodRouter<Sim>) -> Router<Sim> {
    let bare = path.trim_end_matches('/');
    let router = router.route(path, handler.clone());
    if bare.is_empty() || bare == path {
        router
    } else {
        router.route(bare, handler)
    }
}

pub(crate) fn routes() -> Router<Sim> {
    let mut r = Router::new();
    r = both(r, "/api/v2/", get(root));
    r = both(r, "/api/v2/ping/", get(ping));
    r = both(r, "/api/v2/me/", get(me));
    r = both(r, "/api/v2/job_templates/", get(list_templates));
    r = both(r, "/api/v2/job_templates/{id}/", get(get_template));
    r = both(
        r,
        "/api/v2/job_templates/{id}/launch/",
        get(launch_requirements).post(launch),
    );
    r = both(
        r,
        "/api/v2/job_templates/{id}/survey_spec/",
        get(survey_spec),
    );
    r = both(r, "/api/v2/jobs/", get(list_jobs));
    r = both(r, "/api/v2/jobs/{id}/", get(get_job));
    r = both(r, "/api/v2/jobs/{id}/stdout/", get(job_stdout));
    r = both(
        r,
        "/api/v2/jobs/{id}/cancel/",
        get(cancel_info).post(cancel_job),
    );
    r
}

async fn root() -> Response {
    Json(json!({
        "ping": "/api/v2/ping/",
        "me": "/api/v2/me/",
        "job_templates": "/api/v2/job_templates/",
        "jobs": "/api/v2/jobs/",
    }))
    .into_response()
}

async fn ping(State(sim): State<Sim>) -> Response {
    Json(json!({
        "ha": false,
        "version": sim.config.assumed.awx_version,
        "active_node": "localhost",
        "install_uuid": "00000000-0000-0000-0000-000000000000",
        "instances": [{"node": "localhost", "node_type": "hybrid", "heartbeat": ts(Some(Utc::now())), "capacity": 10, "version": sim.config.assumed.awx_version}],
        "instance_groups": [{"name": "default", "capacity": 10, "instances": ["localhost"]}],
    }))
    .into_response()
}

async fn me(State(sim): State<Sim>) -> Response {
    Json(json!({
        "count": 1, "next": null, "previous": null,
        "results": [{"id": 1, "type": "user", "username": sim.config.awx_user, "is_superuser": true}],
    }))
    .into_response()
}

fn template_json(sim: &Sim, t: &JobTemplate) -> Value {
    let id = t.id;
    let timeout = template_timeout(sim, t);
    json!({
        "id": id,
        "type": "job_template",
        "url": format!("/api/v2/job_templates/{id}/"),
        "related": {
            "launch": format!("/api/v2/job_templates/{id}/launch/"),
            "survey_spec": format!("/api/v2/job_templates/{id}/survey_spec/"),
            "jobs": format!("/api/v2/job_templates/{id}/jobs/"),
        },
        "summary_fields": {
            "organization": {"id": 1, "name": ORGANIZATION},
            "inventory": {"id": 1, "name": "localhost"},
            "project": {"id": 1, "name": "apim-playbooks"},
        },
        "name": t.name,
        "description": t.description,
        "job_type": "run",
        "inventory": 1,
        "project": 1,
        "organization": 1,
        "playbook": t.playbook,
        "extra_vars": "---",
        "ask_variables_on_launch": true,
        "survey_enabled": true,
        "timeout": timeout.as_secs(),
        "status": "never updated",
    })
}

fn template_timeout(sim: &Sim, t: &JobTemplate) -> Duration {
    sim.config
        .template_timeouts
        .get(t.name)
        .copied()
        .unwrap_or(sim.config.job_timeout)
}

/// Resolves `{id}`: a number, or a named URL `<name>++<organization>`.
fn find_template(id: &str) -> Result<JobTemplate, AwxError> {
    if let Ok(n) = id.parse::<u64>() {
        return TEMPLATES
            .iter()
            .find(|t| t.id == n)
            .copied()
            .ok_or_else(AwxError::not_found);
    }
    let (name, org) = id.split_once("++").ok_or_else(AwxError::not_found)?;
    if org != ORGANIZATION {
        return Err(AwxError::not_found());
    }
    TEMPLATES
        .iter()
        .find(|t| t.name == name)
        .copied()
        .ok_or_else(AwxError::not_found)
}

/// `count/next/previous/results` over `items`, honouring `page` and `page_size`.
fn paginate(base: &str, q: &HashMap<String, String>, items: Vec<Value>) -> Result<Value, AwxError> {
    let page: usize = match q.get("page") {
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| AwxError::detail(StatusCode::NOT_FOUND, "Invalid page."))?,
        None => 1,
    };
    let page_size: usize = q
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(25)
        .min(200);
    let count = items.len();
    let start = (page - 1) * page_size;
    if start >= count && page > 1 {
        return Err(AwxError::detail(StatusCode::NOT_FOUND, "Invalid page."));
    }
    let results: Vec<Value> = items.into_iter().skip(start).take(page_size).collect();
    let next = (start + page_size < count)
        .then(|| format!("{base}?page={}&page_size={page_size}", page + 1));
    let previous = (page > 1).then(|| format!("{base}?page={}&page_size={page_size}", page - 1));
    Ok(json!({ "count": count, "next": next, "previous": previous, "results": results }))
}

async fn list_templates(
    State(sim): State<Sim>,
    Query(q): Query<HashMap<String, String>>,
) -> AwxResult {
    let items: Vec<Value> = TEMPLATES
        .iter()
        .filter(|t| q.get("name").is_none_or(|n| n == t.name))
        .filter(|t| {
            q.get("name__icontains")
                .is_none_or(|n| t.name.to_lowercase().contains(&n.to_lowercase()))
        })
        .filter(|t| q.get("id").is_none_or(|i| *i == t.id.to_string()))
        .filter(|t| {
            q.get("or__id")
                .is_none_or(|ids| ids.split(',').any(|i| i == t.id.to_string()))
        })
        .filter(|_| {
            q.get("organization__name")
                .is_none_or(|o| o == ORGANIZATION)
        })
        .map(|t| template_json(&sim, t))
        .collect();
    Ok(Json(paginate("/api/v2/job_templates/", &q, items)?).into_response())
}

async fn get_template(State(sim): State<Sim>, Path(id): Path<String>) -> AwxResult {
    let t = find_template(&id)?;
    Ok(Json(template_json(&sim, &t)).into_response())
}

fn survey(t: &JobTemplate) -> Value {
    let question = |v: &str, required: bool| {
        json!({
            "variable": v,
            "question_name": v,
            "question_description": "",
            "required": required,
            "type": "text",
            "default": "",
        })
    };
    let spec: Vec<Value> = t
        .required
        .iter()
        .map(|v| question(v, true))
        .chain(t.optional.iter().map(|v| question(v, false)))
        .collect();
    json!({ "name": t.name, "description": t.description, "spec": spec })
}

async fn survey_spec(Path(id): Path<String>) -> AwxResult {
    let t = find_template(&id)?;
    Ok(Json(survey(&t)).into_response())
}

async fn launch_requirements(Path(id): Path<String>) -> AwxResult {
    let t = find_template(&id)?;
    Ok(Json(json!({
        "can_start_without_user_input": t.required.is_empty(),
        "passwords_needed_to_start": [],
        "ask_variables_on_launch": true,
        "ask_tags_on_launch": false,
        "ask_limit_on_launch": false,
        "ask_inventory_on_launch": false,
        "ask_credential_on_launch": false,
        "survey_enabled": true,
        "variables_needed_to_start": t.required,
        "credential_needed_to_start": false,
        "inventory_needed_to_start": false,
        "job_template_data": {"name": t.name, "id": t.id, "description": t.description},
        "defaults": {"extra_vars": "---", "limit": "", "job_tags": "", "skip_tags": "", "verbosity": 0, "inventory": {"name": "localhost", "id": 1}},
    }))
    .into_response())
}

/// Parses `extra_vars`: an object, or a JSON/YAML string holding one.
pub fn parse_extra_vars(v: Option<&Value>) -> Result<Map<String, Value>, AwxError> {
    let bad = |msg: String| AwxError::bad_request(json!({ "extra_vars": [msg] }));
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::String(s)) if s.trim().is_empty() || s.trim() == "---" => Ok(Map::new()),
        Some(Value::String(s)) => {
            let parsed: Value = match serde_json::from_str(s) {
                Ok(v) => v,
                Err(_) => serde_yaml::from_str(s)
                    .map_err(|e| bad(format!("Cannot parse as JSON (error: {e}) or YAML.")))?,
            };
            match parsed {
                Value::Object(m) => Ok(m),
                Value::Null => Ok(Map::new()),
                _ => Err(bad("Must be a JSON or YAML dictionary.".to_owned())),
            }
        }
        Some(_) => Err(bad("Must be a JSON or YAML dictionary.".to_owned())),
    }
}

/// The messages listing the required survey variables missing from `vars`.
pub fn missing_variables(t: &JobTemplate, vars: &Map<String, Value>) -> Vec<String> {
    t.required
        .iter()
        .filter(|v| match vars.get(**v) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        })
        .map(|v| format!("'{v}' value missing"))
        .collect()
}

async fn launch(State(sim): State<Sim>, Path(id): Path<String>, body: Bytes) -> AwxResult {
    let t = find_template(&id)?;
    let body: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(AwxError::bad_request(json!({
                    "detail": "JSON parse error - expected a dictionary"
                })));
            }
            Err(e) => {
                return Err(AwxError::bad_request(json!({
                    "detail": format!("JSON parse error - {e}")
                })));
            }
        }
    };
    let vars = parse_extra_vars(body.get("extra_vars"))?;
    let missing = missing_variables(&t, &vars);
    if !missing.is_empty() {
        return Err(AwxError::bad_request(
            json!({ "variables_needed_to_start": missing }),
        ));
    }
    let ignored: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| k.as_str() != "extra_vars")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let timeout = template_timeout(&sim, &t);
    let now = Utc::now();
    let cancel = Arc::new(Notify::new());
    let job = {
        let mut state = sim.state.lock();
        state.last_job_id += 1;
        let job = Job {
            id: state.last_job_id,
            template: t,
            status: JobStatus::Pending,
            created: now,
            modified: now,
            started: None,
            finished: None,
            job_explanation: String::new(),
            result_traceback: String::new(),
            artifacts: json!({}),
            event_processing_finished: false,
            extra_vars: vars.clone(),
            stdout: String::new(),
            timeout,
        };
        state.jobs.insert(job.id, job.clone());
        job
    };
    sim.cancels.lock().insert(job.id, cancel.clone());
    tracing::info!(job = job.id, template = t.name, "job launched");
    tokio::spawn(run_job(sim.clone(), job.id, t, vars, timeout, cancel));
    let mut out = job.to_json(&sim);
    out["job"] = json!(job.id);
    out["ignored_fields"] = Value::Object(ignored);
    let mut response = (StatusCode::CREATED, Json(out)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v2/jobs/{}/", job.id)) {
        response.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(response)
}

fn parse_job_id(id: &str) -> Result<u64, AwxError> {
    id.parse().map_err(|_| AwxError::not_found())
}

async fn list_jobs(State(sim): State<Sim>, Query(q): Query<HashMap<String, String>>) -> AwxResult {
    let items: Vec<Value> = {
        let state = sim.state.lock();
        state
            .jobs
            .values()
            .rev()
            .filter(|j| q.get("status").is_none_or(|s| s == j.status.as_str()))
            .filter(|j| {
                q.get("job_template")
                    .is_none_or(|t| *t == j.template.id.to_string())
            })
            .map(|j| j.to_json(&sim))
            .collect()
    };
    Ok(Json(paginate("/api/v2/jobs/", &q, items)?).into_response())
}

fn with_job<R>(sim: &Sim, id: &str, f: impl FnOnce(&Job) -> R) -> Result<R, AwxError> {
    let id = parse_job_id(id)?;
    let state = sim.state.lock();
    state.jobs.get(&id).map(f).ok_or_else(AwxError::not_found)
}

async fn get_job(State(sim): State<Sim>, Path(id): Path<String>) -> AwxResult {
    let out = with_job(&sim, &id, |j| j.to_json(&sim))?;
    Ok(Json(out).into_response())
}

async fn job_stdout(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> AwxResult {
    let (text, finished) = with_job(&sim, &id, |j| (j.stdout.clone(), !j.status.is_active()))?;
    match q.get("format").map(String::as_str) {
        Some("json") => {
            let lines = text.lines().count();
            Ok(Json(json!({
                "range": {"start": 0, "end": lines, "absolute_end": lines},
                "content": text,
            }))
            .into_response())
        }
        Some("html") => {
            let escaped = text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            Ok((
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                format!("<!DOCTYPE html><html><body><pre>{escaped}</pre></body></html>"),
            )
                .into_response())
        }
        Some("txt" | "ansi" | "txt_download" | "ansi_download") | None => {
            let _ = finished;
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
        }
        Some(other) => Err(AwxError::detail(
            StatusCode::NOT_FOUND,
            format!("Not found: unsupported format {other}."),
        )),
    }
}

async fn cancel_info(State(sim): State<Sim>, Path(id): Path<String>) -> AwxResult {
    let can = with_job(&sim, &id, |j| j.status.is_active())?;
    Ok(Json(json!({ "can_cancel": can })).into_response())
}

async fn cancel_job(State(sim): State<Sim>, Path(id): Path<String>) -> AwxResult {
    let active = with_job(&sim, &id, |j| j.status.is_active())?;
    let job_id = parse_job_id(&id)?;
    if !active {
        return Err(AwxError::detail(
            StatusCode::METHOD_NOT_ALLOWED,
            assumed::awx_405("POST"),
        ));
    }
    if let Some(c) = sim.cancels.lock().get(&job_id) {
        c.notify_one();
    }
    tracing::info!(job = job_id, "job cancel requested");
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------------------------------
// Running the playbook
// ---------------------------------------------------------------------------------------

/// An `aggregate` callback plugin that writes `set_stats` data to the file named by
/// `APIM_SIM_ARTIFACTS_FILE`, the way AWX stores it as `artifacts` without printing it.
const ARTIFACTS_CALLBACK: &str = r#"
DOCUMENTATION = '''
name: apim_sim_artifacts
type: aggregate
short_description: write set_stats data to a file for apim-sim
description:
  - Writes the run's custom stats (set_stats) as JSON to the file named by APIM_SIM_ARTIFACTS_FILE.
'''
import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'apim_sim_artifacts'
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('APIM_SIM_ARTIFACTS_FILE')
        if not path:
            return
        data = dict(stats.custom.get('_run', {}))
        with open(path, 'w') as f:
            json.dump(data, f, default=str)
"#;

fn update_job(sim: &Sim, id: u64, f: impl FnOnce(&mut Job)) {
    let mut state = sim.state.lock();
    if let Some(job) = state.jobs.get_mut(&id) {
        f(job);
        job.modified = Utc::now();
    }
}

fn append_output(sim: &Sim, id: u64, line: &str) {
    let mut state = sim.state.lock();
    if let Some(job) = state.jobs.get_mut(&id) {
        job.stdout.push_str(line);
        job.stdout.push('\n');
    }
}

fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    sim: Sim,
    id: u64,
    reader: R,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            append_output(&sim, id, &line);
        }
    })
}

fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads
        // (it was spawned with process_group(0)); it touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.start_kill();
}

enum Outcome {
    Exited(std::process::ExitStatus),
    WaitFailed(std::io::Error),
    TimedOut,
    Canceled,
}

struct Prepared {
    _dir: tempfile::TempDir,
    vars_file: PathBuf,
    artifacts_file: PathBuf,
    callback_dir: PathBuf,
    local_temp: PathBuf,
}

fn prepare(vars: &Map<String, Value>) -> std::io::Result<Prepared> {
    let dir = tempfile::Builder::new().prefix("apim-sim-job-").tempdir()?;
    let vars_file = dir.path().join("extra_vars.json");
    std::fs::write(&vars_file, Value::Object(vars.clone()).to_string())?;
    let callback_dir = dir.path().join("callback_plugins");
    std::fs::create_dir_all(&callback_dir)?;
    std::fs::write(
        callback_dir.join("apim_sim_artifacts.py"),
        ARTIFACTS_CALLBACK,
    )?;
    let local_temp = dir.path().join("tmp");
    std::fs::create_dir_all(&local_temp)?;
    Ok(Prepared {
        artifacts_file: dir.path().join("artifacts.json"),
        vars_file,
        callback_dir,
        local_temp,
        _dir: dir,
    })
}

async fn run_job(
    sim: Sim,
    id: u64,
    t: JobTemplate,
    vars: Map<String, Value>,
    timeout: Duration,
    cancel: Arc<Notify>,
) {
    update_job(&sim, id, |j| j.status = JobStatus::Waiting);
    let outcome = run_process(&sim, id, t, &vars, timeout, &cancel).await;
    let (status, explanation, traceback, artifacts) = match outcome {
        Err(e) => (
            JobStatus::Error,
            format!("Job could not start: {e}"),
            e.to_string(),
            None,
        ),
        Ok((Outcome::Exited(st), artifacts)) if st.success() => (
            JobStatus::Successful,
            String::new(),
            String::new(),
            artifacts,
        ),
        Ok((Outcome::Exited(_), artifacts)) => {
            (JobStatus::Failed, String::new(), String::new(), artifacts)
        }
        Ok((Outcome::WaitFailed(e), _)) => (
            JobStatus::Error,
            format!("Job failed while waiting for ansible-playbook: {e}"),
            e.to_string(),
            None,
        ),
        Ok((Outcome::TimedOut, _)) => (
            JobStatus::Error,
            "Job terminated due to timeout".to_owned(),
            String::new(),
            None,
        ),
        Ok((Outcome::Canceled, _)) => (
            JobStatus::Canceled,
            "Job canceled by user".to_owned(),
            String::new(),
            None,
        ),
    };
    tracing::info!(job = id, status = status.as_str(), "job finished");
    update_job(&sim, id, |j| {
        j.status = status;
        j.finished = Some(Utc::now());
        if j.started.is_none() {
            j.started = j.finished;
        }
        j.job_explanation = explanation;
        j.result_traceback = traceback;
        if let Some(a) = artifacts {
            j.artifacts = a;
        }
    });
    sim.cancels.lock().remove(&id);
    tokio::time::sleep(Duration::from_millis(
        sim.config.assumed.awx_event_processing_delay_ms,
    ))
    .await;
    update_job(&sim, id, |j| j.event_processing_finished = true);
}

async fn run_process(
    sim: &Sim,
    id: u64,
    t: JobTemplate,
    vars: &Map<String, Value>,
    timeout: Duration,
    cancel: &Notify,
) -> std::io::Result<(Outcome, Option<Value>)> {
    let prepared = prepare(vars)?;
    let playbook = sim.config.playbook_dir.join(t.playbook);
    let mut cmd = tokio::process::Command::new(&sim.config.ansible_playbook);
    cmd.arg("-i")
        .arg("localhost,")
        .arg("-c")
        .arg("local")
        .arg("-e")
        .arg(format!("@{}", prepared.vars_file.display()))
        .arg(&playbook)
        .current_dir(&sim.config.playbook_dir)
        .env("GATEWAY_USERNAME", &sim.config.gateway_user)
        .env("GATEWAY_PASSWORD", &sim.config.gateway_password)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "False")
        .env("ANSIBLE_LOCALHOST_WARNING", "False")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
        .env("ANSIBLE_DEPRECATION_WARNINGS", "False")
        .env("ANSIBLE_CALLBACK_PLUGINS", &prepared.callback_dir)
        .env("ANSIBLE_CALLBACKS_ENABLED", "apim_sim_artifacts")
        .env("ANSIBLE_LOCAL_TEMP", &prepared.local_temp)
        .env("APIM_SIM_ARTIFACTS_FILE", &prepared.artifacts_file)
        .env("PYTHONUNBUFFERED", "1")
        .envs(&sim.config.job_env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = cmd.spawn()?;
    update_job(sim, id, |j| {
        j.status = JobStatus::Running;
        j.started = Some(Utc::now());
    });
    let readers = [
        child
            .stdout
            .take()
            .map(|o| spawn_reader(sim.clone(), id, o)),
        child
            .stderr
            .take()
            .map(|e| spawn_reader(sim.clone(), id, e)),
    ];
    let outcome = tokio::select! {
        status = child.wait() => match status {
            Ok(st) => Outcome::Exited(st),
            Err(e) => Outcome::WaitFailed(e),
        },
        () = tokio::time::sleep(timeout) => {
            kill_group(&mut child);
            let _ = child.wait().await;
            Outcome::TimedOut
        }
        () = cancel.notified() => {
            kill_group(&mut child);
            let _ = child.wait().await;
            Outcome::Canceled
        }
    };
    for reader in readers.into_iter().flatten() {
        // The pipes close when the process group is gone; do not hang on a stray grandchild.
        let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    }
    let artifacts = std::fs::read_to_string(&prepared.artifacts_file)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok());
    Ok((outcome, artifacts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_urls_and_ids_resolve() {
        assert_eq!(
            find_template("1").map(|t| t.name).ok(),
            Some("apim-deploy-api")
        );
        assert_eq!(
            find_template("apim-subscription++Default")
                .map(|t| t.id)
                .ok(),
            Some(4)
        );
        assert!(find_template("apim-subscription++Other").is_err());
        assert!(find_template("9").is_err());
    }

    #[test]
    fn extra_vars_as_string_or_object() {
        let m = parse_extra_vars(Some(&json!("api_name: a\napi_version: '1'"))).ok();
        assert_eq!(m.and_then(|m| m.get("api_name").cloned()), Some(json!("a")));
        let m = parse_extra_vars(Some(&json!("{\"x\": 1}"))).ok();
        assert_eq!(m.and_then(|m| m.get("x").cloned()), Some(json!(1)));
        assert!(parse_extra_vars(Some(&json!([1]))).is_err());
        assert!(parse_extra_vars(Some(&json!("- a"))).is_err());
    }

    #[test]
    fn missing_variables_are_listed() {
        let t = TEMPLATES[3];
        let vars =
            parse_extra_vars(Some(&json!({"gateway_url": "x", "api_id": ""}))).unwrap_or_default();
        assert_eq!(
            missing_variables(&t, &vars),
            vec!["'api_id' value missing", "'application_id' value missing"]
        );
    }
}
