//! The `tracing` subscriber every Keelson binary installs.

use tracing_subscriber::EnvFilter;

/// Default filter when `RUST_LOG` is unset, empty or invalid.
pub const DEFAULT_FILTER: &str = "info";

/// The filter from `RUST_LOG`, or [`DEFAULT_FILTER`].
pub fn env_filter() -> EnvFilter {
    filter_from(std::env::var("RUST_LOG").ok().as_deref())
}

fn filter_from(spec: Option<&str>) -> EnvFilter {
    match spec {
        Some(spec) if !spec.trim().is_empty() => EnvFilter::try_new(spec).unwrap_or_else(|e| {
            eprintln!("invalid RUST_LOG {spec:?} ({e}); using {DEFAULT_FILTER:?}");
            EnvFilter::new(DEFAULT_FILTER)
        }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    }
}

/// Installs a formatting subscriber writing to stderr, filtered by `RUST_LOG`
/// (default `info`). Returns false (and changes nothing) when a global
/// subscriber was already installed, so calling it twice is harmless.
pub fn init_tracing() -> bool {
    tracing_subscriber::fmt()
        .with_env_filter(env_filter())
        .with_writer(std::io::stderr)
        .try_init()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::filter_from;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn default_is_info() {
        assert_eq!(filter_from(None).max_level_hint(), Some(LevelFilter::INFO));
        assert_eq!(
            filter_from(Some("  ")).max_level_hint(),
            Some(LevelFilter::INFO)
        );
    }

    #[test]
    fn rust_log_is_honoured_and_garbage_falls_back() {
        assert_eq!(
            filter_from(Some("debug")).max_level_hint(),
            Some(LevelFilter::DEBUG)
        );
        assert_eq!(
            filter_from(Some("warn,keelson_common=trace")).max_level_hint(),
            Some(LevelFilter::TRACE)
        );
        assert!(tracing_subscriber::EnvFilter::try_new("keelson=[[[").is_err());
        assert_eq!(
            filter_from(Some("keelson=[[[")).max_level_hint(),
            Some(LevelFilter::INFO)
        );
    }
}
