//! One HTTP attempt, its classification, and the retry policy shared by the gateway and
//! AWX clients.
//!
//! Retried: connection errors, timeouts, 429 (honouring `Retry-After`, capped) and 5xx.
//! Never retried: any other status (4xx above all), malformed requests.
//! Every retry waits a jittered, exponentially growing delay, and the number of attempts is
//! bounded by [`RetryPolicy::max_retries`].

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};

/// How often and how patiently a call is retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = a single attempt).
    pub max_retries: usize,
    /// Delay before the first retry; doubles on each retry (plus up to 100 % jitter).
    pub min_delay: Duration,
    /// Upper bound of the exponential delay (before jitter).
    pub max_delay: Duration,
    /// Upper bound applied to a server's `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy with `max_retries` and the default delays.
    pub fn with_max_retries(max_retries: usize) -> Self {
        Self {
            max_retries,
            ..Self::default()
        }
    }

    /// The jittered exponential backoff this policy describes.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_factor(2.0)
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
    }

    /// The delay before the next attempt: `Retry-After` (capped) when the server sent one,
    /// the backoff delay otherwise; `None` (give up) when the backoff is exhausted.
    pub fn next_delay(&self, failure: &Failure, backoff: Option<Duration>) -> Option<Duration> {
        let backoff = backoff?;
        match failure {
            Failure::Status {
                retry_after: Some(after),
                ..
            } => Some((*after).min(self.max_retry_after)),
            _ => Some(backoff),
        }
    }
}

/// A successful (2xx) answer, fully read.
#[derive(Clone, Debug)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body as text (empty for 204).
    pub body: String,
}

/// Why one attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made (refused, reset before a request was sent, DNS, TLS).
    Connect(String),
    /// No full answer within the per-request timeout.
    Timeout(Duration),
    /// The server answered with a non-2xx status.
    Status {
        /// The HTTP status code.
        status: u16,
        /// The body, as the server sent it (truncated).
        body: String,
        /// The server's `Retry-After`, when present and parseable.
        retry_after: Option<Duration>,
    },
    /// Anything else (the request could not be built or sent, the body could not be read).
    Other(String),
}

impl Failure {
    /// Whether trying again may help: connection errors, timeouts, 429 and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            Failure::Connect(_) | Failure::Timeout(_) => true,
            Failure::Status { status, .. } => *status == 429 || *status >= 500,
            Failure::Other(_) => false,
        }
    }

    /// Whether a retry cannot run the request twice: no connection was made, or the
    /// server refused it before handling it (429, 502, 503, 504).
    pub fn is_retryable_without_side_effects(&self) -> bool {
        match self {
            Failure::Connect(_) => true,
            Failure::Status { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            Failure::Timeout(_) | Failure::Other(_) => false,
        }
    }

    /// The HTTP status when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short label for metrics: the status code, `timeout`, `connect` or `error`.
    pub fn label(&self) -> String {
        match self {
            Failure::Connect(_) => "connect".to_owned(),
            Failure::Timeout(_) => "timeout".to_owned(),
            Failure::Status { status, .. } => status.to_string(),
            Failure::Other(_) => "error".to_owned(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "no connection ({e})"),
            Failure::Timeout(after) => write!(f, "no answer within {after:?}"),
            Failure::Status { status, body, .. } => {
                let reason = StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                if body.trim().is_empty() {
                    write!(f, "HTTP {status} {reason}")
                } else {
                    write!(f, "HTTP {status} {reason}: {}", body.trim())
                }
            }
            Failure::Other(e) => write!(f, "{e}"),
        }
    }
}

/// The result of a call after its retries, with how many attempts it took.
#[derive(Debug)]
pub struct Outcome {
    /// The answer, or the failure of the last attempt.
    pub result: Result<RawResponse, Failure>,
    /// Attempts made (at least 1).
    pub attempts: usize,
    /// Time spent, retries and waits included.
    pub elapsed: Duration,
}

/// Longest body kept in a [`Failure::Status`].
const MAX_ERROR_BODY: usize = 4096;

/// Sends the request built by `make` (called once per attempt), retrying per `policy`.
pub async fn send_with_retry<F>(policy: &RetryPolicy, timeout: Duration, make: F) -> Outcome
where
    F: Fn() -> RequestBuilder,
{
    send_with_retry_when(policy, timeout, Failure::is_retryable, make).await
}

