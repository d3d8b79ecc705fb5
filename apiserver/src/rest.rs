//! The object lifecycle behind every write, independent of HTTP: create, update (with
//! retries on store conflicts), delete with finalizers and graceful deletion.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use keelson_apimachinery::{Cause, Status};
use keelson_storage::{KeyValue, StorageError, Store};
use serde_json::{json, Value};

use crate::alloc::ServiceAllocator;
use crate::cache::WatchCache;
use crate::object;
use crate::registry::{Registry, ResourceDef};

/// How many times an update without a client precondition is retried on a store conflict.
const UPDATE_RETRIES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: String,
    /// A server-side apply: its managedFields are already computed, so the Update
    /// bookkeeping is skipped.
    pub apply: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

pub enum Deleted {
    /// Removed from the store; the last state.
    Gone(Value),
    /// Finalizers or a grace period hold it; deletionTimestamp is set.
    Pending(Value),
}

pub struct Api {
    pub store: Arc<dyn Store>,
    pub cache: Arc<WatchCache>,
    pub registry: &'static Registry,
    pub services: ServiceAllocator,
}

pub fn storage_error(def: &ResourceDef, name: &str, err: StorageError) -> Status {
    match err {
        StorageError::NotFound { .. } => Status::not_found(def.resource, def.group, name),
        StorageError::AlreadyExists { .. } => Status::already_exists(def.resource, def.group, name),
        StorageError::Conflict { .. } => Status::conflict_modified(def.resource, def.group, name),
        StorageError::Compacted {
            requested,
            compacted,
        } => Status::gone(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StorageError::FutureRevision { requested, current } => {
            let mut s = Status::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            ));
            s.causes.push(Cause::new(
                "ResourceVersionTooLarge",
                "Too large resource version",
                "",
            ));
            s.retry_after_seconds = Some(1);
            s
        }
        StorageError::Unavailable(msg) => {
            let mut s = Status::service_unavailable(format!("storage is unavailable: {msg}"));
            s.retry_after_seconds = Some(1);
            s
        }
        other => Status::internal(other),
    }
}

fn is_pod(def: &ResourceDef) -> bool {
    def.kind == "Pod" && def.group.is_empty()
}

fn is_priority_class(def: &ResourceDef) -> bool {
    def.kind == "PriorityClass" && def.group == "scheduling.k8s.io"
}

pub fn object_key(def: &ResourceDef, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if def.namespaced => format!("{}{ns}/{name}", def.storage_prefix()),
        _ => format!("{}{name}", def.storage_prefix()),
    }
}

fn encode(obj: &Value) -> Result<Bytes, Status> {
    // resourceVersion is the store's revision: never stored inside the object.
    let mut copy = obj.clone();
    object::meta_mut(&mut copy).remove("resourceVersion");
    serde_json::to_vec(&copy)
        .map(Bytes::from)
        .map_err(Status::internal)
}

fn decode(def: &ResourceDef, kv: &KeyValue) -> Result<Value, Status> {
    let mut v: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| Status::internal(format!("stored {} is corrupt: {e}", def.resource)))?;
    object::set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

/// Everything but metadata and status: what `generation` counts.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

/// How server-side apply sees `def`'s objects (as stored).
pub fn apply_type(
    def: &ResourceDef,
    subresource: Option<&str>,
) -> Option<keelson_fieldmanager::TypeInfo> {
    let (group, version) = crate::convert::storage_group_version(def);
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let ty = keelson_fieldmanager::TypeInfo::new(&api_version, def.kind, def.has_status())?;
    Some(if subresource == Some("status") {
        ty.for_status_subresource()
    } else {
        ty
    })
}

/// Records an Update operation by the request's field manager in `metadata.managedFields`.
fn track_update(
    def: &ResourceDef,
    old: Option<&Value>,
    new: &mut Value,
    opts: &WriteOptions,
    subresource: Option<&str>,
) {
    let Some(ty) = apply_type(def, subresource) else {
        return;
    };
    let manager = if opts.field_manager.is_empty() {
        "unknown"
    } else {
        opts.field_manager.as_str()
    };
    let op = keelson_fieldmanager::Operation::new(manager, chrono::Utc::now())
        .with_subresource(subresource.unwrap_or(""));
    keelson_fieldmanager::update_object(&ty, old, new, &op);
}

fn validate_meta(def: &ResourceDef, obj: &Value) -> Vec<Cause> {
    let meta = obj.get("metadata").cloned().unwrap_or(Value::Null);
    keelson_apimachinery::validation::validate_object_meta(
        &meta,
        def.namespaced,
        def.strategy.name_rule(),
        "metadata",
    )
}

