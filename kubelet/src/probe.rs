//! Liveness, readiness and startup probes (exec, httpGet, tcpSocket, grpc) with their timing.
//!
//! One check per probe handler, each a plain async function returning a [`CheckOutcome`] with
//! upstream's messages (pkg/probe/{exec,http,tcp,grpc}), and a worker per probe
//! ([`spawn_probe`]) that runs them on upstream's schedule (pkg/kubelet/prober/worker.go):
//!
//! - the result starts as Failure for readiness, Success for liveness, Unknown for startup;
//! - nothing runs before `initialDelaySeconds` (counted from [`spawn_probe`], which the pod
//!   worker calls when it sees the container running), then one check every
//!   `periodSeconds`, each bounded by `timeoutSeconds`;
//! - the result flips only after `successThreshold` / `failureThreshold` consecutive equal
//!   outcomes;
//! - a check that could not run at all (a named port the container lacks, a runtime error) is
//!   retried twice at once and then thrown away, as upstream's prober does: it neither
//!   succeeds nor fails;
//! - liveness and readiness probes run only while the container counts as started
//!   ([`ProbeHandle::set_started`]: the caller says so once the startup probe succeeded, or
//!   at once when there is none);
//! - once a liveness or startup probe fails, and once a startup probe succeeds, its result is
//!   final: the container is restarted (a new container gets new probes) or has started.
//!
//! httpGet speaks HTTP/1.1 (HTTPS without certificate verification, like upstream's
//! InsecureSkipVerify); grpc speaks the gRPC health protocol (grpc.health.v1.Health/Check)
//! over cleartext HTTP/2, as upstream does (it supports no TLS either).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, ACCEPT, CONNECTION, CONTENT_TYPE, HOST, LOCATION, TE, USER_AGENT,
};
use http::HeaderMap;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{ContainerPort, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use url::Url;

use crate::runtime::{ExecOutput, Runtime, RuntimeError};

/// What a probe message keeps of command output or a response body (upstream's
/// `maxReadLength` / `maxRespBodyLength`).
pub const MAX_MESSAGE: usize = 10 * 1024;
/// Redirects an httpGet probe follows (to the same host) before it fails, as Go's client.
const MAX_REDIRECTS: u32 = 10;
/// How often a check that could not run is tried in one round (upstream's maxProbeRetries).
const RETRIES: u32 = 3;
/// How much longer than the probe's timeout an exec may take before the probe stops waiting
/// for the runtime (which enforces the timeout itself, then kills the command).
const EXEC_GRACE: Duration = Duration::from_secs(10);
/// The largest gRPC response the health check reads.
const MAX_GRPC_RESPONSE: usize = 64 * 1024;

/// Which of a container's probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    /// The result before the first check settles: upstream's `initialValue`.
    pub fn initial_result(self) -> ProbeResult {
        match self {
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Readiness => ProbeResult::Failure {
                message: String::new(),
            },
            ProbeKind::Startup => ProbeResult::Unknown,
        }
    }

    /// "Liveness", as events say it ("Liveness probe failed: ...").
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

/// A probe's current verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Unknown,
    Success,
    /// `message`: what the last failed check said (empty for readiness before any check).
    Failure {
        message: String,
    },
}

impl ProbeResult {
    pub fn is_success(&self) -> bool {
        matches!(self, ProbeResult::Success)
    }
}

/// What one check found (upstream's probe.Result with its output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    Success,
    /// Counts as a success, with something worth an event: an httpGet redirect to another
    /// host that was not followed ("Probe terminated redirects, ...").
    Warning(String),
    Failure(String),
    /// The check could not run (a port the container does not have, a runtime error):
    /// thrown away by the worker.
    Error(String),
}

impl CheckOutcome {
    fn success(&self) -> Option<bool> {
        match self {
            CheckOutcome::Success | CheckOutcome::Warning(_) => Some(true),
            CheckOutcome::Failure(_) => Some(false),
            CheckOutcome::Error(_) => None,
        }
    }
}

/// The container a probe checks.
#[derive(Clone, Debug, Default)]
pub struct ProbeTarget {
    /// httpGet and tcpSocket without a host, and grpc, connect here.
    pub pod_ip: Option<String>,
    /// exec runs in this container (a runtime id).
    pub container_id: String,
    /// The container's ports: named ports of httpGet and tcpSocket resolve against them.
    pub ports: Vec<ContainerPort>,
    /// The container's static env (`value` entries): `$(VAR)` in exec commands expands
    /// against it, as upstream's ExpandContainerCommandOnlyStatic.
    pub env: Vec<(String, String)>,
    /// When the container started: `initialDelaySeconds` counts from there (a restarted
    /// kubelet adopting a running container does not wait again). None: now.
    pub started_at: Option<std::time::SystemTime>,
}

/// A probe's timing with upstream's defaults for unset (or nonsensical) fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeTiming {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl ProbeTiming {
    pub fn of(probe: &Probe) -> ProbeTiming {
        let secs = |v: Option<i32>, default: u64, min: i32| {
            Duration::from_secs(v.filter(|v| *v >= min).map_or(default, |v| v as u64))
        };
        let count =
            |v: Option<i32>, default: u32| v.filter(|v| *v >= 1).map_or(default, |v| v as u32);
        ProbeTiming {
            initial_delay: secs(probe.initial_delay_seconds, 0, 0),
            period: secs(probe.period_seconds, 10, 1),
            timeout: secs(probe.timeout_seconds, 1, 1),
            success_threshold: count(probe.success_threshold, 1),
            failure_threshold: count(probe.failure_threshold, 3),
        }
    }
}

/// `kube-probe/1.35`: the User-Agent of httpGet and grpc probes, from the kubelet's version.
pub fn user_agent() -> String {
    let version = crate::node::KUBELET_VERSION.trim_start_matches('v');
    let mut parts = version.split(['.', '-', '+']);
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    format!("kube-probe/{major}.{minor}")
}

/// A port of an httpGet or tcpSocket action: a number, or the name of one of the
/// container's ports (or a number written as a string), as upstream's ResolveContainerPort.
pub fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            match ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
            {
                Some(p) => i64::from(p.container_port),
                None => name
                    .parse::<i64>()
                    .map_err(|_| format!("port {name} not found"))?,
            }
        }
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port number: {number}"))
}

/// `host:port`, with brackets around an IPv6 address (Go's net.JoinHostPort).
pub fn join_host_port(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An OS error as Go prints it: "connection refused", not "Connection refused (os error 111)".
fn go_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text
        .find(" (os error ")
        .map_or(text.as_str(), |i| &text[..i]);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A duration as Go prints it ("1s", "2.5s", "500ms").
fn go_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Opens a TCP connection; errors read as Go's dialer's ("dial tcp 10.0.0.5:80: connect:
/// connection refused").
async fn dial(host: &str, port: u16) -> Result<TcpStream, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| format!("dial tcp: lookup {bare}: {}", go_error(&e)))?
            .collect(),
    };
    let mut last = format!("dial tcp: lookup {bare}: no such host");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("dial tcp {addr}: connect: {}", go_error(&e)),
        }
    }
    Err(last)
}

