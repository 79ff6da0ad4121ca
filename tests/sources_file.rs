//! File sources against real files in temporary directories: scan reading (plain,
//! gzip, line endings, long lines, invalid UTF-8) and live following (rotation,
//! truncation, rewrites, symlinks, restarts from checkpoints). The tailer is driven by
//! calling `poll()` directly; nothing here sleeps or measures time.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use palisade::sources::file::{
    ReadOptions, ReadStats, TailNotice, TailOptions, TailSpec, Tailer, expand_paths,
    load_checkpoints_file, read_lines, save_checkpoints_file, total_bytes,
};
use palisade::sources::{Checkpoint, Line};

const CAP: usize = 64 * 1024;

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// Rewrites a file in place: same inode, new content.
fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn spec(pattern: &Path, cap: usize) -> TailSpec {
    TailSpec {
        source: Arc::from("app"),
        pattern: pattern.to_string_lossy().into_owned(),
        max_line_bytes: cap,
    }
}

fn tailer(pattern: &Path) -> Tailer {
    Tailer::new(vec![spec(pattern, CAP)], Vec::new(), TailOptions::default())
}

fn poll(t: &mut Tailer) -> (Vec<String>, Vec<TailNotice>) {
    let mut out = Vec::new();
    let notices = t.poll(&mut out);
    (out.into_iter().map(|l| l.text).collect(), notices)
}

fn scan(path: &Path, opts: &ReadOptions) -> (Vec<Line>, ReadStats) {
    let mut lines = Vec::new();
    let stats = read_lines(&Arc::from("app"), path, opts, |l| {
        lines.push(l.clone());
        ControlFlow::Continue(())
    })
    .unwrap();
    (lines, stats)
}

fn texts(lines: &[Line]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

fn failed_login(n: u32) -> String {
    format!("2024-05-01T10:00:{n:02}Z login failed user=erin ip=198.51.100.23 n={n}\n")
}

fn count(notices: &[TailNotice], kind: &str) -> usize {
    notices.iter().filter(|n| n.kind() == kind).count()
}

// ---------------------------------------------------------------- scan reading

/// Field case 38: LF, CRLF and CR-only files give the same lines, never a `\r`.
#[test]
fn cr_only_and_crlf_endings_split_like_lf() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        "failed 192.0.2.80 a",
        "failed 192.0.2.80 b",
        "failed 192.0.2.80 c",
    ];
    for (name, eol) in [("lf.log", "\n"), ("crlf.log", "\r\n"), ("cr.log", "\r")] {
        let path = dir.path().join(name);
        fs::write(&path, lines.map(|l| format!("{l}{eol}")).concat()).unwrap();

        let (got, stats) = scan(&path, &ReadOptions::default());
        assert_eq!(texts(&got), lines, "{name}");
        assert_eq!(stats.cr_only_endings, eol == "\r", "{name}");

        let mut t = tailer(&path);
        let (got, notices) = poll(&mut t);
        // Once the file has shown only lone `\r` endings, its last `\r` ends the line
        // at once: a CR-only writer never sends the `\n` it would wait for.
        assert_eq!(got, lines, "{name}");
        assert_eq!(
            count(&notices, "cr_only_endings"),
            usize::from(eol == "\r"),
            "{name}"
        );
        append(&path, b"next\n");
        let (got, _) = poll(&mut t);
        assert_eq!(got, ["next"], "{name}");
    }
}

#[test]
fn last_line_without_terminator_is_delivered_by_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    fs::write(&path, "one\n\ntwo\r\nthree").unwrap();
    let (got, stats) = scan(&path, &ReadOptions::default());
    assert_eq!(texts(&got), ["one", "", "two", "three"]);
    assert_eq!(
        got.iter().map(|l| l.offset).collect::<Vec<_>>(),
        [0, 4, 5, 10]
    );
    assert_eq!((stats.lines, stats.bytes, stats.crlf_endings), (4, 15, 1));
}

