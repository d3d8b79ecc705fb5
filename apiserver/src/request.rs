//! What a request asks for: the path parsed as apiserver's `requestinfo.go` does, and the
//! query parameters the handlers read.

use std::collections::HashMap;

/// A resource request (`/api/v1/namespaces/ns/pods/name/status`) or anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Resource(ResourceRequest),
    /// `/api`, `/apis`, `/api/v1`, `/apis/apps`, `/apis/apps/v1`
    Discovery {
        group: Option<String>,
        version: Option<String>,
        legacy: bool,
    },
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceRequest {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path prefix was used.
    pub watch_path: bool,
}

pub fn parse_path(path: &str) -> Target {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (legacy, rest) = match parts.first() {
        Some(&"api") => (true, &parts[1..]),
        Some(&"apis") => (false, &parts[1..]),
        _ => return Target::Other(path.to_string()),
    };
    let (group, version, rest) = if legacy {
        match rest.split_first() {
            None => {
                return Target::Discovery {
                    group: None,
                    version: None,
                    legacy,
                }
            }
            Some((version, rest)) => (String::new(), version.to_string(), rest),
        }
    } else {
        match rest {
            [] => {
                return Target::Discovery {
                    group: None,
                    version: None,
                    legacy,
                }
            }
            [group] => {
                return Target::Discovery {
                    group: Some(group.to_string()),
                    version: None,
                    legacy,
                }
            }
            [group, version, rest @ ..] => (group.to_string(), version.to_string(), rest),
        }
    };
    if rest.is_empty() {
        return Target::Discovery {
            group: Some(group),
            version: Some(version),
            legacy,
        };
    }
    let mut req = ResourceRequest {
        group,
        version,
        ..Default::default()
    };
    let mut rest = rest;
    if rest.first() == Some(&"watch") {
        req.watch_path = true;
        rest = &rest[1..];
    }
    // `namespaces/NS/RESOURCE/...` is a namespaced request, except `namespaces/NS` itself
    // and `namespaces/NS/status|finalize`, which address the Namespace object.
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && (rest[2] == "status" || rest[2] == "finalize"))
    {
        req.namespace = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    match rest {
        [resource] => req.resource = resource.to_string(),
        [resource, name] => {
            req.resource = resource.to_string();
            req.name = Some(name.to_string());
        }
        [resource, name, sub] => {
            req.resource = resource.to_string();
            req.name = Some(name.to_string());
            req.subresource = Some(sub.to_string());
        }
        [resource, name, sub, ..] => {
            // proxy subresources carry a trailing path; the first segment names the subresource
            req.resource = resource.to_string();
            req.name = Some(name.to_string());
            req.subresource = Some(sub.to_string());
        }
        [] => return Target::Other(path.to_string()),
    }
    Target::Resource(req)
}

/// Query parameters, decoded; repeated keys keep the last value (as Go's `Get`), except
/// where a handler asks for all of them.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
    last: HashMap<String, String>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut query = Query::default();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k);
            let v = percent_decode(v);
            query.last.insert(k.clone(), v.clone());
            query.pairs.push((k, v));
        }
        query
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.last.get(key).map(String::as_str)
    }

    /// A non-empty value, or None.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Go's `strconv.ParseBool`, as the API server reads `watch`, `force`, ...
    pub fn flag(&self, key: &str) -> Result<bool, String> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(format!("invalid boolean value {other:?} for {key}")),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, String> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("invalid value {v:?} for {key}: must be an integer")),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourceRequest {
        match parse_path(path) {
            Target::Resource(r) => r,
            other => panic!("{path} parsed as {other:?}"),
        }
    }

    #[test]
    fn namespaced_paths() {
        let r = res("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.resource, "pods");
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let r = res("/apis/apps/v1/deployments");
        assert_eq!((r.group.as_str(), r.namespace.clone()), ("apps", None));
    }

    #[test]
    fn namespace_objects_are_not_namespaced_requests() {
        let r = res("/api/v1/namespaces/demo");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace.clone()),
            ("namespaces", Some("demo"), None)
        );
        let r = res("/api/v1/namespaces/demo/finalize");
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
        let r = res("/api/v1/namespaces/demo/configmaps");
        assert_eq!(
            (r.resource.as_str(), r.namespace.as_deref()),
            ("configmaps", Some("demo"))
        );
    }

    #[test]
    fn legacy_watch_prefix() {
        let r = res("/api/v1/watch/namespaces/default/pods");
        assert!(r.watch_path);
        assert_eq!(r.resource, "pods");
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(
            parse_path("/apis"),
            Target::Discovery {
                group: None,
                version: None,
                legacy: false
            }
        );
        assert_eq!(
            parse_path("/apis/apps/v1"),
            Target::Discovery {
                group: Some("apps".into()),
                version: Some("v1".into()),
                legacy: false
            }
        );
    }

    #[test]
    fn query_tolerates_empty_pairs_and_decodes() {
        let q = Query::parse(Some("&watch=true&labelSelector=app%3Dweb%2Ctier+in+(a)&&"));
        assert_eq!(q.flag("watch"), Ok(true));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("force").is_ok());
        let bad = Query::parse(Some("x=%zz%4"));
        assert_eq!(bad.get("x"), Some("%zz%4"));
    }
}
