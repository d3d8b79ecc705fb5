//! Scheduler throughput through a real API server: N simulated nodes (Node objects only),
//! then P pods created by C concurrent clients; prints pods/s from the first create to the
//! last bind, and the latency from each pod's create to its binding being seen in a watch.
//! Run with `keelson apiserver` and `keelson scheduler` up (no controller-manager needed).
//!
//! cargo run --release -p keelson-bench --bin schedule-pods -- --kubeconfig FILE \
//!     [--nodes 5000] [--pods 10000] [--concurrency 32] [--variant basic|anti-affinity|topology-spread]

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use keelson_kubelet::node::{self as nodes, NodeSpec};
use kube::api::{Api, PostParams};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    kubeconfig: std::path::PathBuf,
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// basic | anti-affinity | topology-spread (scheduler_perf's SchedulingBasic,
    /// SchedulingPodAntiAffinity, SchedulingPodTopologySpread shapes).
    #[arg(long, default_value = "basic")]
    variant: String,
    #[arg(long, default_value = "sched-bench")]
    namespace: String,
}

fn pod(i: usize, variant: &str) -> anyhow::Result<Pod> {
    let mut spec = json!({"containers": [{"name": "c", "image": "registry.invalid/pause:3.10",
        "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}]});
    match variant {
        "basic" => {}
        "anti-affinity" => {
            spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"color": format!("c{}", i % 100)}},
                 "topologyKey": "kubernetes.io/hostname"}]}});
        }
        "topology-spread" => {
            spec["topologySpreadConstraints"] = json!([{"maxSkew": 5,
                "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "bench"}}}]);
        }
        other => bail!("unknown variant {other}"),
    }
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("p-{i}"), "labels": {"app": "bench", "color": format!("c{}", i % 100)}},
        "spec": spec,
    }))?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = keelson_bench::config(&args.kubeconfig).await?;
    let client = kube::Client::try_from(config.clone())?;
    keelson_bench::ensure_namespace(&client, &args.namespace).await?;

    let zones = ["zone-a", "zone-b", "zone-c"];
    let specs: Vec<NodeSpec> = (0..args.nodes)
        .map(|i| {
            let mut spec = NodeSpec::new(&format!("sim-{i}"));
            spec.cpu = "32".into();
            spec.memory = "256Gi".into();
            spec.labels
                .insert("topology.kubernetes.io/zone".into(), zones[i % 3].into());
            spec
        })
        .collect();
    let nodes_started = Instant::now();
    nodes::create(&client, &specs, args.concurrency).await?;
    println!(
        "nodes           {} created in {:.1} s",
        args.nodes,
        nodes_started.elapsed().as_secs_f64()
    );

    // Bindings seen through a watch, with the time each pod was created.
    let created = keelson_bench::CreatedAt::default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);
    let watch = keelson_bench::watch_latencies(api.clone(), args.pods, created.clone(), |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let clients: Vec<kube::Client> = (0..args.concurrency)
        .map(|_| kube::Client::try_from(config.clone()))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..args.pods)
        .map(|i| {
            let api: Api<Pod> =
                Api::namespaced(clients[i % clients.len()].clone(), &args.namespace);
            let created = created.clone();
            let variant = args.variant.clone();
            async move {
                let pod = pod(i, &variant)?;
                if let Ok(mut c) = created.lock() {
                    c.insert(format!("p-{i}"), Instant::now());
                }
                api.create(&PostParams::default(), &pod).await?;
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let created_in = started.elapsed();
    let errors = results.iter().filter(|r| r.is_err()).count();
    let (last_bind, mut latencies) =
        tokio::time::timeout(Duration::from_secs(900), watch).await??;
    latencies.sort();
    let elapsed = last_bind - started;
    println!("variant         {}", args.variant);
    println!(
        "pods            {} ({errors} create errors), created in {:.2} s",
        args.pods,
        created_in.as_secs_f64()
    );
    println!("first create → last bind  {:.2} s", elapsed.as_secs_f64());
    println!(
        "throughput      {:.0} pods/s",
        args.pods as f64 / elapsed.as_secs_f64()
    );
    println!(
        "create → bound  p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        keelson_bench::percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        keelson_bench::percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    Ok(())
}