impl Api {
    pub fn def(&self, group: &str, version: &str, resource: &str) -> Option<&'static ResourceDef> {
        self.registry.lookup(group, version, resource)
    }

    pub async fn get(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, Status> {
        let key = object_key(def, namespace, name);
        self.read_current(def, &key, name).await.map(|(_, obj)| obj)
    }

    /// The stored object at `key`, raw and decoded; 404 if there is none.
    async fn read_current(
        &self,
        def: &ResourceDef,
        key: &str,
        name: &str,
    ) -> Result<(KeyValue, Value), Status> {
        let kv = self
            .store
            .get(key)
            .await
            .map_err(|e| storage_error(def, name, e))?
            .ok_or_else(|| Status::not_found(def.resource, def.group, name))?;
        let obj = decode(def, &kv)?;
        Ok((kv, obj))
    }

    /// The NamespaceLifecycle admission check for a namespaced create.
    async fn check_namespace(&self, namespace: &str) -> Result<(), Status> {
        let ns_def = self
            .def("", "v1", "namespaces")
            .ok_or_else(|| Status::internal("namespaces are not registered"))?;
        let ns = match self
            .cache
            .resource(&ns_def.storage_prefix())
            .and_then(|c| c.get(&object_key(ns_def, None, namespace)))
        {
            Some(ns) => (*ns).clone(),
            // The cache may lag a namespace created a moment ago: ask the store.
            None => self.get(ns_def, None, namespace).await?,
        };
        if object::is_deleting(&ns)
            || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
        {
            let mut status = Status::forbidden(
                "",
                "",
                "",
                &format!("unable to create new content in namespace {namespace} because it is being terminated"),
            );
            status.message = format!("unable to create new content in namespace {namespace} because it is being terminated");
            status.reason = "Forbidden".into();
            status.causes.push(Cause::new(
                "NamespaceTerminating",
                format!("namespace {namespace} is being terminated"),
                "metadata.namespace",
            ));
            return Err(status);
        }
        Ok(())
    }

    /// Creates `obj` (already decoded and checked against the resource) as a new object.
    pub async fn create(
        &self,
        def: &'static ResourceDef,
        namespace: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, Status> {
        let meta = object::meta_mut(&mut obj);
        if def.namespaced {
            let ns = namespace
                .ok_or_else(|| Status::bad_request("the namespace of the object must be set"))?;
            match meta.get("namespace").and_then(Value::as_str) {
                Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                    return Err(Status::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {
                    meta.insert("namespace".into(), json!(ns));
                }
            }
        } else {
            meta.remove("namespace");
        }
        let name_given = meta
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !name_given {
            if let Some(prefix) = meta
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
            {
                let generated = keelson_apimachinery::names::generate_name(prefix);
                meta.insert("name".into(), json!(generated));
            }
        }
        for field in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(field);
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
        if def.strategy.tracks_generation() {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if def.has_status() {
            if let Some(map) = obj.as_object_mut() {
                map.remove("status");
            }
        }
        // The Priority admission plugin is a mutating one: it runs before the pod's own
        // defaults (which would otherwise fill spec.priority and spec.preemptionPolicy).
        if is_pod(def) {
            self.admit_pod_priority(&mut obj).await?;
        }
        def.strategy.prepare_create(&mut obj);
        def.strategy.default(&mut obj);
        if !opts.apply {
            track_update(def, None, &mut obj, opts, None);
        }
        let mut causes = validate_meta(def, &obj);
        causes.extend(def.strategy.validate(&obj));
        let name = object::name(&obj).to_string();
        if !causes.is_empty() {
            return Err(Status::invalid(def.kind, def.group, &name, causes));
        }
        if def.namespaced {
            self.check_namespace(object::namespace(&obj)).await?;
        }
        if is_priority_class(def) {
            self.admit_priority_class(&obj).await?;
        }
        let key = object_key(def, namespace, &name);
        let release = if def.kind == "Service" && def.group.is_empty() {
            Some(self.services.allocate(&mut obj, None, &self.cache, def)?)
        } else {
            None
        };
        if opts.dry_run {
            return Ok(obj);
        }
        let bytes = encode(&obj)?;
        let result = self.store.create(&key, bytes).await;
        if let Some(release) = release {
            release.finish(result.is_ok());
        }
        let kv = result.map_err(|e| storage_error(def, &name, e))?;
        object::set_resource_version(&mut obj, kv.mod_revision);
        Ok(obj)
    }

    /// Reads the object, lets `mutate` produce the new state from it, and writes it with the
    /// revision read as precondition, retrying on conflicts unless the client pinned a
    /// resourceVersion. `mutate` sees the current object (with its resourceVersion).
    pub async fn update<F>(
        &self,
        def: &'static ResourceDef,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        opts: &WriteOptions,
        mut mutate: F,
    ) -> Result<Value, Status>
    where
        F: FnMut(&Value) -> Result<Value, Status> + Send,
    {
        let key = object_key(def, namespace, name);
        for _ in 0..UPDATE_RETRIES {
            let (kv, old) = self.read_current(def, &key, name).await?;
            let requested = mutate(&old)?;
            let pinned = object::resource_version(&requested).to_string();
            if !pinned.is_empty() && pinned != kv.mod_revision.to_string() {
                return Err(Status::conflict_modified(def.resource, def.group, name));
            }
            let new = self.prepare_update(def, &old, requested, subresource, opts)?;
            if new == old {
                return Ok(old);
            }
            if is_priority_class(def) && subresource.is_none() {
                self.admit_priority_class(&new).await?;
            }
            if object::is_deleting(&new)
                && object::finalizers(&new).is_empty()
                && !def.strategy.holds_deletion(&new)
            {
                if opts.dry_run {
                    return Ok(new);
                }
                return match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(deleted) => {
                        let mut last = new;
                        object::set_resource_version(&mut last, deleted.mod_revision);
                        Ok(last)
                    }
                    Err(StorageError::Conflict { .. }) if pinned.is_empty() => continue,
                    Err(e) => Err(storage_error(def, name, e)),
                };
            }
            let mut new = new;
            let release = if def.kind == "Service" && def.group.is_empty() && subresource.is_none()
            {
                Some(
                    self.services
                        .allocate(&mut new, Some(&old), &self.cache, def)?,
                )
            } else {
                None
            };
            if opts.dry_run {
                return Ok(new);
            }
            let result = self
                .store
                .update(&key, encode(&new)?, kv.mod_revision)
                .await;
            if let Some(release) = release {
                release.finish(result.is_ok());
            }
            match result {
                Ok(written) => {
                    object::set_resource_version(&mut new, written.mod_revision);
                    return Ok(new);
                }
                Err(StorageError::Conflict { .. }) if pinned.is_empty() => continue,
                Err(e) => return Err(storage_error(def, name, e)),
            }
        }
        Err(Status::conflict_modified(def.resource, def.group, name))
    }

    /// The spec/status split, immutable metadata, generation, defaults and validation.
    fn prepare_update(
        &self,
        def: &ResourceDef,
        old: &Value,
        mut new: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Value, Status> {
        let name = object::name(old).to_string();
        let body_name = object::name(&new).to_string();
        if !body_name.is_empty() && body_name != name {
            return Err(Status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        match subresource {
            Some("status") => {
                // Only status changes; metadata stays as it was, bar labels and annotations
                // which upstream status strategies also keep from the old object.
                let status = new.get("status").cloned();
                new = old.clone();
                if let Some(map) = new.as_object_mut() {
                    match status {
                        Some(s) => map.insert("status".into(), s),
                        None => map.remove("status"),
                    };
                }
            }
            // A binding sets spec.nodeName and the PodScheduled condition together.
            Some("binding") => {}
            Some("finalize") => {
                // Only spec.finalizers changes: how the namespace controller releases a
                // namespace it has emptied.
                let finalizers = new.pointer("/spec/finalizers").cloned();
                new = old.clone();
                let spec = object::ensure_object(&mut new, &["spec"]);
                match finalizers {
                    Some(f) => spec.insert("finalizers".into(), f),
                    None => spec.remove("finalizers"),
                };
            }
            _ => {
                if def.has_status() {
                    let status = old.get("status").cloned();
                    if let Some(map) = new.as_object_mut() {
                        match status {
                            Some(s) => map.insert("status".into(), s),
                            None => map.remove("status"),
                        };
                    }
                }
            }
        }
        let old_meta = object::meta(old).cloned().unwrap_or_default();
        let meta = object::meta_mut(&mut new);
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old_meta.get(field) {
                Some(v) => meta.insert(field.to_string(), v.clone()),
                None => meta.remove(field),
            };
        }
        // Finalizers may not be added to an object that is going away.
        if old_meta.get("deletionTimestamp").is_some() {
            let old_f = object::finalizers(old);
            let new_f = object::finalizers(&new);
            if new_f.iter().any(|f| !old_f.contains(f)) {
                return Err(Status::invalid(
                    def.kind,
                    def.group,
                    &name,
                    vec![Cause::new(
                        "FieldValueForbidden",
                        "Forbidden: no new finalizers can be added if the object is being deleted",
                        "metadata.finalizers",
                    )],
                ));
            }
        }
        def.strategy.default(&mut new);
        if !opts.apply {
            track_update(def, Some(old), &mut new, opts, subresource);
        }
        if def.strategy.tracks_generation() && spec_part(&new) != spec_part(old) {
            let generation = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            object::meta_mut(&mut new).insert("generation".into(), json!(generation));
        }
        let mut causes = validate_meta(def, &new);
        causes.extend(def.strategy.validate_update(&new, old));
        if !causes.is_empty() {
            return Err(Status::invalid(def.kind, def.group, &name, causes));
        }
        Ok(new)
    }

    pub async fn delete(
        &self,
        def: &'static ResourceDef,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, Status> {
        if let Some(policy) = opts.propagation_policy.as_deref() {
            if !["Foreground", "Background", "Orphan"].contains(&policy) {
                return Err(Status::invalid(
                    "DeleteOptions",
                    "",
                    "",
                    vec![Cause::new(
                        "FieldValueNotSupported",
                        format!("Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""),
                        "propagationPolicy",
                    )],
                ));
            }
        }
        let key = object_key(def, namespace, name);
        for _ in 0..UPDATE_RETRIES {
            let (kv, old) = self.read_current(def, &key, name).await?;
            if let Some(uid) = opts.precondition_uid.as_deref() {
                if uid != object::uid(&old) {
                    return Err(Status::conflict(
                        def.resource,
                        def.group,
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", object::uid(&old)),
                    ));
                }
            }
            if let Some(rv) = opts.precondition_resource_version.as_deref() {
                if rv != kv.mod_revision.to_string() {
                    return Err(Status::conflict(
                        def.resource,
                        def.group,
                        name,
                        &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", kv.mod_revision),
                    ));
                }
            }
            let mut finalizers = object::finalizers(&old);
            match opts.propagation_policy.as_deref() {
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                    finalizers.retain(|f| f != "orphan");
                    finalizers.push("foregroundDeletion".into());
                }
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                    finalizers.retain(|f| f != "foregroundDeletion");
                    finalizers.push("orphan".into());
                }
                _ => {}
            }
            let grace = self.grace_period(def, &old, opts);
            let held = !finalizers.is_empty() || grace > 0 || def.strategy.holds_deletion(&old);
            if !held {
                if opts.dry_run {
                    return Ok(Deleted::Gone(old));
                }
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(_) => return Ok(Deleted::Gone(old)),
                    Err(StorageError::Conflict { .. }) | Err(StorageError::NotFound { .. })
                        if opts.precondition_resource_version.is_none() =>
                    {
                        continue
                    }
                    Err(e) => return Err(storage_error(def, name, e)),
                }
            }
            let mut new = old.clone();
            let meta = object::meta_mut(&mut new);
            let already = meta.get("deletionTimestamp").is_some();
            let current_grace = meta
                .get("deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if !already || current_grace.is_some_and(|g| grace < g) {
                let when = chrono::Utc::now() + chrono::Duration::seconds(grace);
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(when.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            meta.insert("finalizers".into(), json!(finalizers));
            if finalizers.is_empty() {
                meta.remove("finalizers");
            }
            def.strategy.prepare_delete(&mut new);
            if new == old {
                return Ok(Deleted::Pending(old));
            }
            if opts.dry_run {
                return Ok(Deleted::Pending(new));
            }
            match self
                .store
                .update(&key, encode(&new)?, kv.mod_revision)
                .await
            {
                Ok(written) => {
                    object::set_resource_version(&mut new, written.mod_revision);
                    return Ok(Deleted::Pending(new));
                }
                Err(StorageError::Conflict { .. })
                    if opts.precondition_resource_version.is_none() =>
                {
                    continue
                }
                Err(e) => return Err(storage_error(def, name, e)),
            }
        }
        Err(Status::conflict_modified(def.resource, def.group, name))
    }

    /// Pods bound to a node are deleted gracefully (the kubelet confirms); everything else
    /// goes at once, as upstream.
    fn grace_period(&self, def: &ResourceDef, obj: &Value, opts: &DeleteOptions) -> i64 {
        if def.kind != "Pod" || !def.group.is_empty() {
            return 0;
        }
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let finished = matches!(
            obj.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if !bound || finished {
            return 0;
        }
        let default = obj
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30);
        opts.grace_period_seconds.unwrap_or(default).max(0)
    }

    /// Waits until the watch cache has caught up with the store: a consistent read.
    pub async fn synced_revision(&self) -> Result<i64, Status> {
        self.cache
            .sync(Duration::from_secs(10))
            .await
            .map_err(|e| match e {
                StorageError::Unavailable(msg) => Status::timeout(msg),
                other => Status::internal(other),
            })
    }
}
