//! The HTTPS server: TLS with optional client certificates, authentication, and dispatch of
//! every path to discovery, OpenAPI, health, metrics or the resource handlers.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use keelson_apimachinery::Status;
use keelson_common::tls::{peer_identity, Identity};
use keelson_common::tokens::TokenAuthenticator;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::handlers::{self, Ctx};
use crate::metrics::{Metrics, RequestLabels, VerbLabels};
use crate::request::{parse_path, Query, Target};
use crate::respond::{self, Response};
use crate::rest::Api;

pub struct Server {
    pub api: Arc<Api>,
    pub metrics: Arc<Metrics>,
    pub tokens: Option<TokenAuthenticator>,
    pub server_address: String,
    pub ready: AtomicBool,
}

/// Paths anyone may read, as upstream's `system:public-info-viewer` role allows.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

impl Server {
    fn authenticate(
        &self,
        req: &Request<Incoming>,
        cert: Option<&Identity>,
    ) -> Result<Option<Identity>, Status> {
        if let Some(auth) = req.headers().get(http::header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .unwrap_or("");
            return match self.tokens.as_ref().and_then(|t| t.lookup(token)) {
                Some(id) => Ok(Some(id)),
                None => Err(Status::unauthorized()),
            };
        }
        Ok(cert.cloned())
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        cert: Option<Identity>,
    ) -> Response {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let user = match self.authenticate(&req, cert.as_ref()) {
            Ok(u) => u,
            Err(status) => return reject(req, &status).await,
        };
        if user.is_none() && !is_public(&path) {
            return reject(req, &Status::unauthorized()).await;
        }
        let (resp, verb, resource) = self.route(req, method.clone(), &path).await;
        let code = resp.status().as_u16().to_string();
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                verb: verb.clone(),
                resource,
                code,
            })
            .inc();
        if verb != "WATCH" {
            self.metrics
                .latency
                .get_or_create(&VerbLabels { verb })
                .observe(started.elapsed().as_secs_f64());
        }
        tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
        resp
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        method: Method,
        path: &str,
    ) -> (Response, String, String) {
        let verb = method.as_str().to_string();
        let query = Query::parse(req.uri().query());
        let simple = |resp| (resp, verb.clone(), String::new());
        match path {
            "/healthz" | "/livez" => return simple(respond::text(StatusCode::OK, "ok")),
            "/readyz" => {
                return simple(if self.ready.load(Ordering::Acquire) {
                    respond::text(StatusCode::OK, "ok")
                } else {
                    respond::text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "[-]bootstrap not finished\nreadyz check failed",
                    )
                })
            }
            "/version" => return simple(respond::json(StatusCode::OK, &crate::version::info())),
            "/metrics" => {
                return simple(respond::bytes_response(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    self.metrics.encode(),
                ))
            }
            "/openapi/v2" => return simple(respond::status(&Status::no_such_path())),
            _ => {}
        }
        if path == "/openapi/v3" || path.starts_with("/openapi/v3/") {
            return simple(crate::openapi::handle(
                self.api.registry,
                path,
                &query,
                req.headers(),
            ));
        }
        match parse_path(path) {
            Target::Discovery {
                group,
                version,
                legacy,
            } => {
                if method != Method::GET {
                    return simple(respond::status(&Status::method_not_allowed(
                        "the server does not allow this method on the requested resource",
                    )));
                }
                simple(crate::discovery::handle(
                    self.api.registry,
                    group.as_deref(),
                    version.as_deref(),
                    legacy,
                    req.headers(),
                    &self.server_address,
                ))
            }
            Target::Resource(rr) => {
                let Some(def) = self
                    .api
                    .registry
                    .lookup(&rr.group, &rr.version, &rr.resource)
                else {
                    return simple(reject(req, &Status::no_such_path()).await);
                };
                if rr.namespace.is_some() && !def.namespaced {
                    return simple(reject(req, &Status::no_such_path()).await);
                }
                let watching = rr.watch_path || query.flag("watch").unwrap_or(false);
                let verb = if watching { "WATCH".to_string() } else { verb };
                let resource = def.resource.to_string();
                let headers = req.headers().clone();
                let user_agent = headers
                    .get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let body = req.into_body();
                let ctx = Ctx {
                    api: self.api.clone(),
                    def,
                    req: rr,
                    query,
                    headers,
                    user_agent,
                };
                if watching {
                    self.metrics.watchers.inc();
                }
                let resp = handlers::handle(ctx, method, body).await;
                if watching {
                    self.metrics.watchers.dec();
                }
                (resp, verb, resource)
            }
            Target::Other(_) => simple(respond::status(&Status::no_such_path())),
        }
    }
}

/// Answers with `status` after reading the request body (up to the size limit): clients
/// such as curl treat a stream reset before they finished sending as a transport error.
async fn reject(req: Request<Incoming>, status: &Status) -> Response {
    let _ = handlers::read_body(req.into_body()).await;
    respond::status(status)
}

/// Accepts connections until the listener fails.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    server: Arc<Server>,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(err) => {
                    tracing::debug!(%peer, %err, "TLS handshake failed");
                    return;
                }
            };
            let cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(peer_identity);
            let service = service_fn(move |req| {
                let server = server.clone();
                let cert = cert.clone();
                async move { Ok::<_, Infallible>(server.handle(req, cert).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(err) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
        });
    }
}

/// Where the API server keeps its state.
pub fn tls_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("tls")
}
