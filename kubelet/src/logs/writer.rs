//! The writing half: container output → CRI records in one rotating file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use chrono::{NaiveDateTime, SubsecRound, TimeDelta, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;

use super::cri::{push_record, Stream};
use super::{
    list_rotated, rotated_path, with_suffix, LogLimits, COMPRESSED_SUFFIX, TEMPORARY_SUFFIX,
};

/// containerd creates container logs readable by the group (adm on most hosts).
const LOG_MODE: u32 = 0o640;
const READ_BUFFER: usize = 32 * 1024;

/// Copies a container's stdout and stderr into the CRI log at `log_path` until both reach
/// end of file, rotating it by `limits`. [`run_logger`](super::run_logger) is this on the
/// pipes the shim passes; it is public for runtimes that hold the streams themselves.
pub fn copy_streams(
    stdout: impl Read + Send,
    stderr: impl Read + Send,
    log_path: &Path,
    limits: &LogLimits,
) -> io::Result<()> {
    let log = LogFile::open(log_path, limits.clone())?;
    pump_both(stdout, stderr, &log);
    log.finish();
    Ok(())
}

pub(crate) fn pump_both(stdout: impl Read + Send, stderr: impl Read + Send, log: &LogFile) {
    std::thread::scope(|s| {
        s.spawn(|| pump(stdout, Stream::Stdout, log));
        pump(stderr, Stream::Stderr, log);
    });
}

/// One stream's copy loop, record for record what containerd's `redirectLogs` writes:
/// a line ending in `\n` (or `\r\n`, both dropped) is an `F` record; a line longer than
/// `max_line_size` is cut into `P` records of exactly that size before its `F` rest; what
/// is left without a newline at end of file is a final `P` record.
fn pump(mut input: impl Read, stream: Stream, log: &LogFile) {
    let max = log.limits.max_line_size.max(1);
    let mut buf = vec![0u8; READ_BUFFER];
    let mut pending = Vec::new();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // containerd treats a read error as end of stream too.
            Err(_) => break,
        };
        let mut chunk = &buf[..n];
        while let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            pending.extend_from_slice(&chunk[..i]);
            chunk = &chunk[i + 1..];
            if pending.last() == Some(&b'\r') {
                pending.pop();
            }
            write_partials(&mut pending, max, 0, stream, log);
            log.write_record(stream, false, &pending);
            pending.clear();
        }
        pending.extend_from_slice(chunk);
        // A trailing '\r' may be the start of "\r\n", which containerd drops rather than
        // counting it towards the line size.
        let held = usize::from(pending.last() == Some(&b'\r'));
        write_partials(&mut pending, max, held, stream, log);
    }
    write_partials(&mut pending, max, 0, stream, log);
    if !pending.is_empty() {
        log.write_record(stream, true, &pending);
    }
}

fn write_partials(pending: &mut Vec<u8>, max: usize, held: usize, stream: Stream, log: &LogFile) {
    let mut start = 0;
    while pending.len() - start - held > max {
        log.write_record(stream, true, &pending[start..start + max]);
        start += max;
    }
    pending.drain(..start);
}

/// The log file both streams write into, one whole record per `write(2)` under a lock so
/// that readers never see two records interleaved. Rotation renames the file under the
/// same lock; pruning and compressing the rotated files happens on a thread of its own so
/// that the container is not held up by gzip.
pub(crate) struct LogFile {
    path: PathBuf,
    limits: LogLimits,
    state: Mutex<State>,
    maintainer: Mutex<Option<Maintainer>>,
}

struct State {
    file: File,
    size: u64,
    /// Rotate once `size` reaches this; pushed further out after a failed rotation so
    /// that a broken directory does not cost a rename attempt per line.
    rotate_at: u64,
    /// The newest rotated name handed out, so that names stay unique and in order even
    /// when the file fills up more than once a second.
    last_rotated: Option<NaiveDateTime>,
    line: Vec<u8>,
}

struct Maintainer {
    wake: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_MODE)
        .open(path)
}

