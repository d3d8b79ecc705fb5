//! Container logs in the Kubernetes (CRI) format, written by a logger process that
//! containerd's shim starts for each container, and read back for `kubectl logs`.
//!
//! # Writing
//!
//! The runtime creates each task with the stdio URI [`logger_uri`] returns,
//! `binary:///path/to/keelson?container-logger=/var/log/pods/.../0.log`. containerd's shim
//! (`pkg/process/io.go`, `NewBinaryIO`) then starts `keelson container-logger LOG_PATH`: it
//! turns every query key and its first value into two arguments (Go map order, which is
//! random, hence exactly one key), hands the container's stdout and stderr pipes to the
//! logger as fds 3 and 4 and a "wait" pipe as fd 5, and starts the container once the
//! logger has closed fd 5. [`run_logger`] is that process: it writes both streams into one
//! file in the format containerd's CRI plugin writes (`pkg/cri/io/logger.go`),
//!
//! ```text
//! 2016-10-06T00:17:09.669794202Z stdout F log content
//! 2016-10-06T00:17:09.669794203Z stderr P first 16 KiB of a longer line
//! ```
//!
//! and rotates it as the kubelet's container log manager would (`0.log.20240101-120000`,
//! older ones gzip-compressed, at most [`LogLimits::max_files`] files), because with a
//! logger of our own there is nobody to ask for `ReopenContainerLog`. Rotated names are in
//! UTC, and move a second into the future when a file fills up within the same second,
//! so that they stay unique and sort in the order they were written.
//!
//! # Reading
//!
//! [`write_log`] serves `GET .../pods/NAME/log` the way the kubelet's `ReadLogs` does:
//! it parses the records, joins partial ones, and applies tail, since, timestamps,
//! limitBytes, stream and follow.

mod cri;
mod logger;
mod reader;
mod writer;

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;

pub use logger::{run_logger, run_logger_from_args, LOGGER_SUBCOMMAND};
pub use reader::{since_from, write_log, LogOptions, LogStream};
pub use writer::copy_streams;

/// When a container's log file is rotated and how many files are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLimits {
    /// Rotate once the current file has reached this many bytes (the kubelet's
    /// `containerLogMaxSize`); 0 never rotates.
    pub max_size: u64,
    /// At most this many files per container, the current one included (the kubelet's
    /// `containerLogMaxFiles`). Values below 2 count as 2, as the kubelet rejects them.
    pub max_files: usize,
    /// Longer lines are split into partial (`P`) records of this many bytes (containerd's
    /// `max_container_log_line_size`).
    pub max_line_size: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_size: 10 * 1024 * 1024,
            max_files: 5,
            max_line_size: 16 * 1024,
        }
    }
}

/// The stdio URI that makes containerd's shim run this binary as the container's logger:
/// `binary:///path/to/keelson?container-logger=/var/log/pods/.../0.log`. Set it as both
/// the task's stdout and stderr (containerd's `cio.LogURI`). `binary` must be absolute
/// (e.g. `std::env::current_exe()`): the shim runs the URI's path as it is.
pub fn logger_uri(binary: &Path, log_path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("binary://");
    percent_encode(&mut uri, binary.as_os_str().as_bytes());
    uri.push('?');
    uri.push_str(LOGGER_SUBCOMMAND);
    uri.push('=');
    percent_encode(&mut uri, log_path.as_os_str().as_bytes());
    uri
}