/// Like [`send_with_retry`], retrying only the failures `retryable` accepts (a subset of
/// [`Failure::is_retryable`] for calls that must not run twice, e.g. a job launch).
pub async fn send_with_retry_when<F>(
    policy: &RetryPolicy,
    timeout: Duration,
    retryable: fn(&Failure) -> bool,
    make: F,
) -> Outcome
where
    F: Fn() -> RequestBuilder,
{
    let started = Instant::now();
    let attempts = AtomicUsize::new(0);
    let result = (|| {
        attempts.fetch_add(1, Ordering::Relaxed);
        send_once(make(), timeout)
    })
    .retry(policy.backoff())
    .when(|failure| retryable(failure) && failure.is_retryable())
    .adjust(|failure, backoff| policy.next_delay(failure, backoff))
    .notify(|failure, delay| {
        tracing::debug!(%failure, ?delay, "retrying HTTP call");
    })
    .await;
    Outcome {
        result,
        attempts: attempts.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    }
}

/// One attempt: sends, reads the whole body, classifies.
pub async fn send_once(request: RequestBuilder, timeout: Duration) -> Result<RawResponse, Failure> {
    let response = request.send().await.map_err(|e| classify(&e, timeout))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.map_err(|e| classify(&e, timeout))?;
    if status.is_success() {
        return Ok(RawResponse {
            status,
            headers,
            body,
        });
    }
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    Err(Failure::Status {
        status: status.as_u16(),
        body: truncate_head(&body, MAX_ERROR_BODY),
        retry_after,
    })
}

fn classify(error: &reqwest::Error, timeout: Duration) -> Failure {
    if error.is_timeout() {
        Failure::Timeout(timeout)
    } else if error.is_connect() {
        Failure::Connect(error_chain(error))
    } else {
        Failure::Other(error_chain(error))
    }
}

