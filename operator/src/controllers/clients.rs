//! The gateway of each environment and AWX, built on first use from the configuration and
//! the credentials Secrets (so a missing Secret is a condition on the resource, not a crash
//! at start), and rebuilt after the gateway refused the credentials (rotation).

use std::collections::BTreeMap;
use std::sync::Arc;

use crds::Environment;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use tokio::sync::Mutex;

use crate::awx::{AwxClient, AwxConfig, DynAwx, SecretString};
use crate::config::{AwxSettings, Config, GatewaySettings, JobTemplates, SecretRef};
use crate::gateway::{
    CredentialsError, DynGateway, GatewayConfig, GatewayCredentials, GatewayMetrics, HttpGateway,
};

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("failed to read Secret {secret} with the credentials of {target}: {source}")]
    ReadSecret {
        target: String,
        secret: SecretRef,
        source: kube::Error,
    },
    #[error("failed to read the credentials of {target} from Secret {secret}: {source}")]
    Credentials {
        target: String,
        secret: SecretRef,
        source: CredentialsError,
    },
    #[error("failed to read the AWX token from Secret {secret}: key `token` is missing or empty")]
    AwxToken { secret: SecretRef },
    #[error("failed to build the client of gateway {env}: {source}")]
    BuildGateway {
        env: Environment,
        source: Box<crate::gateway::GatewayError>,
    },
    #[error("failed to build the AWX client: {source}")]
    BuildAwx { source: Box<crate::awx::AwxError> },
    #[error("no credentials for {target}: set a Secret in the configuration")]
    NoCredentials { target: String },
}

/// One environment's gateway: the client and its base URL (for endpoints and AWX jobs).
#[derive(Clone)]
pub struct GatewayHandle {
    /// The client.
    pub api: DynGateway,
    /// Base URL without `/rest/apigateway`.
    pub base_url: String,
}

enum GatewaySlot {
    /// Built on first use.
    Lazy {
        settings: GatewaySettings,
        built: Mutex<Option<DynGateway>>,
    },
    /// Given (tests).
    Fixed(DynGateway),
}

/// AWX and its template names.
#[derive(Clone)]
pub struct AwxHandle {
    /// The client.
    pub api: DynAwx,
    /// Template names.
    pub templates: JobTemplates,
}

enum AwxSlot {
    None,
    Lazy {
        settings: AwxSettings,
        built: Mutex<Option<DynAwx>>,
    },
    Fixed(AwxHandle),
}

/// Every outside client the controllers use.
pub struct Clients {
    kube: Option<Client>,
    gateways: BTreeMap<Environment, (String, GatewaySlot)>,
    awx: AwxSlot,
    dev_gateway: Option<(String, SecretString)>,
    dev_awx_token: Option<SecretString>,
    metrics: Option<Arc<dyn GatewayMetrics>>,
}

impl Clients {
    /// Clients described by `config`, reading Secrets with `kube`.
    pub fn from_config(
        config: &Config,
        kube: Client,
        metrics: Option<Arc<dyn GatewayMetrics>>,
    ) -> Clients {
        let gateways = config
            .gateways
            .iter()
            .map(|(env, s)| {
                (
                    *env,
                    (
                        s.url.clone(),
                        GatewaySlot::Lazy {
                            settings: s.clone(),
                            built: Mutex::new(None),
                        },
                    ),
                )
            })
            .collect();
        let awx = match &config.awx {
            Some(settings) => AwxSlot::Lazy {
                settings: settings.clone(),
                built: Mutex::new(None),
            },
            None => AwxSlot::None,
        };
        Clients {
            kube: Some(kube),
            gateways,
            awx,
            dev_gateway: config.dev_credentials.gateway.clone(),
            dev_awx_token: config.dev_credentials.awx_token.clone(),
            metrics,
        }
    }

    /// Fixed clients (tests): `(environment, base URL, client)` and optionally AWX.
    pub fn fixed(
        gateways: Vec<(Environment, String, DynGateway)>,
        awx: Option<AwxHandle>,
    ) -> Clients {
        Clients {
            kube: None,
            gateways: gateways
                .into_iter()
                .map(|(env, url, api)| (env, (url, GatewaySlot::Fixed(api))))
                .collect(),
            awx: awx.map_or(AwxSlot::None, AwxSlot::Fixed),
            dev_gateway: None,
            dev_awx_token: None,
            metrics: None,
        }
    }

    /// Whether a gateway is configured for `env`.
    pub fn has_gateway(&self, env: Environment) -> bool {
        self.gateways.contains_key(&env)
    }

