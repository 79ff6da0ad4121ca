//! Turning raw container log entries into whole messages, without Docker.
//!
//! Docker hands out log *entries*: one per `write` of the container, cut into 16 KiB
//! pieces by the json-file driver (the `log` value of every piece but the last has no
//! trailing `\n`, field case 39) and interleaved between stdout and stderr. Node.js
//! stack traces arrive as one entry per frame (`    at f (/app/x.js:1:2)`), possibly
//! with other output in between (field case 43).
//!
//! [`Joiner`] undoes both, keeping one state per stream so pieces and frames are
//! never glued across stdout/stderr. The parsers here ([`parse_json_file_line`],
//! [`parse_cri_line`], [`parse_api_payload`]) turn each on-disk or API format into the
//! same [`Entry`]. The joiner's state is serialisable: a checkpoint stores it with
//! the raw read position so a restart neither loses nor repeats a message.

use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Which output stream of the container an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// One raw log entry as Docker stored or sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub time: Timestamp,
    pub stream: Stream,
    /// The text without its trailing newline.
    pub text: String,
    /// More pieces of the same message follow (no trailing newline / CRI `P`).
    pub partial: bool,
}

/// A whole message: pieces re-joined and stack frames attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The time of the message's first entry.
    pub time: Timestamp,
    pub stream: Stream,
    /// Lines of a multi-line entry are joined with `\n`.
    pub text: String,
    /// The message hit [`Joiner::max_bytes`] and was cut.
    pub truncated: bool,
}

/// Why a raw entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("json-file log line is not JSON with log/stream/time: {0}")]
    JsonFile(String),
    #[error("CRI log line is not `<time> stdout|stderr F|P <message>`: {0}")]
    Cri(String),
    #[error("log time {0:?} is not RFC 3339")]
    Time(String),
}

/// Cap on one joined message, so a container printing without newlines cannot
/// exhaust memory.
pub const DEFAULT_MAX_BYTES: usize = 1 << 20;

/// Re-joins split pieces and multi-line entries per stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Joiner {
    /// Per stream (stdout, stderr): pieces of a message still arriving.
    partial: [Option<Message>; 2],
    /// Per stream: the last whole message, held until we know no frame follows.
    held: [Option<Message>; 2],
    #[serde(default = "default_max")]
    max_bytes: usize,
}

fn default_max() -> usize {
    DEFAULT_MAX_BYTES
}

impl Joiner {
    /// A joiner with the default message cap.
    pub fn new() -> Joiner {
        Joiner {
            max_bytes: DEFAULT_MAX_BYTES,
            ..Joiner::default()
        }
    }

    /// The size above which a joined message is cut.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Feeds one entry; whole messages that are now complete go to `out`.
    pub fn push(&mut self, entry: Entry, out: &mut Vec<Message>) {
        let i = entry.stream.index();
        let piece = match self.partial[i].take() {
            Some(mut m) => {
                append(&mut m, "", &entry.text, self.max_bytes);
                m
            }
            None => Message {
                time: entry.time,
                stream: entry.stream,
                text: entry.text,
                truncated: false,
            },
        };
        if entry.partial {
            self.partial[i] = Some(piece);
            return;
        }
        self.whole(piece, out);
    }

    fn whole(&mut self, msg: Message, out: &mut Vec<Message>) {
        let i = msg.stream.index();
        if is_continuation(&msg.text)
            && let Some(held) = self.held[i].as_mut()
        {
            append(held, "\n", &msg.text, self.max_bytes);
            return;
        }
        if let Some(done) = self.held[i].replace(msg) {
            out.push(done);
        }
    }

    /// Emits everything held (end of input, or the stream went quiet): held messages
    /// first, then unfinished pieces as they are.
    pub fn flush(&mut self, out: &mut Vec<Message>) {
        let mut rest: Vec<Message> = self.held.iter_mut().filter_map(Option::take).collect();
        rest.extend(self.partial.iter_mut().filter_map(Option::take));
        rest.sort_by_key(|m| m.time);
        out.extend(rest);
    }

    /// Whether anything is held back.
    pub fn is_idle(&self) -> bool {
        self.partial.iter().chain(&self.held).all(Option::is_none)
    }
}

fn append(msg: &mut Message, sep: &str, text: &str, max: usize) {
    if msg.truncated {
        return;
    }
    let room = max.saturating_sub(msg.text.len());
    let add = sep.len() + text.len();
    if add <= room {
        msg.text.push_str(sep);
        msg.text.push_str(text);
        return;
    }
    let mut cut = room.saturating_sub(sep.len()).min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if room >= sep.len() {
        msg.text.push_str(sep);
        msg.text.push_str(&text[..cut]);
    }
    msg.truncated = true;
}

