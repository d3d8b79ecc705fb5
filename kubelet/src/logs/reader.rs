//! The reading half: what `kubectl logs` gets, as the kubelet's `ReadLogs` produces it.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::cri::{parse_record, push_time, Stream};
use super::list_rotated;

/// How often a followed log is checked for new lines and for rotation.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// Partial records are joined into one line up to this size; a stream that never ends its
/// line must not make the reader buffer without bound.
const MAX_JOINED: usize = 1024 * 1024;
const READ_BUFFER: usize = 64 * 1024;

/// Which of a container's streams to show (`PodLogOptions.stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
    All,
}

/// `PodLogOptions` as the reader needs them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// Only the last this many lines that exist when the request starts; `None` or
    /// negative for all of them.
    pub tail_lines: Option<i64>,
    /// Only lines stamped at or after this (see [`since_from`]).
    pub since: Option<DateTime<Utc>>,
    /// Prefix each line with its time, `2016-10-06T00:17:09.669794202Z `.
    pub timestamps: bool,
    /// Stop after this many bytes, in the middle of a line if need be; negative for no
    /// limit.
    pub limit_bytes: Option<i64>,
    /// Keep writing lines as they are appended, until the `stop` future of [`write_log`]
    /// resolves.
    pub follow: bool,
    /// `None` is [`LogStream::All`].
    pub stream: Option<LogStream>,
}

/// The `since` of [`LogOptions`] from `PodLogOptions.sinceSeconds` and `.sinceTime`: the
/// later of the two, as the kubelet's `NewLogOptions` computes it.
pub fn since_from(
    since_seconds: Option<i64>,
    since_time: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let by_seconds = since_seconds
        .and_then(TimeDelta::try_seconds)
        .and_then(|d| now.checked_sub_signed(d));
    match (by_seconds, since_time) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Writes the log of the container whose current log file is `path` into `out`, as the
/// kubelet's `ReadLogs` does: partial records are joined into their lines, and tail,
/// since, timestamps, limit_bytes and stream apply to those lines. Unlike `ReadLogs` it
/// also reads the newest rotated file (`0.log.20240101-120000`, still uncompressed), so
/// that a fresh rotation does not empty `kubectl logs`, and a follow keeps going across
/// rotations.
///
/// With `opts.follow`, lines appended later are written as they come (the file is polled
/// every 200 ms) until `stop` resolves, which the caller makes happen once the container
/// has finished: then the rest of the file is written and the call returns. `stop` is not
/// polled without `follow`. Dropping the returned future stops it at once, e.g. when the
/// client has gone.
pub async fn write_log<W, S>(path: &Path, opts: &LogOptions, out: W, stop: S) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    S: Future<Output = ()>,
{
    let mut current = FileReader::open(path).await?;
    let mut session = Session::new(opts, out);
    let history = {
        let path = path.to_path_buf();
        let id = current.id;
        tokio::task::spawn_blocking(move || rotated_after(&path, None, &[id]))
            .await
            .map_err(io::Error::other)??
    };
    if session.read_files(history).await? == Flow::Stop {
        return session.finish().await;
    }
    if session.read(&mut current, !opts.follow).await? == Flow::Stop
        || session.end_of_history(!opts.follow).await? == Flow::Stop
        || !opts.follow
    {
        return session.finish().await;
    }
    session.out.flush().await?;

    tokio::pin!(stop);
    let mut stopping = false;
    loop {
        if let Some(next) = reopen_if_rotated(path, &current).await? {
            // The writer renames before it creates the new file, so the old one is complete.
            if session.read(&mut current, true).await? == Flow::Stop {
                return session.finish().await;
            }
            // More than one rotation since the last look: read the files in between.
            let between = {
                let path = path.to_path_buf();
                let (old, new) = (current.id, next.id);
                tokio::task::spawn_blocking(move || rotated_after(&path, Some(old), &[old, new]))
                    .await
                    .map_err(io::Error::other)??
            };
            if session.read_files(between).await? == Flow::Stop {
                return session.finish().await;
            }
            current = next;
        } else if stopping {
            if session.read(&mut current, true).await? == Flow::Stop {
                return session.finish().await;
            }
            session.end_of_history(true).await?;
            return session.finish().await;
        } else {
            tokio::select! {
                () = &mut stop => {
                    stopping = true;
                    // The logger may still be writing what the container wrote last.
                    tokio::time::sleep(FOLLOW_POLL).await;
                }
                () = tokio::time::sleep(FOLLOW_POLL) => {}
            }
        }
        if session.read(&mut current, false).await? == Flow::Stop {
            return session.finish().await;
        }
        session.out.flush().await?;
    }
}

/// A file's identity, to notice that the path now names another file.
type FileId = (u64, u64);

/// The uncompressed rotated files of `path`, oldest first, other than the files `skip`
/// and, with `after`, only those newer than the rotated file that is `after`.
fn rotated_after(path: &Path, after: Option<FileId>, skip: &[FileId]) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut seen_after = after.is_none();
    for r in list_rotated(path)?.rotated {
        if r.compressed {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&r.path) else {
            continue;
        };
        let id = (meta.dev(), meta.ino());
        if Some(id) == after {
            seen_after = true;
        } else if seen_after && !skip.contains(&id) {
            files.push(r.path);
        }
    }
    Ok(files)
}

