//! [`AwxClient`]: the HTTP implementation of [`AwxApi`].

use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use url::Url;

use super::error::{AwxError, AwxErrorKind};
use super::types::{
    Job, JobOutcome, JobStatus, JobTemplate, LaunchRequirements, LaunchedJob, TemplateRef,
};
use super::{AwxApi, AwxConfig};
use crate::gateway::retry::{self, Failure, RawResponse, RetryPolicy};

/// The AWX REST API v2 over HTTP.
#[derive(Clone)]
pub struct AwxClient {
    config: AwxConfig,
    root: Url,
    authorization: String,
    client: reqwest::Client,
    retry: RetryPolicy,
}

impl std::fmt::Debug for AwxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwxClient")
            .field("root", &self.root.as_str())
            .field("token", &self.config.token)
            .finish_non_exhaustive()
    }
}

impl AwxClient {
    /// Builds a client. Installs the ring rustls provider as the process default when none
    /// is installed.
    pub fn new(config: AwxConfig) -> Result<Self, AwxError> {
        let error = |kind| AwxError {
            operation: "build the HTTP client".into(),
            base_url: config.base_url.clone(),
            kind,
        };
        let mut root = Url::parse(&config.base_url)
            .map_err(|e| error(AwxErrorKind::Request(format!("invalid base URL: {e}"))))?;
        if root.cannot_be_a_base() || !matches!(root.scheme(), "http" | "https") {
            return Err(error(AwxErrorKind::Request(
                "invalid base URL: expected http(s)://host[:port][/path]".into(),
            )));
        }
        root.set_query(None);
        root.set_fragment(None);
        if let Ok(mut segments) = root.path_segments_mut() {
            // Checked above: the URL can be a base.
            segments.pop_if_empty().extend(["api", "v2"]);
        }
        let client =
            retry::build_client(config.timeout).map_err(|e| error(AwxErrorKind::Request(e)))?;
        Ok(Self {
            authorization: format!("Bearer {}", config.token.expose()),
            retry: config.retry_policy(),
            root,
            client,
            config,
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &AwxConfig {
        &self.config
    }

    fn error(&self, operation: impl Into<String>, kind: AwxErrorKind) -> AwxError {
        AwxError {
            operation: operation.into(),
            base_url: self.config.base_url.clone(),
            kind,
        }
    }

    /// `<root>/<segments>/` (AWX routes end with a slash).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.root.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Checked in `new`: the root can be a base.
            path.extend(segments).push("");
        }
        url
    }

    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
        retryable: fn(&Failure) -> bool,
    ) -> Result<RawResponse, (Failure, usize)> {
        let url = self.url(segments);
        let outcome =
            retry::send_with_retry_when(&self.retry, self.config.timeout, retryable, || {
                let mut request = self
                    .client
                    .request(method.clone(), url.clone())
                    .header(ACCEPT, "application/json")
                    .header(AUTHORIZATION, &self.authorization);
                if !query.is_empty() {
                    request = request.query(query);
                }
                if let Some(body) = body {
                    request = request.json(body);
                }
                request
            })
            .await;
        tracing::debug!(
            %method,
            %url,
            status = match &outcome.result {
                Ok(response) => response.status.as_u16().to_string(),
                Err(failure) => failure.label(),
            },
            attempts = outcome.attempts,
            elapsed_ms = outcome.elapsed.as_millis() as u64,
            "AWX call"
        );
        outcome
            .result
            .map_err(|failure| (failure, outcome.attempts))
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &str,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<T, AwxError> {
        let response = self
            .send(Method::GET, segments, query, None, Failure::is_retryable)
            .await
            .map_err(|(f, attempts)| {
                self.error(operation, AwxErrorKind::from_failure(f, attempts))
            })?;
        self.decode(operation, &response)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        operation: &str,
        response: &RawResponse,
    ) -> Result<T, AwxError> {
        serde_json::from_str(&response.body).map_err(|e| {
            self.error(
                operation,
                AwxErrorKind::Decode(format!(
                    "{} with a body that does not match the documented shape ({e}): {}",
                    response.status,
                    retry::truncate_head(&response.body, 300)
                )),
            )
        })
    }

    /// Polls once; transient failures are tolerated (logged) until the deadline.
    async fn poll(&self, job_id: u64, deadline: Instant) -> Result<Option<Job>, AwxError> {
        match self.get_job(job_id).await {
            Ok(job) => Ok(Some(job)),
            Err(error) if error.is_transient() && Instant::now() < deadline => {
                tracing::warn!(job_id, %error, "polling AWX job failed, will retry");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    async fn stdout_for_outcome(&self, job_id: u64, warnings: &mut Vec<String>) -> Option<String> {
        match self.job_stdout_tail(job_id).await {
            Ok(tail) => Some(tail),
            Err(error) => {
                warnings.push(format!("stdout unavailable: {error}"));
                None
            }
        }
    }
}

#[async_trait]
impl AwxApi for AwxClient {
    async fn find_job_template(&self, template: &TemplateRef) -> Result<JobTemplate, AwxError> {
        let operation = format!("find {template}");
        match template {
            TemplateRef::Id(id) => {
                let id = id.to_string();
                self.get_json(&operation, &["job_templates", &id], &[])
                    .await
            }
            TemplateRef::Name(name) => {
                let page: Page<JobTemplate> = self
                    .get_json(&operation, &["job_templates"], &[("name", name.as_str())])
                    .await?;
                // The filter is exact, but keep only exact matches in case it is not.
                let mut found: Vec<JobTemplate> = page
                    .results
                    .into_iter()
                    .filter(|t| &t.name == name)
                    .collect();
                match found.len() {
                    0 => Err(self.error(operation, AwxErrorKind::TemplateNotFound(name.clone()))),
                    1 => Ok(found.remove(0)),
                    _ => Err(self.error(
                        operation,
                        AwxErrorKind::AmbiguousTemplate {
                            name: name.clone(),
                            ids: found.iter().map(|t| t.id).collect(),
                        },
                    )),
                }
            }
        }
    }

    async fn launch_requirements(&self, template_id: u64) -> Result<LaunchRequirements, AwxError> {
        let id = template_id.to_string();
        self.get_json(
            &format!("read what a launch of job template {id} needs"),
            &["job_templates", &id, "launch"],
            &[],
        )
        .await
    }

    async fn launch(
        &self,
        template: &TemplateRef,
        extra_vars: &Map<String, Value>,
    ) -> Result<LaunchedJob, AwxError> {
        let found = self.find_job_template(template).await?;
        let operation = format!("launch job template {} ({:?})", found.id, found.name);
        let needs = self.launch_requirements(found.id).await?;
        let missing: Vec<String> = needs
            .variables_needed_to_start
            .iter()
            .filter(|name| !extra_vars.contains_key(name.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(self.error(operation, AwxErrorKind::MissingVariables(missing)));
        }
        if !needs.passwords_needed_to_start.is_empty() {
            return Err(self.error(
                operation,
                AwxErrorKind::PasswordsNeeded(needs.passwords_needed_to_start),
            ));
        }
        let mut warnings = Vec::new();
        if !extra_vars.is_empty() && !needs.ask_variables_on_launch && !needs.survey_enabled {
            warnings.push(format!(
                "job template {:?} neither prompts for variables nor has a survey: AWX may ignore the extra vars",
                found.name
            ));
        }
        let id = found.id.to_string();
        let body = json!({ "extra_vars": extra_vars });
        // A launch must not run twice: retry only what AWX cannot have handled.
        let response = self
            .send(
                Method::POST,
                &["job_templates", &id, "launch"],
                &[],
                Some(&body),
                Failure::is_retryable_without_side_effects,
            )
            .await
            .map_err(|(f, attempts)| {
                self.error(operation.clone(), AwxErrorKind::from_failure(f, attempts))
            })?;
        let answer: Value = self.decode(&operation, &response)?;
        let job_id = answer
            .get("job")
            .or_else(|| answer.get("id"))
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                self.error(
                    operation.clone(),
                    AwxErrorKind::Decode("the launch answer carries no `job` id".into()),
                )
            })?;
        warnings.extend(ignored_fields_warning(&answer));
        for warning in &warnings {
            tracing::warn!(job_id, template_id = found.id, "{warning}");
        }
        Ok(LaunchedJob {
            job_id,
            template_id: found.id,
            warnings,
        })
    }

    async fn get_job(&self, job_id: u64) -> Result<Job, AwxError> {
        let id = job_id.to_string();
        self.get_json(&format!("read job {id}"), &["jobs", &id], &[])
            .await
    }

    async fn wait_for_job(&self, job_id: u64) -> Result<JobOutcome, AwxError> {
        let started = Instant::now();
        let deadline = started + self.config.job_timeout;
        let poll_max = self.config.poll_max.max(self.config.poll_min);
        let mut delay = self.config.poll_min;
        let mut last: Option<Job> = None;
        loop {
            if let Some(job) = self.poll(job_id, deadline).await? {
                let events_done = job.event_processing_finished.unwrap_or(true);
                let finished = job.status.is_finished();
                last = Some(job);
                if finished && events_done {
                    break;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(poll_max);
        }
        let mut warnings = Vec::new();
        let waited = started.elapsed();
        let job = match last {
            Some(job) if job.status.is_finished() => {
                if job.event_processing_finished == Some(false) {
                    warnings.push(format!(
                        "job {job_id} finished but AWX had not processed all its events after {waited:?}"
                    ));
                }
                job
            }
            last => {
                // Outlived the job timeout: cancel it rather than forget it.
                let status = last.as_ref().map_or("unknown", |j| j.status.as_str());
                warnings.push(format!(
                    "job {job_id} was still {status} after the job timeout of {:?}",
                    self.config.job_timeout
                ));
                match self.cancel_job(job_id).await {
                    Ok(true) => warnings.push(format!("cancel of job {job_id} requested")),
                    Ok(false) => warnings.push(format!("AWX says job {job_id} cannot be canceled")),
                    Err(error) => warnings.push(format!("cancel of job {job_id} failed: {error}")),
                }
                let stdout_tail = self.stdout_for_outcome(job_id, &mut warnings).await;
                for warning in &warnings {
                    tracing::warn!(job_id, "{warning}");
                }
                return Ok(JobOutcome {
                    job_id,
                    status: JobStatus::Stuck,
                    elapsed: waited,
                    artifacts: last.as_ref().map_or(Value::Null, |j| j.artifacts.clone()),
                    stdout_tail,
                    explanation: last.map(|j| j.job_explanation).filter(|e| !e.is_empty()),
                    warnings,
                });
            }
        };
        let stdout_tail = if job.status.is_success() && !job.failed {
            None
        } else {
            self.stdout_for_outcome(job_id, &mut warnings).await
        };
        let status = if job.failed && job.status.is_success() {
            JobStatus::Failed
        } else {
            job.status
        };
        let elapsed = if job.elapsed > 0.0 && job.elapsed.is_finite() {
            Duration::from_secs_f64(job.elapsed)
        } else {
            waited
        };
        Ok(JobOutcome {
            job_id,
            status,
            elapsed,
            artifacts: job.artifacts,
            stdout_tail,
            explanation: Some(job.job_explanation).filter(|e| !e.is_empty()),
            warnings,
        })
    }

    async fn job_stdout_tail(&self, job_id: u64) -> Result<String, AwxError> {
        let id = job_id.to_string();
        let operation = format!("read the stdout of job {id}");
        let response = self
            .send(
                Method::GET,
                &["jobs", &id, "stdout"],
                &[("format", "txt")],
                None,
                Failure::is_retryable,
            )
            .await
            .map_err(|(f, attempts)| {
                self.error(&operation, AwxErrorKind::from_failure(f, attempts))
            })?;
        Ok(retry::truncate_tail(
            &response.body,
            self.config.stdout_tail_bytes,
        ))
    }

    async fn cancel_job(&self, job_id: u64) -> Result<bool, AwxError> {
        let id = job_id.to_string();
        let operation = format!("cancel job {id}");
        match self
            .send(
                Method::POST,
                &["jobs", &id, "cancel"],
                &[],
                None,
                Failure::is_retryable,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err((Failure::Status { status: 405, .. }, _)) => Ok(false),
            Err((failure, attempts)) => {
                Err(self.error(operation, AwxErrorKind::from_failure(failure, attempts)))
            }
        }
    }
}

/// A warning naming the launch fields AWX ignored (`ignored_fields`), if any.
pub(crate) fn ignored_fields_warning(answer: &Value) -> Option<String> {
    let Some(Value::Object(ignored)) = answer.get("ignored_fields") else {
        return None;
    };
    if ignored.is_empty() {
        return None;
    }
    let fields: Vec<&str> = ignored.keys().map(String::as_str).collect();
    Some(format!(
        "AWX ignored launch fields the template does not accept: {} ({})",
        fields.join(", "),
        Value::Object(ignored.clone())
    ))
}

/// A paginated AWX list.
#[derive(serde::Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    results: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_fields_become_a_warning() {
        let answer = json!({"job": 3, "ignored_fields": {"limit": "web", "job_tags": "x"}});
        assert_eq!(
            ignored_fields_warning(&answer),
            Some(
                "AWX ignored launch fields the template does not accept: job_tags, limit \
                 ({\"job_tags\":\"x\",\"limit\":\"web\"})"
                    .to_owned()
            )
        );
        assert_eq!(
            ignored_fields_warning(&json!({"job": 3, "ignored_fields": {}})),
            None
        );
        assert_eq!(ignored_fields_warning(&json!({"job": 3})), None);
    }

    #[test]
    fn urls_end_with_a_slash() {
        let client = match AwxClient::new(AwxConfig::new("http://127.0.0.1:5555", "t")) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            client.url(&["jobs", "12", "stdout"]).as_str(),
            "http://127.0.0.1:5555/api/v2/jobs/12/stdout/"
        );
        let debug = format!("{client:?}");
        assert!(
            debug.contains("<redacted>") && !debug.contains("\"t\""),
            "{debug}"
        );
    }
}
