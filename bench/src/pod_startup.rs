//! Pod startup latency on a real node: N pods of a local busybox image created at once (C
//! at a time) on a `keelson server` whose kubelet runs them on containerd; prints the
//! latency from each create to the pod being seen Running in a watch (p50/p90/p99/max),
//! then the time until all of them are deleted (graceful, 1 s grace period).
//!
//! bash bench/pod-startup.sh [PODS]   (starts the server, imports the image, runs this)
//! cargo run --release -p keelson-bench --bin pod-startup -- --kubeconfig FILE \
//!     [--pods 100] [--concurrency 16] [--image keelson.test/busybox:1]

use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use keelson_bench::percentile;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    kubeconfig: std::path::PathBuf,
    #[arg(long, default_value_t = 100)]
    pods: usize,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    #[arg(long, default_value = "keelson.test/busybox:1")]
    image: String,
    #[arg(long, default_value = "startup-bench")]
    namespace: String,
    /// Create the pods at this rate (pods/s) instead of all at once.
    #[arg(long)]
    rate: Option<f64>,
    /// Leave the pods running.
    #[arg(long)]
    keep: bool,
}

fn pod(i: usize, image: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("p-{i}"), "labels": {"app": "startup-bench"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": image, "command": ["sleep", "3600"]}],
        },
    }))?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = keelson_bench::config(&args.kubeconfig).await?;
    let client = kube::Client::try_from(config)?;
    keelson_bench::ensure_namespace(&client, &args.namespace).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);

    let created = keelson_bench::CreatedAt::default();
    let watch = keelson_bench::watch_latencies(api.clone(), args.pods, created.clone(), |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..args.pods)
        .map(|i| {
            let api = api.clone();
            let created = created.clone();
            let image = args.image.clone();
            let at = args
                .rate
                .map(|r| started + Duration::from_secs_f64(i as f64 / r.max(0.001)));
            async move {
                if let Some(at) = at {
                    tokio::time::sleep_until(at.into()).await;
                }
                let pod = pod(i, &image)?;
                if let Ok(mut c) = created.lock() {
                    c.insert(format!("p-{i}"), Instant::now());
                }
                api.create(&PostParams::default(), &pod).await?;
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let errors = results.iter().filter(|r| r.is_err()).count();
    let (last, mut latencies) = tokio::time::timeout(Duration::from_secs(600), watch).await??;
    latencies.sort();
    match args.rate {
        Some(r) => println!(
            "pods            {} at {r} pods/s ({errors} create errors)",
            args.pods
        ),
        None => println!(
            "pods            {} at once ({errors} create errors)",
            args.pods
        ),
    }
    println!(
        "all Running in  {:.2} s ({:.0} pods/s)",
        (last - started).as_secs_f64(),
        latencies.len() as f64 / (last - started).as_secs_f64()
    );
    println!(
        "create→Running  p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.9).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&latencies, 1.0).as_secs_f64() * 1e3,
    );

    if args.keep {
        return Ok(());
    }
    let deleting = Instant::now();
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=startup-bench"),
    )
    .await?;
    loop {
        let left = api
            .list(&ListParams::default().labels("app=startup-bench"))
            .await?
            .items
            .len();
        if left == 0 {
            break;
        }
        anyhow::ensure!(
            deleting.elapsed() < Duration::from_secs(300),
            "{left} pods still there after 5 min"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("all deleted in  {:.2} s", deleting.elapsed().as_secs_f64());
    Ok(())
}