#[test]
fn gzip_is_recognised_by_magic_bytes_and_offsets_are_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log.1"); // no .gz suffix on purpose
    let plain: String = (0..1000).map(failed_login).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(plain.as_bytes()).unwrap();
    // A second gzip member, as `cat a.gz b.gz` produces.
    let mut bytes = gz.finish().unwrap();
    let mut gz2 = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz2.write_all(b"tail line\n").unwrap();
    bytes.extend(gz2.finish().unwrap());
    fs::write(&path, &bytes).unwrap();

    let progress = Arc::new(AtomicU64::new(0));
    let opts = ReadOptions {
        progress: Some(progress.clone()),
        ..ReadOptions::default()
    };
    let (got, stats) = scan(&path, &opts);
    assert!(stats.gzip);
    assert_eq!(got.len(), 1001);
    assert_eq!(got[1].text, failed_login(1).trim_end());
    assert_eq!(got[1].offset, failed_login(0).len() as u64);
    assert_eq!(got[1000].text, "tail line");
    assert_eq!(progress.load(Ordering::Relaxed), bytes.len() as u64);
    assert_eq!(total_bytes(&[path]), bytes.len() as u64);
}

#[test]
fn corrupt_gzip_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.gz");
    fs::write(&path, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    let err = read_lines(&Arc::from("app"), &path, &ReadOptions::default(), |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(err.to_string().contains("broken.gz"), "{err}");
}

/// Field case 34 (source part): long noise lines do not disturb the short lines
/// after them, and a 1 MB line is cut to the cap and flagged.
#[test]
fn very_long_lines_are_cut_and_short_lines_after_them_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.log");
    let mut f = File::create(&path).unwrap();
    let noise = format!("{}\n", "x".repeat(20_000));
    for _ in 0..2000 {
        f.write_all(noise.as_bytes()).unwrap();
    }
    let huge = format!("{}\n", "é".repeat(500_000)); // 1 MB of 2-byte chars
    f.write_all(huge.as_bytes()).unwrap();
    for n in 0..3 {
        f.write_all(format!("login failed ip=192.0.2.150 n={n}\n").as_bytes())
            .unwrap();
    }
    drop(f);

    let opts = ReadOptions {
        max_line_bytes: CAP,
        ..ReadOptions::default()
    };
    let (got, stats) = scan(&path, &opts);
    assert_eq!(got.len(), 2004);
    assert!(
        got[..2000]
            .iter()
            .all(|l| l.text.len() == 20_000 && !l.truncated)
    );
    let cut = &got[2000];
    assert!(cut.truncated && !cut.invalid_utf8, "cut inside a character");
    assert_eq!(cut.text.len(), CAP);
    assert_eq!(stats.truncated_lines, 1);
    let tail: Vec<_> = got[2001..].iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        tail,
        [
            "login failed ip=192.0.2.150 n=0",
            "login failed ip=192.0.2.150 n=1",
            "login failed ip=192.0.2.150 n=2"
        ]
    );

    // The same through the tailer, with the huge line arriving in pieces.
    let live = dir.path().join("live.log");
    let mut t = Tailer::new(vec![spec(&live, 1024)], Vec::new(), TailOptions::default());
    append(&live, "y".repeat(300_000).as_bytes());
    assert!(
        poll(&mut t).0.is_empty(),
        "an unfinished line was handed out"
    );
    append(&live, "y".repeat(300_000).as_bytes());
    append(&live, b"\nlogin failed ip=192.0.2.150\n");
    let mut out = Vec::new();
    t.poll(&mut out);
    assert_eq!(out.len(), 2);
    assert!(out[0].truncated && out[0].text.len() == 1024);
    assert_eq!(out[1].text, "login failed ip=192.0.2.150");
    assert_eq!(out[1].offset, 600_001);
    assert_eq!(t.stats().sources["app"].lines_truncated, 1);
}

#[test]
fn invalid_utf8_and_garbage_bytes_are_replaced_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bin.log");
    let mut content = b"ok\nbad \xff\xfe byte\n\x00\x01\x02\x1b[31m\n".to_vec();
    content.extend(b"\xc3\n"); // a lone UTF-8 lead byte
    fs::write(&path, &content).unwrap();
    let (got, stats) = scan(&path, &ReadOptions::default());
    assert_eq!(got.len(), 4);
    assert_eq!(got[1].text, "bad \u{fffd}\u{fffd} byte");
    assert!(got[1].invalid_utf8 && !got[0].invalid_utf8);
    assert_eq!(got[2].text, "\u{0}\u{1}\u{2}\u{1b}[31m");
    assert!(!got[2].invalid_utf8, "control bytes are valid UTF-8");
    assert_eq!(got[3].text, "\u{fffd}");
    assert_eq!(stats.invalid_utf8_lines, 2);
}

