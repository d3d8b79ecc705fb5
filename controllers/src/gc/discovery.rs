//! Legacy discovery (`/api`, `/apis`, one request per group version) into the plain
//! structures of [`super::plan`]. A group version that fails is recorded and skipped, as
//! client-go's `ErrGroupDiscoveryFailed` does, so that one broken API leaves the rest usable.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;

use super::plan::{DiscoveredGroup, DiscoveredVersion, RawResource};

/// What discovery found, and the group versions it could not read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Discovered {
    pub groups: Vec<DiscoveredGroup>,
    /// groupVersion → error.
    pub failed: BTreeMap<String, String>,
}

impl Discovered {
    /// client-go's `ErrGroupDiscoveryFailed` message, when some group version failed.
    pub fn failure(&self) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let groups: Vec<String> = self
            .failed
            .iter()
            .map(|(gv, e)| format!("{gv}: {e}"))
            .collect();
        Some(format!(
            "unable to retrieve the complete list of server APIs: {}",
            groups.join(", ")
        ))
    }
}

fn raw_resources(list: &APIResourceList) -> Vec<RawResource> {
    list.resources
        .iter()
        .map(|r| RawResource {
            name: r.name.clone(),
            kind: r.kind.clone(),
            namespaced: r.namespaced,
            verbs: r.verbs.clone(),
        })
        .collect()
}

/// Reads every group and version the server serves. Fails only when the group lists
/// themselves cannot be read.
pub(crate) async fn discover(client: &Client) -> Result<Discovered, kube::Error> {
    let mut out = Discovered::default();
    let core = client.list_core_api_versions().await?;
    let mut core_group = DiscoveredGroup {
        name: String::new(),
        preferred_version: core.versions.first().cloned().unwrap_or_default(),
        versions: Vec::new(),
    };
    for version in &core.versions {
        match client.list_core_api_resources(version).await {
            Ok(list) => core_group.versions.push(DiscoveredVersion {
                version: version.clone(),
                group_version: list.group_version.clone(),
                resources: raw_resources(&list),
            }),
            Err(e) => {
                out.failed.insert(version.clone(), e.to_string());
            }
        }
    }
    out.groups.push(core_group);

    let groups = client.list_api_groups().await?;
    for group in groups.groups {
        let preferred = group
            .preferred_version
            .as_ref()
            .map(|v| v.version.clone())
            .or_else(|| group.versions.first().map(|v| v.version.clone()))
            .unwrap_or_default();
        let mut found = DiscoveredGroup {
            name: group.name.clone(),
            preferred_version: preferred,
            versions: Vec::new(),
        };
        for version in &group.versions {
            match client
                .list_api_group_resources(&version.group_version)
                .await
            {
                Ok(list) => found.versions.push(DiscoveredVersion {
                    version: version.version.clone(),
                    group_version: list.group_version.clone(),
                    resources: raw_resources(&list),
                }),
                Err(e) => {
                    out.failed
                        .insert(version.group_version.clone(), e.to_string());
                }
            }
        }
        out.groups.push(found);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_message_names_every_failed_group_version() {
        let mut d = Discovered::default();
        assert_eq!(d.failure(), None);
        d.failed
            .insert("metrics.k8s.io/v1beta1".into(), "503".into());
        d.failed.insert("apps/v1".into(), "timeout".into());
        assert_eq!(
            d.failure().as_deref(),
            Some("unable to retrieve the complete list of server APIs: apps/v1: timeout, metrics.k8s.io/v1beta1: 503")
        );
    }
}
