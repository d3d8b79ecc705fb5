//! Time for a Deployment of N replicas to become all-available through a running API
//! server and controller-manager, with pods made Ready by the kubelet stand-in
//! ([`keelson_bench::readier`]) in this process.
//!
//! cargo run --release -p keelson-bench --bin deployment-rollout -- --kubeconfig FILE --replicas 1000

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use keelson_bench::readier::PodReadier;
use kube::api::{Api, PostParams};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    kubeconfig: std::path::PathBuf,
    #[arg(long, default_value_t = 1000)]
    replicas: i32,
    #[arg(long, default_value = "rollout-bench")]
    namespace: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Leave the pods to real kubelets (simulated nodes, say) instead of the stand-in that
    /// marks them Ready.
    #[arg(long)]
    no_readier: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = kube::Client::try_from(keelson_bench::config(&args.kubeconfig).await?)?;
    keelson_bench::ensure_namespace(&client, &args.namespace).await?;
    let _readier = (!args.no_readier).then(|| PodReadier::start(client.clone(), |_| true));

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &args.namespace);
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bench"},
        "spec": {
            "replicas": args.replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/pause:3.10"}]}
            }
        }
    }))?;
    let started = Instant::now();
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let deadline = started + Duration::from_secs(args.timeout);
    let mut half = None;
    loop {
        let status = deployments.get("bench").await?.status.unwrap_or_default();
        let available = status.available_replicas.unwrap_or(0);
        if half.is_none() && available * 2 >= args.replicas {
            half = Some(started.elapsed());
        }
        if available == args.replicas && status.updated_replicas == Some(args.replicas) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {available}/{} available after {}s",
                args.replicas,
                args.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    println!("replicas        {}", args.replicas);
    println!(
        "half available  {:.2} s",
        half.unwrap_or(elapsed).as_secs_f64()
    );
    println!("all available   {:.2} s", elapsed.as_secs_f64());
    println!(
        "rate            {:.0} pods/s",
        f64::from(args.replicas) / elapsed.as_secs_f64()
    );
    Ok(())
}