#[test]
fn callback_can_stop_reading_early() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    fs::write(&path, "1\n2\n3\n").unwrap();
    let mut seen = 0;
    let stats = read_lines(&Arc::from("app"), &path, &ReadOptions::default(), |_| {
        seen += 1;
        if seen == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert!(stats.stopped);
    assert_eq!(stats.lines, 2);
}

#[test]
fn expand_paths_sorts_glob_matches_and_rejects_nothing_matched() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.log", "a.log", "c.txt"] {
        fs::write(dir.path().join(name), "x\n").unwrap();
    }
    let got = expand_paths(&format!("{}/*.log", dir.path().display())).unwrap();
    assert_eq!(got, [dir.path().join("a.log"), dir.path().join("b.log")]);
    assert_eq!(expand_paths("-").unwrap(), [PathBuf::from("-")]);
    let err = expand_paths(&format!("{}/*.gz", dir.path().display())).unwrap_err();
    assert!(err.to_string().contains("*.gz"), "{err}");
    let err = expand_paths(&format!("{}/missing.log", dir.path().display())).unwrap_err();
    assert!(err.to_string().contains("missing.log"), "{err}");
}

// ---------------------------------------------------------------- live following

/// Field case 1: a size-capped log rewritten in place (A, B → B, C) must not count B
/// twice.
#[test]
fn in_place_rewrite_does_not_recount_surviving_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app-errors.log");
    let (a, b, c) = (failed_login(1), failed_login(7), failed_login(12));
    fs::write(&path, format!("{a}{b}")).unwrap();
    let mut t = tailer(&path);
    assert_eq!(poll(&mut t).0.len(), 2);

    rewrite_in_place(&path, format!("{b}{c}").as_bytes());
    let (got, notices) = poll(&mut t);
    assert_eq!(got, [c.trim_end()]);
    assert_eq!(count(&notices, "rewritten"), 1, "{notices:?}");
    assert_eq!(count(&notices, "truncated"), 0);
    assert_eq!(t.stats().sources["app"].rewrites, 1);
    assert_eq!(t.stats().sources["app"].lines, 3);

    append(&path, failed_login(20).as_bytes());
    assert_eq!(poll(&mut t).0, [failed_login(20).trim_end()]);
}

/// A rewrite that keeps the first line (a header) is still noticed.
#[test]
fn rewrite_behind_an_unchanged_first_line_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capped.log");
    let head = "# capped log v1\n";
    fs::write(
        &path,
        format!("{head}{}{}", failed_login(1), failed_login(2)),
    )
    .unwrap();
    let mut t = tailer(&path);
    assert_eq!(poll(&mut t).0.len(), 3);
    let new = format!(
        "{head}{}{}{}",
        failed_login(2),
        failed_login(3),
        failed_login(4)
    );
    rewrite_in_place(&path, new.as_bytes());
    let (got, notices) = poll(&mut t);
    assert_eq!(
        got,
        [failed_login(3).trim_end(), failed_login(4).trim_end()]
    );
    assert_eq!(count(&notices, "rewritten"), 1, "{notices:?}");
}

/// Field case 2: rename-and-create rotation with a line appended to the renamed file
/// before the new file appears.
#[test]
fn rename_rotation_drains_the_old_file_then_follows_the_new() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let line = |n| format!("203.0.113.40 POST /login 401 n={n}\n");
    fs::write(&path, format!("{}{}", line(1), line(2))).unwrap();
    let mut t = tailer(&path);
    assert_eq!(poll(&mut t).0.len(), 2);

    let rotated = dir.path().join("access.log.1");
    fs::rename(&path, &rotated).unwrap();
    append(&rotated, line(3).as_bytes());
    File::create(&path).unwrap();
    append(&path, line(4).as_bytes());
    let (got, notices) = poll(&mut t);
    assert_eq!(got, [line(3).trim_end(), line(4).trim_end()]);
    assert_eq!(count(&notices, "rotated"), 1, "{notices:?}");
    assert_eq!(t.stats().sources["app"].rotations, 1);

    append(&path, line(5).as_bytes());
    assert_eq!(poll(&mut t).0, [line(5).trim_end()]);
}

/// The writer keeps appending to the rotated file for a while; those lines are read
/// until the old file has been idle for `detached_idle_polls` polls.
#[test]
fn late_writes_to_a_rotated_file_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    fs::write(&path, "1\n").unwrap();
    let opts = TailOptions {
        detached_idle_polls: 2,
        ..TailOptions::default()
    };
    let mut t = Tailer::new(vec![spec(&path, CAP)], Vec::new(), opts);
    poll(&mut t);
    let rotated = dir.path().join("access.log.1");
    fs::rename(&path, &rotated).unwrap();
    fs::write(&path, "new 1\n").unwrap();
    assert_eq!(poll(&mut t).0, ["new 1"]);
    append(&rotated, b"2 late\n");
    assert_eq!(poll(&mut t).0, ["2 late"]);
    assert_eq!(t.checkpoints().len(), 2);
    poll(&mut t);
    poll(&mut t);
    assert_eq!(
        t.checkpoints().len(),
        1,
        "idle rotated file was not dropped"
    );
}

