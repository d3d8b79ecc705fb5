//! Building HTTP responses: JSON objects, Status errors, streams.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use keelson_apimachinery::Status;
use serde_json::Value;

pub type Body = BoxBody<Bytes, std::io::Error>;
pub type Response = http::Response<Body>;

pub const JSON: &str = "application/json";

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

pub fn bytes_response(code: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response {
    let mut resp = http::Response::new(full(body));
    *resp.status_mut() = code;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

pub fn json(code: StatusCode, value: &Value) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => bytes_response(code, JSON, body),
        Err(err) => status(&Status::internal(err)),
    }
}

pub fn status(status: &Status) -> Response {
    let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json(code, &status.to_json());
    if let Some(seconds) = status.retry_after_seconds {
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    resp
}

pub fn text(code: StatusCode, body: &'static str) -> Response {
    bytes_response(code, "text/plain; charset=utf-8", body)
}

/// Adds `Warning: 299 - "..."` headers, as the API server reports field validation warnings.
pub fn add_warnings(resp: &mut Response, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
}
