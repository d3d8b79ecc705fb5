//! Creates N ConfigMaps with C concurrent clients through a running API server and prints
//! throughput and latency percentiles.
//!
//! cargo run --release -p keelson-bench --bin create-configmaps -- --kubeconfig DIR/admin.kubeconfig

use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    kubeconfig: std::path::PathBuf,
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[arg(long, default_value = "bench")]
    namespace: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = keelson_bench::config(&args.kubeconfig).await?;
    // One client per worker, so that connections are spread as 32 real clients would.
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        clients.push(kube::Client::try_from(config.clone())?);
    }
    keelson_bench::ensure_namespace(&clients[0], &args.namespace).await?;
    let run = format!("{}", std::process::id());
    let started = Instant::now();
    let latencies: Vec<Result<Duration, String>> = futures::stream::iter(0..args.count)
        .map(|i| {
            let api: Api<ConfigMap> = Api::namespaced(clients[i % clients.len()].clone(), &args.namespace);
            let name = format!("cm-{run}-{i}");
            async move {
                let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"key": "value", "index": i.to_string()}})).map_err(|e| e.to_string())?;
                let t = Instant::now();
                api.create(&PostParams::default(), &cm).await.map_err(|e| e.to_string())?;
                Ok(t.elapsed())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let errors: Vec<&String> = latencies.iter().filter_map(|r| r.as_ref().err()).collect();
    let mut ok: Vec<Duration> = latencies
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    ok.sort();
    println!(
        "created      {} ConfigMaps ({} errors) with {} concurrent clients",
        ok.len(),
        errors.len(),
        args.concurrency
    );
    println!("elapsed      {:.2} s", elapsed.as_secs_f64());
    println!(
        "throughput   {:.0} creates/s",
        ok.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency p50  {:.2} ms",
        keelson_bench::percentile(&ok, 0.50).as_secs_f64() * 1000.0
    );
    println!(
        "latency p90  {:.2} ms",
        keelson_bench::percentile(&ok, 0.90).as_secs_f64() * 1000.0
    );
    println!(
        "latency p99  {:.2} ms",
        keelson_bench::percentile(&ok, 0.99).as_secs_f64() * 1000.0
    );
    println!(
        "latency max  {:.2} ms",
        ok.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    if let Some(e) = errors.first() {
        println!("first error  {e}");
    }
    Ok(())
}
