//! Adopting and releasing dependents (upstream ControllerRefManager): strategic merge
//! patches of `metadata.ownerReferences`, merged by uid, so that other owners stay.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::informer::resource_version;
use crate::Result;

/// The controller reference a controller puts on what it creates or adopts.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Adds `owner` as the controller of `name`. Returns the resourceVersion written, or None
/// when the object is gone.
pub async fn adopt<K>(api: &Api<K>, name: &str, owner: &OwnerReference) -> Result<Option<u64>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"ownerReferences": [owner]}});
    write(api, name, patch).await
}

/// Removes the owner reference with `owner_uid` from `name`.
pub async fn release<K>(api: &Api<K>, name: &str, owner_uid: &str) -> Result<Option<u64>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}]}});
    write(api, name, patch).await
}

async fn write<K>(api: &Api<K>, name: &str, patch: serde_json::Value) -> Result<Option<u64>>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(object) => Ok(Some(resource_version(object.meta()))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn is_not_found(e: &kube::Error) -> bool {
    is_status(e, 404)
}

/// Whether `e` is an API error Status with this HTTP code.
pub fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The message of an API error, as events quote it.
pub fn error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}
