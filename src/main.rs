//! The one `keelson` binary: each subcommand starts a component.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

// Every request allocates many small JSON values on many threads; glibc's allocator spent
// a sixth of the API server's CPU time in malloc/free under load (perf, BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "keelson",
    version,
    about = "A Kubernetes-compatible cluster in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole one-node cluster in this process on the embedded store.
    Server(ApiServerArgs),
    /// Run the API server alone.
    Apiserver(ApiServerArgs),
    /// Run the controllers (ReplicaSet, ReplicationController, Deployment, garbage
    /// collector, namespace) against any cluster.
    ControllerManager(ControllerManagerArgs),
    /// Run the scheduler against any cluster.
    Scheduler(SchedulerArgs),
}

#[derive(Args)]
struct SchedulerArgs {
    /// The cluster to schedule for (default: in-cluster, $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Take the keelson-scheduler Lease in kube-system before scheduling.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Where /healthz, /readyz and /metrics are served (plain HTTP).
    #[arg(long, default_value = "127.0.0.1:10259")]
    health_address: SocketAddr,
    /// Schedule the pods whose spec.schedulerName is this.
    #[arg(long, default_value = "default-scheduler")]
    scheduler_name: String,
}

#[derive(Args)]
struct ControllerManagerArgs {
    /// The cluster to manage (default: in-cluster, $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Take the keelson-controller-manager Lease in kube-system before acting, so that
    /// only one of several replicas acts.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Where /healthz, /readyz and /metrics are served (plain HTTP).
    #[arg(long, default_value = "127.0.0.1:10257")]
    health_address: SocketAddr,
}

#[derive(Args)]
struct ApiServerArgs {
    /// Where state, certificates and the admin kubeconfig live.
    #[arg(long, default_value = "./keelson-data")]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// The admin kubeconfig to write (default: DATA_DIR/admin.kubeconfig).
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
    /// Static bearer tokens, as kube-apiserver's --token-auth-file (token,user,uid,"groups").
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// etcd client URLs (comma-separated); without them the embedded store is used.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// CA bundle that verifies etcd's serving certificate.
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// Client certificate presented to etcd.
    #[arg(long)]
    etcd_certfile: Option<PathBuf>,
    /// Key of the etcd client certificate.
    #[arg(long)]
    etcd_keyfile: Option<PathBuf>,
}

impl From<ApiServerArgs> for keelson_apiserver::Config {
    fn from(a: ApiServerArgs) -> Self {
        keelson_apiserver::Config {
            data_dir: a.data_dir,
            bind_address: a.bind_address,
            port: a.port,
            write_kubeconfig: a.write_kubeconfig,
            token_auth_file: a.token_auth_file,
            etcd_servers: a.etcd_servers,
            etcd_cafile: a.etcd_cafile,
            etcd_certfile: a.etcd_certfile,
            etcd_keyfile: a.etcd_keyfile,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    keelson_common::logging::init_tracing();
    match Cli::parse().command {
        Command::Apiserver(args) => keelson_apiserver::run(args.into()).await,
        Command::Server(args) => server(args).await,
        Command::ControllerManager(args) => {
            keelson_controllers::run(keelson_controllers::Config {
                kubeconfig: args.kubeconfig,
                leader_elect: args.leader_elect,
                health_address: args.health_address,
            })
            .await?;
            Ok(())
        }
        Command::Scheduler(args) => {
            keelson_scheduler::run(keelson_scheduler::Config {
                kubeconfig: args.kubeconfig,
                leader_elect: args.leader_elect,
                health_address: args.health_address,
                scheduler_name: args.scheduler_name,
            })
            .await?;
            Ok(())
        }
    }
}

/// The whole cluster in one process. The controllers and the scheduler talk HTTPS to the API server like
/// any client (through the admin kubeconfig it writes), so they work the same here as
/// against any other cluster.
async fn server(args: ApiServerArgs) -> anyhow::Result<()> {
    let apiserver = keelson_apiserver::start(args.into()).await?;
    let controllers = keelson_controllers::run(keelson_controllers::Config {
        kubeconfig: Some(apiserver.kubeconfig.clone()),
        leader_elect: true,
        health_address: SocketAddr::from(([127, 0, 0, 1], 10257)),
    });
    let scheduler = keelson_scheduler::run(keelson_scheduler::Config {
        kubeconfig: Some(apiserver.kubeconfig.clone()),
        leader_elect: true,
        health_address: SocketAddr::from(([127, 0, 0, 1], 10259)),
        scheduler_name: "default-scheduler".to_string(),
    });
    tokio::select! {
        result = apiserver.serving => result?,
        result = controllers => Ok(result?),
        result = scheduler => Ok(result?),
    }
}
