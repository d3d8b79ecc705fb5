//! Pod priority: the Priority admission plugin (upstream
//! `plugin/pkg/admission/priority`), the PriorityClass strategy (defaults and
//! `ValidatePriorityClass`) and the built-in system PriorityClasses.
//!
//! The decisions are pure functions over the PriorityClasses read from the store;
//! [`Api::admit_pod_priority`] and [`Api::admit_priority_class`] only do the reading.

use keelson_apimachinery::{validation, Cause, Status};
use serde_json::{json, Map, Value};

use crate::object;
use crate::registry::ResourceDef;
use crate::rest::{storage_error, Api};
use crate::strategy::{invalid, not_supported, set_default, Strategy};

/// The highest value a user-defined PriorityClass may have.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;
/// The base value of the system-critical classes.
pub const SYSTEM_CRITICAL_PRIORITY: i64 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
/// Names with this prefix are reserved for the system classes.
pub const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";

/// The system PriorityClasses: name, value, description (upstream's
/// `scheduling.SystemPriorityClasses()`).
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        SYSTEM_CRITICAL_PRIORITY + 1000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        SYSTEM_CRITICAL_PRIORITY,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

const PREEMPTION_POLICIES: &[&str] = &["PreemptLowerPriority", "Never"];

/// The system PriorityClasses as objects, for bootstrap.
pub fn system_priority_classes() -> Vec<Value> {
    SYSTEM_PRIORITY_CLASSES
        .iter()
        .map(|(name, value, description)| {
            json!({
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
                "globalDefault": false,
                "description": description,
                "preemptionPolicy": "PreemptLowerPriority",
            })
        })
        .collect()
}

fn value_of(pc: &Value) -> i64 {
    pc.get("value").and_then(Value::as_i64).unwrap_or(0)
}

fn is_global_default(pc: &Value) -> bool {
    pc.get("globalDefault")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The globalDefault class; if a race left several, the one with the lowest value.
pub fn default_class(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|pc| is_global_default(pc))
        .min_by_key(|pc| value_of(pc))
}

