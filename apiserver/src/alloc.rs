//! ClusterIP and NodePort allocation for Services. The set in use is read from the watch
//! cache; addresses handed out but not yet visible there are held here until the write
//! lands or fails, so that concurrent creates never share one.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use keelson_apimachinery::{Cause, Status};
use parking_lot::Mutex;
use rand::Rng;
use serde_json::{json, Value};

use crate::cache::WatchCache;
use crate::registry::ResourceDef;

/// 10.96.0.0/12, as kube-apiserver's default `--service-cluster-ip-range`.
pub const SERVICE_CIDR_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
pub const SERVICE_CIDR_BITS: u32 = 12;
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<i64> = 30000..=32767;

#[derive(Default)]
struct Pending {
    ips: HashSet<u32>,
    ports: HashSet<i64>,
}

#[derive(Default, Clone)]
pub struct ServiceAllocator {
    pending: Arc<Mutex<Pending>>,
}

/// Addresses reserved for one write; released when the write is done either way.
pub struct Reservation {
    pending: Arc<Mutex<Pending>>,
    ips: Vec<u32>,
    ports: Vec<i64>,
}

impl Reservation {
    pub fn finish(self, _written: bool) {
        // Either way the reservation ends: on success the cache will show the address in use,
        // on failure it is free again.
        let mut pending = self.pending.lock();
        for ip in &self.ips {
            pending.ips.remove(ip);
        }
        for port in &self.ports {
            pending.ports.remove(port);
        }
    }
}

fn in_range(ip: u32) -> bool {
    ip >> (32 - SERVICE_CIDR_BITS) == SERVICE_CIDR_BASE >> (32 - SERVICE_CIDR_BITS)
}

fn used(cache: &WatchCache, def: &ResourceDef, skip_uid: &str) -> (HashSet<u32>, HashSet<i64>) {
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    if let Some(services) = cache.resource(&def.storage_prefix()) {
        services.for_each(&def.storage_prefix(), |svc| {
            if crate::object::uid(svc) == skip_uid {
                return;
            }
            for ip in svc
                .pointer("/spec/clusterIPs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(addr) = ip.as_str().and_then(|s| s.parse::<Ipv4Addr>().ok()) {
                    ips.insert(u32::from(addr));
                }
            }
            for p in svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(np) = p.get("nodePort").and_then(Value::as_i64) {
                    ports.insert(np);
                }
            }
        });
    }
    (ips, ports)
}

impl ServiceAllocator {
    /// Fills `spec.clusterIP(s)`, the IP family fields and node ports of `svc` (keeping what
    /// `old` had), reserving what it hands out.
    pub fn allocate(
        &self,
        svc: &mut Value,
        old: Option<&Value>,
        cache: &WatchCache,
        def: &ResourceDef,
    ) -> Result<Reservation, Status> {
        let name = crate::object::name(svc).to_string();
        let uid = crate::object::uid(svc).to_string();
        let (used_ips, used_ports) = used(cache, def, &uid);
        let mut pending = self.pending.lock();
        let mut reservation = Reservation {
            pending: self.pending.clone(),
            ips: Vec::new(),
            ports: Vec::new(),
        };
        let invalid = |field: &str, value: Value, why: &str| {
            Status::invalid(
                "Service",
                "",
                &name,
                vec![Cause::new(
                    "FieldValueInvalid",
                    format!("Invalid value: {value}: {why}"),
                    field,
                )],
            )
        };
        let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(reservation);
        };
        let kind = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if kind == "ExternalName" {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
            return Ok(reservation);
        }
        let old_ip = old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .and_then(Value::as_str)
            .map(String::from);
        let requested = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .or(old_ip.clone());
        let ip = match requested.as_deref() {
            Some("None") => "None".to_string(),
            Some(text) if Some(text) == old_ip.as_deref() => text.to_string(),
            Some(text) => {
                let addr: Ipv4Addr = text.parse().map_err(|_| {
                    invalid(
                        "spec.clusterIPs",
                        json!([text]),
                        "must be a valid IP address",
                    )
                })?;
                let n = u32::from(addr);
                if !in_range(n) {
                    return Err(invalid("spec.clusterIPs", json!([text]), "failed to allocate IP: the provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12"));
                }
                if used_ips.contains(&n) || pending.ips.contains(&n) {
                    return Err(invalid(
                        "spec.clusterIPs",
                        json!([text]),
                        &format!("failed to allocate IP {text}: provided IP is already allocated"),
                    ));
                }
                pending.ips.insert(n);
                reservation.ips.push(n);
                text.to_string()
            }
            None => {
                let size = 1u32 << (32 - SERVICE_CIDR_BITS);
                let mut rng = rand::rng();
                let mut chosen = None;
                for _ in 0..4096 {
                    // .0 is the network, .1 the kubernetes Service, the last the broadcast.
                    let n = SERVICE_CIDR_BASE + rng.random_range(2..size - 1);
                    if !used_ips.contains(&n) && !pending.ips.contains(&n) {
                        chosen = Some(n);
                        break;
                    }
                }
                let n = chosen.ok_or_else(|| {
                    Status::internal("failed to allocate a serviceIP: range is full")
                })?;
                pending.ips.insert(n);
                reservation.ips.push(n);
                Ipv4Addr::from(n).to_string()
            }
        };
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
        spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
        spec.entry("ipFamilyPolicy")
            .or_insert_with(|| json!("SingleStack"));
        if kind == "NodePort" || kind == "LoadBalancer" {
            let old_ports: Vec<i64> = old
                .and_then(|o| o.pointer("/spec/ports"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
                .collect();
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for (i, p) in ports.iter_mut().enumerate() {
                    let Some(p) = p.as_object_mut() else { continue };
                    match p
                        .get("nodePort")
                        .and_then(Value::as_i64)
                        .filter(|n| *n != 0)
                    {
                        Some(n) if old_ports.contains(&n) => {}
                        Some(n) => {
                            if used_ports.contains(&n) || pending.ports.contains(&n) {
                                return Err(invalid(
                                    &format!("spec.ports[{i}].nodePort"),
                                    json!(n),
                                    "provided port is already allocated",
                                ));
                            }
                            pending.ports.insert(n);
                            reservation.ports.push(n);
                        }
                        None => {
                            let mut rng = rand::rng();
                            let free = (0..4096)
                                .map(|_| rng.random_range(NODE_PORT_RANGE))
                                .find(|n| !used_ports.contains(n) && !pending.ports.contains(n))
                                .ok_or_else(|| {
                                    Status::internal("failed to allocate a nodePort: range is full")
                                })?;
                            pending.ports.insert(free);
                            reservation.ports.push(free);
                            p.insert("nodePort".into(), json!(free));
                        }
                    }
                }
            }
        }
        Ok(reservation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_check() {
        assert!(in_range(u32::from(Ipv4Addr::new(10, 96, 0, 1))));
        assert!(in_range(u32::from(Ipv4Addr::new(10, 111, 255, 254))));
        assert!(!in_range(u32::from(Ipv4Addr::new(10, 112, 0, 1))));
    }
}
