//! Container log files as the runtime writes them (the CRI log format), read the way the
//! kubelet serves `kubectl logs`: `<RFC3339Nano time> <stdout|stderr> <P|F> <text>`, one
//! entry a line; a partial entry (`P`) loses its newline, so the text of a long line split by
//! the runtime comes out joined. Options follow PodLogOptions: the last `tailLines` lines,
//! entries since a time, at most `limitBytes` bytes, each prefixed with its time, and
//! `follow` keeps reading while the container runs (upstream's
//! pkg/kubelet/kuberuntime/logs: the file is polled here where upstream waits on inotify
//! with the same one-second re-check, and a file replaced by rotation is reopened).

use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::mpsc;

/// How long a follower waits between looks at a log file with nothing new.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// How often a follower asks whether the container still runs (upstream re-checks every
/// second when no write wakes it).
const RUNNING_CHECK: Duration = Duration::from_secs(1);
/// Bytes read at a time from the end of a file when looking for the tail.
const TAIL_BLOCK: u64 = 1024;

/// What failed reading a log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to open log file {path:?}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to tail {lines} lines of log file {path:?}: {source}")]
    Tail {
        lines: u64,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read log file {path:?}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which output a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One parsed entry of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub time: Timestamp,
    /// The offset the time was written with, in seconds east of UTC (kept for `timestamps`).
    pub offset_seconds: i32,
    pub stream: Stream,
    /// The text, with its newline unless the entry is partial.
    pub text: &'a [u8],
}

/// Why a line is not a CRI log entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("timestamp is not found")]
    NoTimestamp,
    #[error("unexpected timestamp format {0:?}")]
    Timestamp(String),
    #[error("stream type is not found")]
    NoStream,
    #[error("unexpected stream type {0:?}")]
    StreamType(String),
    #[error("log tag is not found")]
    NoTag,
}

fn split_space(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = line.iter().position(|b| *b == b' ')?;
    Some((&line[..i], &line[i + 1..]))
}

/// The offset of an RFC 3339 time (`Z`, `+hh:mm`, `-hh:mm`), in seconds east of UTC.
fn offset_of(time: &str) -> Option<i32> {
    if time.ends_with(['Z', 'z']) {
        return Some(0);
    }
    let zone = time.get(time.len().checked_sub(6)?..)?;
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours: i32 = zone.get(1..3)?.parse().ok()?;
    let minutes: i32 = zone.get(4..6)?.parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Parses one line of a CRI log file (with or without its trailing newline).
pub fn parse_line(line: &[u8]) -> Result<Entry<'_>, ParseError> {
    let (time, rest) = split_space(line).ok_or(ParseError::NoTimestamp)?;
    let time_text = std::str::from_utf8(time).map_err(|_| ParseError::Timestamp(String::from_utf8_lossy(time).into_owned()))?;
    let parsed: Timestamp = time_text.parse().map_err(|_| ParseError::Timestamp(time_text.to_string()))?;
    let offset_seconds = offset_of(time_text).ok_or_else(|| ParseError::Timestamp(time_text.to_string()))?;
    let (stream, rest) = split_space(rest).ok_or(ParseError::NoStream)?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        other => return Err(ParseError::StreamType(String::from_utf8_lossy(other).into_owned())),
    };
    let (tags, mut text) = split_space(rest).ok_or(ParseError::NoTag)?;
    // Tags are `:`-separated; the first says whether the entry is partial.
    let partial = tags.split(|b| *b == b':').next() == Some(b"P");
    if partial && text.last() == Some(&b'\n') {
        text = &text[..text.len() - 1];
    }
    Ok(Entry { time: parsed, offset_seconds, stream, text })
}