impl LogFile {
    pub(crate) fn open(path: &Path, mut limits: LogLimits) -> io::Result<LogFile> {
        limits.max_files = limits.max_files.max(2);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        let (wake, rx) = mpsc::channel::<()>();
        let thread = {
            let path = path.to_path_buf();
            let max_files = limits.max_files;
            std::thread::Builder::new()
                .name("log-rotation".into())
                .spawn(move || {
                    while rx.recv().is_ok() {
                        // Several rotations since the last pass need only one more pass.
                        while rx.try_recv().is_ok() {}
                        maintain(&path, max_files);
                    }
                })?
        };
        Ok(LogFile {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                file,
                size,
                rotate_at: limits.max_size,
                last_rotated: None,
                line: Vec::with_capacity(256),
            }),
            limits,
            maintainer: Mutex::new(Some(Maintainer { wake, thread })),
        })
    }

    /// Writes one record stamped now. Errors are dropped, as containerd drops them: the
    /// container's output must keep being drained whether or not the disk takes it.
    pub(crate) fn write_record(&self, stream: Stream, partial: bool, content: &[u8]) {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        st.line.clear();
        // Stamped under the lock so that times never go backwards within the file.
        push_record(&mut st.line, &Utc::now(), stream, partial, content);
        if st.file.write_all(&st.line).is_err() {
            return;
        }
        st.size += st.line.len() as u64;
        if self.limits.max_size > 0 && st.size >= st.rotate_at {
            if self.rotate(st).is_ok() {
                st.rotate_at = self.limits.max_size;
            } else {
                st.rotate_at = st.size.saturating_add(self.limits.max_size);
            }
        }
    }

    fn rotate(&self, st: &mut State) -> io::Result<()> {
        let now = Utc::now().naive_utc().trunc_subsecs(0);
        let newest = match st.last_rotated {
            Some(t) => Some(t),
            None => list_rotated(&self.path)?.rotated.last().map(|r| r.time),
        };
        let mut time = match newest {
            Some(newest) if newest >= now => newest + TimeDelta::seconds(1),
            _ => now,
        };
        let mut target = rotated_path(&self.path, time);
        while target.exists() || with_suffix(&target, COMPRESSED_SUFFIX).exists() {
            time += TimeDelta::seconds(1);
            target = rotated_path(&self.path, time);
        }
        fs::rename(&self.path, &target)?;
        match open_append(&self.path) {
            Ok(file) => {
                st.file = file;
                st.size = 0;
                st.last_rotated = Some(time);
                if let Some(m) = lock(&self.maintainer).as_ref() {
                    let _ = m.wake.send(());
                }
                Ok(())
            }
            Err(e) => {
                // Keep the old name so that readers still find the lines being written.
                let _ = fs::rename(&target, &self.path);
                Err(e)
            }
        }
    }

    /// Waits for pruning and compression to finish; later rotations are not tidied up.
    pub(crate) fn finish(&self) {
        let maintainer = lock(&self.maintainer).take();
        if let Some(Maintainer { wake, thread }) = maintainer {
            drop(wake);
            let _ = thread.join();
        }
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The kubelet's `rotateLog` minus the rename: drop the oldest rotated files until at most
/// `max_files - 1` remain next to the current one, and gzip all but the newest, which
/// `kubectl logs` still reads. Only this thread deletes or compresses, so it cannot race
/// itself; the writer only ever adds a newer name.
fn maintain(path: &Path, max_files: usize) {
    let Ok(listing) = list_rotated(path) else {
        return;
    };
    // Only this thread writes .tmp files, so any present now are from a crash.
    for tmp in &listing.temporary {
        let _ = fs::remove_file(tmp);
    }
    let mut files = listing.rotated;
    // Both X and X.gz: the compression got as far as the rename, so X.gz is complete.
    let mut i = 0;
    while i + 1 < files.len() {
        if files[i].time == files[i + 1].time && !files[i].compressed && files[i + 1].compressed {
            let _ = fs::remove_file(&files[i].path);
            files.remove(i);
        } else {
            i += 1;
        }
    }
    let keep = max_files.saturating_sub(1);
    let excess = files.len().saturating_sub(keep);
    for old in files.drain(..excess) {
        let _ = fs::remove_file(&old.path);
    }
    if let Some((_, older)) = files.split_last() {
        for f in older.iter().filter(|f| !f.compressed) {
            let _ = compress(&f.path);
        }
    }
}

/// As the kubelet's `compressLog`: gzip into `X.tmp`, rename to `X.gz`, remove `X`.
fn compress(path: &Path) -> io::Result<()> {
    let tmp = with_suffix(path, TEMPORARY_SUFFIX);
    let result = (|| {
        let mut src = File::open(path)?;
        let dst = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(LOG_MODE)
            .open(&tmp)?;
        let mut gz = GzEncoder::new(dst, Compression::default());
        io::copy(&mut src, &mut gz)?;
        gz.finish()?;
        fs::rename(&tmp, with_suffix(path, COMPRESSED_SUFFIX))?;
        fs::remove_file(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::cri::parse_record;
    use std::io::Cursor;
    use std::process::{Command, Stdio};

    fn records(path: &Path) -> Vec<(Stream, bool, Vec<u8>)> {
        let text = fs::read(path).expect("read log");
        records_of(&text)
    }

    fn records_of(text: &[u8]) -> Vec<(Stream, bool, Vec<u8>)> {
        assert!(text.is_empty() || text.ends_with(b"\n"));
        text.split_inclusive(|&b| b == b'\n')
            .map(|line| {
                let r = parse_record(line)
                    .unwrap_or_else(|| panic!("bad line {:?}", String::from_utf8_lossy(line)));
                (r.stream, r.partial, r.content.to_vec())
            })
            .collect()
    }

    #[test]
    fn formats_lines_as_containerd() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("pods/x/c/0.log");
        copy_streams(
            Cursor::new(b"one\ntwo\r\n\nthree\rfour\nno newline".to_vec()),
            Cursor::new(b"err\n".to_vec()),
            &log,
            &LogLimits::default(),
        )
        .expect("copy");
        let mut got = records(&log);
        // The two streams interleave in any order; each keeps its own.
        let err: Vec<_> = got
            .iter()
            .filter(|r| r.0 == Stream::Stderr)
            .cloned()
            .collect();
        got.retain(|r| r.0 == Stream::Stdout);
        assert_eq!(err, vec![(Stream::Stderr, false, b"err".to_vec())]);
        let want: Vec<(Stream, bool, Vec<u8>)> = vec![
            (Stream::Stdout, false, b"one".to_vec()),
            (Stream::Stdout, false, b"two".to_vec()),
            (Stream::Stdout, false, b"".to_vec()),
            (Stream::Stdout, false, b"three\rfour".to_vec()),
            (Stream::Stdout, true, b"no newline".to_vec()),
        ];
        assert_eq!(got, want);

        // RFC3339Nano in UTC, non-decreasing through the file.
        let text = fs::read_to_string(&log).expect("read");
        let mut last = None;
        for line in text.lines() {
            let stamp = line.split(' ').next().unwrap_or_default();
            let fraction = stamp.split_once('.').map_or("", |(_, f)| f);
            assert!(stamp.ends_with('Z') && !fraction.ends_with("0Z"), "{stamp}");
            let t = chrono::DateTime::parse_from_rfc3339(stamp).expect("rfc3339");
            assert!(last.is_none_or(|l| l <= t));
            last = Some(t);
        }
    }

    #[test]
    fn cuts_long_lines_into_partial_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let long: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let exact = vec![b'x'; 16 * 1024];
        let mut input = long.clone();
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(&exact);
        input.extend_from_slice(b"\r\n");
        // A pipe hands the data over in small pieces; split it at awkward places.
        let reader = Chunked {
            data: input,
            at: 0,
            sizes: vec![1, 4095, 12289, 16384, 7, 3],
        };
        copy_streams(reader, io::empty(), &log, &LogLimits::default()).expect("copy");
        let got = records(&log);
        let shape: Vec<(bool, usize)> = got.iter().map(|r| (r.1, r.2.len())).collect();
        assert_eq!(
            shape,
            vec![
                (true, 16384),
                (true, 16384),
                (false, 40_000 - 32768),
                (false, 16384)
            ]
        );
        let joined: Vec<u8> = got[..3].iter().flat_map(|r| r.2.clone()).collect();
        assert_eq!(joined, long);
    }

    struct Chunked {
        data: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
    }

    impl Read for Chunked {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self
                .sizes
                .get(self.at % self.sizes.len())
                .copied()
                .unwrap_or(1);
            self.at += 1;
            let n = size.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn copies_a_real_process_through_pipes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg("echo out; echo err >&2; printf 'a\\nb'; printf 'c\\n' >&2")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            panic!("no pipes");
        };
        copy_streams(out, err, &log, &LogLimits::default()).expect("copy");
        assert!(child.wait().expect("wait").success());
        let got = records(&log);
        let of = |s: Stream| -> Vec<(bool, Vec<u8>)> {
            got.iter()
                .filter(|r| r.0 == s)
                .map(|r| (r.1, r.2.clone()))
                .collect()
        };
        assert_eq!(
            of(Stream::Stdout),
            vec![
                (false, b"out".to_vec()),
                (false, b"a".to_vec()),
                (true, b"b".to_vec())
            ]
        );
        assert_eq!(
            of(Stream::Stderr),
            vec![(false, b"err".to_vec()), (false, b"c".to_vec())]
        );
    }

    #[test]
    fn rotates_compresses_and_prunes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        // Another container's files in the same directory must survive.
        fs::write(dir.path().join("1.log.20000101-000000.gz"), b"").expect("write");
        let limits = LogLimits {
            max_size: 1000,
            max_files: 4,
            ..LogLimits::default()
        };
        let mut input = Vec::new();
        for i in 0..400 {
            input.extend_from_slice(format!("line {i:04}\n").as_bytes());
        }
        copy_streams(Cursor::new(input), io::empty(), &log, &limits).expect("copy");

        let mut names: Vec<String> = fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("0.log"))
            .collect();
        names.sort();
        // Sorted: the current file, then the rotated ones oldest first.
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(names[0], "0.log");
        assert_eq!(
            names[1].len(),
            "0.log.20240101-120000.gz".len(),
            "{names:?}"
        );
        assert!(
            names[1].ends_with(".gz") && names[2].ends_with(".gz"),
            "{names:?}"
        );
        assert_eq!(names[3].len(), "0.log.20240101-120000".len(), "{names:?}");
        assert!(dir.path().join("1.log.20000101-000000.gz").exists());

        // Oldest to newest, what is left is one unbroken run ending with the last line.
        let mut lines = Vec::new();
        for name in [&names[1], &names[2], &names[3], &names[0]] {
            let bytes = fs::read(dir.path().join(name)).expect("read");
            let bytes = if name.ends_with(".gz") {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_end(&mut out)
                    .expect("gunzip");
                out
            } else {
                bytes
            };
            let size = bytes.len() as u64;
            if name != "0.log" {
                assert!((1000..1100).contains(&size), "{name}: {size}");
            }
            lines.extend(records_of(&bytes).into_iter().map(|r| r.2));
        }
        let first: usize = String::from_utf8_lossy(&lines[0][5..])
            .parse()
            .expect("number");
        let want: Vec<Vec<u8>> = (first..400)
            .map(|i| format!("line {i:04}").into_bytes())
            .collect();
        assert_eq!(lines, want);
    }

    #[test]
    fn maintain_cleans_up_after_a_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        for name in [
            "0.log.20240101-000000",
            "0.log.20240101-000000.gz",
            "0.log.20240101-000001.tmp",
            "0.log.20240101-000001",
            "0.log.20240101-000002",
        ] {
            fs::write(dir.path().join(name), b"x\n").expect("write");
        }
        maintain(&log, 5);
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "0.log.20240101-000000.gz",
                "0.log.20240101-000001.gz",
                "0.log.20240101-000002"
            ]
        );
    }
}