/// The error and its sources, joined by ": ".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (a date in the past gives zero).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = date.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// The first `max` bytes of `text` (at a char boundary), with a marker when cut.
pub fn truncate_head(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The last `max` bytes of `text` (at a char boundary), with a marker when cut.
pub fn truncate_tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// A reqwest client over rustls with the ring provider (installed as the process default
/// when none is), with a per-request timeout.
pub fn build_client(timeout: Duration) -> Result<reqwest::Client, String> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race against another thread installing a provider is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .tls_backend_rustls()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("apim-operator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| error_chain(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::sync::Arc;

    fn status(status: u16, retry_after: Option<Duration>) -> Failure {
        Failure::Status {
            status,
            body: String::new(),
            retry_after,
        }
    }

    #[test]
    fn retries_transport_failures_429_and_5xx_only() {
        assert!(Failure::Connect("refused".into()).is_retryable());
        assert!(Failure::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(status(429, None).is_retryable());
        assert!(status(500, None).is_retryable());
        assert!(status(503, None).is_retryable());
        for code in [400, 401, 403, 404, 405, 409, 422] {
            assert!(
                !status(code, None).is_retryable(),
                "{code} must not be retried"
            );
        }
        assert!(!Failure::Other("bad url".into()).is_retryable());
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).single();
        let Some(now) = now else { panic!("valid date") };
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 08:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 07:59:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn retry_after_is_capped_and_exhaustion_is_kept() {
        let policy = RetryPolicy {
            max_retry_after: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let backoff = Some(Duration::from_millis(300));
        assert_eq!(
            policy.next_delay(&status(429, Some(Duration::from_secs(3600))), backoff),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            policy.next_delay(&status(429, Some(Duration::from_secs(2))), backoff),
            Some(Duration::from_secs(2))
        );
        assert_eq!(policy.next_delay(&status(503, None), backoff), backoff);
        assert_eq!(
            policy.next_delay(&status(429, Some(Duration::from_secs(1))), None),
            None
        );
    }

    #[test]
    fn backoff_is_bounded_jittered_and_exponential() {
        use backon::BackoffBuilder;
        let policy = RetryPolicy {
            max_retries: 6,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
            max_retry_after: Duration::from_secs(1),
        };
        for _ in 0..20 {
            let delays: Vec<Duration> = policy.backoff().build().collect();
            assert_eq!(delays.len(), 6);
            let bases = [100u64, 200, 400, 800, 800, 800];
            for (delay, base) in delays.iter().zip(bases) {
                let base = Duration::from_millis(base);
                assert!(
                    *delay >= base && *delay <= base * 2,
                    "{delay:?} vs {base:?}"
                );
            }
        }
        let none: Vec<Duration> = RetryPolicy::with_max_retries(0).backoff().build().collect();
        assert!(none.is_empty());
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        assert_eq!(truncate_tail("abcdef", 10), "abcdef");
        assert_eq!(truncate_tail("abcdef", 3), "…def");
        assert_eq!(truncate_head("abcdef", 3), "abc…");
        let s = "ééé";
        assert_eq!(truncate_tail(s, 3), "…é");
        assert_eq!(truncate_head(s, 3), "é…");
    }

    /// A local server answering `statuses` in turn (then 200), counting requests.
    async fn scripted(
        statuses: Vec<(u16, Option<&'static str>)>,
        delay: Duration,
    ) -> (String, Arc<AtomicUsize>) {
        use axum::http::{HeaderValue, StatusCode as AxStatus};
        use axum::response::IntoResponse;
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            let statuses = statuses.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let (code, retry_after) = statuses.get(n).copied().unwrap_or((200, None));
                let status = AxStatus::from_u16(code).unwrap_or(AxStatus::OK);
                let mut response = (status, format!("{{\"n\":{n}}}")).into_response();
                if let Some(value) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", HeaderValue::from_static(value));
                }
                response
            }
        });
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("addr: {e}"),
        };
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/"), hits)
    }

    fn fast_policy(max_retries: usize) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(50),
        }
    }

    fn client(timeout: Duration) -> reqwest::Client {
        match build_client(timeout) {
            Ok(c) => c,
            Err(e) => panic!("client: {e}"),
        }
    }

    #[tokio::test]
    async fn retries_429_with_retry_after_then_succeeds() {
        let (url, hits) = scripted(vec![(429, Some("1")), (503, None)], Duration::ZERO).await;
        let http = client(Duration::from_secs(2));
        let started = Instant::now();
        let outcome =
            send_with_retry(&fast_policy(3), Duration::from_secs(2), || http.get(&url)).await;
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
        assert_eq!(outcome.attempts, 3);
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        // Retry-After: 1 is capped at 50 ms.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn gives_up_after_the_bounded_attempts_and_never_retries_4xx() {
        let (url, hits) = scripted(vec![(500, None); 10], Duration::ZERO).await;
        let http = client(Duration::from_secs(2));
        let outcome =
            send_with_retry(&fast_policy(2), Duration::from_secs(2), || http.get(&url)).await;
        assert_eq!(
            outcome.result.as_ref().err().and_then(Failure::status),
            Some(500)
        );
        assert_eq!(outcome.attempts, 3);
        assert_eq!(hits.load(Ordering::SeqCst), 3);

        let (url, hits) = scripted(vec![(404, None); 10], Duration::ZERO).await;
        let outcome =
            send_with_retry(&fast_policy(5), Duration::from_secs(2), || http.get(&url)).await;
        assert_eq!(
            outcome.result.as_ref().err().and_then(Failure::status),
            Some(404)
        );
        assert_eq!(outcome.attempts, 1);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn times_out_and_side_effect_free_retries_skip_timeouts() {
        let (url, hits) = scripted(vec![], Duration::from_millis(400)).await;
        let timeout = Duration::from_millis(100);
        let http = client(timeout);
        let outcome = send_with_retry(&fast_policy(1), timeout, || http.get(&url)).await;
        assert_eq!(outcome.result.err(), Some(Failure::Timeout(timeout)));
        assert_eq!(outcome.attempts, 2);
        let outcome = send_with_retry_when(
            &fast_policy(3),
            timeout,
            Failure::is_retryable_without_side_effects,
            || http.post(&url),
        )
        .await;
        assert_eq!(outcome.result.err(), Some(Failure::Timeout(timeout)));
        assert_eq!(outcome.attempts, 1);
        assert!(hits.load(Ordering::SeqCst) >= 3);
    }

    #[tokio::test]
    async fn connection_refused_is_a_retried_connect_failure() {
        // Bind then drop a listener: nothing listens on that port any more.
        let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => addr.port(),
            Err(e) => panic!("bind: {e}"),
        };
        let url = format!("http://127.0.0.1:{port}/");
        let http = client(Duration::from_secs(1));
        let outcome =
            send_with_retry(&fast_policy(2), Duration::from_secs(1), || http.get(&url)).await;
        assert!(
            matches!(outcome.result, Err(Failure::Connect(_))),
            "{:?}",
            outcome.result
        );
        assert_eq!(outcome.attempts, 3);
    }

    #[test]
    fn failure_display_names_the_answer() {
        let f = Failure::Status {
            status: 404,
            body: "{\"errorDetails\":\"gone\"}".into(),
            retry_after: None,
        };
        assert_eq!(
            f.to_string(),
            "HTTP 404 Not Found: {\"errorDetails\":\"gone\"}"
        );
        assert_eq!(f.label(), "404");
        assert_eq!(Failure::Timeout(Duration::from_secs(2)).label(), "timeout");
    }
}