/// A time as upstream writes it before each entry with `timestamps`: RFC 3339 with exactly
/// nine fractional digits, in the offset it was logged with.
pub fn format_time(time: Timestamp, offset_seconds: i32) -> String {
    let offset = jiff::tz::Offset::from_seconds(offset_seconds).unwrap_or(jiff::tz::Offset::UTC);
    let civil = offset.to_datetime(time);
    let zone = if offset_seconds == 0 {
        "Z".to_string()
    } else {
        let sign = if offset_seconds < 0 { '-' } else { '+' };
        let abs = offset_seconds.unsigned_abs();
        format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}{zone}",
        civil.year(),
        civil.month(),
        civil.day(),
        civil.hour(),
        civil.minute(),
        civil.second(),
        civil.subsec_nanosecond()
    )
}

/// PodLogOptions as the log reader applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Only the last this many lines (`tailLines`).
    pub tail_lines: Option<u64>,
    /// Stop after this many bytes (`limitBytes`).
    pub limit_bytes: Option<u64>,
    /// Skip entries older than this (`sinceSeconds` or `sinceTime`, whichever is later).
    pub since: Option<Timestamp>,
    pub follow: bool,
    pub timestamps: bool,
}

impl Options {
    /// The reader's options for PodLogOptions values at `now`: `sinceSeconds` counts back
    /// from now, and a later `sinceTime` wins.
    pub fn new(
        tail_lines: Option<i64>,
        limit_bytes: Option<i64>,
        since_seconds: Option<i64>,
        since_time: Option<Timestamp>,
        follow: bool,
        timestamps: bool,
        now: Timestamp,
    ) -> Self {
        let mut since = since_seconds.and_then(|s| now.checked_sub(jiff::SignedDuration::from_secs(s)).ok());
        if let Some(t) = since_time
            && since.is_none_or(|s| t > s)
        {
            since = Some(t);
        }
        Options {
            tail_lines: tail_lines.and_then(|n| u64::try_from(n).ok()),
            limit_bytes: limit_bytes.and_then(|n| u64::try_from(n).ok()),
            since,
            follow,
            timestamps,
        }
    }
}

/// Turns entries into output under the options' `since`, `timestamps` and byte limit.
#[derive(Debug)]
pub struct Writer {
    since: Option<Timestamp>,
    timestamps: bool,
    remaining: u64,
}

/// What [`Writer::write`] decided about an entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Bytes to send (possibly none: the entry is older than `since`).
    More(Vec<u8>),
    /// The last bytes to send: the byte limit is reached.
    Last(Vec<u8>),
}

impl Writer {
    pub fn new(opts: &Options) -> Self {
        Writer { since: opts.since, timestamps: opts.timestamps, remaining: opts.limit_bytes.unwrap_or(u64::MAX) }
    }