/// A stack frame line: leading whitespace, then `at ` (Node.js, Java) — or a
/// `... N more` Java elision.
pub fn is_continuation(text: &str) -> bool {
    let trimmed = text.trim_start_matches([' ', '\t']);
    if trimmed.len() == text.len() {
        return false;
    }
    trimmed.starts_with("at ") || trimmed.starts_with("... ")
}

/// Parses one line of a json-file log (`{"log":"…","stream":"stdout","time":"…"}`).
pub fn parse_json_file_line(line: &str) -> Result<Entry, EntryError> {
    #[derive(Deserialize)]
    struct Raw<'a> {
        log: String,
        // Borrowed: no allocation per line for the fields that are never escaped.
        #[serde(borrow)]
        stream: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        time: std::borrow::Cow<'a, str>,
    }
    let raw: Raw = serde_json::from_str(line).map_err(|_| EntryError::JsonFile(snippet(line)))?;
    let stream = parse_stream(&raw.stream).ok_or_else(|| EntryError::JsonFile(snippet(line)))?;
    let time = parse_time(&raw.time)?;
    let mut text = raw.log;
    let partial = !text.ends_with('\n');
    if !partial {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(Entry {
        time,
        stream,
        text,
        partial,
    })
}

/// Parses one CRI log line: `<RFC3339Nano> stdout|stderr F|P <message>`.
pub fn parse_cri_line(line: &str) -> Result<Entry, EntryError> {
    let bad = || EntryError::Cri(snippet(line));
    let mut parts = line.splitn(4, ' ');
    let time = parse_time(parts.next().ok_or_else(bad)?)?;
    let stream = parts.next().and_then(parse_stream).ok_or_else(bad)?;
    let partial = match parts.next() {
        Some("P") => true,
        Some("F") => false,
        _ => return Err(bad()),
    };
    let text = parts.next().unwrap_or("").to_owned();
    Ok(Entry {
        time,
        stream,
        text,
        partial,
    })
}