fn copytruncate_case(refill_lines: u32) -> (Vec<String>, Vec<TailNotice>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    // 12 lines of exactly 100 bytes: offset 1,200.
    let line = |tag: &str, n: u32| format!("{tag} {n:04} {}\n", "x".repeat(90));
    let old: String = (0..12).map(|n| line("old", n)).collect();
    assert_eq!(old.len(), 1200);
    fs::write(&path, &old).unwrap();
    let mut t = tailer(&path);
    assert_eq!(poll(&mut t).0.len(), 12);

    let copy = dir.path().join("access.log.1");
    fs::copy(&path, &copy).unwrap();
    let refill: String = (0..refill_lines).map(|n| line("new", n)).collect();
    rewrite_in_place(&path, refill.as_bytes());
    let (got, notices) = poll(&mut t);
    (got, notices, t.stats().sources["app"].truncations)
}

/// Field case 4A: copytruncate refilled with less than the old offset.
#[test]
fn copytruncate_with_smaller_refill_reads_from_zero() {
    let (got, notices, truncations) = copytruncate_case(3);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|l| l.starts_with("new ")));
    assert_eq!(count(&notices, "truncated"), 1);
    assert_eq!(truncations, 1);
}

/// Field case 4B: refilled past the old offset; only the changed fingerprint shows it.
#[test]
fn copytruncate_with_larger_refill_reads_from_zero() {
    let (got, notices, truncations) = copytruncate_case(20);
    assert_eq!(got.len(), 20);
    assert_eq!(got[0], format!("new 0000 {}", "x".repeat(90)));
    assert_eq!(count(&notices, "truncated"), 1);
    assert_eq!(truncations, 1);
}

/// With a glob that also matches the copy logrotate makes, the copy's lines (already
/// read from the original) are not read again.
#[test]
fn copytruncate_copy_matched_by_the_glob_is_not_read_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    fs::write(&path, "1\n2\n").unwrap();
    let mut t = tailer(&dir.path().join("access.log*"));
    assert_eq!(poll(&mut t).0, ["1", "2"]);
    append(&path, b"3 before copy\n");
    fs::copy(&path, dir.path().join("access.log.1")).unwrap();
    rewrite_in_place(&path, b"4 after truncate\n");
    let (mut got, notices) = poll(&mut t);
    got.sort();
    assert_eq!(got, ["3 before copy", "4 after truncate"]);
    assert_eq!(count(&notices, "truncated"), 1, "{notices:?}");
}

/// Field case 1 variant: the rewrite is seen half-done (file emptied, not yet
/// refilled); the surviving lines are still recognised once the content is back.
#[test]
fn rewrite_seen_while_the_file_is_empty_does_not_recount() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app-errors.log");
    let (a, b, c) = (failed_login(1), failed_login(7), failed_login(12));
    fs::write(&path, format!("{a}{b}")).unwrap();
    let mut t = tailer(&path);
    assert_eq!(poll(&mut t).0.len(), 2);
    rewrite_in_place(&path, b"");
    assert!(poll(&mut t).0.is_empty());
    append(&path, format!("{b}{c}").as_bytes());
    let (got, notices) = poll(&mut t);
    assert_eq!(got, [c.trim_end()]);
    assert_eq!(count(&notices, "rewritten"), 1);
}

#[test]
fn half_written_line_is_held_until_completed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    fs::write(&path, "first\nsec").unwrap();
    let mut t = tailer(&path);
    assert_eq!(poll(&mut t).0, ["first"]);
    assert_eq!(
        t.checkpoints()[0].1.offset,
        6,
        "checkpoint past a half line"
    );
    append(&path, b"ond\r");
    assert!(
        poll(&mut t).0.is_empty(),
        "a trailing \\r may still become \\r\\n"
    );
    append(&path, b"\nthird\n");
    let mut out = Vec::new();
    t.poll(&mut out);
    assert_eq!(texts(&out), ["second", "third"]);
    assert_eq!(out[1].offset, 14);
    assert_eq!(t.checkpoints()[0].1.offset, 20);
}