async fn reopen_if_rotated(path: &Path, current: &FileReader) -> io::Result<Option<FileReader>> {
    match tokio::fs::metadata(path).await {
        Ok(meta) if (meta.dev(), meta.ino()) != current.id => match FileReader::open(path).await {
            Ok(next) => Ok(Some(next)),
            // Renamed, and the new file is not there yet.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        },
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

struct FileReader {
    inner: BufReader<tokio::fs::File>,
    /// The line being read; at end of file, what has been written of it so far.
    line: Vec<u8>,
    id: FileId,
}

impl FileReader {
    async fn open(path: &Path) -> io::Result<FileReader> {
        let file = tokio::fs::File::open(path).await?;
        let meta = file.metadata().await?;
        Ok(FileReader {
            inner: BufReader::with_capacity(READ_BUFFER, file),
            line: Vec::new(),
            id: (meta.dev(), meta.ino()),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

/// One line as shown: the time of its first record, and its bytes with the `\n` unless
/// it is still unfinished.
struct Line {
    time: DateTime<Utc>,
    text: Vec<u8>,
}

struct Session<'a, W> {
    opts: &'a LogOptions,
    out: W,
    remain: Option<u64>,
    /// Partial records of each stream waiting for the rest of their line.
    pending: [Option<Line>; 2],
    /// While reading what was there before the request: the last `n` lines so far.
    tail: Option<(usize, VecDeque<Line>)>,
}

impl<'a, W: AsyncWrite + Unpin> Session<'a, W> {
    fn new(opts: &'a LogOptions, out: W) -> Self {
        Session {
            opts,
            out,
            remain: opts.limit_bytes.and_then(|b| u64::try_from(b).ok()),
            pending: [None, None],
            tail: opts
                .tail_lines
                .and_then(|n| usize::try_from(n).ok())
                .map(|n| (n, VecDeque::new())),
        }
    }

    async fn finish(mut self) -> io::Result<()> {
        self.out.flush().await
    }

    async fn read_files(&mut self, paths: Vec<PathBuf>) -> io::Result<Flow> {
        for path in paths {
            let mut file = match FileReader::open(&path).await {
                Ok(file) => file,
                // Compressed or pruned since it was listed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if self.read(&mut file, true).await? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Go)
    }

    /// Reads to the end of the file. An unfinished last line is kept for the next call
    /// unless the file is `complete` (will not grow), in which case it is taken as it is,
    /// as `ReadLogs` does.
    async fn read(&mut self, file: &mut FileReader, complete: bool) -> io::Result<Flow> {
        loop {
            file.inner.read_until(b'\n', &mut file.line).await?;
            if file.line.last() != Some(&b'\n') {
                break;
            }
            let flow = self.record(&file.line).await?;
            file.line.clear();
            if flow == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        if complete && !file.line.is_empty() {
            let rest = std::mem::take(&mut file.line);
            return self.record(&rest).await;
        }
        Ok(Flow::Go)
    }

    async fn record(&mut self, raw: &[u8]) -> io::Result<Flow> {
        // ReadLogs skips lines it cannot parse, too.
        let Some(rec) = parse_record(raw) else {
            return Ok(Flow::Go);
        };
        let wanted = match self.opts.stream.unwrap_or(LogStream::All) {
            LogStream::All => true,
            LogStream::Stdout => rec.stream == Stream::Stdout,
            LogStream::Stderr => rec.stream == Stream::Stderr,
        };
        if !wanted {
            return Ok(Flow::Go);
        }
        let slot = &mut self.pending[rec.stream.index()];
        let mut line = slot.take().unwrap_or_else(|| Line {
            time: rec.time,
            text: Vec::new(),
        });
        line.text.extend_from_slice(rec.content);
        if rec.partial {
            if line.text.len() < MAX_JOINED {
                *slot = Some(line);
                return Ok(Flow::Go);
            }
        } else if raw.ends_with(b"\n") {
            line.text.push(b'\n');
        }
        self.line(line).await
    }

    async fn line(&mut self, line: Line) -> io::Result<Flow> {
        if let Some((n, kept)) = &mut self.tail {
            if *n > 0 {
                if kept.len() == *n {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
            return Ok(Flow::Go);
        }
        self.emit(&line).await
    }

    /// Everything written before the request has been read: the tail is known. Without
    /// follow (`flush_partials`), lines still unfinished count as lines too.
    async fn end_of_history(&mut self, flush_partials: bool) -> io::Result<Flow> {
        if flush_partials {
            let mut rest: Vec<Line> = self.pending.iter_mut().filter_map(Option::take).collect();
            rest.sort_by_key(|l| l.time);
            for line in rest {
                if self.line(line).await? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
        }
        if let Some((_, kept)) = self.tail.take() {
            for line in kept {
                if self.emit(&line).await? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
        }
        Ok(Flow::Go)
    }

    async fn emit(&mut self, line: &Line) -> io::Result<Flow> {
        if self.remain == Some(0) {
            return Ok(Flow::Stop);
        }
        if self.opts.since.is_some_and(|since| line.time < since) {
            return Ok(Flow::Go);
        }
        let prefixed;
        let bytes: &[u8] = if self.opts.timestamps {
            let mut b = Vec::with_capacity(31 + line.text.len());
            push_time(&mut b, &line.time, true);
            b.push(b' ');
            b.extend_from_slice(&line.text);
            prefixed = b;
            &prefixed
        } else {
            &line.text
        };
        let n = match self.remain {
            Some(r) => bytes.len().min(usize::try_from(r).unwrap_or(usize::MAX)),
            None => bytes.len(),
        };
        self.out.write_all(&bytes[..n]).await?;
        if let Some(r) = &mut self.remain {
            *r -= n as u64;
            if *r == 0 {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Go)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::fs;
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    fn t(secs: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, secs)
            .single()
            .expect("valid time")
    }

    fn rec(secs: u32, stream: &str, tag: &str, content: &str) -> String {
        format!("2024-01-01T00:00:{secs:02}.5Z {stream} {tag} {content}\n")
    }

    /// stdout "a", stdout "b1b2" and stderr "e1e2" in pieces, an unparsable line, "c".
    fn sample() -> String {
        [
            rec(1, "stdout", "F", "a"),
            rec(2, "stderr", "P", "e1"),
            rec(3, "stdout", "P", "b1"),
            rec(4, "stdout", "F", "b2"),
            "not a record\n".to_string(),
            rec(5, "stderr", "F", "e2"),
            rec(6, "stdout", "F", "c"),
        ]
        .concat()
    }

    async fn read(path: &Path, opts: LogOptions) -> String {
        let mut out = Vec::new();
        write_log(path, &opts, &mut out, std::future::pending())
            .await
            .expect("write_log");
        String::from_utf8(out).expect("utf-8")
    }

    #[tokio::test]
    async fn options_apply_as_in_the_kubelet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        fs::write(&log, sample()).expect("write");
        let o = LogOptions::default;

        assert_eq!(read(&log, o()).await, "a\nb1b2\ne1e2\nc\n");
        assert_eq!(
            read(
                &log,
                LogOptions {
                    timestamps: true,
                    ..o()
                }
            )
            .await,
            "2024-01-01T00:00:01.500000000Z a\n\
             2024-01-01T00:00:03.500000000Z b1b2\n\
             2024-01-01T00:00:02.500000000Z e1e2\n\
             2024-01-01T00:00:06.500000000Z c\n"
        );
        let tail = |n| LogOptions {
            tail_lines: Some(n),
            ..o()
        };
        assert_eq!(read(&log, tail(2)).await, "e1e2\nc\n");
        assert_eq!(read(&log, tail(0)).await, "");
        assert_eq!(read(&log, tail(-1)).await, "a\nb1b2\ne1e2\nc\n");
        assert_eq!(read(&log, tail(100)).await, "a\nb1b2\ne1e2\nc\n");
        let since = |s| LogOptions {
            since: Some(t(s)),
            ..o()
        };
        assert_eq!(read(&log, since(3)).await, "b1b2\nc\n");
        // Tail first, then since, as ReadLogs.
        assert_eq!(
            read(
                &log,
                LogOptions {
                    since: Some(t(3)),
                    ..tail(2)
                }
            )
            .await,
            "c\n"
        );
        let limit = |n| LogOptions {
            limit_bytes: Some(n),
            ..o()
        };
        assert_eq!(read(&log, limit(5)).await, "a\nb1b");
        assert_eq!(read(&log, limit(0)).await, "");
        assert_eq!(read(&log, limit(-1)).await, "a\nb1b2\ne1e2\nc\n");
        let stream = |s| LogOptions {
            stream: Some(s),
            ..o()
        };
        assert_eq!(read(&log, stream(LogStream::Stdout)).await, "a\nb1b2\nc\n");
        assert_eq!(read(&log, stream(LogStream::Stderr)).await, "e1e2\n");
        assert_eq!(
            read(
                &log,
                LogOptions {
                    stream: Some(LogStream::Stderr),
                    ..tail(1)
                }
            )
            .await,
            "e1e2\n"
        );
    }

    #[tokio::test]
    async fn unfinished_lines_at_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let text = [rec(1, "stdout", "F", "a"), rec(2, "stdout", "P", "part")].concat()
            + "2024-01-01T00:00:03Z stderr F half-writ";
        fs::write(&log, text).expect("write");
        assert_eq!(read(&log, LogOptions::default()).await, "a\nhalf-writpart");
    }

    #[tokio::test]
    async fn reads_the_newest_rotated_file_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        fs::write(dir.path().join("0.log.20240101-000000.gz"), "not read").expect("write");
        fs::write(
            dir.path().join("1.log.20240101-000001"),
            rec(0, "stdout", "F", "other"),
        )
        .expect("write");
        fs::write(
            dir.path().join("0.log.20240101-000001"),
            [rec(1, "stdout", "F", "old"), rec(2, "stdout", "P", "spl")].concat(),
        )
        .expect("write");
        fs::write(
            &log,
            [rec(3, "stdout", "F", "it"), rec(4, "stdout", "F", "new")].concat(),
        )
        .expect("write");
        assert_eq!(read(&log, LogOptions::default()).await, "old\nsplit\nnew\n");
        let tail2 = LogOptions {
            tail_lines: Some(2),
            ..LogOptions::default()
        };
        assert_eq!(read(&log, tail2).await, "split\nnew\n");
    }

    #[tokio::test]
    async fn missing_log_is_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = write_log(
            &dir.path().join("0.log"),
            &LogOptions::default(),
            &mut Vec::new(),
            std::future::pending(),
        )
        .await
        .expect_err("no file");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    fn append(path: &Path, text: &str) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open");
        f.write_all(text.as_bytes()).expect("append");
    }

    async fn read_until(client: &mut tokio::io::DuplexStream, got: &mut Vec<u8>, want: &str) {
        let mut buf = [0u8; 1024];
        while !got.ends_with(want.as_bytes()) {
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
                .await
                .expect("in time")
                .expect("read");
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(got));
            got.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn follows_appends_and_rotations_until_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        fs::write(
            &log,
            [rec(1, "stdout", "F", "one"), rec(2, "stdout", "F", "two")].concat(),
        )
        .expect("write");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let reader = {
            let log = log.clone();
            tokio::spawn(async move {
                let opts = LogOptions {
                    follow: true,
                    tail_lines: Some(1),
                    ..LogOptions::default()
                };
                let stop = async {
                    let _ = stop_rx.await;
                };
                write_log(&log, &opts, server, stop).await
            })
        };
        let mut got = Vec::new();
        read_until(&mut client, &mut got, "two\n").await;

        append(
            &log,
            &(rec(3, "stdout", "F", "three") + &rec(4, "stderr", "P", "sp")),
        );
        read_until(&mut client, &mut got, "three\n").await;

        // Rotate twice before the reader looks again; the line split across files is joined.
        fs::rename(&log, dir.path().join("0.log.20240101-000001")).expect("rotate");
        append(
            &log,
            &(rec(5, "stderr", "F", "lit") + &rec(6, "stdout", "F", "four")),
        );
        fs::rename(&log, dir.path().join("0.log.20240101-000002")).expect("rotate");
        append(&log, &rec(7, "stdout", "F", "five"));
        read_until(&mut client, &mut got, "five\n").await;

        append(&log, &rec(8, "stdout", "P", "last, unfinished"));
        stop_tx.send(()).expect("reader alive");
        reader.await.expect("join").expect("write_log");
        client.read_to_end(&mut got).await.expect("read rest");
        assert_eq!(
            String::from_utf8_lossy(&got),
            "two\nthree\nsplit\nfour\nfive\nlast, unfinished"
        );
    }

    #[test]
    fn finds_the_files_rotated_in_between() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let id = |p: &Path| {
            let m = fs::metadata(p).expect("stat");
            (m.dev(), m.ino())
        };
        let names = [
            "0.log.20240101-000000.gz",
            "0.log.20240101-000001",
            "0.log.20240101-000002",
            "0.log.20240101-000003",
        ];
        for name in names {
            fs::write(dir.path().join(name), "x").expect("write");
        }
        fs::write(&log, "x").expect("write");
        let old = id(&dir.path().join(names[1]));
        let new = id(&log);
        let between = rotated_after(&log, Some(old), &[old, new]).expect("list");
        assert_eq!(
            between,
            [dir.path().join(names[2]), dir.path().join(names[3])]
        );
        let all = rotated_after(&log, None, &[new]).expect("list");
        assert_eq!(all.len(), 3);
        // The old file is gone (compressed): nothing can be said about what came after it.
        let gone = (u64::MAX, u64::MAX);
        assert!(rotated_after(&log, Some(gone), &[new])
            .expect("list")
            .is_empty());
    }

    #[tokio::test]
    async fn follow_of_a_finished_container_ends_at_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        fs::write(&log, rec(1, "stdout", "F", "done")).expect("write");
        let opts = LogOptions {
            follow: true,
            limit_bytes: Some(100),
            ..LogOptions::default()
        };
        let mut out = Vec::new();
        write_log(&log, &opts, &mut out, std::future::ready(()))
            .await
            .expect("write_log");
        assert_eq!(out, b"done\n");
    }

    #[test]
    fn since_is_the_later_of_both() {
        let now = t(50);
        assert_eq!(since_from(None, None, now), None);
        assert_eq!(since_from(Some(10), None, now), Some(t(40)));
        assert_eq!(since_from(Some(10), Some(t(45)), now), Some(t(45)));
        assert_eq!(since_from(Some(10), Some(t(30)), now), Some(t(40)));
        assert_eq!(since_from(Some(i64::MAX), Some(t(30)), now), Some(t(30)));
    }
}
