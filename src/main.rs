//! The one `keelson` binary: each subcommand starts a component.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
        // The other components join `server` as their issues land; today it is the API server.
        Command::Server(args) | Command::Apiserver(args) => {
            keelson_apiserver::run(args.into()).await
        }
    }
}