    /// The gateway of `env`, `Ok(None)` when none is configured.
    pub async fn gateway(&self, env: Environment) -> Result<Option<GatewayHandle>, ClientError> {
        let Some((url, slot)) = self.gateways.get(&env) else {
            return Ok(None);
        };
        let api = match slot {
            GatewaySlot::Fixed(api) => api.clone(),
            GatewaySlot::Lazy { settings, built } => {
                let mut guard = built.lock().await;
                match &*guard {
                    Some(api) => api.clone(),
                    None => {
                        let api = self.build_gateway(env, settings).await?;
                        *guard = Some(api.clone());
                        api
                    }
                }
            }
        };
        Ok(Some(GatewayHandle {
            api,
            base_url: url.clone(),
        }))
    }

    /// Forgets the client of `env` so the next use re-reads its Secret (after a 401/403).
    pub async fn invalidate_gateway(&self, env: Environment) {
        if let Some((_, GatewaySlot::Lazy { built, .. })) = self.gateways.get(&env) {
            *built.lock().await = None;
        }
    }

    async fn build_gateway(
        &self,
        env: Environment,
        settings: &GatewaySettings,
    ) -> Result<DynGateway, ClientError> {
        let target = format!("gateway {env}");
        let credentials = match (&settings.credentials_secret, &self.dev_gateway) {
            (Some(secret), _) => {
                let data = self.read_secret(&target, secret).await?;
                GatewayCredentials::from_secret_data(&data).map_err(|source| {
                    ClientError::Credentials {
                        target: target.clone(),
                        secret: secret.clone(),
                        source,
                    }
                })?
            }
            (None, Some((user, password))) => {
                GatewayCredentials::basic(user.clone(), password.clone())
            }
            (None, None) => return Err(ClientError::NoCredentials { target }),
        };
        let mut config = GatewayConfig::new(env.as_str(), settings.url.clone(), credentials);
        config.timeout = settings.timeout;
        config.supports_openapi_31 = settings.supports_openapi31;
        let mut client = HttpGateway::new(config).map_err(|e| ClientError::BuildGateway {
            env,
            source: Box::new(e),
        })?;
        if let Some(m) = &self.metrics {
            client = client.with_metrics(m.clone());
        }
        Ok(Arc::new(client))
    }

    /// AWX, `Ok(None)` when not configured.
    pub async fn awx(&self) -> Result<Option<AwxHandle>, ClientError> {
        match &self.awx {
            AwxSlot::None => Ok(None),
            AwxSlot::Fixed(h) => Ok(Some(h.clone())),
            AwxSlot::Lazy { settings, built } => {
                let mut guard = built.lock().await;
                let api = match &*guard {
                    Some(api) => api.clone(),
                    None => {
                        let token = match (&settings.token_secret, &self.dev_awx_token) {
                            (Some(secret), _) => {
                                let data = self.read_secret("AWX", secret).await?;
                                let token = data
                                    .get("token")
                                    .and_then(|b| std::str::from_utf8(&b.0).ok())
                                    .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
                                    .filter(|t| !t.is_empty())
                                    .ok_or_else(|| ClientError::AwxToken {
                                        secret: secret.clone(),
                                    })?;
                                SecretString::new(token)
                            }
                            (None, Some(token)) => token.clone(),
                            (None, None) => {
                                return Err(ClientError::NoCredentials {
                                    target: "AWX".into(),
                                });
                            }
                        };
                        let mut config = AwxConfig::new(settings.url.clone(), token);
                        config.job_timeout = settings.job_timeout;
                        let api: DynAwx = Arc::new(AwxClient::new(config).map_err(|e| {
                            ClientError::BuildAwx {
                                source: Box::new(e),
                            }
                        })?);
                        *guard = Some(api.clone());
                        api
                    }
                };
                Ok(Some(AwxHandle {
                    api,
                    templates: settings.job_templates.clone(),
                }))
            }
        }
    }

    async fn read_secret(
        &self,
        target: &str,
        secret: &SecretRef,
    ) -> Result<BTreeMap<String, k8s_openapi::ByteString>, ClientError> {
        let Some(client) = &self.kube else {
            return Err(ClientError::NoCredentials {
                target: target.to_string(),
            });
        };
        let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), &secret.namespace);
        let s = api
            .get(&secret.name)
            .await
            .map_err(|source| ClientError::ReadSecret {
                target: target.to_string(),
                secret: secret.clone(),
                source,
            })?;
        Ok(s.data.unwrap_or_default())
    }
}
