//! Connection to the lab: the admin client, one client per lab user, kubectl.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The lab's users and their groups (hack/lib/users.sh), used to impersonate them on a
/// cluster that is not the lab (kind, or any KUBECONFIG), where they have no token.
pub const LAB_USERS: &[(&str, &[&str])] = &[
    ("admin", &["system:masters"]),
    ("finance-devops", &["apim:tenant-finance:devops"]),
    ("finance-cpi", &["apim:tenant-finance:cpi"]),
    ("finance-cpi-2", &["apim:tenant-finance:cpi"]),
    ("retail-devops", &["apim:tenant-retail:devops"]),
    ("retail-cpi", &["apim:tenant-retail:cpi"]),
    ("cpi-admin", &["apim:cpi-admin"]),
    ("argocd", &["apim:gitops"]),
    ("apim-operator", &["apim:operator"]),
    ("apim-webhook", &["apim:webhook"]),
];

/// A lab user by name (see [`LAB_USERS`]).
#[derive(Clone, Copy, Debug)]
pub struct LabUser(pub &'static str);

/// The cluster and broker the tests run against.
#[derive(Clone)]
pub struct Lab {
    admin: Client,
    admin_config: kube::Config,
    users_dir: Option<PathBuf>,
    brokers: String,
}

static SKIP_NOTICE: OnceLock<()> = OnceLock::new();

impl Lab {
    /// Connects to the cluster `KUBECONFIG` names. Returns `None` (after one line on
    /// stderr) when none is reachable, and panics instead when `APIM_E2E_REQUIRED=1`.
    pub async fn connect() -> Option<Lab> {
        match Self::try_connect().await {
            Ok(lab) => Some(lab),
            Err(why) => {
                if std::env::var("APIM_E2E_REQUIRED").as_deref() == Ok("1") {
                    panic!("e2e: the lab is required (APIM_E2E_REQUIRED=1) but {why}");
                }
                SKIP_NOTICE.get_or_init(|| {
                    // Written to the stderr handle, not with eprintln!, so the test
                    // harness does not capture it: the one line must be seen.
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "e2e: skipped: {why} (run hack/up, or set KUBECONFIG)"
                    );
                });
                None
            }
        }
    }

    async fn try_connect() -> Result<Lab, String> {
        let config = kube::Config::infer()
            .await
            .map_err(|e| format!("no cluster configuration found: {e}"))?;
        let admin = Client::try_from(config.clone())
            .map_err(|e| format!("bad cluster configuration: {e}"))?;
        tokio::time::timeout(Duration::from_secs(10), admin.apiserver_version())
            .await
            .map_err(|_| {
                format!(
                    "the API server at {} did not answer within 10s",
                    config.cluster_url
                )
            })?
            .map_err(|e| {
                format!(
                    "the API server at {} is unreachable: {e}",
                    config.cluster_url
                )
            })?;
        let users_dir = std::env::var_os("APIM_LAB_KUBECONFIGS")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        let brokers =
            std::env::var("APIM_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
        Ok(Lab {
            admin,
            admin_config: config,
            users_dir,
            brokers,
        })
    }

    /// The cluster-admin client.
    pub fn admin(&self) -> Client {
        self.admin.clone()
    }

    /// The admin's configuration (to build clients on other runtimes or threads).
    pub fn admin_config(&self) -> &kube::Config {
        &self.admin_config
    }

    /// Whether users authenticate with their own tokens (the lab) rather than being
    /// impersonated by the admin (any other cluster).
    pub fn has_real_users(&self) -> bool {
        self.users_dir.is_some()
    }

    /// The kubeconfig file of a lab user, when the lab provides one.
    pub fn kubeconfig_of(&self, user: LabUser) -> Option<PathBuf> {
        self.users_dir
            .as_ref()
            .map(|d| d.join(format!("{}.kubeconfig", user.0)))
    }

    /// A client acting as a lab user: with the user's own token on the lab, impersonated
    /// by the admin elsewhere.
    pub async fn user(&self, user: LabUser) -> Client {
        let config = self.user_config(user).await;
        Client::try_from(config).expect("client for a lab user")
    }

    /// The configuration of a lab user (see [`Lab::user`]).
    pub async fn user_config(&self, user: LabUser) -> kube::Config {
        if let Some(path) = self.kubeconfig_of(user) {
            let kubeconfig = Kubeconfig::read_from(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            return kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
        }
        let groups = LAB_USERS
            .iter()
            .find(|(name, _)| *name == user.0)
            .map(|(_, g)| g.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("{} is not a lab user", user.0));
        let mut config = self.admin_config.clone();
        config.auth_info.impersonate = Some(user.0.to_string());
        config.auth_info.impersonate_groups = Some(
            groups
                .into_iter()
                .chain(["system:authenticated".to_string()])
                .collect(),
        );
        config
    }

    /// The broker's bootstrap servers.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Runs kubectl as a lab user; returns (success, stdout, stderr).
    pub fn kubectl(&self, user: LabUser, args: &[&str]) -> (bool, String, String) {
        self.kubectl_with_input(user, args, None)
    }

    /// Runs kubectl as a lab user with `input` on stdin (e.g. `apply -f -`).
    pub fn kubectl_with_input(
        &self,
        user: LabUser,
        args: &[&str],
        input: Option<&str>,
    ) -> (bool, String, String) {
        let kubectl = std::env::var("APIM_KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let mut cmd = std::process::Command::new(kubectl);
        match self.kubeconfig_of(user) {
            Some(path) => {
                cmd.arg("--kubeconfig").arg(path);
            }
            None if user.0 != "admin" => {
                cmd.arg("--as").arg(user.0);
                for (name, groups) in LAB_USERS {
                    if *name == user.0 {
                        for g in *groups {
                            cmd.arg("--as-group").arg(g);
                        }
                    }
                }
                cmd.arg("--as-group").arg("system:authenticated");
            }
            None => {}
        }
        use std::io::Write;
        cmd.args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("running kubectl");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.unwrap_or_default().as_bytes());
        }
        let out = child.wait_with_output().expect("kubectl output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The workspace root (for examples/, crds/yaml/, target/).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Path of one of the workspace's binaries, built by `cargo build --bins` (hack/test does).
pub fn bin_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first",
        path.display()
    );
    path
}

/// Runs `cleanup` with a fresh client on a thread of its own and waits for it: for `Drop`
/// impls, which cannot await and may run while the test's runtime shuts down.
pub fn blocking_cleanup<F, Fut>(config: kube::Config, cleanup: F)
where
    F: FnOnce(Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        // The client must be built inside the runtime: it spawns its connection tasks.
        rt.block_on(async move {
            if let Ok(client) = Client::try_from(config) {
                cleanup(client).await;
            }
        });
    })
    .join();
}
