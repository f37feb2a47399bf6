//! What the operator reads from AWX.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A job template, by id or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateRef {
    /// The template's numeric id.
    Id(u64),
    /// The template's name (must be unique across organizations).
    Name(String),
}

impl fmt::Display for TemplateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "job template {id}"),
            Self::Name(name) => write!(f, "job template {name:?}"),
        }
    }
}

/// A job template.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct JobTemplate {
    /// `id`.
    pub id: u64,
    /// `name`.
    pub name: String,
    /// `description`.
    #[serde(default)]
    pub description: String,
    /// `ask_variables_on_launch`: whether extra vars are accepted at launch.
    #[serde(default)]
    pub ask_variables_on_launch: bool,
    /// `survey_enabled`.
    #[serde(default)]
    pub survey_enabled: bool,
}

/// What a launch needs (`GET /job_templates/{id}/launch/`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct LaunchRequirements {
    /// `can_start_without_user_input`.
    #[serde(default)]
    pub can_start_without_user_input: bool,
    /// `variables_needed_to_start`: survey variables without a default.
    #[serde(default)]
    pub variables_needed_to_start: Vec<String>,
    /// `passwords_needed_to_start`.
    #[serde(default)]
    pub passwords_needed_to_start: Vec<String>,
    /// `ask_variables_on_launch`.
    #[serde(default)]
    pub ask_variables_on_launch: bool,
    /// `survey_enabled`.
    #[serde(default)]
    pub survey_enabled: bool,
    /// `defaults`.
    #[serde(default)]
    pub defaults: Value,
}

/// A launched job.
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchedJob {
    /// The job's id.
    pub job_id: u64,
    /// The template launched.
    pub template_id: u64,
    /// `ignored_fields` and other launch remarks, for the user to see.
    pub warnings: Vec<String>,
}

/// The status of a job; [`JobStatus::Stuck`] is ours: a job that outlived its timeout and
/// was canceled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobStatus {
    /// `new`.
    New,
    /// `pending`.
    Pending,
    /// `waiting`.
    Waiting,
    /// `running`.
    Running,
    /// `successful`.
    Successful,
    /// `failed`.
    Failed,
    /// `error`.
    Error,
    /// `canceled`.
    Canceled,
    /// Outlived the job timeout; a cancel was requested.
    Stuck,
    /// A status this client does not know (treated as active).
    Unknown(String),
}

impl JobStatus {
    /// Parses AWX's status string.
    pub fn parse(status: &str) -> Self {
        match status {
            "new" => Self::New,
            "pending" => Self::Pending,
            "waiting" => Self::Waiting,
            "running" => Self::Running,
            "successful" => Self::Successful,
            "failed" => Self::Failed,
            "error" => Self::Error,
            "canceled" => Self::Canceled,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// AWX's status string (`stuck` for ours).
    pub fn as_str(&self) -> &str {
        match self {
            Self::New => "new",
            Self::Pending => "pending",
            Self::Waiting => "waiting",
            Self::Running => "running",
            Self::Successful => "successful",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::Canceled => "canceled",
            Self::Stuck => "stuck",
            Self::Unknown(other) => other,
        }
    }

    /// Whether the job has finished (successful, failed, error, canceled, stuck).
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            Self::Successful | Self::Failed | Self::Error | Self::Canceled | Self::Stuck
        )
    }

    /// Whether the job succeeded.
    pub fn is_success(&self) -> bool {
        *self == Self::Successful
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let status = String::deserialize(deserializer)?;
        Ok(Self::parse(&status))
    }
}

/// A job (`GET /jobs/{id}/`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Job {
    /// `id`.
    pub id: u64,
    /// `status`.
    pub status: JobStatus,
    /// `failed`.
    #[serde(default)]
    pub failed: bool,
    /// `started`.
    #[serde(default)]
    pub started: Option<String>,
    /// `finished`.
    #[serde(default)]
    pub finished: Option<String>,
    /// `elapsed` in seconds.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub elapsed: f64,
    /// `job_explanation`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub job_explanation: String,
    /// `result_traceback`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub result_traceback: String,
    /// `artifacts` (what the playbook `set_stats`).
    #[serde(default)]
    pub artifacts: Value,
    /// `event_processing_finished` (absent on old AWX).
    #[serde(default)]
    pub event_processing_finished: Option<bool>,
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq)]
pub struct JobOutcome {
    /// The job's id.
    pub job_id: u64,
    /// Its final status ([`JobStatus::Stuck`] when it outlived the job timeout).
    pub status: JobStatus,
    /// How long it ran (AWX's `elapsed`, or the time we waited when AWX gives none).
    pub elapsed: Duration,
    /// The job's `artifacts`.
    pub artifacts: Value,
    /// The tail of its stdout, for any outcome but success.
    pub stdout_tail: Option<String>,
    /// `job_explanation`, when AWX gives one.
    pub explanation: Option<String>,
    /// Remarks for the user: ignored launch fields, a cancel that failed, …
    pub warnings: Vec<String>,
}

impl JobOutcome {
    /// Whether the job succeeded.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

fn lenient_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    })
}

fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_jobs_and_statuses() {
        let job: Job = match serde_json::from_value(json!({
            "id": 12, "status": "running", "failed": false, "elapsed": "3.25",
            "job_explanation": null, "artifacts": {}, "event_processing_finished": false
        })) {
            Ok(job) => job,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(job.status, JobStatus::Running);
        assert!(!job.status.is_finished());
        assert!((job.elapsed - 3.25).abs() < f64::EPSILON);
        assert_eq!(job.event_processing_finished, Some(false));
        for (text, finished) in [
            ("new", false),
            ("pending", false),
            ("waiting", false),
            ("running", false),
            ("successful", true),
            ("failed", true),
            ("error", true),
            ("canceled", true),
            ("weird", false),
        ] {
            let status = JobStatus::parse(text);
            assert_eq!(status.is_finished(), finished, "{text}");
            assert_eq!(status.as_str(), text);
        }
        assert!(JobStatus::Stuck.is_finished());
        assert!(!JobStatus::Stuck.is_success());
    }
}
