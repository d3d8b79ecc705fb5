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

/// Paths of fields a JSON body names twice (`spec.replicas`), for strict field validation;
/// empty for anything that is not valid JSON (the decoder reports that).
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    use serde::de::DeserializeSeed;
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = DuplicateFinder {
        path: String::new(),
        found: &mut found,
    };
    if seed.deserialize(&mut de).is_err() {
        return Vec::new();
    }
    found
}

/// Walks a JSON document without building it, noting repeated keys with their paths.
struct DuplicateFinder<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for DuplicateFinder<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DuplicateFinder<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let path = format!("{}[{i}]", self.path);
            if seq
                .next_element_seed(DuplicateFinder {
                    path,
                    found: &mut *self.found,
                })?
                .is_none()
            {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.found.push(path.clone());
            }
            map.next_value_seed(DuplicateFinder {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod duplicate_tests {
    use super::duplicate_fields;

    #[test]
    fn repeated_keys_are_found_with_their_paths() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"containers":[{"name":"c","image":"x","image":"y"}]}}"#;
        assert_eq!(
            duplicate_fields(body),
            vec!["metadata.name", "spec.containers[0].image"]
        );
        assert!(duplicate_fields(br#"{"a":1,"b":{"a":2}}"#).is_empty());
        assert!(duplicate_fields(b"{not json").is_empty());
    }
}