#[test]
fn empty_lines_are_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    fs::write(&path, "\n\na\n\r\n").unwrap();
    let mut t = tailer(&path);
    assert_eq!(poll(&mut t).0, ["", "", "a", ""]);
}

/// A new tailer built from the old one's checkpoints continues exactly where the old
/// one stopped, including in the middle of a half-written line.
#[test]
fn restart_from_checkpoints_neither_loses_nor_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    fs::write(&path, "1\n2\n3 half").unwrap();
    let mut t = tailer(&path);
    assert_eq!(poll(&mut t).0, ["1", "2"]);
    let saved = dir.path().join("checkpoints.json");
    save_checkpoints_file(&saved, &t.checkpoints()).unwrap();
    drop(t);

    append(&path, b" done\n4\n");
    let cps = load_checkpoints_file(&saved).unwrap();
    let mut t = Tailer::new(vec![spec(&path, CAP)], cps, TailOptions::default());
    let (got, notices) = poll(&mut t);
    assert_eq!(got, ["3 half done", "4"]);
    assert_eq!(count(&notices, "resumed"), 1, "{notices:?}");
}

/// Renamed while palisade was stopped, still matched by the glob: recognised by its
/// identity and read on from its checkpoint, not from 0.
#[test]
fn file_renamed_while_stopped_resumes_at_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    fs::write(&path, "1\n2\n").unwrap();
    let pattern = dir.path().join("*.log");
    let mut t = tailer(&pattern);
    assert_eq!(poll(&mut t).0, ["1", "2"]);
    let cps = t.checkpoints();
    drop(t);

    let renamed = dir.path().join("b.log");
    fs::rename(&path, &renamed).unwrap();
    append(&renamed, b"3\n");
    let mut t = Tailer::new(vec![spec(&pattern, CAP)], cps, TailOptions::default());
    assert_eq!(poll(&mut t).0, ["3"]);
    assert_eq!(t.checkpoints()[0].1.path, renamed.to_string_lossy());
}

/// Rotated while stopped and no longer matched (`access.log` → `access.log.1`): the
/// rest of the old file is read from its checkpoint, then the new file from 0.
#[test]
fn file_rotated_away_while_stopped_is_drained_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    fs::write(&path, "1\n2\n").unwrap();
    let mut t = tailer(&path);
    assert_eq!(poll(&mut t).0.len(), 2);
    let cps = t.checkpoints();
    drop(t);

    let rotated = dir.path().join("access.log.1");
    fs::rename(&path, &rotated).unwrap();
    append(&rotated, b"3\n");
    fs::write(&path, "4\n").unwrap();
    let mut t = Tailer::new(vec![spec(&path, CAP)], cps, TailOptions::default());
    let (mut got, _) = poll(&mut t);
    got.sort();
    assert_eq!(got, ["3", "4"]);
}

/// A different file that reuses a checkpointed path is read from 0: its fingerprint
/// differs.
#[test]
fn checkpoint_of_another_file_is_not_applied_to_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    fs::write(&path, "new first\nnew second\n").unwrap();
    let cp = Checkpoint {
        fingerprint: 12345,
        dev: 1,
        inode: 2,
        path: path.to_string_lossy().into_owned(),
        offset: 10,
    };
    let mut t = Tailer::new(
        vec![spec(&path, CAP)],
        vec![("app".into(), cp)],
        TailOptions::default(),
    );
    assert_eq!(poll(&mut t).0, ["new first", "new second"]);
}

#[test]
fn glob_picks_up_files_created_later() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tailer(&dir.path().join("*.log"));
    assert!(poll(&mut t).0.is_empty());
    fs::write(dir.path().join("one.log"), "a\n").unwrap();
    fs::write(dir.path().join("ignored.txt"), "nope\n").unwrap();
    let (got, notices) = poll(&mut t);
    assert_eq!(got, ["a"]);
    assert_eq!(count(&notices, "new_file"), 1);
    fs::write(dir.path().join("two.log"), "b\n").unwrap();
    append(&dir.path().join("one.log"), b"c\n");
    let (mut got, _) = poll(&mut t);
    got.sort();
    assert_eq!(got, ["b", "c"]);
    assert_eq!(t.stats().sources["app"].files, 2);
}

