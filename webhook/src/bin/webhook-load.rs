//! `webhook-load`: drives a running apim-webhook over HTTPS with keep-alive connections and
//! prints reviews/s, client-side latency percentiles, the server-side latency read from the
//! `/metrics` histogram, and the server's memory (VmHWM/VmRSS) when given its pid.
//!
//! ```text
//! webhook-load --url https://127.0.0.1:8443 --ca /tmp/apim-webhook-certs/ca.crt \
//!     --concurrency 32 --duration 10 --scenario promotion-approve --server-pid $PID
//! ```
//!
//! The client is a minimal HTTP/1.1 client over tokio-rustls (one connection per worker,
//! requests pre-serialised) so that, on a small machine, as little CPU as possible is taken
//! from the server under test. Traffic goes only to the given URL, for a bounded time.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apim_webhook::fixtures::{self, ReviewSpec};
use clap::Parser;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Load generator for apim-webhook.
#[derive(Debug, Parser)]
#[command(name = "webhook-load")]
struct Args {
    /// Base URL of the webhook (https://host:port). Only loopback targets are sensible.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    url: String,
    /// CA certificate (PEM) to trust, e.g. <cert-dir>/ca.crt.
    #[arg(long)]
    ca: PathBuf,
    /// Concurrent keep-alive connections (one request in flight on each).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// What to send: promotion-approve (validate, allowed), api-create (validate, allowed),
    /// api-untagged (validate, denied), promotion-mutate (mutate, patched).
    #[arg(long, default_value = "promotion-approve")]
    scenario: String,
    /// Pid of the server, to report its VmHWM/VmRSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("bad --url {0:?}: expected https://<ip>:<port>")]
    Url(String),
    #[error("unknown scenario {0:?}")]
    Scenario(String),
    #[error("failed to read CA {path}: {reason}")]
    Ca { path: String, reason: String },
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("bad response: {0}")]
    Response(String),
}

fn scenario(name: &str) -> Result<(&'static str, ReviewSpec), LoadError> {
    Ok(match name {
        "promotion-approve" => ("/validate", fixtures::promotion_approve()),
        "api-create" => ("/validate", fixtures::api_create()),
        "api-untagged" => {
            let mut s = fixtures::api_create();
            s.object = Some(fixtures::untagged_api());
            ("/validate", s)
        }
        "promotion-mutate" => {
            let mut s = fixtures::promotion_approve();
            s.object = Some(fixtures::promotion(
                Some("finance-devops"),
                Some(fixtures::approval(None)),
            ));
            ("/mutate", s)
        }
        other => return Err(LoadError::Scenario(other.to_owned())),
    })
}

struct Target {
    addr: SocketAddr,
    host: String,
    server_name: ServerName<'static>,
    connector: TlsConnector,
}

impl Target {
    async fn connect(&self) -> Result<TlsStream<TcpStream>, LoadError> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        Ok(self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await?)
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns (status, body).
async fn read_response<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    line: &mut String,
    body: &mut Vec<u8>,
) -> Result<u16, LoadError> {
    line.clear();
    if r.read_line(line).await? == 0 {
        return Err(LoadError::Response("connection closed".to_owned()));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| LoadError::Response(format!("status line {line:?}")))?;
    let mut len: Option<usize> = None;
    loop {
        line.clear();
        if r.read_line(line).await? == 0 {
            return Err(LoadError::Response(
                "connection closed in headers".to_owned(),
            ));
        }
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok();
        }
    }
    body.clear();
    match len {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(body).await?;
        }
        None => {
            r.read_to_end(body).await?;
        }
    }
    Ok(status)
}

struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: u64,
    unexpected: u64,
}

async fn worker(
    target: Arc<Target>,
    request: Arc<Vec<u8>>,
    expect: &'static str,
    measure_from: Instant,
    stop_at: Instant,
) -> Result<WorkerResult, LoadError> {
    let stream = target.connect().await?;
    let mut conn = BufReader::with_capacity(16 * 1024, stream);
    let mut res = WorkerResult {
        latencies_us: Vec::with_capacity(64 * 1024),
        errors: 0,
        unexpected: 0,
    };
    let (mut line, mut body) = (String::with_capacity(256), Vec::with_capacity(4096));
    loop {
        let t0 = Instant::now();
        if t0 >= stop_at {
            break;
        }
        conn.get_mut().write_all(&request).await?;
        let status = read_response(&mut conn, &mut line, &mut body).await;
        let t1 = Instant::now();
        match status {
            Ok(200) => {
                if !body.windows(expect.len()).any(|w| w == expect.as_bytes()) {
                    res.unexpected += 1;
                }
            }
            Ok(_) => res.errors += 1,
            Err(_) => {
                // Reconnect and go on; count the failure.
                res.errors += 1;
                conn = BufReader::with_capacity(16 * 1024, target.connect().await?);
                continue;
            }
        }
        if t0 >= measure_from {
            let us = (t1 - t0).as_micros();
            res.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
    Ok(res)
}

async fn get(target: &Target, path: &str) -> Result<String, LoadError> {
    let stream = target.connect().await?;
    let mut conn = BufReader::new(stream);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.host
    );
    conn.get_mut().write_all(req.as_bytes()).await?;
    let (mut line, mut body) = (String::new(), Vec::new());
    let status = read_response(&mut conn, &mut line, &mut body).await?;
    if status != 200 {
        return Err(LoadError::Response(format!("GET {path}: HTTP {status}")));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Cumulative histogram buckets `(le, count)` of the endpoint's review duration.
fn buckets(metrics: &str, endpoint: &str) -> Vec<(f64, f64)> {
    let want = format!("endpoint=\"{endpoint}\"");
    let mut out = Vec::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("apim_webhook_review_duration_seconds_bucket{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        if !labels.contains(&want) {
            continue;
        }
        let le = labels
            .split(',')
            .find_map(|l| l.strip_prefix("le=\""))
            .map(|v| v.trim_end_matches('"'));
        let le = match le {
            Some("+Inf") => f64::INFINITY,
            Some(v) => match v.parse() {
                Ok(x) => x,
                Err(_) => continue,
            },
            None => continue,
        };
        if let Ok(n) = value.trim().parse::<f64>() {
            out.push((le, n));
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Quantile from cumulative bucket deltas, interpolated linearly inside a bucket.
fn histogram_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let b = before
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, m)| *m);
            (*le, n - b)
        })
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut prev_le, mut prev_n) = (0.0, 0.0);
    for (le, n) in deltas {
        if n >= rank {
            if le.is_infinite() {
                return Some(prev_le);
            }
            let frac = if n > prev_n {
                (rank - prev_n) / (n - prev_n)
            } else {
                0.0
            };
            return Some(prev_le + (le - prev_le) * frac);
        }
        (prev_le, prev_n) = (le, n);
    }
    None
}

