//! Runs `apim-operator` as a child process against the lab, as the lab's `apim-operator`
//! user (its real RBAC) when the lab provides user kubeconfigs.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{Lab, LabUser, bin_path};

/// A running operator; killed on drop.
pub struct OperatorProcess {
    child: Child,
    /// Port of its `/healthz`, `/readyz` and `/metrics` server.
    pub port: u16,
    /// Where its logs go.
    pub log_path: std::path::PathBuf,
}

/// A free port on 127.0.0.1 (racy by nature, fine for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl OperatorProcess {
    /// Starts the operator watching `namespace`, electing its leader on `lease` in that
    /// namespace, with extra `APIM_*` settings.
    pub fn start(lab: &Lab, namespace: &str, lease: &str, env: &[(&str, &str)]) -> OperatorProcess {
        let port = free_port();
        let kubeconfig = lab
            .kubeconfig_of(LabUser("apim-operator"))
            .or_else(|| std::env::var_os("KUBECONFIG").map(Into::into))
            .expect("a kubeconfig for the operator");
        let log_path = std::env::temp_dir().join(format!("apim-operator-{lease}-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("operator log file");
        let mut cmd = Command::new(bin_path("apim-operator"));
        cmd.env("KUBECONFIG", kubeconfig)
            .env("APIM_LISTEN", format!("127.0.0.1:{port}"))
            .env("APIM_WATCH_NAMESPACE", namespace)
            .env("APIM_LEASE_NAME", lease)
            .env("APIM_LEASE_NAMESPACE", namespace)
            .env("APIM_IDENTITY", format!("{lease}-{port}"))
            .env("RUST_LOG", "info,apim_operator=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("starting apim-operator");
        OperatorProcess {
            child,
            port,
            log_path,
        }
    }

    /// GET a path of its health/metrics server: (status code, body), or None when down.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path).await
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let port = self.port;
        crate::wait::until(
            timeout,
            &format!(
                "operator on :{port} to be ready (log {})",
                self.log_path.display()
            ),
            || async move {
                http_get(port, "/readyz")
                    .await
                    .filter(|(code, _)| *code == 200)
                    .map(|_| ())
            },
        )
        .await;
    }

    /// Value of a metric line starting with `prefix` (e.g. `apim_operator_leader`), if any.
    pub async fn metric(&self, prefix: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await?;
        body.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Sum of every sample of a metric family (e.g. `apim_operator_reconciles_total`).
    pub async fn metric_sum(&self, family: &str) -> f64 {
        let Some((_, body)) = self.get("/metrics").await else {
            return 0.0;
        };
        body.lines()
            .filter(|l| l.starts_with(family) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// SIGKILL: no graceful release of the lease.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// The operator's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Minimal HTTP/1.1 GET on 127.0.0.1 (no client dependency): (status, body).
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((code, body))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}
