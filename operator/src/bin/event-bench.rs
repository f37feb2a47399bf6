//! Benchmark of the event publisher against a real broker (run by `bench/events.sh`).
//!
//! - `throughput`: publishes N CloudEvents (~`--record-size` bytes each) through
//!   `Publisher::publish_batch`, with delivery reports awaited concurrently, and prints
//!   events/s; then, at a fixed rate (default 1,000 events/s), the produce-to-ack latency
//!   p50/p99/max of single-event publishes.
//! - `create-topic` / `delete-topic`: topic helpers for the peer tool's run.
//! - `payloads`: writes sample event documents, one a line (ProducerPerformance `--payload-file`).
//!
//! Build with `cargo build --release -p apim-operator --bin event-bench`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apim_operator::events::config::{Compression, EventsConfig};
use apim_operator::events::types::ApiUpdated;
use apim_operator::events::{
    CloudEvent, EventData, EventSink, OutgoingEvent, Publisher, ResourceRef, Topic, TopicNames,
};
use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

#[derive(Parser)]
#[command(about = "Benchmark of the APIM operator's event publisher")]
struct Cli {
    /// Bootstrap brokers.
    #[arg(
        long,
        env = "APIM_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    brokers: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Codec {
    None,
    Gzip,
    Lz4,
    Zstd,
}

