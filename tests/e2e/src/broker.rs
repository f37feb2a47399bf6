//! A disposable Kafka-API broker for tests that stop, kill or restart a broker: never the
//! lab's shared one. Runs `hack/kafka-instance` (the lab's cached Kafka jars and settings, or
//! Redpanda when installed) with a data directory and ports of its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use crate::workspace_root;

/// One single-node broker on 127.0.0.1 with its own data; killed and removed on drop.
pub struct DisposableBroker {
    dir: PathBuf,
    port: u16,
    running: bool,
}

/// A free port on 127.0.0.1 below the kernel's ephemeral range (32768+), so that no outgoing
/// connection takes it while the broker is down and it can be bound again on restart.
pub fn free_port_outside_ephemeral() -> u16 {
    for _ in 0..500 {
        let port = 20_000 + (rand_u32() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000 on 127.0.0.1");
}

fn rand_u32() -> u32 {
    let b = uuid::Uuid::new_v4().into_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn script() -> PathBuf {
    workspace_root().join("hack/kafka-instance")
}

/// Runs `hack/kafka-instance ARGS`; Err with its output when it fails.
async fn run_script(args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("bash")
        .arg(script())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("running {}: {e}", script().display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

impl DisposableBroker {
    /// Starts a fresh broker on a free port; returns once it answers (about 5-10 s).
    pub async fn start() -> DisposableBroker {
        let dir = std::env::temp_dir().join(format!(
            "apim-e2e-broker-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir).expect("broker directory");
        let dir_arg = dir.to_str().expect("utf-8 temp dir").to_owned();
        let mut last = String::new();
        // A port found free may be taken before the broker binds it: try a few.
        for _ in 0..3 {
            let port = free_port_outside_ephemeral();
            let started = Instant::now();
            match run_script(&["start", &dir_arg, &port.to_string()]).await {
                Ok(_) => {
                    eprintln!(
                        "disposable broker on 127.0.0.1:{port} ready in {:?} ({})",
                        started.elapsed(),
                        dir.display()
                    );
                    return DisposableBroker {
                        dir,
                        port,
                        running: true,
                    };
                }
                Err(out) => {
                    let _ = run_script(&["kill", &dir_arg]).await;
                    last = out;
                }
            }
        }
        panic!(
            "hack/kafka-instance could not start a broker in {}: {last}",
            dir.display()
        );
    }

    /// Its bootstrap servers, `127.0.0.1:<port>`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its data directory (and `kafka.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether it was started and not stopped or killed since.
    pub fn is_running(&self) -> bool {
        self.running
    }

    fn dir_arg(&self) -> &str {
        self.dir.to_str().expect("utf-8 temp dir")
    }

    /// Clean shutdown (SIGTERM; SIGKILL after 10 s). Its data stays for [`Self::start_again`].
    pub async fn stop(&mut self) {
        run_script(&["stop", self.dir_arg()])
            .await
            .unwrap_or_else(|e| panic!("stopping the broker in {}: {e}", self.dir.display()));
        self.running = false;
    }

    /// SIGKILL at once. Its data stays for [`Self::start_again`].
    pub async fn kill(&mut self) {
        run_script(&["kill", self.dir_arg()])
            .await
            .unwrap_or_else(|e| panic!("killing the broker in {}: {e}", self.dir.display()));
        self.running = false;
    }

    /// Starts it again on the same port with the same data (topics and records kept);
    /// returns once it answers.
    pub async fn start_again(&mut self) {
        let started = Instant::now();
        run_script(&["start", self.dir_arg(), &self.port.to_string()])
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "restarting the broker on 127.0.0.1:{} ({}): {e}",
                    self.port,
                    self.dir.display()
                )
            });
        eprintln!(
            "disposable broker on 127.0.0.1:{} back in {:?}",
            self.port,
            started.elapsed()
        );
        self.running = true;
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("kafka.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for DisposableBroker {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(script())
            .args(["kill", self.dir_arg()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if std::thread::panicking() {
            eprintln!(
                "disposable broker killed; its data and log are kept in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
