//! Reading `palisade watch --json` from a test: the fired detections it prints, as they
//! arrive, with a bounded wait (shared by the CLI tests that drive the daemon).

use std::io::{BufRead, BufReader};
use std::process::ChildStdout;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `fired` detections printed on `stdout`, read on a background thread.
pub fn fired_stream(stdout: ChildStdout) -> Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["state"] == "fired"
            {
                let _ = tx.send(v);
            }
        }
    });
    rx
}

/// Fired detections until `until` holds or `limit` passes.
pub fn collect(
    rx: &Receiver<Value>,
    limit: Duration,
    until: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while !until(&got) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        if let Ok(v) = rx.recv_timeout(left) {
            got.push(v);
        }
    }
    got
}
