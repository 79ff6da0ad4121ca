//! A small blocking client for the Docker Engine API over its unix socket.
//!
//! palisade needs a handful of endpoints (list, inspect, logs, top, pause, stop,
//! networks, build, create, remove), so instead of an async framework this speaks
//! HTTP/1.1 directly: one connection per request (`Connection: close`), bodies read by
//! `Content-Length`, chunked encoding or until EOF. Streaming endpoints (`logs` with
//! `follow=1`) hand back a [`Body`] that implements [`Read`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// The socket the Docker Engine listens on by default.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// What went wrong talking to the Docker Engine.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "cannot connect to the Docker Engine at {socket}: {source} \
         (is dockerd running, and may this user open the socket?)"
    )]
    Connect { socket: PathBuf, source: io::Error },
    #[error("I/O error talking to the Docker Engine ({method} {path}): {source}")]
    Io {
        method: String,
        path: String,
        source: io::Error,
    },
    #[error("malformed HTTP response from the Docker Engine ({method} {path}): {detail}")]
    Protocol {
        method: String,
        path: String,
        detail: String,
    },
    #[error("Docker Engine refused {method} {path}: HTTP {status}: {message}")]
    Status {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("Docker Engine sent JSON that does not parse ({path}): {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}

/// A blocking Docker Engine API client bound to one unix socket.
#[derive(Debug, Clone)]
pub struct DockerApi {
    socket: PathBuf,
    timeout: Option<Duration>,
}

/// A response whose body is still to be read (streaming endpoints).
pub struct Body {
    reader: BodyReader,
    /// The response's `Content-Type`, e.g. `application/vnd.docker.raw-stream`.
    pub content_type: String,
}

enum BodyReader {
    Empty,
    Length(io::Take<BufReader<UnixStream>>),
    Chunked(Chunked),
    Eof(BufReader<UnixStream>),
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.reader {
            BodyReader::Empty => Ok(0),
            BodyReader::Length(r) => r.read(buf),
            BodyReader::Chunked(r) => r.read(buf),
            BodyReader::Eof(r) => r.read(buf),
        }
    }
}

/// Decodes `Transfer-Encoding: chunked`. Keeps its partial state across read
/// timeouts, so a follower can time out, flush, and read on without losing bytes.
struct Chunked {
    inner: BufReader<UnixStream>,
    /// The chunk-size line read so far.
    line: String,
    left: u64,
    /// Bytes of the CRLF after a chunk still to skip.
    crlf: u8,
    done: bool,
}

impl Chunked {
    fn next_chunk(&mut self) -> io::Result<()> {
        while self.crlf > 0 {
            let mut b = [0u8; 1];
            if self.inner.read(&mut b)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.crlf -= 1;
        }
        self.inner.read_line(&mut self.line)?;
        if !self.line.ends_with('\n') {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let size = self.line.trim().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        self.line.clear();
        self.done = size == 0;
        self.left = size;
        Ok(())
    }
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            self.next_chunk()?;
            if self.done {
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        if self.left == 0 {
            self.crlf = 2;
        }
        Ok(n)
    }
}

impl DockerApi {
    /// A client for the Engine at `socket` (usually [`DEFAULT_SOCKET`]).
    pub fn new(socket: impl Into<PathBuf>) -> DockerApi {
        DockerApi {
            socket: socket.into(),
            timeout: None,
        }
    }

    /// Read timeout for every request; `None` waits forever (log following).
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> DockerApi {
        self.timeout = timeout;
        self
    }

    /// The socket path this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /_ping`: whether the Engine answers at all.
    pub fn ping(&self) -> Result<(), ApiError> {
        self.request("GET", "/_ping", None).map(|_| ())
    }

    /// `GET path` and parse the JSON answer.
    pub fn get_json(&self, path: &str) -> Result<Value, ApiError> {
        let body = self.request("GET", path, None)?;
        serde_json::from_slice(&body).map_err(|source| ApiError::Json {
            path: path.into(),
            source,
        })
    }

    /// `POST path` with an optional JSON body; returns the answer parsed as JSON
    /// (`Value::Null` when empty).
    pub fn post_json(&self, path: &str, body: Option<&Value>) -> Result<Value, ApiError> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let payload = bytes.as_deref().map(|b| ("application/json", b));
        let answer = self.request("POST", path, payload)?;
        if answer.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&answer).map_err(|source| ApiError::Json {
            path: path.into(),
            source,
        })
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<(), ApiError> {
        self.request("DELETE", path, None).map(|_| ())
    }

    /// Any request, body read fully.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Vec<u8>, ApiError> {
        let mut resp = self.open(method, path, body)?;
        let mut out = Vec::new();
        resp.read_to_end(&mut out)
            .map_err(|source| io_err(method, path, source))?;
        Ok(out)
    }

    /// Any request; the body is left to the caller to stream.
    pub fn open(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Body, ApiError> {
        let stream = UnixStream::connect(&self.socket).map_err(|source| ApiError::Connect {
            socket: self.socket.clone(),
            source,
        })?;
        stream
            .set_read_timeout(self.timeout)
            .map_err(|source| io_err(method, path, source))?;
        send_request(&stream, method, path, body).map_err(|source| io_err(method, path, source))?;
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader).map_err(|source| io_err(method, path, source))?;
        let Some(status) = head.status else {
            return Err(ApiError::Protocol {
                method: method.into(),
                path: path.into(),
                detail: "no status line".into(),
            });
        };
        let body = make_body(reader, &head, status);
        if status >= 400 {
            return Err(status_error(method, path, status, body));
        }
        Ok(body)
    }
}

