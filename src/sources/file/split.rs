//! The line splitter shared by scan reading and live following.
//!
//! Bytes arrive in chunks of any size (a 256 KiB read, or whatever a writer has
//! appended so far); [`Splitter::feed`] hands out every line whose terminator it has
//! seen and keeps the start of an unfinished line for the next chunk. `\n`, `\r\n` and a
//! lone `\r` all end a line. A `\r` that is the last byte of a chunk is undecided until
//! the next byte is known (it may be the first half of `\r\n`), so it is held too,
//! unless every line so far ended in a lone `\r` (old Mac endings, field case 38).
//!
//! Lines longer than the cap keep only their first `cap` bytes (cut back to a UTF-8
//! character boundary); the rest of such a line is scanned for its terminator and
//! dropped, so memory stays at `cap` bytes per file whatever the line length.

use std::ops::ControlFlow;

/// One complete line as raw bytes, borrowed from the chunk or the splitter.
#[derive(Debug)]
pub(crate) struct RawLine<'a> {
    /// Offset of the line's first byte.
    pub offset: u64,
    /// Offset just past the line's terminator: where the next line starts.
    pub end: u64,
    /// The line's bytes without terminator, cut to the cap.
    pub bytes: &'a [u8],
    /// The line was longer than the cap.
    pub truncated: bool,
}

/// Which terminators were seen, for the line-ending warning.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endings {
    pub lf: u64,
    pub crlf: u64,
    pub cr: u64,
}

/// Splits a byte stream into lines; see the module docs.
#[derive(Debug)]
pub(crate) struct Splitter {
    cap: usize,
    /// Offset of the next byte to be fed.
    pos: u64,
    /// A line has started but its terminator has not been seen.
    partial: bool,
    /// Offset of that line's first byte.
    partial_start: u64,
    /// Its kept bytes (at most `cap`).
    head: Vec<u8>,
    /// It is longer than `cap`.
    partial_truncated: bool,
    /// It ended in a `\r` that was the last byte fed.
    cr_pending: bool,
    /// A lone `\r` that was the last byte fed already ended its line (CR-only mode);
    /// a `\n` arriving next belongs to it (the file had a CRLF after all).
    skip_lf: bool,
    pub endings: Endings,
}

impl Splitter {
    /// A splitter whose first fed byte sits at `offset`.
    pub fn new(cap: usize, offset: u64) -> Splitter {
        Splitter {
            cap: cap.max(4),
            pos: offset,
            partial: false,
            partial_start: offset,
            head: Vec::new(),
            partial_truncated: false,
            cr_pending: false,
            skip_lf: false,
            endings: Endings::default(),
        }
    }

