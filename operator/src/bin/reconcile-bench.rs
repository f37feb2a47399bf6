//! `reconcile-bench`: N Apis deployed by `apim-operator` (direct driver) to a spawned
//! `apim-sim`, timed to all-Ready, with the operator's peak RSS; and, in the same run, the API
//! server's floor: creating N objects and patching each one's status once with a plain client
//! at the same concurrency.
//!
//! ```sh
//! bash bench/reconcile.sh     # COUNT=1000 CONCURRENCY=16; see the script for the knobs
//! ```
//! The script runs it on the lab (CRDs installed, admission webhook registered, the quick
//! start's operator stopped for the run); `apim-operator` and `apim-sim` are taken from the
//! directory of this binary.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// Time N Apis to Ready through the operator, against the API server's floor.
#[derive(Debug, Parser)]
struct Args {
    /// Number of Apis.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Concurrency of the plain client and of the operator's reconciles.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Give up waiting for Ready after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// After all are Ready, stay idle this long and report what the operator wrote meanwhile
    /// (gateway writes, resourceVersions, reconciles); 0 skips it.
    #[arg(long, default_value_t = 0)]
    idle_secs: u64,
    /// Skip the API server's floor (e.g. for an RSS run at 10,000 objects).
    #[arg(long)]
    no_floor: bool,
}

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("failed to connect to the cluster: {0}")]
    Connect(#[source] kube::Error),
    #[error("failed to {what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("failed to start {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("failed to build the Api object: {0}")]
    Object(#[source] serde_json::Error),
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn api_object(name: &str) -> Result<crds::Api, BenchError> {
    serde_json::from_value(json!({
        "apiVersion": "apim.cab-i.com/v1alpha1",
        "kind": "Api",
        "metadata": {
            "name": name,
            "labels": {
                "apim.cab-i.com/environment": "dev", "apim.cab-i.com/project": "bench",
                "apim.cab-i.com/cost-center": "cc-1", "apim.cab-i.com/ttl": "1d",
                "apim.cab-i.com/auto-teardown": "true", "apim.cab-i.com/data-class": "internal"
            },
            "annotations": {"apim.cab-i.com/owner": "bench@example.com"}
        },
        "spec": {
            "displayName": name, "version": "1.0.0", "backendUrl": "https://backend.example/v1",
            "definition": {"inline": format!("openapi: 3.0.3\ninfo: {{title: {name}, version: 1.0.0}}\npaths: {{}}\n")},
            "stages": ["dev"]
        }
    }))
    .map_err(BenchError::Object)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

async fn http_status(port: u16, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn http_body(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

async fn create_namespace(client: &Client, prefix: &str) -> Result<String, BenchError> {
    let name = format!("{prefix}-{:08x}", rand::random::<u32>());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).map_err(BenchError::Object)?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .map_err(|source| BenchError::Kube {
            what: format!("create namespace {name}"),
            source,
        })?;
    Ok(name)
}

async fn create_all(
    client: &Client,
    ns: &str,
    count: usize,
    concurrency: usize,
) -> Result<(), BenchError> {
    let apis: Api<crds::Api> = Api::namespaced(client.clone(), ns);
    futures::stream::iter(0..count)
        .map(|i| {
            let apis = apis.clone();
            async move {
                let obj = api_object(&format!("api-{i:05}"))?;
                apis.create(&PostParams::default(), &obj)
                    .await
                    .map_err(|source| BenchError::Kube {
                        what: format!("create api-{i:05}"),
                        source,
                    })
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await
        .map(|_| ())
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reconcile-bench: failed to start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reconcile-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), BenchError> {
    let client = Client::try_default().await.map_err(BenchError::Connect)?;
    let n = args.count;
    let c = args.concurrency.max(1);

    let floor = if args.no_floor {
        None
    } else {
        Some(measure_floor(&client, n, c).await?)
    };
    operator_run(&client, &args, n, c, floor).await
}

/// The floor: create N objects, then patch each one's status once, at concurrency `c`.
async fn measure_floor(client: &Client, n: usize, c: usize) -> Result<Duration, BenchError> {
    let floor_ns = create_namespace(client, "bench-floor").await?;
    let started = Instant::now();
    create_all(client, &floor_ns, n, c).await?;
    let apis: Api<crds::Api> = Api::namespaced(client.clone(), &floor_ns);
    futures::stream::iter(0..n)
        .map(|i| {
            let apis = apis.clone();
            async move {
                let body = json!({"status": {"observedGeneration": 1, "conditions": [{
                    "type": "Ready", "status": "True", "reason": "Reconciled", "message": "floor",
                    "lastTransitionTime": "2026-11-25T08:00:00Z"}]}});
                apis.patch_status(
                    &format!("api-{i:05}"),
                    &PatchParams::default(),
                    &Patch::Merge(body),
                )
                .await
                .map(|_| ())
                .map_err(|source| BenchError::Kube {
                    what: format!("patch status of api-{i:05}"),
                    source,
                })
            }
        })
        .buffer_unordered(c)
        .try_collect::<Vec<_>>()
        .await?;
    let floor = started.elapsed();
    // The admission webhook gave each object the operator's finalizer, and no operator
    // watches this namespace: release them (after the measurement) so that it can go.
    futures::stream::iter(0..n)
        .map(|i| {
            let apis = apis.clone();
            async move {
                let release = json!({"metadata": {"finalizers": null}});
                let _ = apis
                    .patch(
                        &format!("api-{i:05}"),
                        &PatchParams::default(),
                        &Patch::Merge(release),
                    )
                    .await;
            }
        })
        .buffer_unordered(c)
        .collect::<Vec<_>>()
        .await;
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&floor_ns, &DeleteParams::background())
        .await;
    Ok(floor)
}

/// N Apis to Ready through the operator (and, with `--idle-secs`, what it writes while idle).
async fn operator_run(
    client: &Client,
    args: &Args,
    n: usize,
    c: usize,
    floor: Option<Duration>,
) -> Result<(), BenchError> {
    // The operator: N Apis to Ready through apim-sim.
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let sim_port = free_port();
    let sim = Guard(
        Command::new(dir.join("apim-sim"))
            .args([
                "--listen",
                &format!("127.0.0.1:{sim_port}"),
                "--environments",
                "dev",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| BenchError::Spawn {
                what: "apim-sim".into(),
                source,
            })?,
    );
    let op_ns = create_namespace(client, "bench-op").await?;
    let op_port = free_port();
    let operator = Guard(
        Command::new(dir.join("apim-operator"))
            .env("APIM_LISTEN", format!("127.0.0.1:{op_port}"))
            .env("APIM_WATCH_NAMESPACE", &op_ns)
            .env("APIM_LEADER_ELECTION", "false")
            .env("APIM_CONCURRENCY", c.to_string())
            .env(
                "APIM_GATEWAY_URL_DEV",
                format!("http://127.0.0.1:{sim_port}/gateways/dev"),
            )
            .env("APIM_KAFKA_TOPIC_PREFIX", "bench.")
            .env("APIM_GATEWAY_USERNAME", "Administrator")
            .env("APIM_GATEWAY_PASSWORD", "manage")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| BenchError::Spawn {
                what: "apim-operator".into(),
                source,
            })?,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_status(op_port, "/readyz").await != Some(200) {
        if Instant::now() > deadline {
            return Err(BenchError::Timeout("the operator to be ready".into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let apis: Api<crds::Api> = Api::namespaced(client.clone(), &op_ns);
    // Readiness is followed with a watch (not by listing every object again and again, which
    // would load the API server the floor does not load). Peak RSS is the kernel's VmHWM.
    let ready_watch = tokio::spawn(all_ready(apis.clone(), n));
    let pid = operator.0.id();
    let started = Instant::now();
    create_all(client, &op_ns, n, c).await?;
    let to_ready =
        match tokio::time::timeout(Duration::from_secs(args.timeout_secs), ready_watch).await {
            Ok(Ok(Ok(()))) => started.elapsed(),
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => return Err(BenchError::Timeout("the readiness watch (it died)".into())),
            Err(_) => return Err(BenchError::Timeout(format!("all {n} Apis to be Ready"))),
        };
    let peak = peak_rss_mib(pid).unwrap_or(0.0);
    let events_at_ready = events_in(client, &op_ns).await;
    println!("reconcile-bench: N={n} concurrency={c}");
    match floor {
        Some(floor) => {
            let ratio = to_ready.as_secs_f64() / floor.as_secs_f64().max(f64::EPSILON);
            println!(
                "  API server floor (create + 1 status patch each): {:.2} s",
                floor.as_secs_f64()
            );
            println!(
                "  operator, create to all Ready:                   {:.2} s  ({ratio:.2}x floor; targets <= 2x and < 15 s)",
                to_ready.as_secs_f64()
            );
        }
        None => println!(
            "  operator, create to all Ready:                   {:.2} s",
            to_ready.as_secs_f64()
        ),
    }
    println!(
        "  operator peak RSS (VmHWM):                       {peak:.1} MiB (targets < 64 MiB at 1,000, < 150 MiB at 10,000)"
    );

    // Kubernetes Events are paced behind the status writes (controllers.eventQps): say how
    // many were written by all-Ready, and when the last one was.
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let mut events = events_at_ready;
    while events < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        events = events_in(client, &op_ns).await;
    }
    println!(
        "  Kubernetes Events: {events_at_ready} written by all-Ready, {events} after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    if let Some(body) = http_body(op_port, "/metrics").await {
        let sum = |family: &str| -> f64 {
            body.lines()
                .filter(|l| l.starts_with(family) && !l.starts_with('#'))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        println!(
            "  operator work: {} reconciles, {} status writes, {} gateway calls",
            sum("apim_operator_reconciles_total"),
            sum("apim_operator_status_writes_total"),
            sum("apim_operator_gateway_calls_total")
        );
        let mean_ms = |family: &str| {
            1000.0 * sum(&format!("{family}_sum")) / sum(&format!("{family}_count")).max(1.0)
        };
        println!(
            "  mean reconcile {:.1} ms, mean event produce-to-ack {:.1} ms",
            mean_ms("apim_operator_reconcile_duration_seconds"),
            mean_ms("apim_operator_events_publish_latency_seconds")
        );
    }

    if args.idle_secs > 0 {
        idle_check(&apis, op_port, sim_port, args.idle_secs).await?;
    }

    // Clean up while the operator runs (the finalizers need it).
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&op_ns, &DeleteParams::background())
        .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    while matches!(namespaces.get_opt(&op_ns).await, Ok(Some(_))) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(operator);
    drop(sim);
    Ok(())
}

/// How many Events namespace `ns` holds (one list of one item: the server counts the rest).
async fn events_in(client: &Client, ns: &str) -> usize {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    match events.list_metadata(&ListParams::default().limit(1)).await {
        Ok(list) => {
            let rest = list.metadata.remaining_item_count.unwrap_or(0);
            list.items.len() + usize::try_from(rest).unwrap_or(0)
        }
        Err(_) => 0,
    }
}

/// Metric families summed from the operator's `/metrics`.
async fn metric_sum(op_port: u16, family: &str) -> f64 {
    http_body(op_port, "/metrics")
        .await
        .map(|body| {
            body.lines()
                .filter(|l| l.starts_with(family) && !l.starts_with('#'))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(f64::NAN)
}

/// Write requests the simulator served, over every gateway.
async fn sim_writes(sim_port: u16) -> u64 {
    http_body(sim_port, "/_sim/calls")
        .await
        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.as_object()
                .map(|m| m.values().filter_map(|c| c["writes"].as_u64()).sum())
        })
        .unwrap_or(u64::MAX)
}

/// Stays idle `secs` with every Api converged and reports what was written meanwhile.
async fn idle_check(
    apis: &Api<crds::Api>,
    op_port: u16,
    sim_port: u16,
    secs: u64,
) -> Result<(), BenchError> {
    let versions =
        |list: kube::core::ObjectList<crds::Api>| -> std::collections::BTreeMap<String, String> {
            list.items
                .into_iter()
                .map(|a| {
                    let name = a.metadata.name.unwrap_or_default();
                    (name, a.metadata.resource_version.unwrap_or_default())
                })
                .collect()
        };
    let list = |what: &'static str| async move {
        apis.list(&ListParams::default())
            .await
            .map_err(|source| BenchError::Kube {
                what: what.into(),
                source,
            })
    };
    let before = versions(list("list Apis before idling").await?);
    let (gw_before, rec_before, sw_before) = (
        sim_writes(sim_port).await,
        metric_sum(op_port, "apim_operator_reconciles_total").await,
        metric_sum(op_port, "apim_operator_status_writes_total").await,
    );
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let after = versions(list("list Apis after idling").await?);
    let unchanged = before
        .iter()
        .filter(|(name, rv)| after.get(*name) == Some(*rv))
        .count();
    let gw_after = sim_writes(sim_port).await;
    let rec_after = metric_sum(op_port, "apim_operator_reconciles_total").await;
    let sw_after = metric_sum(op_port, "apim_operator_status_writes_total").await;
    println!(
        "  idle {secs} s with {} converged Apis: {} gateway writes, {} status writes, resourceVersions unchanged {unchanged}/{}, {} reconciles",
        before.len(),
        gw_after.saturating_sub(gw_before),
        sw_after - sw_before,
        before.len(),
        rec_after - rec_before
    );
    Ok(())
}

/// Resolves once `n` Apis of `apis` have `Ready=True`, following a watch.
async fn all_ready(apis: Api<crds::Api>, n: usize) -> Result<(), BenchError> {
    use kube::runtime::{WatchStreamExt, watcher};
    let mut ready = std::collections::HashSet::new();
    let stream = watcher(apis, watcher::Config::default()).applied_objects();
    let mut stream = std::pin::pin!(stream);
    while let Some(api) = stream.next().await {
        let api = api.map_err(|e| BenchError::Timeout(format!("the readiness watch: {e}")))?;
        if api
            .status
            .as_ref()
            .is_some_and(|s| crds::conditions::is_true(&s.conditions, "Ready"))
        {
            ready.insert(api.metadata.name.unwrap_or_default());
            if ready.len() >= n {
                return Ok(());
            }
        }
    }
    Err(BenchError::Timeout("the readiness watch ended".into()))
}