/// Percent-encodes everything but unreserved characters and `/`. Go's `url.Parse` decodes
/// the path and `url.ParseQuery` the value, and the latter would otherwise turn `+` into a
/// space, split at `&` and drop keys that contain `;`.
fn percent_encode(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// The kubelet's name for rotated files: `0.log.20240101-120000` (`.gz` once compressed).
const ROTATED_TIME_FORMAT: &str = "%Y%m%d-%H%M%S";
const COMPRESSED_SUFFIX: &str = ".gz";
const TEMPORARY_SUFFIX: &str = ".tmp";

/// One rotated file of a container log.
#[derive(Debug, Clone)]
struct Rotated {
    time: NaiveDateTime,
    path: PathBuf,
    compressed: bool,
}

/// The rotated files next to `path`, oldest first, and leftovers of an interrupted
/// compression (`0.log.20240101-120000.tmp`). Names that are neither are left alone: they
/// belong to someone else.
#[derive(Debug, Default)]
struct Listing {
    rotated: Vec<Rotated>,
    temporary: Vec<PathBuf>,
}

fn list_rotated(path: &Path) -> std::io::Result<Listing> {
    let mut listing = Listing::default();
    let (Some(dir), Some(base)) = (path.parent(), path.file_name()) else {
        return Ok(listing);
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Some(base) = base.to_str() else {
        return Ok(listing);
    };
    let prefix = format!("{base}.");
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if let Some(stamp) = rest.strip_suffix(TEMPORARY_SUFFIX) {
            if parse_rotated_time(stamp).is_some() {
                listing.temporary.push(entry.path());
            }
            continue;
        }
        let (stamp, compressed) = match rest.strip_suffix(COMPRESSED_SUFFIX) {
            Some(stamp) => (stamp, true),
            None => (rest, false),
        };
        if let Some(time) = parse_rotated_time(stamp) {
            listing.rotated.push(Rotated {
                time,
                path: entry.path(),
                compressed,
            });
        }
    }
    listing.rotated.sort_by_key(|r| (r.time, r.compressed));
    Ok(listing)
}

fn parse_rotated_time(stamp: &str) -> Option<NaiveDateTime> {
    let time = NaiveDateTime::parse_from_str(stamp, ROTATED_TIME_FORMAT).ok()?;
    // chrono accepts wider fields than it writes; only exact names sort correctly.
    (time.format(ROTATED_TIME_FORMAT).to_string() == stamp).then_some(time)
}

fn rotated_path(path: &Path, time: NaiveDateTime) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".");
    name.push(time.format(ROTATED_TIME_FORMAT).to_string());
    PathBuf::from(name)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `url.Parse` + `url.ParseQuery` + `NewBinaryCmd`, reduced to what the shim does
    /// with our URI: the path to run and the two arguments.
    fn shim_command(uri: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
        fn unescape(s: &str, plus_is_space: bool) -> Vec<u8> {
            let b = s.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'%' => {
                        let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("hex");
                        out.push(u8::from_str_radix(hex, 16).expect("hex"));
                        i += 3;
                    }
                    b'+' if plus_is_space => {
                        out.push(b' ');
                        i += 1;
                    }
                    c => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            out
        }
        let rest = uri.strip_prefix("binary://").expect("scheme");
        assert!(!rest.contains('#'), "a fragment would be cut off: {uri}");
        let (path, query) = rest.split_once('?').expect("query");
        let mut args = Vec::new();
        for pair in query.split('&') {
            assert!(!pair.contains(';'), "Go drops keys with ';': {uri}");
            let (k, v) = pair.split_once('=').expect("key=value");
            args.push(unescape(k, true));
            args.push(unescape(v, true));
        }
        (unescape(path, false), args)
    }

    #[test]
    fn logger_uri_runs_the_subcommand_with_the_path() {
        let uri = logger_uri(
            Path::new("/usr/local/bin/keelson"),
            Path::new("/var/log/pods/default_web-0_1234/nginx/0.log"),
        );
        assert_eq!(
            uri,
            "binary:///usr/local/bin/keelson?container-logger=/var/log/pods/default_web-0_1234/nginx/0.log"
        );
        let (path, args) = shim_command(&uri);
        assert_eq!(path, b"/usr/local/bin/keelson");
        assert_eq!(
            args,
            vec![
                b"container-logger".to_vec(),
                b"/var/log/pods/default_web-0_1234/nginx/0.log".to_vec()
            ]
        );
    }

    #[test]
    fn logger_uri_escapes_what_go_would_decode() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let binary = Path::new("/opt/my bins/kee+son%");
        let log: &[u8] = b"/var/log/a b+c&d=e;f#g?h%i\xff/0.log";
        let uri = logger_uri(binary, Path::new(OsStr::from_bytes(log)));
        let (path, args) = shim_command(&uri);
        assert_eq!(path, b"/opt/my bins/kee+son%");
        assert_eq!(args, vec![b"container-logger".to_vec(), log.to_vec()]);
    }

    #[test]
    fn rotated_names_parse_only_when_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        for name in [
            "0.log",
            "0.log.20240101-120000",
            "0.log.20231231-235959.gz",
            "0.log.20240101-120001.tmp",
            "0.log.2024101-120000",
            "0.log.20240101-120000x",
            "1.log.20240101-120000",
            "0.logx.20240101-120000",
        ] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        let listing = list_rotated(&log).expect("list");
        let names: Vec<_> = listing
            .rotated
            .iter()
            .map(|r| r.path.file_name().and_then(|n| n.to_str()).unwrap_or(""))
            .collect();
        assert_eq!(names, ["0.log.20231231-235959.gz", "0.log.20240101-120000"]);
        assert_eq!(listing.temporary.len(), 1);
    }
}