    /// Offset of the next byte to feed: where reading continues.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Splits `chunk`, calling `f` for each completed line. Stops early (with the rest
    /// of the chunk unconsumed and `pos` not advanced past it) when `f` breaks.
    pub fn feed<F>(&mut self, chunk: &[u8], mut f: F) -> ControlFlow<()>
    where
        F: FnMut(&RawLine<'_>) -> ControlFlow<()>,
    {
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                self.endings.cr -= 1;
                self.endings.crlf += 1;
                self.pos += 1;
                return self.feed(&chunk[1..], f);
            }
        }
        if !self.cr_pending && memchr::memchr(b'\r', chunk).is_none() {
            return self.feed_lf_only(chunk, f);
        }
        let base = self.pos;
        let mut i = 0;
        if self.cr_pending && !chunk.is_empty() {
            self.cr_pending = false;
            let crlf = chunk[0] == b'\n';
            i = usize::from(crlf);
            self.count_ending(crlf, true);
            self.pos = base + i as u64;
            self.emit_partial(&mut f)?;
        }
        while i < chunk.len() {
            let rest = &chunk[i..];
            let Some(j) = memchr::memchr2(b'\n', b'\r', rest) else {
                self.append_partial(rest, base + i as u64);
                break;
            };
            let k = i + j;
            let is_cr = chunk[k] == b'\r';
            if is_cr && k + 1 == chunk.len() && !self.cr_only_so_far() {
                self.append_partial(&chunk[i..k], base + i as u64);
                self.cr_pending = true;
                break;
            }
            let crlf = is_cr && chunk.get(k + 1) == Some(&b'\n');
            let next = k + 1 + usize::from(crlf);
            self.count_ending(crlf, is_cr);
            self.pos = base + next as u64;
            self.skip_lf = is_cr && !crlf && next == chunk.len();
            self.emit_line(&chunk[i..k], base + i as u64, &mut f)?;
            i = next;
        }
        self.pos = base + chunk.len() as u64;
        ControlFlow::Continue(())
    }

    /// [`Splitter::feed`] for the common chunk without any `\r`: one memchr iterator
    /// over `\n` keeps its search state between lines instead of starting a new
    /// two-byte search for every line.
    fn feed_lf_only<F>(&mut self, chunk: &[u8], mut f: F) -> ControlFlow<()>
    where
        F: FnMut(&RawLine<'_>) -> ControlFlow<()>,
    {
        let base = self.pos;
        let mut i = 0;
        for k in memchr::memchr_iter(b'\n', chunk) {
            self.endings.lf += 1;
            self.pos = base + k as u64 + 1;
            self.emit_line(&chunk[i..k], base + i as u64, &mut f)?;
            i = k + 1;
        }
        if i < chunk.len() {
            self.append_partial(&chunk[i..], base + i as u64);
        }
        self.pos = base + chunk.len() as u64;
        ControlFlow::Continue(())
    }

    /// Emits the line whose last bytes are `bytes` (starting at `offset`) and whose
    /// terminator ends at `self.pos`, joining it to a held partial line if any.
    fn emit_line<F>(&mut self, bytes: &[u8], offset: u64, f: &mut F) -> ControlFlow<()>
    where
        F: FnMut(&RawLine<'_>) -> ControlFlow<()>,
    {
        if self.partial {
            self.append_partial(bytes, offset);
            return self.emit_partial(f);
        }
        let (bytes, truncated) = cap_bytes(bytes, self.cap);
        f(&RawLine {
            offset,
            end: self.pos,
            bytes,
            truncated,
        })
    }

    /// End of input: hands out the unfinished last line, if any (a file's last line
    /// often lacks a terminator).
    pub fn finish<F>(&mut self, mut f: F) -> ControlFlow<()>
    where
        F: FnMut(&RawLine<'_>) -> ControlFlow<()>,
    {
        if self.cr_pending {
            self.cr_pending = false;
            self.count_ending(false, true);
        }
        if !self.partial {
            return ControlFlow::Continue(());
        }
        self.emit_partial(&mut f)
    }

    /// Every line so far ended in a lone `\r` (old Mac endings): a `\r` at the end of
    /// a chunk then ends its line at once instead of waiting for a `\n` that such a
    /// writer never sends; otherwise a followed CR-only file would hold its last line
    /// until the next one is written (field case 38).
    fn cr_only_so_far(&self) -> bool {
        let e = self.endings;
        e.cr > 0 && e.crlf == 0 && e.lf == 0
    }

    fn count_ending(&mut self, crlf: bool, is_cr: bool) {
        match (crlf, is_cr) {
            (true, _) => self.endings.crlf += 1,
            (false, true) => self.endings.cr += 1,
            (false, false) => self.endings.lf += 1,
        }
    }

    fn append_partial(&mut self, bytes: &[u8], offset: u64) {
        if !self.partial {
            self.partial = true;
            self.partial_start = offset;
        }
        let room = self.cap - self.head.len();
        if bytes.len() > room {
            self.head.extend_from_slice(&bytes[..room]);
            self.partial_truncated = true;
        } else {
            self.head.extend_from_slice(bytes);
        }
    }

    /// Emits the held line; `self.pos` must already be past its terminator.
    fn emit_partial<F>(&mut self, f: &mut F) -> ControlFlow<()>
    where
        F: FnMut(&RawLine<'_>) -> ControlFlow<()>,
    {
        let bytes = if self.partial_truncated {
            cut_to_char_boundary(&self.head)
        } else {
            &self.head[..]
        };
        let line = RawLine {
            offset: self.partial_start,
            end: self.pos,
            bytes,
            truncated: self.partial_truncated,
        };
        let flow = f(&line);
        self.partial = false;
        self.partial_truncated = false;
        self.head.clear();
        flow
    }
}

/// Cuts a line to `cap` bytes on a character boundary.
fn cap_bytes(bytes: &[u8], cap: usize) -> (&[u8], bool) {
    if bytes.len() <= cap {
        return (bytes, false);
    }
    (cut_to_char_boundary(&bytes[..cap]), true)
}

/// Drops an incomplete UTF-8 sequence at the end of a cut line, so truncation never
/// turns a valid character into a replacement character.
pub(crate) fn cut_to_char_boundary(bytes: &[u8]) -> &[u8] {
    let len = bytes.len();
    let floor = len.saturating_sub(4);
    let Some(lead) = (floor..len).rev().find(|&i| bytes[i] & 0xC0 != 0x80) else {
        return bytes;
    };
    let need = match bytes[lead] {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    };
    if lead + need > len {
        &bytes[..lead]
    } else {
        bytes
    }
}

/// Appends `bytes` to `text`, replacing invalid UTF-8 with U+FFFD; true when any was
/// invalid. No allocation beyond `text`'s own growth. Every line passes through here:
/// `simdutf8` validates a line of ordinary ASCII in about half the instructions of
/// `std::str::from_utf8`, and the std decoder is used only to mend an invalid one.
pub(crate) fn push_lossy(text: &mut String, bytes: &[u8]) -> bool {
    if let Ok(s) = simdutf8::basic::from_utf8(bytes) {
        text.push_str(s);
        return false;
    }
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the splitter must produce: the obvious byte-at-a-time definition.
    fn reference(content: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let (mut start, mut i) = (0, 0);
        while i < content.len() {
            match content[i] {
                b'\n' => {
                    out.push((start as u64, content[start..i].to_vec()));
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    out.push((start as u64, content[start..i].to_vec()));
                    i += if content.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    start = i;
                }
                _ => i += 1,
            }
        }
        if start < content.len() {
            out.push((start as u64, content[start..].to_vec()));
        }
        out
    }

    fn split_in_chunks(content: &[u8], cuts: &[usize], cap: usize) -> Vec<(u64, Vec<u8>)> {
        let mut s = Splitter::new(cap, 0);
        let mut out = Vec::new();
        let mut push = |l: &RawLine<'_>| {
            out.push((l.offset, l.bytes.to_vec()));
            ControlFlow::Continue(())
        };
        let mut prev = 0;
        for &c in cuts.iter().chain([content.len()].iter()) {
            let c = c.clamp(prev, content.len());
            let _ = s.feed(&content[prev..c], &mut push);
            prev = c;
        }
        let _ = s.finish(&mut push);
        out
    }

    #[test]
    fn lf_after_an_early_ended_cr_line_is_its_crlf_not_an_empty_line() {
        // Found by the proptest below: a file that starts CR-only and then writes a
        // CRLF split between two reads.
        for (content, cut) in [(&b"\ra\r\n"[..], 3), (&b"\r\ra\ra\r\r\n"[..], 7)] {
            assert_eq!(
                split_in_chunks(content, &[cut], 100),
                reference(content),
                "{content:?}"
            );
        }
    }

    #[test]
    fn crlf_split_across_chunks_is_one_terminator() {
        let got = split_in_chunks(b"a\r\nb\rc\n", &[2], 100);
        let texts: Vec<_> = got.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(texts, [&b"a"[..], b"b", b"c"]);
        assert_eq!(got[1].0, 3);
    }

    #[test]
    fn long_line_is_cut_on_a_char_boundary() {
        let line = "é".repeat(10); // 20 bytes
        let got = split_in_chunks(format!("{line}\nok\n").as_bytes(), &[3, 7], 5);
        assert_eq!(got[0].1, "éé".as_bytes());
        assert_eq!(got[1], (21, b"ok".to_vec()));
    }

    proptest::proptest! {
        #[test]
        fn any_chunking_yields_the_reference_lines(
            content in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'b', b'\n', b'\r', 0xC3, 0xA9, 0xFF]), 0..200),
            mut cuts in proptest::collection::vec(0usize..200, 0..12),
        ) {
            cuts.sort_unstable();
            let got = split_in_chunks(&content, &cuts, 1000);
            proptest::prop_assert_eq!(got, reference(&content));
        }
    }
}