/// Aborts a spawned connection task when the request that needed it is done.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one check of `probe` against `target`, bounded by the probe's timeout.
pub async fn run_check(probe: &Probe, target: &ProbeTarget, runtime: &dyn Runtime) -> CheckOutcome {
    let timeout = ProbeTiming::of(probe).timeout;
    let pod_ip = target.pod_ip.as_deref().filter(|ip| !ip.is_empty());
    if let Some(exec) = &probe.exec {
        let command: Vec<String> = exec
            .command
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|arg| {
                crate::pod::env::expand(arg, |name| {
                    target
                        .env
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                })
            })
            .collect();
        return exec_check(runtime, &target.container_id, &command, timeout).await;
    }
    if let Some(action) = &probe.http_get {
        return http_get_check(action, pod_ip, &target.ports, timeout).await;
    }
    if let Some(action) = &probe.tcp_socket {
        let port = match resolve_port(&action.port, &target.ports) {
            Ok(port) => port,
            Err(e) => return CheckOutcome::Error(e),
        };
        let host = action.host.as_deref().filter(|h| !h.is_empty()).or(pod_ip);
        let Some(host) = host else {
            return CheckOutcome::Failure("the pod has no IP address yet".into());
        };
        return tcp_socket_check(host, port, timeout).await;
    }
    if let Some(action) = &probe.grpc {
        let Some(port) = u16::try_from(action.port).ok().filter(|p| *p > 0) else {
            return CheckOutcome::Error(format!("invalid port number: {}", action.port));
        };
        let Some(host) = pod_ip else {
            return CheckOutcome::Failure("the pod has no IP address yet".into());
        };
        let service = action.service.as_deref().unwrap_or_default();
        return grpc_check(host, port, service, timeout).await;
    }
    CheckOutcome::Error(format!(
        "missing probe handler for container {}",
        target.container_id
    ))
}

/// exec: runs `command` in the container; exit 0 is success, any other exit a failure with
/// the command's output (at most [`MAX_MESSAGE`] bytes) as the message.
pub async fn exec_check(
    runtime: &dyn Runtime,
    container_id: &str,
    command: &[String],
    timeout: Duration,
) -> CheckOutcome {
    let result = tokio::time::timeout(
        timeout + EXEC_GRACE,
        runtime.exec(container_id, command, timeout),
    )
    .await
    .unwrap_or_else(|_| {
        Ok(ExecOutput {
            exit_code: -1,
            output: Vec::new(),
            timed_out: true,
        })
    });
    exec_outcome(command, result)
}

/// The outcome of an exec probe from what the runtime reported.
pub fn exec_outcome(command: &[String], result: Result<ExecOutput, RuntimeError>) -> CheckOutcome {
    match result {
        Err(e) => CheckOutcome::Error(e.to_string()),
        // Upstream's message for a timed-out exec (the CRI client's TimeoutError).
        Ok(out) if out.timed_out => {
            CheckOutcome::Failure(format!("command {:?} timed out", command.join(" ")))
        }
        Ok(out) if out.exit_code == 0 => CheckOutcome::Success,
        Ok(out) => {
            let end = out.output.len().min(MAX_MESSAGE);
            CheckOutcome::Failure(String::from_utf8_lossy(&out.output[..end]).into_owned())
        }
    }
}

/// tcpSocket: success when a connection opens within `timeout`.
pub async fn tcp_socket_check(host: &str, port: u16, timeout: Duration) -> CheckOutcome {
    match tokio::time::timeout(timeout, dial(host, port)).await {
        Err(_) => CheckOutcome::Failure(format!(
            "dial tcp {}: i/o timeout",
            join_host_port(host, port)
        )),
        Ok(Err(e)) => CheckOutcome::Failure(e),
        Ok(Ok(_stream)) => CheckOutcome::Success,
    }
}

/// A URL as Go prints it in errors: always with its port.
fn display_url(url: &Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port_or_known_default() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path());
    if let Some(query) = url.query() {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The URL and headers of an httpGet probe (upstream's NewRequestForHTTPGetAction).
struct HttpProbeRequest {
    url: Url,
    headers: HeaderMap,
    /// A `Host` header from httpHeaders: the request's Host instead of the URL's.
    host: Option<String>,
}

fn http_probe_request(
    action: &HTTPGetAction,
    pod_ip: Option<&str>,
    ports: &[ContainerPort],
) -> Result<HttpProbeRequest, CheckOutcome> {
    let port = resolve_port(&action.port, ports).map_err(CheckOutcome::Error)?;
    let scheme = action
        .scheme
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("HTTP")
        .to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(CheckOutcome::Error(format!(
            "unsupported protocol scheme {scheme:?}"
        )));
    }
    let host = action
        .host
        .as_deref()
        .filter(|h| !h.is_empty())
        .or(pod_ip)
        .ok_or_else(|| CheckOutcome::Failure("the pod has no IP address yet".into()))?;
    let path = action.path.as_deref().unwrap_or_default();
    let slash = if path.starts_with('/') { "" } else { "/" };
    let text = format!("{scheme}://{}{slash}{path}", join_host_port(host, port));
    let url =
        Url::parse(&text).map_err(|e| CheckOutcome::Failure(format!("parse {text:?}: {e}")))?;

    let mut headers = HeaderMap::new();
    for h in action.http_headers.iter().flatten() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|e| CheckOutcome::Error(format!("header {:?}: {e}", h.name)))?;
        let value = HeaderValue::from_str(&h.value)
            .map_err(|e| CheckOutcome::Error(format!("header {:?}: {e}", h.name)))?;
        headers.append(name, value);
    }
    let host_header = headers
        .remove(HOST)
        .and_then(|v| v.to_str().ok().map(str::to_string))
        .filter(|v| !v.is_empty());
    match headers.get(USER_AGENT).map(|v| v.is_empty()) {
        None => {
            if let Ok(ua) = HeaderValue::from_str(&user_agent()) {
                headers.insert(USER_AGENT, ua);
            }
        }
        // Set to nothing: Go then sends none.
        Some(true) => {
            headers.remove(USER_AGENT);
        }
        Some(false) => {}
    }
    match headers.get(ACCEPT).map(|v| v.is_empty()) {
        None => {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        Some(true) => {
            headers.remove(ACCEPT);
        }
        Some(false) => {}
    }
    Ok(HttpProbeRequest {
        url,
        headers,
        host: host_header,
    })
}

