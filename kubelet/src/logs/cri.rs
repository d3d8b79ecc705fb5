//! The CRI log record: `TIMESTAMP STREAM TAG CONTENT\n`, as containerd writes it and the
//! kubelet parses it.

use std::io::Write;

use chrono::{DateTime, Datelike, Timelike, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn as_bytes(self) -> &'static [u8] {
        match self {
            Stream::Stdout => b"stdout",
            Stream::Stderr => b"stderr",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// One parsed record; `content` excludes the line's `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub time: DateTime<Utc>,
    pub stream: Stream,
    pub partial: bool,
    pub content: &'a [u8],
}

/// Appends `t` in Go's `time.RFC3339Nano` (`fixed == false`: trailing zeros of the
/// fraction dropped, as containerd writes records) or in the kubelet's `RFC3339NanoFixed`
/// (always nine digits, as `kubectl logs --timestamps` shows them).
pub(crate) fn push_time(out: &mut Vec<u8>, t: &DateTime<Utc>, fixed: bool) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    // chrono encodes a leap second as nanoseconds >= 1e9; Go has no such second.
    let nanos = t.nanosecond().min(999_999_999);
    if fixed {
        let _ = write!(out, ".{nanos:09}");
    } else if nanos != 0 {
        let mut digits = format!("{nanos:09}");
        while digits.ends_with('0') {
            digits.pop();
        }
        let _ = write!(out, ".{digits}");
    }
    out.push(b'Z');
}

/// Appends one record, `\n` included.
pub(crate) fn push_record(
    out: &mut Vec<u8>,
    t: &DateTime<Utc>,
    stream: Stream,
    partial: bool,
    content: &[u8],
) {
    push_time(out, t, false);
    out.push(b' ');
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// Parses one line of a log file (with or without its `\n`) as the kubelet's
/// `parseCRILog` does; `None` for lines it would reject.
pub(crate) fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let (time, rest) = split_space(line)?;
    let time = DateTime::parse_from_rfc3339(std::str::from_utf8(time).ok()?)
        .ok()?
        .with_timezone(&Utc);
    let (stream, rest) = split_space(rest)?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let (tags, content) = split_space(rest)?;
    // Tags are `:`-separated for forward compatibility; the first one is P or F.
    let partial = tags.split(|&b| b == b':').next() == Some(b"P");
    Some(Record {
        time,
        stream,
        partial,
        content,
    })
}

fn split_space(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|&c| c == b' ')?;
    Some((&b[..i], &b[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(nanos: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2016, 10, 6, 0, 17, 9)
            .single()
            .expect("valid time")
            .with_nanosecond(nanos)
            .expect("valid nanos")
    }

    fn text(t: &DateTime<Utc>, fixed: bool) -> String {
        let mut v = Vec::new();
        push_time(&mut v, t, fixed);
        String::from_utf8(v).expect("ascii")
    }

    #[test]
    fn times_match_go() {
        assert_eq!(
            text(&at(669_794_202), false),
            "2016-10-06T00:17:09.669794202Z"
        );
        assert_eq!(text(&at(500_000_000), false), "2016-10-06T00:17:09.5Z");
        assert_eq!(text(&at(0), false), "2016-10-06T00:17:09Z");
        assert_eq!(text(&at(0), true), "2016-10-06T00:17:09.000000000Z");
        assert_eq!(text(&at(5), true), "2016-10-06T00:17:09.000000005Z");
    }

    #[test]
    fn records_round_trip() {
        let mut v = Vec::new();
        push_record(&mut v, &at(1_000), Stream::Stderr, true, b"a b  c");
        assert_eq!(v, b"2016-10-06T00:17:09.000001Z stderr P a b  c\n");
        let r = parse_record(&v).expect("parses");
        assert_eq!(
            r,
            Record {
                time: at(1_000),
                stream: Stream::Stderr,
                partial: true,
                content: b"a b  c"
            }
        );
    }

    #[test]
    fn parses_what_the_kubelet_parses() {
        let r = parse_record(b"2016-10-06T02:17:09.5+02:00 stdout F:x \n").expect("parses");
        assert_eq!(r.time, at(500_000_000));
        assert!(!r.partial);
        assert_eq!(r.content, b"");
        for bad in [
            &b"garbage"[..],
            b"2016-10-06T00:17:09Z stdin F x",
            b"2016-10-06T00:17:09Z stdout",
            b"2016-10-06T00:17:09Z stdout F",
            b"yesterday stdout F x",
        ] {
            assert!(parse_record(bad).is_none(), "{bad:?}");
        }
    }
}
