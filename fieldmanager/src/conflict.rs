//! Apply conflicts and their error text (structured-merge-diff `merge/conflict.go`,
//! apimachinery `managedfields/internal/conflict.go`).

use crate::managed::{parse_identifier, UPDATE};
use crate::path::{go_quote, Path};
use crate::set::FieldSet;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The manager identifier (`{"manager":"helm","operation":"Apply"}`).
    pub manager: String,
    pub path: Path,
}

impl Conflict {
    /// The manager as upstream prints it: `"helm"`, `"m" using apps/v1`,
    /// `"m" with subresource "scale" using apps/v1`.
    pub fn manager_display(&self) -> String {
        print_manager(&self.manager)
    }
}

/// The conflicts of an apply: the request fails with 409 unless forced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Conflict>);

/// One `details.causes[]` item of the 409 Status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictCause {
    /// Always `FieldManagerConflict`.
    pub reason: &'static str,
    /// `conflict with "m"` (with ` using <apiVersion>` for updaters).
    pub message: String,
    /// The field path: `.spec.replicas`.
    pub field: String,
}

impl ConflictCause {
    /// The cause as JSON for a meta/v1 Status.
    pub fn to_json(&self) -> Value {
        json!({"reason": self.reason, "message": self.message, "field": self.field})
    }
}

impl Conflicts {
    /// Conflicts from per-manager sets; managers in identifier order, paths in set order.
    pub(crate) fn from_sets(sets: &BTreeMap<String, FieldSet>) -> Conflicts {
        let mut out = Vec::new();
        for (manager, set) in sets {
            for path in set.paths() {
                out.push(Conflict {
                    manager: manager.clone(),
                    path,
                });
            }
        }
        Conflicts(out)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The paths in conflict.
    pub fn to_set(&self) -> FieldSet {
        FieldSet::from_paths(self.0.iter().map(|c| &c.path))
    }

    /// The Status message: `Apply failed with 1 conflict: conflict with "helm": .spec.replicas`
    /// or, for several, `Apply failed with N conflicts: conflicts with "m":\n- .spec.a\n- .spec.b`
    /// grouped by manager (managers sorted by identifier).
    pub fn message(&self) -> String {
        if self.0.len() == 1 {
            let c = &self.0[0];
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                print_manager(&c.manager),
                c.path
            );
        }
        let mut by_manager: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
        for c in &self.0 {
            by_manager.entry(&c.manager).or_default().push(&c.path);
        }
        let mut lines = Vec::new();
        for (manager, paths) in by_manager {
            lines.push(format!("conflicts with {}:", print_manager(manager)));
            for p in paths {
                lines.push(format!("- {p}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }

    /// `details.causes` of the 409 Status, one per conflict.
    pub fn causes(&self) -> Vec<ConflictCause> {
        self.0
            .iter()
            .map(|c| ConflictCause {
                reason: "FieldManagerConflict",
                message: format!("conflict with {}", print_manager(&c.manager)),
                field: c.path.to_string(),
            })
            .collect()
    }

    /// The whole 409 `Status` object upstream returns (`errors.NewApplyConflict`).
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(),
            "reason": "Conflict",
            "details": {"causes": self.causes().iter().map(ConflictCause::to_json).collect::<Vec<_>>()},
            "code": 409
        })
    }
}

impl fmt::Display for Conflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Conflicts {}

/// Upstream's `printManager`. Identifiers never carry a time (it is stripped when they are
/// built), so the ` at <time>` form upstream's code has never shows in practice.
fn print_manager(id: &str) -> String {
    let Some((manager, operation, api_version, subresource)) = parse_identifier(id) else {
        return go_quote(id);
    };
    let mut s = go_quote(&manager);
    if !subresource.is_empty() {
        s = format!("{s} with subresource {}", go_quote(&subresource));
    }
    if operation == UPDATE {
        s = format!("{s} using {api_version}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managed::manager_identifier;
    use crate::PathElement;

    #[test]
    fn messages_match_upstream() {
        let one = Conflicts(vec![Conflict {
            manager: manager_identifier("helm", "Apply", "", ""),
            path: Path::fields(["spec", "replicas"]),
        }]);
        assert_eq!(
            one.message(),
            r#"Apply failed with 1 conflict: conflict with "helm": .spec.replicas"#
        );
        let several = Conflicts(vec![
            Conflict {
                manager: manager_identifier("foo", "Update", "v1", ""),
                path: Path::fields(["spec", "replicas"]),
            },
            Conflict {
                manager: manager_identifier("bar", "Apply", "", ""),
                path: Path::fields(["metadata", "labels", "app"]),
            },
            Conflict {
                manager: manager_identifier(
                    "kube-controller-manager",
                    "Update",
                    "apps/v1",
                    "scale",
                ),
                path: Path(vec![
                    PathElement::field("spec"),
                    PathElement::field("containers"),
                    PathElement::key([("name", serde_json::json!("web"))]),
                    PathElement::field("image"),
                ]),
            },
        ]);
        assert_eq!(
            several.message(),
            "Apply failed with 3 conflicts: conflicts with \"bar\":\n- .metadata.labels.app\nconflicts with \"foo\" using v1:\n- .spec.replicas\nconflicts with \"kube-controller-manager\" with subresource \"scale\" using apps/v1:\n- .spec.containers[name=\"web\"].image"
        );
        let causes = several.causes();
        assert_eq!(causes[0].message, r#"conflict with "foo" using v1"#);
        assert_eq!(causes[0].field, ".spec.replicas");
        assert_eq!(causes[0].reason, "FieldManagerConflict");
        assert_eq!(
            causes[0].to_json(),
            serde_json::json!({"reason": "FieldManagerConflict", "message": "conflict with \"foo\" using v1", "field": ".spec.replicas"})
        );
    }
}