/// httpGet: a GET whose status is 2xx or 3xx within `timeout`. Redirects are followed to the
/// same host only (a redirect elsewhere counts as success with a warning), as upstream.
pub async fn http_get_check(
    action: &HTTPGetAction,
    pod_ip: Option<&str>,
    ports: &[ContainerPort],
    timeout: Duration,
) -> CheckOutcome {
    let request = match http_probe_request(action, pod_ip, ports) {
        Ok(request) => request,
        Err(outcome) => return outcome,
    };
    let first = request.url.clone();
    match tokio::time::timeout(timeout, follow(request)).await {
        Ok(outcome) => outcome,
        Err(_) => CheckOutcome::Failure(format!(
            "Get {:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            display_url(&first)
        )),
    }
}

async fn follow(request: HttpProbeRequest) -> CheckOutcome {
    let HttpProbeRequest {
        mut url,
        headers,
        mut host,
    } = request;
    let first_host = url.host_str().map(str::to_string);
    let mut redirects = 0;
    loop {
        let (response, _conn) = match fetch(&url, &headers, host.as_deref()).await {
            Ok(r) => r,
            Err(e) => return CheckOutcome::Failure(format!("Get {:?}: {e}", display_url(&url))),
        };
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        // Go's client follows these; others (300, 304, ...) are the answer.
        let Some(location) = location.filter(|_| matches!(status, 301 | 302 | 303 | 307 | 308))
        else {
            return classify(response).await;
        };
        let next = match url.join(&location) {
            Ok(next) => next,
            Err(e) => {
                return CheckOutcome::Failure(format!(
                    "Get {:?}: failed to parse Location header {location:?}: {e}",
                    display_url(&url)
                ))
            }
        };
        if next.host_str() != first_host.as_deref() {
            return classify(response).await;
        }
        redirects += 1;
        if redirects >= MAX_REDIRECTS {
            return CheckOutcome::Failure(format!(
                "Get {:?}: stopped after {MAX_REDIRECTS} redirects",
                display_url(&next)
            ));
        }
        // Go keeps a custom Host header only through relative redirects.
        if Url::parse(&location).is_ok() {
            host = None;
        }
        url = next;
    }
}

async fn classify(response: http::Response<Incoming>) -> CheckOutcome {
    let status = response.status().as_u16();
    match status {
        200..=299 => CheckOutcome::Success,
        300..=399 => {
            let (body, _) = read_body(response.into_body(), MAX_MESSAGE).await;
            CheckOutcome::Warning(format!(
                "Probe terminated redirects, Response body: {}",
                String::from_utf8_lossy(&body)
            ))
        }
        // Upstream leaves the body out of this message on purpose (kubernetes#99425).
        _ => CheckOutcome::Failure(format!("HTTP probe failed with statuscode: {status}")),
    }
}

/// Up to `cap` bytes of a body, and its trailers. A body that breaks off ends early.
async fn read_body(mut body: Incoming, cap: usize) -> (Vec<u8>, Option<HeaderMap>) {
    let mut data = Vec::new();
    let mut trailers = None;
    while let Some(Ok(frame)) = body.frame().await {
        match frame.into_data() {
            Ok(chunk) => {
                let room = cap.saturating_sub(data.len());
                data.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() > room {
                    break;
                }
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
            }
        }
    }
    (data, trailers)
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One GET on a fresh connection (upstream's transport disables keep-alives).
async fn fetch(
    url: &Url,
    headers: &HeaderMap,
    host_override: Option<&str>,
) -> Result<(http::Response<Incoming>, AbortOnDrop), String> {
    let host = url
        .host_str()
        .ok_or_else(|| "http: no Host in request URL".to_string())?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("unsupported protocol scheme {:?}", url.scheme()))?;
    let tcp = dial(host, port).await?;
    let io: Box<dyn Io> = match url.scheme() {
        "http" => Box::new(tcp),
        "https" => {
            let config = tls_config()?;
            let name = rustls::pki_types::ServerName::try_from(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            )
            .map_err(|e| format!("tls: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            Box::new(tls)
        }
        other => return Err(format!("unsupported protocol scheme {other:?}")),
    };
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let mut target = url.path().to_string();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let host_header = match (host_override, url.port()) {
        (Some(h), _) => h.to_string(),
        (None, Some(p)) => format!("{host}:{p}"),
        (None, None) => host.to_string(),
    };
    let mut request = http::Request::get(target)
        .header(HOST, host_header)
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    for (name, value) in headers {
        request.headers_mut().append(name, value.clone());
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok((response, conn))
}

/// Accepts any server certificate (probes target pod IPs with whatever certificate the app
/// serves, as upstream's InsecureSkipVerify), but still checks the handshake's signatures.
#[derive(Debug)]
struct NoCertificateVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoCertificateVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The HTTPS probes' TLS settings, with ring named explicitly so that the probes do not
/// depend on which provider (if any) the process installed as rustls' default.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("tls: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoCertificateVerification(provider)))
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// grpc.health.v1.HealthCheckRequest.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// grpc.health.v1.HealthCheckResponse.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    /// 0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// The gRPC health protocol's path.
pub const HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

fn serving_status_name(status: i32) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        other => other.to_string(),
    }
}

fn grpc_code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("Code({code})"), |n| n.to_string())
}

const GRPC_UNIMPLEMENTED: u32 = 12;
const GRPC_DEADLINE_EXCEEDED: u32 = 4;

/// Percent-decoding of grpc-message.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A gRPC status from headers or trailers: (code, message).
fn grpc_status(headers: &HeaderMap) -> Option<(u32, String)> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some((code, message))
}

/// How grpc-go reads a non-gRPC HTTP status.
fn grpc_code_of_http(status: u16) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => GRPC_UNIMPLEMENTED,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

enum RpcError {
    Status(u32, String),
    Transport(String),
}