/// Resolves a new pod's priority from `classes` (all PriorityClasses): sets
/// `spec.priority`, `spec.priorityClassName` (from the globalDefault class) and
/// `spec.preemptionPolicy`. `Err` is the reason of a 403.
pub fn resolve_pod_priority(
    spec: &mut Map<String, Value>,
    classes: &[Value],
) -> Result<(), String> {
    let class_name = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let class = match &class_name {
        Some(name) => Some(
            classes
                .iter()
                .find(|pc| object::name(pc) == name)
                .ok_or_else(|| format!("no PriorityClass with name {name} was found"))?,
        ),
        None => default_class(classes),
    };
    let priority = class.map(value_of).unwrap_or(0);
    let policy = class
        .and_then(|pc| pc.get("preemptionPolicy"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    if let Some(given) = spec.get("priority").filter(|v| !v.is_null()) {
        let given = given.as_i64().unwrap_or_default();
        if given != priority {
            return Err(format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            ));
        }
    }
    if let Some(policy) = policy {
        if let Some(given) = spec
            .get("preemptionPolicy")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        {
            if given != policy {
                return Err(format!(
                    "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
                ));
            }
        }
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    if let (None, Some(pc)) = (&class_name, class) {
        spec.insert("priorityClassName".into(), json!(object::name(pc)));
    }
    spec.insert("priority".into(), json!(priority));
    Ok(())
}

/// The admission half of PriorityClass validation: at most one globalDefault. `Err` is
/// the reason of a 403.
pub fn check_global_default(pc: &Value, classes: &[Value]) -> Result<(), String> {
    if !is_global_default(pc) {
        return Ok(());
    }
    match classes
        .iter()
        .filter(|other| object::name(other) != object::name(pc))
        .find(|other| is_global_default(other))
    {
        Some(other) => Err(format!(
            "PriorityClass {} is already marked as default. Only one default can exist",
            object::name(other)
        )),
        None => Ok(()),
    }
}

/// `scheduling.k8s.io/v1` PriorityClass: defaults and validation.
pub struct PriorityClass;

impl Strategy for PriorityClass {
    fn default(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            set_default(map, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        let name = object::name(obj);
        let value = value_of(obj);
        if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
            let why = match SYSTEM_PRIORITY_CLASSES.iter().find(|(n, ..)| *n == name) {
                None => Some(format!("name {name} is not a known system priority class")),
                Some((_, v, _)) if *v != value => {
                    Some(format!("value of {name} PriorityClass must be {v}"))
                }
                Some(_) if is_global_default(obj) => Some(format!(
                    "globalDefault of {name} PriorityClass must be false"
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                causes.push(validation::forbidden(
                    "metadata.name",
                    &format!("priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: {why}"),
                ));
            }
        } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
            causes.push(validation::forbidden(
                "value",
                &format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
                ),
            ));
        }
        if let Some(policy) = obj.get("preemptionPolicy").filter(|p| !p.is_null()) {
            if !policy
                .as_str()
                .is_some_and(|p| PREEMPTION_POLICIES.contains(&p))
            {
                causes.push(not_supported(
                    "preemptionPolicy",
                    policy,
                    PREEMPTION_POLICIES,
                ));
            }
        }
        causes
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = self.validate(new);
        if value_of(new) != value_of(old) {
            causes.push(validation::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        let policy = new.get("preemptionPolicy").unwrap_or(&Value::Null);
        if policy != old.get("preemptionPolicy").unwrap_or(&Value::Null) {
            causes.push(invalid("preemptionPolicy", policy, "field is immutable"));
        }
        causes
    }
}

impl Api {
    fn priority_class_def(&self) -> Result<&ResourceDef, Status> {
        self.def("scheduling.k8s.io", "v1", "priorityclasses")
            .ok_or_else(|| Status::internal("priorityclasses are not registered"))
    }

    /// Every stored PriorityClass, read from the store (not the cache) so that a class
    /// created a moment ago is seen.
    async fn priority_classes(&self) -> Result<Vec<Value>, Status> {
        let def = self.priority_class_def()?;
        let list = self
            .store
            .list(&def.storage_prefix(), None, 0, None)
            .await
            .map_err(|e| storage_error(def, "", e))?;
        list.kvs
            .iter()
            .map(|kv| {
                serde_json::from_slice(&kv.value).map_err(|e| {
                    Status::internal(format!("stored priorityclasses is corrupt: {e}"))
                })
            })
            .collect()
    }

    /// The Priority admission plugin for a pod create. Every pod create passes here, so
    /// the classes come from the watch cache (as upstream's plugin reads its lister); a
    /// named class the cache does not hold yet is read from the store, as
    /// NamespaceLifecycle does for a namespace created a moment ago.
    pub(crate) async fn admit_pod_priority(&self, pod: &mut Value) -> Result<(), Status> {
        let def = self.priority_class_def()?;
        let mut classes = Vec::new();
        if let Some(cache) = self.cache.resource(&def.storage_prefix()) {
            cache.for_each(&def.storage_prefix(), |pc| classes.push((**pc).clone()));
        }
        let named = pod
            .pointer("/spec/priorityClassName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        if let Some(named) = named {
            if !classes.iter().any(|pc| object::name(pc) == named) {
                match self.get(def, None, &named).await {
                    Ok(pc) => classes.push(pc),
                    // resolve_pod_priority words the refusal as upstream does.
                    Err(status) if status.code == 404 => {}
                    Err(status) => return Err(status),
                }
            }
        }
        let name = object::name(pod).to_string();
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        resolve_pod_priority(spec, &classes)
            .map_err(|why| Status::forbidden("pods", "", &name, &why))
    }

    /// The Priority admission plugin for a PriorityClass create or update.
    pub(crate) async fn admit_priority_class(&self, pc: &Value) -> Result<(), Status> {
        if !is_global_default(pc) {
            return Ok(());
        }
        let classes = self.priority_classes().await?;
        check_global_default(pc, &classes).map_err(|why| {
            Status::forbidden(
                "priorityclasses",
                "scheduling.k8s.io",
                object::name(pc),
                &why,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pc(name: &str, value: i64, global: bool) -> Value {
        json!({"metadata": {"name": name}, "value": value, "globalDefault": global,
               "preemptionPolicy": "PreemptLowerPriority"})
    }

    fn spec(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn named_class_sets_priority_and_policy() {
        let mut never = pc("batch", 5, false);
        never["preemptionPolicy"] = json!("Never");
        let classes = vec![pc("high", 1000, false), never];
        let mut s = spec(json!({"priorityClassName": "high"}));
        resolve_pod_priority(&mut s, &classes).unwrap();
        assert_eq!(s["priority"], json!(1000));
        assert_eq!(s["preemptionPolicy"], json!("PreemptLowerPriority"));
        let mut s = spec(json!({"priorityClassName": "batch"}));
        resolve_pod_priority(&mut s, &classes).unwrap();
        assert_eq!(
            (s["priority"].clone(), s["preemptionPolicy"].clone()),
            (json!(5), json!("Never"))
        );
    }

    #[test]
    fn unknown_class_and_conflicting_fields_are_refused() {
        let classes = vec![pc("high", 1000, false)];
        let mut s = spec(json!({"priorityClassName": "nope"}));
        assert_eq!(
            resolve_pod_priority(&mut s, &classes).unwrap_err(),
            "no PriorityClass with name nope was found"
        );
        let mut s = spec(json!({"priorityClassName": "high", "priority": 7}));
        assert_eq!(
            resolve_pod_priority(&mut s, &classes).unwrap_err(),
            "the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"
        );
        let mut s = spec(json!({"priorityClassName": "high", "priority": 1000}));
        assert!(resolve_pod_priority(&mut s, &classes).is_ok());
        let mut s = spec(json!({"priorityClassName": "high", "preemptionPolicy": "Never"}));
        assert!(resolve_pod_priority(&mut s, &classes)
            .unwrap_err()
            .starts_with("the string value of PreemptionPolicy (Never) must not be provided"));
    }

    #[test]
    fn global_default_or_zero_without_a_class() {
        let mut s = spec(json!({}));
        resolve_pod_priority(&mut s, &[pc("high", 1000, false)]).unwrap();
        assert_eq!(s["priority"], json!(0));
        assert!(!s.contains_key("priorityClassName"));
        let classes = vec![pc("a", 300, true), pc("b", 200, true), pc("c", 100, false)];
        let mut s = spec(json!({}));
        resolve_pod_priority(&mut s, &classes).unwrap();
        assert_eq!(s["priority"], json!(200));
        assert_eq!(s["priorityClassName"], json!("b"));
        let mut s = spec(json!({"priority": 0}));
        assert!(resolve_pod_priority(&mut s, &classes).is_err());
    }

    #[test]
    fn only_one_global_default() {
        let classes = vec![pc("a", 1, true), pc("b", 2, false)];
        assert!(check_global_default(&pc("b", 2, false), &classes).is_ok());
        assert!(check_global_default(&pc("a", 1, true), &classes).is_ok());
        assert_eq!(
            check_global_default(&pc("b", 2, true), &classes).unwrap_err(),
            "PriorityClass a is already marked as default. Only one default can exist"
        );
    }

    #[test]
    fn priority_class_validation() {
        let s = PriorityClass;
        for sys in system_priority_classes() {
            assert!(s.validate(&sys).is_empty(), "{sys}");
        }
        assert!(s
            .validate(&pc("ok", HIGHEST_USER_DEFINABLE_PRIORITY, false))
            .is_empty());
        let too_high = s.validate(&pc("big", HIGHEST_USER_DEFINABLE_PRIORITY + 1, false));
        assert_eq!(too_high.len(), 1);
        assert_eq!(too_high[0].field, "value");
        let reserved = s.validate(&pc("system-mine", 5, false));
        assert_eq!(reserved[0].field, "metadata.name");
        assert!(reserved[0].message.contains("reserved for system use only"));
        assert_eq!(s.validate(&pc("system-node-critical", 5, false)).len(), 1);
        let changed = s.validate_update(&pc("x", 2, false), &pc("x", 1, false));
        assert_eq!(changed.len(), 1);
        let mut obj = json!({"metadata": {"name": "x"}, "value": 1});
        s.default(&mut obj);
        assert_eq!(obj["preemptionPolicy"], json!("PreemptLowerPriority"));
    }
}