#[derive(Subcommand)]
enum Command {
    /// Throughput of N events, then latency at a fixed rate.
    Throughput {
        /// Events published in the throughput phase.
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// Approximate size of one event document in bytes.
        #[arg(long, default_value_t = 500)]
        record_size: usize,
        /// Events per `publish_batch` call.
        #[arg(long, default_value_t = 5_000)]
        batch: usize,
        /// `publish_batch` calls in flight at once.
        #[arg(long, default_value_t = 4)]
        in_flight: usize,
        /// Distinct resources (Kafka keys).
        #[arg(long, default_value_t = 1_000)]
        resources: usize,
        /// Compression codec.
        #[arg(long, value_enum, default_value = "zstd")]
        compression: Codec,
        /// `linger.ms` (default: the operator's default).
        #[arg(long)]
        linger_ms: Option<u64>,
        /// Rate of the latency phase, events/s (0 skips it).
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// Duration of the latency phase, seconds.
        #[arg(long, default_value_t = 10)]
        latency_seconds: u64,
        /// Keep the bench topic afterwards.
        #[arg(long)]
        keep_topic: bool,
        /// Diagnostic: send without the `ce_*` headers (what they cost).
        #[arg(long)]
        without_headers: bool,
    },
    /// Creates a topic (for the peer tool).
    CreateTopic {
        /// Name.
        name: String,
        /// Partitions.
        #[arg(long, default_value_t = 6)]
        partitions: i32,
    },
    /// Deletes a topic.
    DeleteTopic {
        /// Name.
        name: String,
    },
    /// Writes sample event documents, one a line.
    Payloads {
        /// Output file.
        file: PathBuf,
        /// How many.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Approximate size of one document.
        #[arg(long, default_value_t = 500)]
        record_size: usize,
    },
}

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("failed to create the Kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("failed to create the publisher: {0}")]
    Publisher(#[from] apim_operator::events::PublishError),
    #[error("failed to manage topics: {0}")]
    Topics(#[from] apim_operator::events::topics::TopicError),
    #[error("failed to encode an event: {0}")]
    Encode(#[from] apim_operator::events::envelope::EnvelopeError),
    #[error("failed to write payloads: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to publish: {0}")]
    Failed(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("failed to start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn admin(brokers: &str) -> Result<AdminClient<DefaultClientContext>, BenchError> {
    Ok(rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?)
}

/// `count` ApiUpdated events over `resources` resources, each document padded to about
/// `size` bytes.
fn make_events(
    count: usize,
    size: usize,
    resources: usize,
    names: &TopicNames,
) -> Result<Vec<OutgoingEvent>, BenchError> {
    let refs: Vec<ResourceRef> = (0..resources.max(1))
        .map(|i| ResourceRef {
            namespace: Some(format!("tenant-{}", i % 50)),
            name: format!("api-{i}"),
            uid: uuid::Uuid::new_v4().to_string(),
            generation: Some(1 + (i as i64 % 7)),
        })
        .collect();
    let base = ApiUpdated {
        display_name: "Payments".into(),
        version: "1.3.0".into(),
        revision: String::new(),
        previous_revision: Some("sha256:6f1c2a9e".into()),
        changed_fields: vec!["spec.version".into()],
    };
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let mut data = base.clone();
        data.revision = format!("sha256:{:016x}", rand::random::<u64>());
        let e = CloudEvent::new(
            "apim-operator/bench-0",
            &refs[i % refs.len()],
            EventData::ApiUpdated(data.clone()),
            Utc::now(),
        )
        .with_actor("alice@cab-i.com");
        let probe = serde_json::to_string(&e).map(|s| s.len()).unwrap_or(size);
        if probe + 17 < size {
            // Pad with a changed-field path of the missing length.
            data.changed_fields
                .push(format!("spec.policies.{}", "x".repeat(size - probe - 17)));
        }
        let e = CloudEvent {
            data: EventData::ApiUpdated(data),
            ..e
        };
        out.push(OutgoingEvent::encode(&e, names)?);
    }
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(cli: Cli) -> Result<(), BenchError> {
    match cli.command {
        Command::CreateTopic { name, partitions } => {
            let r = admin(&cli.brokers)?
                .create_topics(
                    &[NewTopic::new(
                        &name,
                        partitions,
                        TopicReplication::Fixed(-1),
                    )],
                    &AdminOptions::new(),
                )
                .await?;
            println!("create-topic {name}: {r:?}");
            Ok(())
        }
        Command::DeleteTopic { name } => {
            let r = admin(&cli.brokers)?
                .delete_topics(&[&name], &AdminOptions::new())
                .await?;
            println!("delete-topic {name}: {r:?}");
            Ok(())
        }
        Command::Payloads {
            file,
            count,
            record_size,
        } => {
            let events = make_events(count, record_size, 1_000, &TopicNames::default())?;
            let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
            for e in &events {
                writeln!(f, "{}", e.payload)?;
            }
            f.flush()?;
            println!("wrote {} documents to {}", events.len(), file.display());
            Ok(())
        }
        Command::Throughput {
            events,
            record_size,
            batch,
            in_flight,
            resources,
            compression,
            linger_ms,
            rate,
            latency_seconds,
            keep_topic,
            without_headers,
        } => {
            let mut config = EventsConfig {
                brokers: cli.brokers.clone(),
                ..EventsConfig::default()
            };
            config.topics.prefix = format!("apim-bench-{}.", std::process::id());
            config.producer.compression = match compression {
                Codec::None => Compression::None,
                Codec::Gzip => Compression::Gzip,
                Codec::Lz4 => Compression::Lz4,
                Codec::Zstd => Compression::Zstd,
            };
            if let Some(l) = linger_ms {
                config.producer.linger = Duration::from_millis(l);
            }
            let names = TopicNames::new(&config);
            let topic = names.name(Topic::ApiUpdated).to_owned();
            let spec = names.spec(Topic::ApiUpdated).clone();
            let admin_client = Arc::new(apim_operator::events::admin_client(&config, None)?);
            apim_operator::events::ensure_topics(
                Arc::clone(&admin_client),
                &[spec],
                Duration::from_secs(30),
            )
            .await?;
            println!(
                "config: brokers={} topic={topic} partitions=6 acks=all enable.idempotence=true compression={} linger.ms={} batch.size={} batch={batch} in_flight={in_flight}",
                config.brokers,
                config.producer.compression.as_str(),
                config.producer.linger.as_millis(),
                config.producer.batch_bytes,
            );

            let started = Instant::now();
            let mut built = make_events(events, record_size, resources, &names)?;
            if without_headers {
                built.iter_mut().for_each(|e| e.headers.clear());
            }
            let build = started.elapsed();
            let bytes: usize = built.iter().map(|e| e.payload.len()).sum();
            println!(
                "encode: {events} events in {:.2}s ({:.0} events/s), mean document {} bytes",
                build.as_secs_f64(),
                events as f64 / build.as_secs_f64(),
                bytes / events.max(1)
            );

            let publisher = Arc::new(Publisher::new(&config, None)?);
            // Connect and acquire the idempotent producer id before timing.
            let warm = make_events(1, record_size, 1, &names)?;
            if let Some(Err(e)) = publisher.publish_batch(&warm).await.into_iter().next() {
                return Err(BenchError::Failed(e.to_string()));
            }

            let started = Instant::now();
            let results: Vec<(usize, usize)> = futures::stream::iter(built.chunks(batch.max(1)))
                .map(|chunk| {
                    let p = Arc::clone(&publisher);
                    async move {
                        let r = p.publish_batch(chunk).await;
                        let ok = r.iter().filter(|r| r.is_ok()).count();
                        (ok, r.len() - ok)
                    }
                })
                .buffer_unordered(in_flight.max(1))
                .collect()
                .await;
            let took = started.elapsed();
            let ok: usize = results.iter().map(|r| r.0).sum();
            let failed: usize = results.iter().map(|r| r.1).sum();
            let eps = ok as f64 / took.as_secs_f64();
            println!(
                "throughput: {ok} events acked ({failed} failed) in {:.2}s = {eps:.0} events/s, {:.1} MB/s",
                took.as_secs_f64(),
                bytes as f64 / took.as_secs_f64() / 1e6
            );
            println!("RESULT throughput_events_per_s={eps:.0}");
            if failed > 0 {
                return Err(BenchError::Failed(format!(
                    "{failed} events not acknowledged"
                )));
            }

            if rate > 0 {
                let n = (rate * latency_seconds) as usize;
                let events = make_events(n, record_size, resources, &names)?;
                let interval = Duration::from_secs_f64(1.0 / rate as f64);
                let start = tokio::time::Instant::now();
                let mut handles = Vec::with_capacity(n);
                for (i, e) in events.into_iter().enumerate() {
                    tokio::time::sleep_until(start + interval * i as u32).await;
                    let p = Arc::clone(&publisher);
                    handles.push(tokio::spawn(async move {
                        p.publish_batch(std::slice::from_ref(&e)).await
                    }));
                }
                let mut lat = Vec::with_capacity(n);
                let mut failed = 0usize;
                for h in handles {
                    match h.await {
                        Ok(r) => match r.into_iter().next() {
                            Some(Ok(d)) => lat.push(d.latency),
                            _ => failed += 1,
                        },
                        Err(_) => failed += 1,
                    }
                }
                let sent_for = start.elapsed();
                lat.sort();
                println!(
                    "latency at {rate} events/s: {} events over {:.1}s, produce-to-ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({failed} failed)",
                    lat.len(),
                    sent_for.as_secs_f64(),
                    ms(percentile(&lat, 0.50)),
                    ms(percentile(&lat, 0.99)),
                    ms(lat.last().copied().unwrap_or_default()),
                );
                println!(
                    "RESULT latency_p50_ms={:.2} latency_p99_ms={:.2}",
                    ms(percentile(&lat, 0.50)),
                    ms(percentile(&lat, 0.99))
                );
            }
            if !keep_topic {
                let _ = admin_client
                    .delete_topics(&[&topic], &AdminOptions::new())
                    .await;
            }
            Ok(())
        }
    }
}