/// Parses one frame payload from the logs API asked with `timestamps=1`:
/// `<RFC3339Nano> <message>` with a trailing `\n` unless the message is partial.
pub fn parse_api_payload(stream: Stream, payload: &[u8]) -> Result<Entry, EntryError> {
    let text = String::from_utf8_lossy(payload);
    let (time, rest) = text.split_once(' ').unwrap_or((&text, ""));
    let time = parse_time(time)?;
    let mut text = rest.to_owned();
    let partial = !text.ends_with('\n');
    if !partial {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(Entry {
        time,
        stream,
        text,
        partial,
    })
}

fn parse_stream(s: &str) -> Option<Stream> {
    match s {
        "stdout" => Some(Stream::Stdout),
        "stderr" => Some(Stream::Stderr),
        _ => None,
    }
}

fn parse_time(s: &str) -> Result<Timestamp, EntryError> {
    Timestamp::from_str(s).map_err(|_| EntryError::Time(snippet(s)))
}

fn snippet(s: &str) -> String {
    let mut end = s.len().min(120);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join_json(lines: &[String]) -> Vec<Message> {
        let mut j = Joiner::new();
        let mut out = Vec::new();
        for l in lines {
            j.push(parse_json_file_line(l).unwrap(), &mut out);
        }
        j.flush(&mut out);
        out
    }

    fn json_line(log: &str, stream: &str, time: &str) -> String {
        serde_json::json!({"log": log, "stream": stream, "time": time}).to_string()
    }

    #[test]
    fn split_16k_message_is_rejoined_into_one_json_event() {
        // Field case 39: json-file splits a long message at 16 KiB.
        let ctx = "A".repeat(16 * 1024);
        let first =
            format!(r#"{{"level":"warn","msg":"login failed","ip":"192.0.2.61","ctx":"{ctx}"#);
        let lines = [
            json_line(&first, "stdout", "2024-04-03T10:00:00.000000001Z"),
            json_line("tail\"}\n", "stdout", "2024-04-03T10:00:00.000000002Z"),
        ];
        let out = join_json(&lines);
        assert_eq!(out.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&out[0].text).expect("valid JSON");
        assert_eq!(v["ip"], "192.0.2.61");
        assert_eq!(v["ctx"].as_str().unwrap().len(), 16 * 1024 + 4);
        assert_eq!(out[0].time.to_string(), "2024-04-03T10:00:00.000000001Z");
    }

    #[test]
    fn split_pieces_are_never_joined_across_streams() {
        // Field case 39: pieces from stderr are never joined to stdout pieces.
        let lines = [
            json_line("{\"a\":\"out-", "stdout", "2024-04-03T10:00:00.1Z"),
            json_line("err line\n", "stderr", "2024-04-03T10:00:00.2Z"),
            json_line("rest\"}\n", "stdout", "2024-04-03T10:00:00.3Z"),
        ];
        let out = join_json(&lines);
        let texts: Vec<(&str, Stream)> = out.iter().map(|m| (m.text.as_str(), m.stream)).collect();
        assert_eq!(
            texts,
            vec![
                ("{\"a\":\"out-rest\"}", Stream::Stdout),
                ("err line", Stream::Stderr)
            ]
        );
    }

    #[test]
    fn stack_trace_split_by_stdout_line_gives_two_events() {
        // Field case 43: multi-line entries interleaved with other output.
        let lines = [
            json_line(
                "Error: invalid token for user carol\n",
                "stderr",
                "2024-10-09T10:00:00.001Z",
            ),
            json_line(
                "GET /health 200 1ms\n",
                "stdout",
                "2024-10-09T10:00:00.002Z",
            ),
            json_line(
                "    at verify (/app/auth.js:10:5)\n",
                "stderr",
                "2024-10-09T10:00:00.003Z",
            ),
            json_line(
                "    at login (/app/routes.js:44:9)\n",
                "stderr",
                "2024-10-09T10:00:00.004Z",
            ),
        ];
        let out = join_json(&lines);
        assert_eq!(out.len(), 2, "{out:?}");
        let err = out.iter().find(|m| m.stream == Stream::Stderr).unwrap();
        assert_eq!(
            err.text,
            "Error: invalid token for user carol\n    at verify (/app/auth.js:10:5)\n    \
             at login (/app/routes.js:44:9)"
        );
        let health = out.iter().find(|m| m.stream == Stream::Stdout).unwrap();
        assert_eq!(health.text, "GET /health 200 1ms");
    }

    #[test]
    fn held_message_is_emitted_when_next_head_arrives() {
        let mut j = Joiner::new();
        let mut out = Vec::new();
        for l in [
            json_line("one\n", "stdout", "2024-01-01T00:00:01Z"),
            json_line("two\n", "stdout", "2024-01-01T00:00:02Z"),
        ] {
            j.push(parse_json_file_line(&l).unwrap(), &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "one");
        assert!(!j.is_idle());
    }

    #[test]
    fn indented_line_without_at_is_its_own_message() {
        let lines = [
            json_line("head\n", "stdout", "2024-01-01T00:00:01Z"),
            json_line(
                "    indented config value\n",
                "stdout",
                "2024-01-01T00:00:02Z",
            ),
        ];
        assert_eq!(join_json(&lines).len(), 2);
    }

    #[test]
    fn runaway_message_is_cut_at_the_cap() {
        let mut j = Joiner {
            max_bytes: 10,
            ..Joiner::new()
        };
        let mut out = Vec::new();
        let t = Timestamp::UNIX_EPOCH;
        for text in ["0123456", "789abcdef"] {
            let e = Entry {
                time: t,
                stream: Stream::Stdout,
                text: text.into(),
                partial: true,
            };
            j.push(e, &mut out);
        }
        j.flush(&mut out);
        assert_eq!(out[0].text, "0123456789");
        assert!(out[0].truncated);
    }

    #[test]
    fn cri_partial_lines_are_joined() {
        let mut j = Joiner::new();
        let mut out = Vec::new();
        for l in [
            "2024-04-03T10:00:00.000000001Z stdout P {\"msg\":\"lo",
            "2024-04-03T10:00:00.000000002Z stderr F boom",
            "2024-04-03T10:00:00.000000003Z stdout F gin failed\"}",
        ] {
            j.push(parse_cri_line(l).unwrap(), &mut out);
        }
        j.flush(&mut out);
        let texts: Vec<&str> = out.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, vec!["{\"msg\":\"login failed\"}", "boom"]);
    }

    #[test]
    fn cri_line_with_bad_tag_is_rejected() {
        assert!(parse_cri_line("2024-04-03T10:00:00Z stdout X hi").is_err());
        assert!(parse_cri_line("yesterday stdout F hi").is_err());
    }

    #[test]
    fn api_payload_without_newline_is_partial() {
        let e = parse_api_payload(Stream::Stderr, b"2024-04-03T10:00:00.5Z half").unwrap();
        assert!(e.partial);
        assert_eq!(e.text, "half");
        let e = parse_api_payload(Stream::Stderr, b"2024-04-03T10:00:00.5Z whole\n").unwrap();
        assert!(!e.partial);
        assert_eq!(e.text, "whole");
    }

    #[test]
    fn joiner_state_survives_a_checkpoint_round_trip() {
        let mut j = Joiner::new();
        let mut out = Vec::new();
        j.push(
            parse_cri_line("2024-04-03T10:00:00Z stderr F Error: x").unwrap(),
            &mut out,
        );
        let saved = serde_json::to_string(&j).unwrap();
        let mut j: Joiner = serde_json::from_str(&saved).unwrap();
        j.push(
            parse_cri_line("2024-04-03T10:00:01Z stderr F   at f (a.js:1:1)").unwrap(),
            &mut out,
        );
        j.flush(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "Error: x\n  at f (a.js:1:1)");
    }
}