    pub fn write(&mut self, entry: &Entry<'_>) -> Written {
        if self.since.is_some_and(|since| entry.time < since) {
            return Written::More(Vec::new());
        }
        let mut out = Vec::with_capacity(entry.text.len() + 36);
        if self.timestamps {
            out.extend_from_slice(format_time(entry.time, entry.offset_seconds).as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(entry.text);
        let allowed = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        out.truncate(allowed);
        self.remaining -= out.len() as u64;
        if self.remaining == 0 { Written::Last(out) } else { Written::More(out) }
    }
}

/// Where the last `lines` lines of `file` start (0 when it has fewer), counting
/// newline-terminated lines back from the end as upstream's tail does.
pub fn tail_start(file: &mut std::fs::File, lines: u64) -> std::io::Result<u64> {
    let size = file.seek(SeekFrom::End(0))?;
    let mut newlines = 0u64;
    let mut left = size;
    let mut block = Vec::new();
    let mut right = size;
    while right > 0 && newlines <= lines {
        left = right.saturating_sub(TAIL_BLOCK);
        block = vec![0; (right - left) as usize];
        file.seek(SeekFrom::Start(left))?;
        file.read_exact(&mut block)?;
        newlines += block.iter().filter(|b| **b == b'\n').count() as u64;
        right = left;
    }
    // Skip lines at the start of the last block read until exactly `lines` remain.
    let mut start = left;
    let mut view: &[u8] = &block;
    while newlines > lines {
        let Some(i) = view.iter().position(|b| *b == b'\n') else { break };
        start += i as u64 + 1;
        view = &view[i + 1..];
        newlines -= 1;
    }
    Ok(start)
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Reads the log at `path` under `opts`, sending output to `out` until the end (or, with
/// `follow`, until `running` says the container stopped and the file has no more). Stops
/// quietly when the receiver is dropped.
pub async fn read<F, Fut>(path: &Path, opts: &Options, running: F, out: mpsc::Sender<Bytes>) -> Result<(), Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let path = std::fs::canonicalize(path).map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
    let mut std_file = std::fs::File::open(&path).map_err(|source| Error::Open { path: path.clone(), source })?;
    let start = match opts.tail_lines {
        Some(n) => tail_start(&mut std_file, n).map_err(|source| Error::Tail { lines: n, path: path.clone(), source })?,
        None => 0,
    };
    std_file.seek(SeekFrom::Start(start)).map_err(|source| Error::Read { path: path.clone(), source })?;
    let mut opened_inode = std_file.metadata().ok().map(|m| m.ino());
    let mut reader = tokio::io::BufReader::new(tokio::fs::File::from_std(std_file));

    let limited = opts.tail_lines.filter(|_| !opts.follow);
    let mut lines_left = limited;
    let mut writer = Writer::new(opts);
    let mut line = Vec::new();
    let mut last_check: Option<tokio::time::Instant> = None;
    let mut container_stopped = false;
    loop {
        if lines_left == Some(0) {
            return Ok(());
        }
        let n = reader.read_until(b'\n', &mut line).await.map_err(|source| Error::Read { path: path.clone(), source })?;
        let complete = line.last() == Some(&b'\n');
        if !complete {
            if opts.follow {
                if container_stopped {
                    return Ok(());
                }
                if n == 0 && inode(&path).is_some_and(|ino| Some(ino) != opened_inode) {
                    // Rotated: the runtime writes to a new file at the same path.
                    if let Ok(f) = tokio::fs::File::open(&path).await {
                        opened_inode = f.metadata().await.ok().map(|m| m.ino());
                        reader = tokio::io::BufReader::new(f);
                        line.clear();
                        continue;
                    }
                }
                let due = last_check.is_none_or(|t| t.elapsed() >= RUNNING_CHECK);
                if due {
                    last_check = Some(tokio::time::Instant::now());
                    if !running().await {
                        // Read what was written before it stopped, then end.
                        container_stopped = true;
                        continue;
                    }
                }
                if out.is_closed() {
                    return Ok(());
                }
                tokio::time::sleep(FOLLOW_POLL).await;
                continue;
            }
            if line.is_empty() {
                return Ok(());
            }
            tracing::info!(path = %path.display(), "incomplete line in log file");
        }
        let stop_after = !complete;
        match parse_line(&line) {
            Ok(entry) => {
                let (bytes, last) = match writer.write(&entry) {
                    Written::More(b) => (b, false),
                    Written::Last(b) => (b, true),
                };
                if !bytes.is_empty() && out.send(Bytes::from(bytes)).await.is_err() {
                    return Ok(());
                }
                if last {
                    return Ok(());
                }
                if let Some(n) = lines_left.as_mut() {
                    *n -= 1;
                }
            }
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "failed when parsing line in log file"),
        }
        line.clear();
        if stop_after {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    /// A line, and its time, stream and text once parsed.
    type Case<'a> = (&'a str, Result<(&'a str, Stream, &'a str), ParseError>);

    #[test]
    fn lines_parse_as_upstream() {
        let cases: &[Case<'_>] = &[
            ("2016-10-06T00:17:09.669794202Z stdout F log content 1\n", Ok(("2016-10-06T00:17:09.669794202Z", Stream::Stdout, "log content 1\n"))),
            ("2016-10-06T00:17:09.669794203Z stderr P partial\n", Ok(("2016-10-06T00:17:09.669794203Z", Stream::Stderr, "partial"))),
            ("2016-10-06T00:17:09.1Z stdout F:x tagged\n", Ok(("2016-10-06T00:17:09.1Z", Stream::Stdout, "tagged\n"))),
            ("2016-10-06T00:17:09Z stdout F \n", Ok(("2016-10-06T00:17:09Z", Stream::Stdout, "\n"))),
            ("nospace", Err(ParseError::NoTimestamp)),
            ("yesterday stdout F x", Err(ParseError::Timestamp("yesterday".into()))),
            ("2016-10-06T00:17:09Z stdin F x", Err(ParseError::StreamType("stdin".into()))),
            ("2016-10-06T00:17:09Z stdout", Err(ParseError::NoStream)),
            ("2016-10-06T00:17:09Z stdout F", Err(ParseError::NoTag)),
        ];
        for (line, want) in cases {
            let got = parse_line(line.as_bytes()).map(|e| (e.time, e.stream, String::from_utf8_lossy(e.text).into_owned()));
            let want = want.clone().map(|(t, s, x)| (ts(t), s, x.to_string()));
            assert_eq!(got, want, "{line:?}");
        }
    }

    #[test]
    fn times_print_with_nine_digits_in_their_offset() {
        let cases = [
            ("2016-10-06T00:17:09.669794202Z", "2016-10-06T00:17:09.669794202Z"),
            ("2016-10-06T00:17:09.5Z", "2016-10-06T00:17:09.500000000Z"),
            ("2016-10-06T00:17:09Z", "2016-10-06T00:17:09.000000000Z"),
            ("2016-10-06T02:17:09.25+02:00", "2016-10-06T02:17:09.250000000+02:00"),
            ("2016-10-05T19:47:09.25-04:30", "2016-10-05T19:47:09.250000000-04:30"),
        ];
        for (input, want) in cases {
            let line = format!("{input} stdout F x\n");
            let e = parse_line(line.as_bytes()).expect("parses");
            assert_eq!(format_time(e.time, e.offset_seconds), want, "{input}");
        }
    }

    #[test]
    fn since_seconds_and_since_time_take_the_later() {
        let now = ts("2024-01-01T00:01:00Z");
        let o = Options::new(None, None, Some(30), None, false, false, now);
        assert_eq!(o.since, Some(ts("2024-01-01T00:00:30Z")));
        let o = Options::new(None, None, Some(30), Some(ts("2024-01-01T00:00:50Z")), false, false, now);
        assert_eq!(o.since, Some(ts("2024-01-01T00:00:50Z")));
        let o = Options::new(None, None, Some(30), Some(ts("2024-01-01T00:00:10Z")), false, false, now);
        assert_eq!(o.since, Some(ts("2024-01-01T00:00:30Z")));
        let o = Options::new(Some(-1), Some(5), None, None, true, true, now);
        assert_eq!((o.tail_lines, o.limit_bytes, o.follow, o.timestamps), (None, Some(5), true, true));
    }

    #[test]
    fn writer_applies_since_timestamps_and_limit() {
        let a = parse_line(b"2024-01-01T00:00:01Z stdout F first\n").expect("a");
        let b = parse_line(b"2024-01-01T00:00:03Z stdout F second\n").expect("b");
        let mut w = Writer::new(&Options { since: Some(ts("2024-01-01T00:00:02Z")), ..Default::default() });
        assert_eq!(w.write(&a), Written::More(vec![]));
        assert_eq!(w.write(&b), Written::More(b"second\n".to_vec()));
        let mut w = Writer::new(&Options { timestamps: true, limit_bytes: Some(40), ..Default::default() });
        assert_eq!(w.write(&a), Written::More(b"2024-01-01T00:00:01.000000000Z first\n".to_vec()));
        assert_eq!(w.write(&b), Written::Last(b"202".to_vec()), "37 bytes written, 3 left");
    }

    fn temp_log(content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, content).expect("write");
        (dir, path)
    }

    #[test]
    fn tail_finds_the_start_of_the_last_lines() {
        let content = "a\nbb\nccc\n";
        let cases = [(0, 9), (1, 5), (2, 2), (3, 0), (10, 0)];
        for (lines, want) in cases {
            let (_d, path) = temp_log(content);
            let mut f = std::fs::File::open(&path).expect("open");
            assert_eq!(tail_start(&mut f, lines).expect("tail"), want, "tail {lines}");
        }
        // Longer than a block.
        let long: String = (0..500).map(|i| format!("line {i}\n")).collect();
        let (_d, path) = temp_log(&long);
        let mut f = std::fs::File::open(&path).expect("open");
        let start = tail_start(&mut f, 3).expect("tail") as usize;
        assert_eq!(&long[start..], "line 497\nline 498\nline 499\n");
    }

    async fn collect(path: &Path, opts: &Options) -> String {
        let (tx, mut rx) = mpsc::channel(16);
        let reader = read(path, opts, || async { false }, tx);
        let (result, out) = tokio::join!(reader, async {
            let mut all = Vec::new();
            while let Some(b) = rx.recv().await {
                all.extend_from_slice(&b);
            }
            all
        });
        result.expect("read");
        String::from_utf8(out).expect("utf8")
    }

    const LOG: &str = "2024-01-01T00:00:01Z stdout F one\n\
                       2024-01-01T00:00:02Z stderr P two-\n\
                       2024-01-01T00:00:02.5Z stderr F halves\n\
                       2024-01-01T00:00:03Z stdout F three\n";

    #[tokio::test]
    async fn reading_joins_partials_and_applies_options() {
        let (_d, path) = temp_log(LOG);
        let cases = [
            (Options::default(), "one\ntwo-halves\nthree\n"),
            (Options { tail_lines: Some(1), ..Default::default() }, "three\n"),
            (Options { tail_lines: Some(2), ..Default::default() }, "halves\nthree\n"),
            (Options { tail_lines: Some(0), ..Default::default() }, ""),
            (Options { limit_bytes: Some(6), ..Default::default() }, "one\ntw"),
            (Options { since: Some(ts("2024-01-01T00:00:02.1Z")), ..Default::default() }, "halves\nthree\n"),
            (
                Options { tail_lines: Some(1), timestamps: true, ..Default::default() },
                "2024-01-01T00:00:03.000000000Z three\n",
            ),
            // Following a stopped container reads to the end and returns.
            (Options { follow: true, ..Default::default() }, "one\ntwo-halves\nthree\n"),
        ];
        for (opts, want) in cases {
            assert_eq!(collect(&path, &opts).await, want, "{opts:?}");
        }
    }

    #[tokio::test]
    async fn following_sees_new_lines_until_the_container_stops() {
        let (_d, path) = temp_log("2024-01-01T00:00:01Z stdout F one\n");
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (tx, mut rx) = mpsc::channel(16);
        let flag = running.clone();
        let opts = Options { follow: true, ..Default::default() };
        let reader = {
            let path = path.clone();
            tokio::spawn(async move {
                read(&path, &opts, move || {
                    let flag = flag.clone();
                    async move { flag.load(std::sync::atomic::Ordering::SeqCst) }
                }, tx)
                .await
            })
        };
        assert_eq!(rx.recv().await.as_deref(), Some(&b"one\n"[..]));
        // A line written in two pieces is sent once it is whole.
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("append");
        f.write_all(b"2024-01-01T00:00:02Z stdout F tw").expect("write");
        f.flush().expect("flush");
        tokio::time::sleep(Duration::from_millis(250)).await;
        f.write_all(b"o\n").expect("write");
        assert_eq!(rx.recv().await.as_deref(), Some(&b"two\n"[..]));
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        f.write_all(b"2024-01-01T00:00:03Z stdout F last\n").expect("write");
        assert_eq!(rx.recv().await.as_deref(), Some(&b"last\n"[..]));
        assert_eq!(rx.recv().await, None, "the reader ends once the container stopped");
        reader.await.expect("join").expect("read");
    }
}