#[test]
fn start_at_end_skips_existing_content_but_not_later_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("old.log"), "old 1\nold 2\nhalf").unwrap();
    let opts = TailOptions {
        start_at_end: true,
        ..TailOptions::default()
    };
    let mut t = Tailer::new(vec![spec(&dir.path().join("*.log"), CAP)], Vec::new(), opts);
    assert!(poll(&mut t).0.is_empty());
    append(&dir.path().join("old.log"), b" line\n");
    fs::write(dir.path().join("new.log"), "new 1\n").unwrap();
    let (mut got, _) = poll(&mut t);
    got.sort();
    assert_eq!(got, ["half line", "new 1"]);
}

/// A symlink re-pointed to another file: the old target is finished, the new one read.
#[test]
fn repointed_symlink_switches_to_the_new_target() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let link = dir.path().join("current.log");
    fs::write(&a, "a1\n").unwrap();
    std::os::unix::fs::symlink(&a, &link).unwrap();
    let mut t = tailer(&link);
    assert_eq!(poll(&mut t).0, ["a1"]);

    fs::write(&b, "b1\n").unwrap();
    append(&a, b"a2\n");
    let tmp = dir.path().join("current.tmp");
    std::os::unix::fs::symlink(&b, &tmp).unwrap();
    fs::rename(&tmp, &link).unwrap();
    let (got, notices) = poll(&mut t);
    assert_eq!(got, ["a2", "b1"]);
    assert_eq!(count(&notices, "rotated"), 1);
    append(&b, b"b2\n");
    append(&a, b"a3 after switch\n");
    let (got, _) = poll(&mut t);
    assert!(got.contains(&"b2".to_string()), "{got:?}");
}

#[test]
fn unreadable_file_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = dir.path().join("[bad");
    let mut t = tailer(&pattern);
    let (_, notices) = poll(&mut t);
    assert_eq!(count(&notices, "error"), 1, "{notices:?}");
    let (_, notices) = poll(&mut t);
    assert_eq!(count(&notices, "error"), 0, "error repeated every poll");
}

#[test]
fn deleted_file_is_reported_gone_after_its_remaining_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    fs::write(&path, "1\n").unwrap();
    let mut t = tailer(&path);
    poll(&mut t);
    append(&path, b"2\n");
    fs::remove_file(&path).unwrap();
    let (got, notices) = poll(&mut t);
    assert_eq!(got, ["2"]);
    assert_eq!(count(&notices, "gone"), 1);
}

#[test]
fn backlog_is_read_in_bounded_polls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let content: String = (0..10_000).map(|n| format!("line {n}\n")).collect();
    fs::write(&path, &content).unwrap();
    let opts = TailOptions {
        max_bytes_per_poll: 16 * 1024,
        ..TailOptions::default()
    };
    let mut t = Tailer::new(vec![spec(&path, CAP)], Vec::new(), opts);
    let mut all = Vec::new();
    let mut polls = 0;
    loop {
        all.extend(poll(&mut t).0);
        polls += 1;
        if !t.has_backlog() {
            break;
        }
    }
    assert!(polls > 3);
    assert_eq!(all.len(), 10_000);
    assert_eq!(all[9_999], "line 9999");
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn reference(content: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let (mut start, mut i) = (0, 0);
        while i < content.len() {
            let eol = match content[i] {
                b'\n' => 1,
                b'\r' if content.get(i + 1) == Some(&b'\n') => 2,
                b'\r' => 1,
                _ => {
                    i += 1;
                    continue;
                }
            };
            out.push(String::from_utf8_lossy(&content[start..i]).into_owned());
            i += eol;
            start = i;
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Content written in random pieces (cuts may fall inside `\r\n` or inside a
        /// UTF-8 character) is delivered as exactly the lines of the whole content.
        #[test]
        fn random_write_boundaries_yield_the_whole_contents_lines(
            content in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'z', b' ', b'\n', b'\r', 0xC3, 0xA9]),
                0..400),
            mut cuts in proptest::collection::vec(0usize..400, 0..10),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.log");
            fs::write(&path, b"").unwrap();
            let mut t = tailer(&path);
            let mut got = Vec::new();
            cuts.push(content.len());
            cuts.sort_unstable();
            let mut prev = 0;
            for c in cuts {
                let c = c.min(content.len());
                append(&path, &content[prev..c]);
                prev = c;
                got.extend(poll(&mut t).0);
            }
            append(&path, b"\n");
            got.extend(poll(&mut t).0);
            let mut whole = content.clone();
            whole.push(b'\n');
            prop_assert_eq!(got, reference(&whole));
        }
    }
}
