//! The Keelson API server: the Kubernetes REST and watch protocol over a revisioned store.
//!
//! Request path: TLS and authentication (`server`) → routing by the registry table
//! (`request`, `registry`) → decoding and field validation (`codec`, `handlers`) → the
//! object lifecycle with per-kind strategies (`rest`, `strategy`) → the store
//! (`keelson-storage`) → the watch cache (`cache`) → JSON, Table or watch responses.

// `Status` is the error of every handler and is built once per failed request; boxing it
// would only add an allocation to the error path.
#![allow(clippy::result_large_err)]

pub mod alloc;
pub mod cache;
pub mod codec;
pub mod convert;
pub mod discovery;
pub mod handlers;
pub mod metrics;
pub mod object;
pub mod openapi;
pub mod printers;
pub mod priority;
pub mod registry;
pub mod request;
pub mod respond;
pub mod rest;
pub mod server;
pub mod smp;
pub mod strategy;
pub mod table;
pub mod version;

mod bootstrap;
#[cfg(test)]
mod no_panic_tests;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use keelson_common::pki::Pki;
use keelson_storage::{CompactionPolicy, SqliteStore, Store};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    pub port: u16,
    /// Where the admin kubeconfig goes; `DATA_DIR/admin.kubeconfig` when unset.
    pub write_kubeconfig: Option<PathBuf>,
    pub token_auth_file: Option<PathBuf>,
    /// etcd client URLs; empty: the embedded SQLite store under `data_dir`.
    pub etcd_servers: Vec<String>,
    pub etcd_cafile: Option<PathBuf>,
    pub etcd_certfile: Option<PathBuf>,
    pub etcd_keyfile: Option<PathBuf>,
}

impl Config {
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.write_kubeconfig
            .clone()
            .unwrap_or_else(|| self.data_dir.join("admin.kubeconfig"))
    }
}

/// A started API server.
pub struct Running {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub server: Arc<server::Server>,
    pub serving: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Opens the store, loads the cache, binds the port and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let started = Instant::now();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let hosts = vec![config.bind_address.to_string()];
    let pki = Pki::load_or_create(&server::tls_dir(&config.data_dir), &hosts)
        .context("setting up the cluster PKI")?;
    let tls = keelson_common::tls::server_config(&pki).context("building the TLS configuration")?;
    let tokens = match &config.token_auth_file {
        Some(path) => Some(
            keelson_common::tokens::TokenAuthenticator::from_file(path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };

    let store = open_store(&config).await?;
    keelson_storage::spawn_compactor(&store, CompactionPolicy::default());
    let registry = registry::registry();
    let cache = cache::WatchCache::start(store.clone(), registry)
        .await
        .context("loading the watch cache")?;
    let api = Arc::new(rest::Api {
        store,
        cache,
        registry,
        services: alloc::ServiceAllocator::default(),
    });

    let listener = TcpListener::bind((config.bind_address, config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.bind_address, config.port))?;
    let addr = listener.local_addr()?;
    let host = if config.bind_address.is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        config.bind_address.to_string()
    };
    let server_address = if host.contains(':') {
        format!("[{host}]:{}", addr.port())
    } else {
        format!("{host}:{}", addr.port())
    };
    let server = Arc::new(server::Server {
        api: api.clone(),
        metrics: metrics::Metrics::new(),
        tokens,
        server_address: server_address.clone(),
        ready: Default::default(),
    });
    let serving = tokio::spawn(server::serve(listener, tls, server.clone()));

    bootstrap::run(&api, &host, addr.port())
        .await
        .context("creating the built-in objects")?;
    let kubeconfig = config.kubeconfig_path();
    keelson_common::kubeconfig::write_admin_kubeconfig(
        &kubeconfig,
        &format!("https://{server_address}"),
        "keelson",
        pki.ca_cert_pem(),
        pki.admin_cert_pem(),
        pki.admin_key_pem(),
    )
    .with_context(|| format!("writing {}", kubeconfig.display()))?;
    server.ready.store(true, Ordering::Release);
    tracing::info!(
        address = %server_address,
        kubeconfig = %kubeconfig.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "API server ready"
    );
    // OpenAPI documents are built off the request path, once.
    tokio::task::spawn_blocking(move || openapi::warm(registry::registry()));
    Ok(Running {
        addr,
        kubeconfig,
        server,
        serving,
    })
}

/// The embedded SQLite store, or etcd when `--etcd-servers` is given.
async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.etcd_servers.is_empty() {
        let store: Arc<dyn Store> = SqliteStore::open(config.data_dir.join("state.db"))
            .context("opening the embedded store")?;
        tracing::info!(path = %config.data_dir.join("state.db").display(), "storage: embedded SQLite");
        return Ok(store);
    }
    let mut opts = keelson_storage::EtcdOptions::new(config.etcd_servers.iter().cloned());
    if config.etcd_cafile.is_some()
        || config.etcd_certfile.is_some()
        || config.etcd_keyfile.is_some()
    {
        let tls = keelson_storage::EtcdTls::from_files(
            config.etcd_cafile.as_deref(),
            config.etcd_certfile.as_deref(),
            config.etcd_keyfile.as_deref(),
        )
        .context("reading the etcd TLS files")?;
        opts.tls = Some(tls);
    }
    let store: Arc<dyn Store> = keelson_storage::EtcdStore::connect(opts)
        .await
        .context("connecting to etcd")?;
    tracing::info!(endpoints = ?config.etcd_servers, "storage: etcd");
    Ok(store)
}

/// Runs the API server until it fails.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let running = start(config).await?;
    running.serving.await?
}
