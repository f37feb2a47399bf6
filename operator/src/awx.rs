//! AWX REST API v2 client (job templates, launches, jobs).
//!
//! [`AwxApi`] is what controllers use (as `Arc<dyn AwxApi>`); [`AwxClient`] implements it
//! over HTTP against `<base_url>/api/v2`, with the gateway client's retry policy
//! ([`crate::gateway::retry`]). [`AwxApi::run`] finds a template, checks what its launch
//! needs, launches it and follows the job to a [`JobOutcome`]; a job that outlives
//! [`AwxConfig::job_timeout`] is canceled and reported as [`JobStatus::Stuck`].

mod client;
mod error;
mod types;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

pub use crate::gateway::SecretString;
pub use client::AwxClient;
pub use error::{AwxError, AwxErrorKind};
pub use types::{
    Job, JobOutcome, JobStatus, JobTemplate, LaunchRequirements, LaunchedJob, TemplateRef,
};

use crate::gateway::RetryPolicy;

/// How to reach AWX and how long to wait for its jobs.
#[derive(Clone, Debug)]
pub struct AwxConfig {
    /// AWX's base URL, e.g. `http://127.0.0.1:5555`; the client appends `/api/v2/...`.
    pub base_url: String,
    /// OAuth2 token sent as `Authorization: Bearer`.
    pub token: SecretString,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// First delay between two polls of a job.
    pub poll_min: Duration,
    /// Largest delay between two polls of a job (the delay doubles up to it).
    pub poll_max: Duration,
    /// How long a job may take before it is canceled and reported [`JobStatus::Stuck`].
    pub job_timeout: Duration,
    /// Retries after the first attempt of a transient failure.
    pub max_retries: usize,
    /// Delay before the first retry (doubling, jittered).
    pub min_backoff: Duration,
    /// Upper bound of the retry delay.
    pub max_backoff: Duration,
    /// Upper bound applied to AWX's `Retry-After`.
    pub max_retry_after: Duration,
    /// Bytes of a failed job's stdout kept (its tail).
    pub stdout_tail_bytes: usize,
}

impl AwxConfig {
    /// A configuration with defaults: 10 s request timeout, polls from 1 s to 15 s, jobs
    /// time out after 30 min, 3 retries from 200 ms to 5 s, 4 KiB of stdout.
    pub fn new(base_url: impl Into<String>, token: impl Into<SecretString>) -> Self {
        let retry = RetryPolicy::default();
        Self {
            base_url: base_url.into(),
            token: token.into(),
            timeout: Duration::from_secs(10),
            poll_min: Duration::from_secs(1),
            poll_max: Duration::from_secs(15),
            job_timeout: Duration::from_secs(30 * 60),
            max_retries: retry.max_retries,
            min_backoff: retry.min_delay,
            max_backoff: retry.max_delay,
            max_retry_after: retry.max_retry_after,
            stdout_tail_bytes: 4096,
        }
    }

    /// The retry policy this configuration describes.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            min_delay: self.min_backoff,
            max_delay: self.max_backoff,
            max_retry_after: self.max_retry_after,
        }
    }
}

/// A shareable AWX client.
pub type DynAwx = Arc<dyn AwxApi>;

/// The calls controllers make on AWX.
#[async_trait]
pub trait AwxApi: Send + Sync {
    /// Finds a job template by id or by name (404 → [`AwxError::is_not_found`]).
    async fn find_job_template(&self, template: &TemplateRef) -> Result<JobTemplate, AwxError>;

    /// What a launch of the template needs (`GET …/launch/`).
    async fn launch_requirements(&self, template_id: u64) -> Result<LaunchRequirements, AwxError>;

    /// Finds the template, checks that `extra_vars` give every variable the launch needs
    /// (an error names the missing ones, before launching), and launches it. Fields AWX
    /// ignored come back as warnings.
    async fn launch(
        &self,
        template: &TemplateRef,
        extra_vars: &Map<String, Value>,
    ) -> Result<LaunchedJob, AwxError>;

    /// Reads a job.
    async fn get_job(&self, job_id: u64) -> Result<Job, AwxError>;

    /// Polls a job (capped exponential delays) until it finishes and its events are
    /// processed, or cancels it once it exceeds the job timeout ([`JobStatus::Stuck`]).
    /// The stdout tail is fetched for any outcome but success.
    async fn wait_for_job(&self, job_id: u64) -> Result<JobOutcome, AwxError>;

    /// The tail of a job's plain-text stdout.
    async fn job_stdout_tail(&self, job_id: u64) -> Result<String, AwxError>;

    /// Asks AWX to cancel a job; `false` when AWX says it cannot be canceled (405).
    async fn cancel_job(&self, job_id: u64) -> Result<bool, AwxError>;

    /// [`launch`](Self::launch) then [`wait_for_job`](Self::wait_for_job); the launch
    /// warnings are carried into the outcome.
    async fn run(
        &self,
        template: &TemplateRef,
        extra_vars: &Map<String, Value>,
    ) -> Result<JobOutcome, AwxError> {
        let launched = self.launch(template, extra_vars).await?;
        let mut outcome = self.wait_for_job(launched.job_id).await?;
        let mut warnings = launched.warnings;
        warnings.append(&mut outcome.warnings);
        outcome.warnings = warnings;
        Ok(outcome)
    }
}
