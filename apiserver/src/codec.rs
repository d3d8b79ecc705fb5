//! Request bodies in JSON, YAML and Kubernetes protobuf, all decoded to the same JSON value.

use keelson_apimachinery::Status;
use serde_json::Value;

pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The media type without parameters, lower-cased.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A decoded object body, with the apiVersion/kind it declared.
pub fn decode_object(
    content_type: &str,
    body: &[u8],
    expected_kind: &str,
) -> Result<Value, Status> {
    let value = match media_type(content_type).as_str() {
        "" | "application/json" | "*/*" => decode_json(body, expected_kind)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            decode_yaml(body, expected_kind)?
        }
        PROTOBUF => {
            let decoded = keelson_schema::decode_protobuf(body).map_err(|e| {
                Status::bad_request(format!(
                    "the body of the request could not be decoded as protobuf: {e}"
                ))
            })?;
            decoded.object
        }
        other => return Err(Status::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(Status::bad_request(format!(
            "{expected_kind} in version \"v1\" cannot be handled as a {expected_kind}: the request body is not a JSON object"
        )));
    }
    Ok(value)
}

pub fn decode_json(body: &[u8], expected_kind: &str) -> Result<Value, Status> {
    serde_json::from_slice(body).map_err(|e| {
        Status::bad_request(format!(
            "{expected_kind} in version \"v1\" cannot be handled as a {expected_kind}: json: {e}"
        ))
    })
}

pub fn decode_yaml(body: &[u8], expected_kind: &str) -> Result<Value, Status> {
    let yaml: serde_yaml::Value = serde_yaml::from_slice(body)
        .map_err(|e| Status::bad_request(format!("error converting YAML to JSON: yaml: {e}")))?;
    serde_json::to_value(yaml).map_err(|e| {
        Status::bad_request(format!(
            "{expected_kind} cannot be handled as a {expected_kind}: error converting YAML to JSON: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_decode_alike() {
        let json = decode_object(
            "application/json",
            br#"{"kind":"ConfigMap","data":{"a":"1"}}"#,
            "ConfigMap",
        )
        .ok();
        let yaml = decode_object(
            "application/yaml; charset=utf-8",
            b"kind: ConfigMap\ndata:\n  a: \"1\"\n",
            "ConfigMap",
        )
        .ok();
        assert!(json.is_some());
        assert_eq!(json, yaml);
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        let err = decode_object("application/json", b"{\"kind\":", "ConfigMap").err();
        assert_eq!(err.map(|s| s.code), Some(400));
        let err = decode_object("application/json", b"[1,2]", "ConfigMap").err();
        assert_eq!(err.map(|s| s.code), Some(400));
        let err = decode_object("text/html", b"<p>", "ConfigMap").err();
        assert_eq!(err.map(|s| s.code), Some(415));
    }
}
