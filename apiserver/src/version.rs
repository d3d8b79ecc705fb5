//! What `/version` reports. kubectl parses gitVersion as semver, Helm stores it as
//! `.Capabilities.KubeVersion`.

use serde_json::{json, Value};

pub const MAJOR: &str = "1";
pub const MINOR: &str = "34";
pub const GIT_VERSION: &str = "v1.34.0+keelson";

pub fn info() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", other => other }),
    })
}