fn proc_status(pid: u32) -> Option<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn run(args: Args) -> Result<(), LoadError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hostport = args
        .url
        .strip_prefix("https://")
        .map(|s| s.trim_end_matches('/'))
        .ok_or_else(|| LoadError::Url(args.url.clone()))?;
    let addr: SocketAddr = hostport
        .parse()
        .map_err(|_| LoadError::Url(args.url.clone()))?;
    let ca_err = |reason: String| LoadError::Ca {
        path: args.ca.display().to_string(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&args.ca).map_err(|e| ca_err(e.to_string()))? {
        roots
            .add(cert.map_err(|e| ca_err(e.to_string()))?)
            .map_err(|e| ca_err(e.to_string()))?;
    }
    let tls = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let target = Arc::new(Target {
        addr,
        host: hostport.to_owned(),
        server_name: ServerName::IpAddress(addr.ip().into()),
        connector: TlsConnector::from(Arc::new(tls)),
    });

    let (path, spec) = scenario(&args.scenario)?;
    let body = fixtures::review_body(&spec);
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        target.host,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let request = Arc::new(request);
    let expect = if args.scenario == "api-untagged" {
        "\"allowed\":false"
    } else {
        "\"allowed\":true"
    };

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let stop_at = measure_from + Duration::from_secs(args.duration);
    let mut tasks = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        tasks.push(tokio::spawn(worker(
            target.clone(),
            request.clone(),
            expect,
            measure_from,
            stop_at,
        )));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let endpoint = path.trim_start_matches('/');
    let before = buckets(&get(&target, "/metrics").await?, endpoint);
    let measured_at = Instant::now();

    let mut lat: Vec<u32> = Vec::new();
    let (mut errors, mut unexpected) = (0u64, 0u64);
    for t in tasks {
        match t.await {
            Ok(Ok(r)) => {
                lat.extend(r.latencies_us);
                errors += r.errors;
                unexpected += r.unexpected;
            }
            Ok(Err(e)) => {
                eprintln!("worker failed: {e}");
                errors += 1;
            }
            Err(e) => {
                eprintln!("worker panicked: {e}");
                errors += 1;
            }
        }
    }
    let elapsed = measured_at.elapsed().as_secs_f64();
    let after = buckets(&get(&target, "/metrics").await?, endpoint);
    lat.sort_unstable();
    let n = lat.len();
    let rps = n as f64 / elapsed.max(f64::EPSILON);
    let ms = |us: u32| f64::from(us) / 1000.0;
    let server_q = |q| {
        histogram_quantile(&before, &after, q)
            .map_or_else(|| "n/a".to_owned(), |s| format!("{:.3}", s * 1000.0))
    };

    println!(
        "scenario={} endpoint={path} concurrency={} duration={:.1}s",
        args.scenario, args.concurrency, elapsed
    );
    println!(
        "reviews={n} reviews_per_sec={rps:.0} errors={errors} unexpected_answers={unexpected}"
    );
    println!(
        "client_latency_ms p50={:.3} p90={:.3} p99={:.3} max={:.3}",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.90)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or(0))
    );
    println!(
        "server_latency_ms (from /metrics histogram, interpolated) p50={} p99={}",
        server_q(0.50),
        server_q(0.99)
    );
    if let Some(pid) = args.server_pid {
        match proc_status(pid) {
            Some((hwm, rss)) => println!("server_memory pid={pid} VmHWM={hwm} VmRSS={rss}"),
            None => println!("server_memory pid={pid} unavailable"),
        }
    }
    if errors > 0 || unexpected > 0 || n == 0 {
        return Err(LoadError::Response(format!(
            "{errors} errors, {unexpected} unexpected answers, {n} measured reviews"
        )));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webhook-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
