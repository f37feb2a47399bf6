//! The `apim-webhook` binary as the lab runs it: flags, self-generated certificate in
//! `--cert-dir`, `--config`, HTTPS reviews, graceful shutdown on SIGTERM.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apim_webhook::fixtures;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Server {
    child: Child,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn binary_serves_and_shuts_down_gracefully() {
    apim_webhook::tls::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("apim-webhook-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/webhook/config.yaml");
    let child = Command::new(env!("CARGO_BIN_EXE_apim-webhook"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--cert-dir")
        .arg(dir.join("certs"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server { child, dir };

    // Wait for the CA and the health endpoint.
    let ca_path = server.dir.join("certs/ca.crt");
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        assert!(Instant::now() < deadline, "server did not come up");
        if let Ok(pem) = std::fs::read(&ca_path)
            && let Ok(ca) = reqwest::Certificate::from_pem(&pem)
        {
            let c = reqwest::Client::builder()
                .tls_certs_only([ca])
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            if c.get(format!("https://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break c;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The lab's users: finance-devops may not approve.
    let mut spec = fixtures::promotion_approve();
    spec.username = "finance-devops";
    spec.groups = vec!["apim:tenant-finance:devops", "system:authenticated"];
    spec.object = Some(fixtures::promotion(
        Some("someone-else"),
        Some(fixtures::approval(Some("finance-devops"))),
    ));
    spec.old_object = Some(fixtures::promotion(Some("someone-else"), None));
    let v: serde_json::Value = client
        .post(format!("https://127.0.0.1:{port}/validate"))
        .body(fixtures::review_body(&spec))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["response"]["allowed"], false, "{v}");
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("may not decide")
    );

    // SIGTERM: exits 0 promptly.
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(code) = server.child.try_wait().unwrap() {
            assert!(code.success(), "exit status {code}");
            break;
        }
        assert!(Instant::now() < deadline, "no graceful exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn bad_config_fails_fast() {
    let dir = std::env::temp_dir().join(format!("apim-webhook-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bad.yaml");
    std::fs::write(&cfg, "enforcement: {tags: sometimes}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_apim-webhook"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--cert-dir")
        .arg(dir.join("certs"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("failed to parse config file"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
