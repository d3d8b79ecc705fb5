//! The meta/v1 Status that every error reaching an API client is, with the codes, reasons and
//! messages of apimachinery's `pkg/api/errors`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One field-level cause of a failure (`details.causes[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

impl Cause {
    pub fn new(reason: &str, message: impl Into<String>, field: impl Into<String>) -> Self {
        Cause {
            reason: reason.to_string(),
            message: message.into(),
            field: field.into(),
        }
    }
}

/// A failed (or, for deletes, successful) API call as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// `details.name`
    pub name: String,
    /// `details.group`
    pub group: String,
    /// `details.kind`: the resource plural for NotFound, AlreadyExists, Conflict, Forbidden.
    pub kind: String,
    pub uid: String,
    pub causes: Vec<Cause>,
    pub retry_after_seconds: Option<u32>,
}

/// `pods "x"` or `deployments.apps "x"`: how upstream names an object in messages.
pub fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl Status {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Status {
            code,
            reason: reason.to_string(),
            message: message.into(),
            name: String::new(),
            group: String::new(),
            kind: String::new(),
            uid: String::new(),
            causes: Vec::new(),
            retry_after_seconds: None,
        }
    }

    fn about(mut self, resource: &str, group: &str, name: &str) -> Self {
        self.kind = resource.to_string();
        self.group = group.to_string();
        self.name = name.to_string();
        self
    }

    pub fn with_cause(mut self, cause: Cause) -> Self {
        self.causes.push(cause);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Status::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Status::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(resource: &str, group: &str, name: &str, why: &str) -> Self {
        let what = if name.is_empty() {
            qualified(resource, group)
        } else {
            format!("{} \"{name}\"", qualified(resource, group))
        };
        Status::new(403, "Forbidden", format!("{what} is forbidden: {why}"))
            .about(resource, group, name)
    }

    pub fn not_found(resource: &str, group: &str, name: &str) -> Self {
        Status::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(resource, group)),
        )
        .about(resource, group, name)
    }

    /// A path that names no resource: upstream answers with a bare 404 "the server could
    /// not find the requested resource".
    pub fn no_such_path() -> Self {
        Status::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Status::new(405, "MethodNotAllowed", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Status::new(406, "NotAcceptable", message)
    }

    pub fn already_exists(resource: &str, group: &str, name: &str) -> Self {
        Status::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(resource, group)),
        )
        .about(resource, group, name)
    }

    /// The optimistic-concurrency conflict of an update from a stale resourceVersion.
    pub fn conflict_modified(resource: &str, group: &str, name: &str) -> Self {
        Status::conflict(
            resource,
            group,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn conflict(resource: &str, group: &str, name: &str, why: &str) -> Self {
        Status::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(resource, group)
            ),
        )
        .about(resource, group, name)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Status::new(410, "Expired", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Status::new(413, "RequestEntityTooLarge", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Status::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"),
        )
    }

    /// 422 Invalid: `Kind.group "name" is invalid: field: message, ...`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let listed: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let joined = if listed.len() == 1 {
            listed[0].clone()
        } else {
            format!("[{}]", listed.join(", "))
        };
        let mut status = Status::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {joined}", qualified(kind, group)),
        );
        status.kind = kind.to_string();
        status.group = group.to_string();
        status.name = name.to_string();
        status.causes = causes;
        status
    }

    pub fn too_many_requests(message: impl Into<String>, retry_after: u32) -> Self {
        let mut status = Status::new(429, "TooManyRequests", message);
        status.retry_after_seconds = Some(retry_after);
        status
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        let message = err.to_string();
        Status::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_cause(Cause::new("UnexpectedServerResponse", message, ""))
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Status::new(503, "ServiceUnavailable", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Status::new(504, "Timeout", format!("Timeout: {}", message.into()))
    }

    /// The meta/v1 Status object as JSON.
    pub fn to_json(&self) -> Value {
        let mut details = serde_json::Map::new();
        for (key, value) in [
            ("name", &self.name),
            ("group", &self.group),
            ("kind", &self.kind),
            ("uid", &self.uid),
        ] {
            if !value.is_empty() {
                details.insert(key.to_string(), json!(value));
            }
        }
        if !self.causes.is_empty() {
            details.insert("causes".into(), json!(self.causes));
        }
        if let Some(seconds) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(seconds));
        }
        let mut out = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": if self.code < 300 { "Success" } else { "Failure" },
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !details.is_empty() {
            out["details"] = Value::Object(details);
        }
        if self.message.is_empty() {
            if let Some(map) = out.as_object_mut() {
                map.remove("message");
            }
        }
        if self.reason.is_empty() {
            if let Some(map) = out.as_object_mut() {
                map.remove("reason");
            }
        }
        out
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_qualified_resource() {
        let s = Status::not_found("deployments", "apps", "web").to_json();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["details"]["kind"], "deployments");
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["code"], 404);
    }

    #[test]
    fn invalid_lists_every_cause() {
        let s = Status::invalid(
            "Pod",
            "",
            "p",
            vec![
                Cause::new("FieldValueRequired", "Required value", "spec.containers"),
                Cause::new("FieldValueInvalid", "Invalid value: \"A\"", "metadata.name"),
            ],
        );
        assert_eq!(
            s.message,
            "Pod \"p\" is invalid: [spec.containers: Required value, metadata.name: Invalid value: \"A\"]"
        );
        assert_eq!(
            s.to_json()["details"]["causes"][1]["field"],
            "metadata.name"
        );
    }
}