fn io_err(method: &str, path: &str, source: io::Error) -> ApiError {
    ApiError::Io {
        method: method.into(),
        path: path.into(),
        source,
    }
}

fn status_error(method: &str, path: &str, status: u16, mut body: Body) -> ApiError {
    let mut raw = Vec::new();
    let _ = body.read_to_end(&mut raw);
    let message = serde_json::from_slice::<Value>(&raw)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&raw).trim().to_owned());
    ApiError::Status {
        method: method.into(),
        path: path.into(),
        status,
        message,
    }
}

fn send_request(
    mut stream: &UnixStream,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> io::Result<()> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
    match body {
        Some((content_type, bytes)) => {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                bytes.len()
            ));
            stream.write_all(head.as_bytes())?;
            stream.write_all(bytes)?;
        }
        None => {
            head.push_str("Content-Length: 0\r\n\r\n");
            stream.write_all(head.as_bytes())?;
        }
    }
    stream.flush()
}

#[derive(Default)]
struct Head {
    status: Option<u16>,
    length: Option<u64>,
    chunked: bool,
    content_type: String,
}

fn read_head(reader: &mut BufReader<UnixStream>) -> io::Result<Head> {
    let mut head = Head::default();
    let mut line = String::new();
    reader.read_line(&mut line)?;
    head.status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok(head);
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => head.length = value.parse().ok(),
            "transfer-encoding" => head.chunked = value.eq_ignore_ascii_case("chunked"),
            "content-type" => head.content_type = value.to_owned(),
            _ => {}
        }
    }
}

fn make_body(reader: BufReader<UnixStream>, head: &Head, status: u16) -> Body {
    let reader = if status == 204 || status == 304 {
        BodyReader::Empty
    } else if head.chunked {
        BodyReader::Chunked(Chunked {
            inner: reader,
            line: String::new(),
            left: 0,
            crlf: 0,
            done: false,
        })
    } else if let Some(n) = head.length {
        BodyReader::Length(reader.take(n))
    } else {
        BodyReader::Eof(reader)
    };
    Body {
        reader,
        content_type: head.content_type.clone(),
    }
}

/// Percent-encodes a query value (for JSON `filters` and names).
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one canned HTTP response on a socket pair and parses it.
    fn respond(raw: &'static [u8]) -> (Option<u16>, Result<Vec<u8>, io::Error>) {
        let (client, mut server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || server.write_all(raw));
        let mut reader = BufReader::new(client);
        let head = read_head(&mut reader).unwrap();
        let status = head.status;
        let mut body = make_body(reader, &head, status.unwrap_or(0));
        let mut out = Vec::new();
        let r = body.read_to_end(&mut out).map(|_| out);
        t.join().unwrap().unwrap();
        (status, r)
    }

    #[test]
    fn chunked_body_is_decoded() {
        let (status, body) = respond(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        );
        assert_eq!(status, Some(200));
        assert_eq!(body.unwrap(), b"hello world");
    }

    #[test]
    fn content_length_body_stops_at_length() {
        let (_, body) = respond(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}trailing");
        assert_eq!(body.unwrap(), b"{}");
    }

    #[test]
    fn unreachable_engine_error_names_the_socket() {
        let api = DockerApi::new("/nonexistent/palisade-test.sock");
        let err = api.ping().unwrap_err();
        assert!(matches!(err, ApiError::Connect { .. }));
        assert!(
            err.to_string().contains("/nonexistent/palisade-test.sock"),
            "{err}"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query(r#"{"a":"b c"}"#),
            "%7B%22a%22%3A%22b%20c%22%7D"
        );
    }
}
