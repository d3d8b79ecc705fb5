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
    Server(ServerArgs),
    /// Run the API server alone.
    Apiserver(ApiServerArgs),
    /// Run the controllers (ReplicaSet, ReplicationController, Deployment, garbage
    /// collector, namespace) against any cluster.
    ControllerManager(ControllerManagerArgs),
    /// Run the scheduler against any cluster.
    Scheduler(SchedulerArgs),
    /// Run the node agent: register this host as a node and run the pods bound to it on
    /// containerd.
    Kubelet(KubeletArgs),
    /// Manage the images of the kubelet's containerd.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// containerd's shim runs this as each container's logger (binary:// log URI).
    #[command(hide = true)]
    ContainerLogger { path: PathBuf },
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Import an OCI image layout tarball (`index.json` names the images).
    Import {
        file: PathBuf,
        /// containerd's socket (default: the one `keelson server` / `keelson kubelet`
        /// starts under its root dir).
        #[arg(long)]
        containerd_socket: Option<PathBuf>,
        #[arg(long, default_value = DEFAULT_KUBELET_ROOT)]
        root_dir: PathBuf,
    },
}

const DEFAULT_KUBELET_ROOT: &str = "/var/lib/keelson/kubelet";

#[derive(Args, Clone)]
struct KubeletNodeArgs {
    /// Where volumes, pod files, logs and the CNI state live (default:
    /// /var/lib/keelson/kubelet; DATA_DIR/kubelet for `server`).
    #[arg(long)]
    root_dir: Option<PathBuf>,
    /// containerd's socket; without it the kubelet starts a containerd of its own under
    /// ROOT_DIR/containerd (or reuses the one it started before).
    #[arg(long)]
    containerd_socket: Option<PathBuf>,
    /// The node's pod address range (the CNI bridge gets its first address).
    #[arg(long, default_value = "10.244.0.0/24")]
    pod_cidr: String,
    /// The Linux bridge pods are attached to.
    #[arg(long, default_value = "keelson0")]
    cni_bridge: String,
    /// Where the CNI plugin binaries are.
    #[arg(long, default_value = "/usr/lib/cni")]
    cni_bin_dir: PathBuf,
    /// A folder of static pod manifests: run without the API server, mirrored into it.
    #[arg(long)]
    pod_manifest_path: Option<PathBuf>,
}

#[derive(Args)]
struct KubeletArgs {
    /// The cluster to join (default: in-cluster, $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The Node's name (default: the host name).
    #[arg(long)]
    node_name: Option<String>,
    #[command(flatten)]
    node: KubeletNodeArgs,
    /// Where /healthz, /readyz and /metrics are served (plain HTTP).
    #[arg(long, default_value = "127.0.0.1:10248")]
    health_address: SocketAddr,
    /// `containerd` (this host is the node) or `simulated` (nodes without processes, for
    /// scale tests: pods run after --simulated-start-delay-ms; pods that do not restart
    /// forever complete after --simulated-run-for-ms).
    #[arg(long, default_value = "containerd", value_parser = ["containerd", "simulated"])]
    runtime: String,
    /// With `--runtime simulated`: how many nodes (named NODE-NAME-0, -1, ...).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    #[arg(long, default_value_t = 500)]
    simulated_start_delay_ms: u64,
    #[arg(long, default_value_t = 5000)]
    simulated_run_for_ms: u64,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn kubelet_config(
    kubeconfig: Option<PathBuf>,
    node_name: String,
    node: KubeletNodeArgs,
    default_root: PathBuf,
    health_address: SocketAddr,
) -> keelson_kubelet::agent::Config {
    let root_dir = node.root_dir.unwrap_or(default_root);
    let network = keelson_kubelet::network::NetworkConfig {
        bridge: node.cni_bridge,
        subnet: node.pod_cidr,
        plugin_dir: node.cni_bin_dir,
        state_dir: root_dir.join("cni"),
        ..Default::default()
    };
    keelson_kubelet::agent::Config {
        kubeconfig,
        node_name,
        log_dir: root_dir.join("logs"),
        root_dir,
        containerd_socket: node.containerd_socket,
        network,
        logger_binary: std::env::current_exe().ok(),
        health_address,
        pod_manifest_path: node.pod_manifest_path,
        simulated: None,
    }
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
struct ServerArgs {
    #[command(flatten)]
    api: ApiServerArgs,
    /// Do not run the kubelet (this host is not a node).
    #[arg(long)]
    disable_kubelet: bool,
    #[command(flatten)]
    kubelet: KubeletNodeArgs,
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The logger runs once per container: no tracing, no async runtime.
    if let Command::ContainerLogger { path } = &cli.command {
        keelson_kubelet::logs::run_logger(path, keelson_kubelet::logs::LogLimits::default())?;
        return Ok(());
    }
    keelson_common::logging::init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::ContainerLogger { .. } => Ok(()),
        Command::Kubelet(args) => {
            let node_name = args.node_name.unwrap_or_else(hostname);
            let mut config = kubelet_config(
                args.kubeconfig,
                node_name,
                args.node,
                PathBuf::from(DEFAULT_KUBELET_ROOT),
                args.health_address,
            );
            if args.runtime == "simulated" {
                config.simulated = Some(keelson_kubelet::agent::Simulated {
                    nodes: args.nodes,
                    timings: keelson_kubelet::runtime::simulated::Timings {
                        start_delay: std::time::Duration::from_millis(
                            args.simulated_start_delay_ms,
                        ),
                        run_for: std::time::Duration::from_millis(args.simulated_run_for_ms),
                    },
                });
            }
            keelson_kubelet::agent::run(config).await?;
            Ok(())
        }
        Command::Image {
            command:
                ImageCommand::Import {
                    file,
                    containerd_socket,
                    root_dir,
                },
        } => {
            use keelson_kubelet::runtime::Runtime;
            let socket = match containerd_socket {
                Some(s) => s,
                None => {
                    keelson_kubelet::agent::start_containerd(&root_dir.join("containerd")).await?
                }
            };
            let runtime = keelson_kubelet::runtime::containerd::ContainerdRuntime::connect(
                &socket,
                keelson_kubelet::agent::CONTAINERD_NAMESPACE,
            )
            .await?;
            for name in runtime.import_image(&file).await? {
                println!("imported {name}");
            }
            Ok(())
        }
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
async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let run_kubelet = !args.disable_kubelet;
    let kubelet_args = args.kubelet.clone();
    let kubelet_root = args.api.data_dir.join("kubelet");
    let apiserver = keelson_apiserver::start(args.api.into()).await?;
    let kubelet = async {
        if !run_kubelet {
            return std::future::pending().await;
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            tracing::warn!("not root: the kubelet does not run (pods stay Pending); run as root or pass --disable-kubelet");
            return std::future::pending().await;
        }
        keelson_kubelet::agent::run(kubelet_config(
            Some(apiserver.kubeconfig.clone()),
            hostname(),
            kubelet_args,
            kubelet_root,
            SocketAddr::from(([127, 0, 0, 1], 10248)),
        ))
        .await
    };
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
        result = kubelet => Ok(result?),
    }
}
