//! Events on the objects a controller acts on: what `kubectl describe` lists
//! (ScalingReplicaSet, SuccessfulCreate, ...). Written as core/v1 Events the way upstream's
//! event recorder does: a repeat of the same reason and message about the same object
//! bumps `count` and `lastTimestamp` of the first one instead of adding another.
//! (kube-runtime's recorder folds events by reason alone, so "Scaled up replica set a" and
//! "... b" would become one.)

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Resource;
use serde_json::json;
use tokio::sync::Mutex;

pub use kube::runtime::events::EventType;

/// What makes two events the same: object uid, reason, message.
type EventKey = (String, String, String);
/// Where the first of them went: namespace, name, and the count so far.
type Recorded = (String, String, i32);

/// Publishes events as one controller (the `source.component` upstream names).
#[derive(Clone)]
pub struct EventSink {
    client: kube::Client,
    component: String,
    instance: String,
    seen: Arc<Mutex<HashMap<EventKey, Recorded>>>,
}

impl EventSink {
    pub fn new(client: kube::Client, component: &str) -> EventSink {
        EventSink {
            client,
            component: component.to_string(),
            instance: crate::component::identity(),
            seen: Arc::default(),
        }
    }

    /// Records an event about `object`. A failure to record is logged, never fatal: the
    /// controller's work matters more than its diary.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        if let Err(e) = self.record(object, type_, reason, message).await {
            tracing::debug!(%reason, error = %e, "recording an event failed");
        }
    }

    async fn record<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let regarding = object.object_ref(&());
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let key = (
            regarding.uid.clone().unwrap_or_default(),
            reason.to_string(),
            message.to_string(),
        );
        let now = chrono::Utc::now();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let mut seen = self.seen.lock().await;
        if let Some((ns, name, count)) = seen.get_mut(&key) {
            *count += 1;
            let patch = json!({"count": *count, "lastTimestamp": to_time(now)});
            let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Expired or deleted: record it anew.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let name = format!(
            "{}.{:x}",
            regarding.name.clone().unwrap_or_default(),
            now.timestamp_nanos_opt().unwrap_or_default()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: regarding,
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            first_timestamp: Some(to_time(now)),
            last_timestamp: Some(to_time(now)),
            count: Some(1),
            ..Event::default()
        };
        api.create(&PostParams::default(), &event).await?;
        seen.insert(key, (namespace, name, 1));
        // Bounded memory: upstream's correlator keeps an LRU of 4096 entries.
        if seen.len() > 4096 {
            seen.clear();
        }
        Ok(())
    }
}

/// A chrono time as the API's `Time` (k8s-openapi's wraps a jiff Timestamp).
pub fn to_time(
    t: chrono::DateTime<chrono::Utc>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    let seconds = t.timestamp();
    let subsec = i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0);
    let timestamp = k8s_openapi::jiff::Timestamp::new(seconds, subsec).unwrap_or(if seconds < 0 {
        k8s_openapi::jiff::Timestamp::MIN
    } else {
        k8s_openapi::jiff::Timestamp::MAX
    });
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(timestamp)
}
