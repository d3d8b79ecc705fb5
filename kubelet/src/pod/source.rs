//! Where a pod's env and volumes read the API objects they refer to. The trait lets the
//! kubelet put a cache in front of the API server, and tests use a map.

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};

/// A failed read, with the API server's message (callers show it to users as is).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl From<kube::Error> for SourceError {
    fn from(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) if !status.message.is_empty() => SourceError(status.message),
            other => SourceError(other.to_string()),
        }
    }
}

pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// The objects a pod refers to. `Ok(None)`: the object does not exist.
#[async_trait]
pub trait ObjectSource: Send + Sync {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>>;
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>>;
    /// All Services of a namespace (for the service link variables).
    async fn services(&self, namespace: &str) -> Result<Vec<Service>>;
    /// A token bound to the pod (TokenRequest on `serviceaccounts/NAME/token`). `Ok(None)`:
    /// the server does not serve that subresource.
    async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
        pod_name: &str,
        pod_uid: &str,
    ) -> Result<Option<String>>;
}

/// Reads straight from the API server.
#[derive(Clone)]
pub struct ApiObjectSource {
    pub client: kube::Client,
}

impl ApiObjectSource {
    pub fn new(client: kube::Client) -> Self {
        ApiObjectSource { client }
    }
}

#[async_trait]
impl ObjectSource for ApiObjectSource {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await?)
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await?)
    }

    async fn services(&self, namespace: &str) -> Result<Vec<Service>> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.list(&ListParams::default()).await?.items)
    }

    async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        audience: Option<&str>,
        expiration_seconds: i64,
        pod_name: &str,
        pod_uid: &str,
    ) -> Result<Option<String>> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod_name.to_string()),
                    uid: Some(pod_uid.to_string()),
                }),
            },
            ..TokenRequest::default()
        };
        let response: std::result::Result<TokenRequest, kube::Error> = api
            .create_subresource("token", service_account, &PostParams::default(), &request)
            .await;
        match response {
            Ok(tr) => Ok(tr.status.map(|s| s.token)),
            Err(kube::Error::Api(status))
                if status.is_not_found() && !names_service_account(&status) =>
            {
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// A 404 about the ServiceAccount itself (it does not exist) is an error to report; any
/// other 404 on this path means the server lacks the subresource.
fn names_service_account(status: &kube::core::Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.kind == "serviceaccounts" || d.kind == "ServiceAccount")
}

/// A map-backed [`ObjectSource`] for tests; objects can change between calls.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// (namespace, service account, audience, expiration, pod name, pod uid).
    pub(crate) type TokenRequestRecord = (String, String, Option<String>, i64, String, String);

    #[derive(Default)]
    pub(crate) struct FakeSource {
        pub config_maps: Mutex<HashMap<(String, String), ConfigMap>>,
        pub secrets: Mutex<HashMap<(String, String), Secret>>,
        pub services: Mutex<HashMap<String, Vec<Service>>>,
        /// Whether TokenRequest is served; tokens are `token-N`.
        pub tokens: bool,
        pub token_requests: Mutex<Vec<TokenRequestRecord>>,
    }

    impl FakeSource {
        pub fn put_config_map(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
            let cm = ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(ns.into()),
                    ..Default::default()
                },
                data: Some(
                    data.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            };
            self.put_config_map_object(ns, cm);
        }

        pub fn put_config_map_object(&self, ns: &str, cm: ConfigMap) {
            let name = cm.metadata.name.clone().unwrap_or_default();
            if let Ok(mut m) = self.config_maps.lock() {
                m.insert((ns.into(), name), cm);
            }
        }

        pub fn remove_config_map(&self, ns: &str, name: &str) {
            if let Ok(mut m) = self.config_maps.lock() {
                m.remove(&(ns.to_string(), name.to_string()));
            }
        }

        pub fn put_secret(&self, ns: &str, name: &str, data: &[(&str, &[u8])]) {
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(ns.into()),
                    ..Default::default()
                },
                data: Some(
                    data.iter()
                        .map(|(k, v)| (k.to_string(), k8s_openapi::ByteString(v.to_vec())))
                        .collect(),
                ),
                ..Default::default()
            };
            if let Ok(mut m) = self.secrets.lock() {
                m.insert((ns.into(), name.into()), secret);
            }
        }

        pub fn put_service(&self, ns: &str, svc: Service) {
            if let Ok(mut m) = self.services.lock() {
                m.entry(ns.into()).or_default().push(svc);
            }
        }

        pub fn token_request_count(&self) -> usize {
            self.token_requests.lock().map(|r| r.len()).unwrap_or(0)
        }
    }

    #[async_trait]
    impl ObjectSource for FakeSource {
        async fn config_map(&self, ns: &str, name: &str) -> Result<Option<ConfigMap>> {
            let m = self
                .config_maps
                .lock()
                .map_err(|e| SourceError(e.to_string()))?;
            Ok(m.get(&(ns.to_string(), name.to_string())).cloned())
        }

        async fn secret(&self, ns: &str, name: &str) -> Result<Option<Secret>> {
            let m = self
                .secrets
                .lock()
                .map_err(|e| SourceError(e.to_string()))?;
            Ok(m.get(&(ns.to_string(), name.to_string())).cloned())
        }

        async fn services(&self, ns: &str) -> Result<Vec<Service>> {
            let m = self
                .services
                .lock()
                .map_err(|e| SourceError(e.to_string()))?;
            Ok(m.get(ns).cloned().unwrap_or_default())
        }

        async fn service_account_token(
            &self,
            ns: &str,
            sa: &str,
            audience: Option<&str>,
            expiration_seconds: i64,
            pod_name: &str,
            pod_uid: &str,
        ) -> Result<Option<String>> {
            if !self.tokens {
                return Ok(None);
            }
            let mut r = self
                .token_requests
                .lock()
                .map_err(|e| SourceError(e.to_string()))?;
            r.push((
                ns.into(),
                sa.into(),
                audience.map(str::to_string),
                expiration_seconds,
                pod_name.into(),
                pod_uid.into(),
            ));
            Ok(Some(format!("token-{}", r.len())))
        }
    }
}