async fn health_rpc(host: &str, port: u16, service: &str) -> Result<i32, RpcError> {
    let tcp = dial(host, port).await.map_err(RpcError::Transport)?;
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
        .await
        .map_err(|e| RpcError::Transport(e.to_string()))?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let message = HealthCheckRequest {
        service: service.to_string(),
    }
    .encode_to_vec();
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let request = http::Request::post(format!(
        "http://{}{HEALTH_CHECK_PATH}",
        join_host_port(host, port)
    ))
    .header(CONTENT_TYPE, "application/grpc")
    .header(TE, "trailers")
    .header(USER_AGENT, user_agent())
    .body(Full::new(Bytes::from(frame)))
    .map_err(|e| RpcError::Transport(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| RpcError::Transport(e.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(RpcError::Status(
            grpc_code_of_http(status),
            format!("unexpected HTTP status code received from server: {status}"),
        ));
    }
    let (parts, body) = response.into_parts();
    // A trailers-only response (an error, typically) has its status in the headers.
    if let Some((code, message)) = grpc_status(&parts.headers) {
        if code != 0 {
            return Err(RpcError::Status(code, message));
        }
    }
    let (data, trailers) = read_body(body, MAX_GRPC_RESPONSE).await;
    let status = trailers
        .as_ref()
        .and_then(grpc_status)
        .or_else(|| grpc_status(&parts.headers));
    match status {
        Some((0, _)) => {}
        Some((code, message)) => return Err(RpcError::Status(code, message)),
        None => {
            return Err(RpcError::Status(
                13,
                "server closed the stream without sending trailers".into(),
            ))
        }
    }
    let payload = match data.as_slice() {
        [0, len @ ..] if len.len() >= 4 => {
            let size = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            len.get(4..4 + size)
        }
        _ => None,
    }
    .ok_or_else(|| RpcError::Status(13, "malformed (or compressed) health response".into()))?;
    HealthCheckResponse::decode(payload)
        .map(|r| r.status)
        .map_err(|e| {
            RpcError::Status(
                13,
                format!("grpc: failed to unmarshal the received message: {e}"),
            )
        })
}

/// grpc: grpc.health.v1.Health/Check for `service` over cleartext HTTP/2; SERVING is success.
pub async fn grpc_check(host: &str, port: u16, service: &str, timeout: Duration) -> CheckOutcome {
    let addr = join_host_port(host, port);
    match tokio::time::timeout(timeout, health_rpc(host, port, service)).await {
        Err(_) => CheckOutcome::Failure(format!(
            "timeout: health rpc did not complete within {}",
            go_duration(timeout)
        )),
        Ok(Ok(1)) => CheckOutcome::Success,
        Ok(Ok(status)) => CheckOutcome::Failure(format!(
            "service unhealthy (responded with {:?})",
            serving_status_name(status)
        )),
        Ok(Err(RpcError::Transport(e))) => {
            CheckOutcome::Failure(format!("error: failed to connect service at {addr:?}: {e}"))
        }
        Ok(Err(RpcError::Status(GRPC_UNIMPLEMENTED, message))) => CheckOutcome::Failure(format!(
            "error: this server does not implement the grpc health protocol \
             (grpc.health.v1.Health): {message}"
        )),
        Ok(Err(RpcError::Status(GRPC_DEADLINE_EXCEEDED, _))) => CheckOutcome::Failure(format!(
            "timeout: health rpc did not complete within {}",
            go_duration(timeout)
        )),
        Ok(Err(RpcError::Status(code, message))) => CheckOutcome::Failure(format!(
            "error: health rpc probe failed: rpc error: code = {} desc = {message}",
            grpc_code_name(code)
        )),
    }
}

/// A running probe. Dropping it stops the probe.
pub struct ProbeHandle {
    kind: ProbeKind,
    result: watch::Receiver<ProbeResult>,
    checks: watch::Receiver<Option<CheckOutcome>>,
    started: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ProbeHandle {
    pub fn kind(&self) -> ProbeKind {
        self.kind
    }

    /// The current result.
    pub fn result(&self) -> ProbeResult {
        self.result.borrow().clone()
    }

    /// The result, notified when it changes between Unknown, Success and Failure (a new
    /// failure message alone does not notify). The channel stays open while the handle
    /// lives, also after the result became final.
    pub fn subscribe(&self) -> watch::Receiver<ProbeResult> {
        self.result.clone()
    }

    /// Whether the container counts as started (its startup probe succeeded, or it has
    /// none). Liveness and readiness probes start unstarted and check nothing until this is
    /// set, so that a probe spawned next to a startup probe cannot run first; startup probes
    /// ignore it.
    pub fn set_started(&self, started: bool) {
        self.started.send_if_modified(|current| {
            let changed = *current != started;
            *current = started;
            changed
        });
    }

    /// Every check's outcome as it happens (for "Unhealthy" / "ProbeWarning" events).
    pub fn checks(&self) -> watch::Receiver<Option<CheckOutcome>> {
        self.checks.clone()
    }
}

impl Drop for ProbeHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts probing a container (`initialDelaySeconds` counts from its start). A liveness or readiness probe waits for [`ProbeHandle::set_started`].
pub fn spawn_probe(
    kind: ProbeKind,
    probe: Probe,
    target: ProbeTarget,
    runtime: Arc<dyn Runtime>,
) -> ProbeHandle {
    let mut timing = ProbeTiming::of(&probe);
    let running_for = target
        .started_at
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    timing.initial_delay = timing.initial_delay.saturating_sub(running_for);
    let probe = Arc::new(probe);
    let target = Arc::new(target);
    let check = move || -> CheckFuture {
        let (probe, target, runtime) = (probe.clone(), target.clone(), runtime.clone());
        Box::pin(async move { run_check(&probe, &target, runtime.as_ref()).await })
    };
    spawn_worker(kind, timing, check)
}

type CheckFuture = Pin<Box<dyn Future<Output = CheckOutcome> + Send>>;

fn spawn_worker<F>(kind: ProbeKind, timing: ProbeTiming, check: F) -> ProbeHandle
where
    F: FnMut() -> CheckFuture + Send + 'static,
{
    let (result_tx, result_rx) = watch::channel(kind.initial_result());
    let (checks_tx, checks_rx) = watch::channel(None);
    let (started_tx, started_rx) = watch::channel(kind == ProbeKind::Startup);
    let first_check = Instant::now() + timing.initial_delay;
    let task = tokio::spawn(async move {
        worker(
            kind,
            timing,
            first_check,
            started_rx,
            check,
            &result_tx,
            &checks_tx,
        )
        .await;
        // The result is final; the senders stay so that watchers do not see a closed channel
        // (which would wake them forever).
        std::future::pending::<Infallible>().await;
    });
    ProbeHandle {
        kind,
        result: result_rx,
        checks: checks_rx,
        started: started_tx,
        task,
    }
}

/// Consecutive equal outcomes, as upstream's worker counts them (`lastResult`, `resultRun`).
#[derive(Debug, Default)]
struct Streak {
    last: Option<bool>,
    run: u32,
}

impl Streak {
    /// Records one outcome; true when it has now repeated often enough to become the result.
    fn record(&mut self, success: bool, timing: &ProbeTiming) -> bool {
        if self.last == Some(success) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(success);
            self.run = 1;
        }
        let threshold = if success {
            timing.success_threshold
        } else {
            timing.failure_threshold
        };
        self.run >= threshold
    }
}

/// Sets the result; watchers hear of it only when it changes kind.
fn publish(tx: &watch::Sender<ProbeResult>, result: ProbeResult) {
    tx.send_if_modified(|current| {
        let changed = std::mem::discriminant(current) != std::mem::discriminant(&result);
        *current = result;
        changed
    });
}

/// Runs checks until the result is final.
async fn worker<F>(
    kind: ProbeKind,
    timing: ProbeTiming,
    first_check: Instant,
    mut started: watch::Receiver<bool>,
    mut check: F,
    result: &watch::Sender<ProbeResult>,
    checks: &watch::Sender<Option<CheckOutcome>>,
) where
    F: FnMut() -> CheckFuture,
{
    tokio::time::sleep_until(first_check).await;
    let mut ticker = tokio::time::interval(timing.period);
    // A check slower than the period (timeout > period) delays the next; no bursts after.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut streak = Streak::default();
    loop {
        ticker.tick().await;
        // Upstream skips ticks until the container has started; waiting is the same, and
        // the first check then follows at once. (The handle owns the sender: it cannot close
        // while this task runs.)
        if !*started.borrow_and_update() {
            if started.wait_for(|s| *s).await.is_err() {
                return;
            }
            // The ticks missed while waiting must not come as a burst.
            ticker.reset();
        }
        let mut outcome = check().await;
        for _ in 1..RETRIES {
            if !matches!(outcome, CheckOutcome::Error(_)) {
                break;
            }
            outcome = check().await;
        }
        checks.send_replace(Some(outcome.clone()));
        let Some(success) = outcome.success() else {
            if let CheckOutcome::Error(e) = &outcome {
                tracing::debug!(probe = kind.as_str(), error = %e, "probe errored");
            }
            continue;
        };
        if !streak.record(success, &timing) {
            continue;
        }
        let new = match outcome {
            CheckOutcome::Failure(message) => ProbeResult::Failure { message },
            _ => ProbeResult::Success,
        };
        publish(result, new);
        match (kind, success) {
            // The container is restarted; its successor gets new probes.
            (ProbeKind::Liveness | ProbeKind::Startup, false) => return,
            // Started: upstream stops the startup probe too.
            (ProbeKind::Startup, true) => return,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use k8s_openapi::api::core::v1::HTTPHeader;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn port(n: u16) -> IntOrString {
        IntOrString::Int(i32::from(n))
    }

    fn named(name: &str, number: i32) -> ContainerPort {
        ContainerPort {
            name: Some(name.into()),
            container_port: number,
            ..Default::default()
        }
    }

    fn http_action(p: IntOrString, path: &str) -> HTTPGetAction {
        HTTPGetAction {
            port: p,
            path: Some(path.into()),
            ..Default::default()
        }
    }

    #[test]
    fn ports_resolve_by_number_and_name() {
        let ports = [named("http", 8080), named("metrics", 9090)];
        assert_eq!(resolve_port(&port(80), &ports), Ok(80));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &ports),
            Ok(8080)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("8443".into()), &ports),
            Ok(8443)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("grpc".into()), &ports),
            Err("port grpc not found".into())
        );
        assert_eq!(
            resolve_port(&IntOrString::Int(0), &ports),
            Err("invalid port number: 0".into())
        );
        assert_eq!(
            resolve_port(&IntOrString::Int(70000), &ports),
            Err("invalid port number: 70000".into())
        );
    }

    #[test]
    fn timing_defaults_are_upstreams() {
        let t = ProbeTiming::of(&Probe::default());
        assert_eq!(
            t,
            ProbeTiming {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3,
            }
        );
        let t = ProbeTiming::of(&Probe {
            initial_delay_seconds: Some(5),
            period_seconds: Some(0),
            timeout_seconds: Some(3),
            success_threshold: Some(2),
            failure_threshold: Some(-1),
            ..Default::default()
        });
        assert_eq!(t.initial_delay, Duration::from_secs(5));
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(3));
        assert_eq!((t.success_threshold, t.failure_threshold), (2, 3));
    }

    #[test]
    fn small_helpers_print_as_go_does() {
        assert_eq!(join_host_port("10.0.0.5", 80), "10.0.0.5:80");
        assert_eq!(join_host_port("fd00::5", 80), "[fd00::5]:80");
        assert_eq!(join_host_port("[fd00::5]", 80), "[fd00::5]:80");
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(go_error(&refused), "connection refused");
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
        assert!(
            user_agent().starts_with("kube-probe/1."),
            "{}",
            user_agent()
        );
        assert_eq!(user_agent().matches('.').count(), 1, "{}", user_agent());
    }

    #[test]
    fn exec_outcomes_follow_the_exit_code() {
        let command: Vec<String> = ["sleep", "10"].map(String::from).to_vec();
        let out = |exit_code, output: &str, timed_out| {
            Ok(ExecOutput {
                exit_code,
                output: output.as_bytes().to_vec(),
                timed_out,
            })
        };
        assert_eq!(
            exec_outcome(&command, out(0, "fine", false)),
            CheckOutcome::Success
        );
        assert_eq!(
            exec_outcome(&command, out(1, "not ready\n", false)),
            CheckOutcome::Failure("not ready\n".into())
        );
        assert_eq!(
            exec_outcome(&command, out(137, "", true)),
            CheckOutcome::Failure("command \"sleep 10\" timed out".into())
        );
        assert!(matches!(
            exec_outcome(&command, Err(RuntimeError::NotFound("container c1".into()))),
            CheckOutcome::Error(_)
        ));
        let long = "x".repeat(MAX_MESSAGE * 2);
        match exec_outcome(&command, out(1, &long, false)) {
            CheckOutcome::Failure(m) => assert_eq!(m.len(), MAX_MESSAGE),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn streaks_flip_only_at_the_thresholds() {
        let timing = ProbeTiming {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 2,
            failure_threshold: 3,
        };
        let mut s = Streak::default();
        assert!(!s.record(true, &timing));
        assert!(s.record(true, &timing));
        assert!(s.record(true, &timing));
        assert!(!s.record(false, &timing));
        assert!(!s.record(false, &timing));
        assert!(
            !s.record(true, &timing),
            "a success breaks the run of failures"
        );
        assert!(!s.record(false, &timing));
        assert!(!s.record(false, &timing));
        assert!(s.record(false, &timing));
    }

    /// An HTTP/1.1 server on 127.0.0.1 whose paths say what to answer; records the request
    /// heads it got.
    struct TestServer {
        port: u16,
        requests: Arc<Mutex<Vec<String>>>,
        _task: AbortOnDrop,
    }

    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
        mut stream: S,
        port: u16,
        requests: Arc<Mutex<Vec<String>>>,
    ) {
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let target = head.split_whitespace().nth(1).unwrap_or_default();
        let path = target.split('?').next().unwrap_or_default().to_string();
        requests.lock().expect("lock").push(head.clone());
        let (status, location) = match path.as_str() {
            "/ok" => ("200 OK", None),
            "/fail" => ("500 Internal Server Error", None),
            "/redirect" => ("302 Found", Some("/ok".to_string())),
            "/redirect-fail" => ("301 Moved Permanently", Some("/fail".into())),
            // Another host name for the same loopback server: not followed.
            "/away" => ("302 Found", Some(format!("http://localhost:{port}/fail"))),
            "/loop" => ("302 Found", Some("/loop".into())),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            _ => ("404 Not Found", None),
        };
        let location = location.map_or(String::new(), |l| format!("Location: {l}\r\n"));
        let response = format!(
            "HTTP/1.1 {status}\r\n{location}Content-Length: 4\r\nConnection: close\r\n\r\nbody"
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    async fn http_server(tls: Option<tokio_rustls::TlsAcceptor>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                answer(stream, port, seen).await;
                            }
                        }
                        None => answer(stream, port, seen).await,
                    }
                });
            }
        });
        TestServer {
            port,
            requests,
            _task: AbortOnDrop(task),
        }
    }

    const TIMEOUT: Duration = Duration::from_secs(5);
    const LOOPBACK: Option<&str> = Some("127.0.0.1");

    #[tokio::test]
    async fn http_get_checks_the_status_and_follows_local_redirects() {
        let server = http_server(None).await;
        let p = server.port;

        let mut ok = http_action(port(p), "/ok");
        ok.http_headers = Some(vec![HTTPHeader {
            name: "X-Probe".into(),
            value: "yes".into(),
        }]);
        assert_eq!(
            http_get_check(&ok, LOOPBACK, &[], TIMEOUT).await,
            CheckOutcome::Success
        );
        let head = server.requests.lock().expect("lock")[0].to_ascii_lowercase();
        assert!(head.starts_with("get /ok http/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\nhost: 127.0.0.1:{p}\r\n")),
            "{head}"
        );
        assert!(
            head.contains(&format!(
                "\r\nuser-agent: {}\r\n",
                user_agent().to_ascii_lowercase()
            )),
            "{head}"
        );
        assert!(head.contains("\r\naccept: */*\r\n"), "{head}");
        assert!(head.contains("\r\nx-probe: yes\r\n"), "{head}");

        assert_eq!(
            http_get_check(&http_action(port(p), "/fail"), LOOPBACK, &[], TIMEOUT).await,
            CheckOutcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
        assert_eq!(
            http_get_check(&http_action(port(p), "/nothing"), LOOPBACK, &[], TIMEOUT).await,
            CheckOutcome::Failure("HTTP probe failed with statuscode: 404".into())
        );
        // Same-host redirects are followed, to success and to failure.
        assert_eq!(
            http_get_check(&http_action(port(p), "/redirect"), LOOPBACK, &[], TIMEOUT).await,
            CheckOutcome::Success
        );
        assert_eq!(
            http_get_check(
                &http_action(port(p), "redirect-fail"),
                LOOPBACK,
                &[],
                TIMEOUT
            )
            .await,
            CheckOutcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
        // A redirect to another host is not followed: a success with a warning.
        let before = server.requests.lock().expect("lock").len();
        assert_eq!(
            http_get_check(&http_action(port(p), "/away"), LOOPBACK, &[], TIMEOUT).await,
            CheckOutcome::Warning("Probe terminated redirects, Response body: body".into())
        );
        assert_eq!(server.requests.lock().expect("lock").len(), before + 1);
        assert_eq!(
            http_get_check(&http_action(port(p), "/loop"), LOOPBACK, &[], TIMEOUT).await,
            CheckOutcome::Failure(format!(
                "Get \"http://127.0.0.1:{p}/loop\": stopped after 10 redirects"
            ))
        );

        // A named port, the host from the action, a Host header.
        let mut action = http_action(IntOrString::String("web".into()), "/ok?x=1");
        action.host = Some("127.0.0.1".into());
        action.http_headers = Some(vec![HTTPHeader {
            name: "Host".into(),
            value: "probe.example".into(),
        }]);
        assert_eq!(
            http_get_check(&action, None, &[named("web", i32::from(p))], TIMEOUT).await,
            CheckOutcome::Success
        );
        let head = server
            .requests
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(head.starts_with("get /ok?x=1 http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nhost: probe.example\r\n"), "{head}");
        assert_eq!(head.matches("\r\nhost:").count(), 1, "{head}");

        // A port the container does not name: the check cannot run.
        assert!(matches!(
            http_get_check(
                &http_action(IntOrString::String("web".into()), "/ok"),
                LOOPBACK,
                &[],
                TIMEOUT
            )
            .await,
            CheckOutcome::Error(_)
        ));
        // No pod IP yet.
        assert!(matches!(
            http_get_check(&http_action(port(p), "/ok"), None, &[], TIMEOUT).await,
            CheckOutcome::Failure(_)
        ));
    }

    #[tokio::test]
    async fn http_get_fails_on_timeouts_and_refused_connections() {
        let server = http_server(None).await;
        let started = std::time::Instant::now();
        let outcome = http_get_check(
            &http_action(port(server.port), "/slow"),
            LOOPBACK,
            &[],
            Duration::from_millis(300),
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(
            outcome,
            CheckOutcome::Failure(format!(
                "Get \"http://127.0.0.1:{}/slow\": context deadline exceeded \
                 (Client.Timeout exceeded while awaiting headers)",
                server.port
            ))
        );

        let closed = closed_port().await;
        assert_eq!(
            http_get_check(&http_action(port(closed), "/ok"), LOOPBACK, &[], TIMEOUT).await,
            CheckOutcome::Failure(format!(
                "Get \"http://127.0.0.1:{closed}/ok\": dial tcp 127.0.0.1:{closed}: connect: \
                 connection refused"
            ))
        );
    }

    // A self-signed certificate for 127.0.0.1 (only a test server presents it).
    const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBrTCCAVOgAwIBAgIUYjJ30rpu+WyfTXYpzqJ+6918zoUwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSa2VlbHNvbi1wcm9iZS10ZXN0MCAXDTI2MTEyNDAwMzc0OVoY
DzIxMjYxMDMxMDAzNzQ5WjAdMRswGQYDVQQDDBJrZWVsc29uLXByb2JlLXRlc3Qw
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASaaxREZxrk6aIS/F3wxvcyAPsWao/7
2qzNXclbvsiyc6GLxq8fcHvXsxaVXrJeOGsxBbNT5UGnOs9QFVE4R7p/o28wbTAd
BgNVHQ4EFgQUxiokCZ1Mh08BpSzShQhsS1+qo1AwHwYDVR0jBBgwFoAUxiokCZ1M
h08BpSzShQhsS1+qo1AwDwYDVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAAB
gglsb2NhbGhvc3QwCgYIKoZIzj0EAwIDSAAwRQIhANNkR/sN93Gg3K+1AfORpg8v
MuJljj7NizU0Wl8k0WbkAiBXbrhsfiIxQlyUaEKirlgXN01ru4BLCqlBT2Cwzis4
0Q==
-----END CERTIFICATE-----
";
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgj21MMD+5OMqobvds
L1icgkNiYwUwD26dHm0la0rxNEihRANCAASaaxREZxrk6aIS/F3wxvcyAPsWao/7
2qzNXclbvsiyc6GLxq8fcHvXsxaVXrJeOGsxBbNT5UGnOs9QFVE4R7p/
-----END PRIVATE KEY-----
";

    #[tokio::test]
    async fn https_get_accepts_any_certificate() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(TEST_CERT.as_bytes()).expect("cert");
        let key = PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
        let server = http_server(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await;
        let mut ok = http_action(port(server.port), "/ok");
        ok.scheme = Some("HTTPS".into());
        assert_eq!(
            http_get_check(&ok, LOOPBACK, &[], TIMEOUT).await,
            CheckOutcome::Success
        );
        let mut fail = http_action(port(server.port), "/fail");
        fail.scheme = Some("HTTPS".into());
        assert_eq!(
            http_get_check(&fail, LOOPBACK, &[], TIMEOUT).await,
            CheckOutcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
        // Plain HTTP against the TLS port fails rather than hangs.
        let plain = http_get_check(
            &http_action(port(server.port), "/ok"),
            LOOPBACK,
            &[],
            Duration::from_secs(2),
        )
        .await;
        assert!(matches!(plain, CheckOutcome::Failure(_)), "{plain:?}");
    }

    /// A port on 127.0.0.1 that nothing listens on (bound, then released).
    async fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").port()
    }

    #[tokio::test]
    async fn tcp_socket_connects_or_fails_as_go_says() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let open = listener.local_addr().expect("addr").port();
        assert_eq!(
            tcp_socket_check("127.0.0.1", open, TIMEOUT).await,
            CheckOutcome::Success
        );
        let closed = closed_port().await;
        assert_eq!(
            tcp_socket_check("127.0.0.1", closed, TIMEOUT).await,
            CheckOutcome::Failure(format!(
                "dial tcp 127.0.0.1:{closed}: connect: connection refused"
            ))
        );
    }

    type GrpcBody =
        StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

    /// A gRPC health server: service "" serves, "down" does not, "unimplemented" answers as
    /// a server without the health service, "missing" with NotFound.
    async fn health(
        request: http::Request<Incoming>,
    ) -> Result<http::Response<GrpcBody>, Infallible> {
        let ua = request
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let path = request.uri().path().to_string();
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let service = HealthCheckRequest::decode(body.get(5..).unwrap_or_default())
            .map(|r| r.service)
            .unwrap_or_default();
        let status_only = |code: &str, message: &str| {
            http::Response::builder()
                .header(CONTENT_TYPE, "application/grpc")
                .header("grpc-status", code)
                .header("grpc-message", message)
                .body(StreamBody::new(futures::stream::iter(Vec::new())))
                .expect("response")
        };
        if path != HEALTH_CHECK_PATH || !ua.starts_with("kube-probe/") {
            return Ok(status_only("3", "bad request"));
        }
        let status = match service.as_str() {
            "" => 1,
            "down" => 2,
            "unimplemented" => {
                return Ok(status_only("12", "unknown service grpc.health.v1.Health"))
            }
            _ => return Ok(status_only("5", "unknown service")),
        };
        let message = HealthCheckResponse { status }.encode_to_vec();
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(&message);
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let frames = vec![
            Ok(Frame::data(Bytes::from(frame))),
            Ok(Frame::trailers(trailers)),
        ];
        Ok(http::Response::builder()
            .header(CONTENT_TYPE, "application/grpc")
            .body(StreamBody::new(futures::stream::iter(frames)))
            .expect("response"))
    }

    #[tokio::test]
    async fn grpc_checks_the_health_service() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let p = listener.local_addr().expect("addr").port();
        let _server = AbortOnDrop(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(health))
                        .await;
                });
            }
        }));
        assert_eq!(
            grpc_check("127.0.0.1", p, "", TIMEOUT).await,
            CheckOutcome::Success
        );
        assert_eq!(
            grpc_check("127.0.0.1", p, "down", TIMEOUT).await,
            CheckOutcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
        assert_eq!(
            grpc_check("127.0.0.1", p, "unimplemented", TIMEOUT).await,
            CheckOutcome::Failure(
                "error: this server does not implement the grpc health protocol \
                 (grpc.health.v1.Health): unknown service grpc.health.v1.Health"
                    .into()
            )
        );
        assert_eq!(
            grpc_check("127.0.0.1", p, "other", TIMEOUT).await,
            CheckOutcome::Failure(
                "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
                    .into()
            )
        );
        let closed = closed_port().await;
        assert_eq!(
            grpc_check("127.0.0.1", closed, "", TIMEOUT).await,
            CheckOutcome::Failure(format!(
                "error: failed to connect service at \"127.0.0.1:{closed}\": dial tcp \
                 127.0.0.1:{closed}: connect: connection refused"
            ))
        );
    }

    /// A check whose outcome the test sets, counting its calls.
    #[derive(Clone)]
    struct Scripted {
        outcome: Arc<Mutex<CheckOutcome>>,
        calls: Arc<AtomicU32>,
    }

    impl Scripted {
        fn new(outcome: CheckOutcome) -> Scripted {
            Scripted {
                outcome: Arc::new(Mutex::new(outcome)),
                calls: Arc::new(AtomicU32::new(0)),
            }
        }

        fn set(&self, outcome: CheckOutcome) {
            *self.outcome.lock().expect("lock") = outcome;
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }

        fn spawn(&self, kind: ProbeKind, timing: ProbeTiming) -> ProbeHandle {
            let me = self.clone();
            spawn_worker(kind, timing, move || -> CheckFuture {
                me.calls.fetch_add(1, Ordering::SeqCst);
                let outcome = me.outcome.lock().expect("lock").clone();
                Box::pin(async move { outcome })
            })
        }
    }

    fn timing(initial: u64, period: u64, success: u32, failure: u32) -> ProbeTiming {
        ProbeTiming {
            initial_delay: Duration::from_secs(initial),
            period: Duration::from_secs(period),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    async fn sleep_ms(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    fn failure(message: &str) -> ProbeResult {
        ProbeResult::Failure {
            message: message.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_waits_the_initial_delay_and_flips_at_the_thresholds() {
        let script = Scripted::new(CheckOutcome::Success);
        let handle = script.spawn(ProbeKind::Readiness, timing(5, 10, 1, 3));
        let mut rx = handle.subscribe();
        assert_eq!(handle.result(), failure(""));
        handle.set_started(true);

        sleep_ms(4_900).await;
        assert_eq!(script.calls(), 0, "nothing before the initial delay");
        assert_eq!(handle.result(), failure(""));
        sleep_ms(200).await;
        assert_eq!(script.calls(), 1);
        assert_eq!(handle.result(), ProbeResult::Success);
        assert!(rx.has_changed().expect("open"));
        rx.borrow_and_update();

        // Three failures in a row (one per period) before readiness is lost.
        script.set(CheckOutcome::Failure("not yet".into()));
        sleep_ms(10_000).await;
        sleep_ms(10_000).await;
        assert_eq!(script.calls(), 3);
        assert_eq!(handle.result(), ProbeResult::Success);
        assert!(!rx.has_changed().expect("open"));
        sleep_ms(10_000).await;
        assert_eq!(script.calls(), 4);
        assert_eq!(handle.result(), failure("not yet"));
        assert!(rx.has_changed().expect("open"));
        rx.borrow_and_update();

        // Another failure message alone does not wake watchers.
        script.set(CheckOutcome::Failure("still not".into()));
        sleep_ms(10_000).await;
        assert_eq!(handle.result(), failure("still not"));
        assert!(!rx.has_changed().expect("open"));

        // Readiness comes back; probing goes on.
        script.set(CheckOutcome::Success);
        sleep_ms(10_000).await;
        assert_eq!(handle.result(), ProbeResult::Success);
        sleep_ms(30_000).await;
        assert_eq!(script.calls(), 9);
    }

    #[tokio::test(start_paused = true)]
    async fn success_threshold_needs_consecutive_successes() {
        let script = Scripted::new(CheckOutcome::Success);
        let handle = script.spawn(ProbeKind::Readiness, timing(0, 1, 2, 1));
        handle.set_started(true);
        sleep_ms(100).await;
        assert_eq!(script.calls(), 1);
        assert_eq!(handle.result(), failure(""));
        sleep_ms(1_000).await;
        assert_eq!(handle.result(), ProbeResult::Success);
        script.set(CheckOutcome::Failure("down".into()));
        sleep_ms(1_000).await;
        assert_eq!(handle.result(), failure("down"));
        script.set(CheckOutcome::Success);
        sleep_ms(1_000).await;
        assert_eq!(handle.result(), failure("down"));
        sleep_ms(1_000).await;
        assert_eq!(handle.result(), ProbeResult::Success);
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_fails_after_the_threshold_and_then_stops() {
        let script = Scripted::new(CheckOutcome::Failure("dead".into()));
        let handle = script.spawn(ProbeKind::Liveness, timing(0, 10, 1, 3));
        assert_eq!(handle.result(), ProbeResult::Success);
        handle.set_started(true);
        sleep_ms(100).await;
        assert_eq!(handle.result(), ProbeResult::Success);
        sleep_ms(20_000).await;
        assert_eq!(script.calls(), 3);
        assert_eq!(handle.result(), failure("dead"));
        // Final: no more checks, even if the check would now pass; the channel stays open.
        script.set(CheckOutcome::Success);
        sleep_ms(100_000).await;
        assert_eq!(script.calls(), 3);
        assert_eq!(handle.result(), failure("dead"));
        assert!(handle.subscribe().has_changed().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_and_readiness_wait_for_the_start() {
        let startup_check = Scripted::new(CheckOutcome::Failure("booting".into()));
        let startup = startup_check.spawn(ProbeKind::Startup, timing(0, 1, 1, 30));
        let live_check = Scripted::new(CheckOutcome::Success);
        let live = live_check.spawn(ProbeKind::Liveness, timing(0, 1, 1, 3));
        let ready_check = Scripted::new(CheckOutcome::Success);
        let ready = ready_check.spawn(ProbeKind::Readiness, timing(0, 1, 1, 3));
        assert_eq!(startup.result(), ProbeResult::Unknown);

        sleep_ms(5_500).await;
        assert_eq!(startup_check.calls(), 6);
        assert_eq!(startup.result(), ProbeResult::Unknown);
        assert_eq!((live_check.calls(), ready_check.calls()), (0, 0));
        assert_eq!(live.result(), ProbeResult::Success);
        assert_eq!(ready.result(), failure(""));

        startup_check.set(CheckOutcome::Success);
        let mut rx = startup.subscribe();
        rx.changed().await.expect("startup result");
        assert_eq!(startup.result(), ProbeResult::Success);
        // The pod worker passes the news on.
        live.set_started(true);
        ready.set_started(true);
        sleep_ms(100).await;
        assert_eq!((live_check.calls(), ready_check.calls()), (1, 1));
        assert_eq!(ready.result(), ProbeResult::Success);
        // A started container's startup probe is done.
        let calls = startup_check.calls();
        sleep_ms(10_000).await;
        assert_eq!(startup_check.calls(), calls);
        assert!(live_check.calls() >= 10);
    }

    #[tokio::test(start_paused = true)]
    async fn startup_failure_is_final() {
        let script = Scripted::new(CheckOutcome::Failure("never".into()));
        let handle = script.spawn(ProbeKind::Startup, timing(0, 1, 1, 3));
        sleep_ms(2_500).await;
        assert_eq!(handle.result(), failure("never"));
        sleep_ms(10_000).await;
        assert_eq!(script.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn checks_that_cannot_run_are_retried_and_thrown_away() {
        let script = Scripted::new(CheckOutcome::Error("port web not found".into()));
        let handle = script.spawn(ProbeKind::Readiness, timing(0, 10, 1, 1));
        let checks = handle.checks();
        handle.set_started(true);
        sleep_ms(25_000).await;
        assert_eq!(script.calls(), 3 * RETRIES);
        assert_eq!(handle.result(), failure(""));
        assert_eq!(
            *checks.borrow(),
            Some(CheckOutcome::Error("port web not found".into()))
        );
        script.set(CheckOutcome::Warning("Probe terminated redirects".into()));
        sleep_ms(10_000).await;
        assert_eq!(handle.result(), ProbeResult::Success);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_handle_stops_the_probe() {
        let script = Scripted::new(CheckOutcome::Success);
        let handle = script.spawn(ProbeKind::Readiness, timing(0, 1, 1, 1));
        handle.set_started(true);
        let mut rx = handle.subscribe();
        sleep_ms(1_500).await;
        assert_eq!(script.calls(), 2);
        drop(handle);
        sleep_ms(10_000).await;
        assert_eq!(script.calls(), 2);
        rx.borrow_and_update();
        assert!(rx.changed().await.is_err(), "closed with the handle");
    }
}

#[cfg(test)]
mod adoption_tests {
    use super::*;
    use crate::runtime::simulated::{SimulatedRuntime, Timings};
    use crate::runtime::ContainerSpec;
    use k8s_openapi::api::core::v1::ExecAction;

    /// The initial delay counts from the container's start: a kubelet that adopts a
    /// container running for an hour probes it at once.
    #[tokio::test]
    async fn the_initial_delay_counts_from_the_container_start() {
        let runtime = Arc::new(SimulatedRuntime::new(Timings {
            start_delay: Duration::ZERO,
            run_for: Duration::from_secs(3600),
        }));
        let spec = ContainerSpec {
            id: "c".into(),
            ..Default::default()
        };
        runtime.start(&spec).await.expect("start");
        let probe = Probe {
            exec: Some(ExecAction {
                command: Some(vec!["true".into()]),
            }),
            initial_delay_seconds: Some(600),
            period_seconds: Some(1),
            ..Default::default()
        };
        let probe_from = |started_at| {
            let target = ProbeTarget {
                container_id: "c".into(),
                started_at,
                ..Default::default()
            };
            let handle = spawn_probe(
                ProbeKind::Readiness,
                probe.clone(),
                target,
                runtime.clone() as Arc<dyn Runtime>,
            );
            handle.set_started(true);
            handle
        };
        let adopted = probe_from(Some(
            std::time::SystemTime::now() - Duration::from_secs(3600),
        ));
        let fresh = probe_from(None);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(adopted.result(), ProbeResult::Success);
        assert!(matches!(fresh.result(), ProbeResult::Failure { .. }));
    }
}
