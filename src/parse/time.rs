//! Timestamps as logs write them, turned into UTC instants.
//!
//! The nginx `$time_local` form is the hot path: it is parsed by hand (fixed byte
//! positions, integer civil-to-epoch arithmetic) and the last second is cached, since
//! consecutive access-log lines mostly share it. The other forms are rarer and use
//! `jiff` directly. A written offset is always honoured (field case 14) and kept in
//! `Event::tz_offset_secs`; times without one are read in the source's configured zone
//! by [`LocalClock`], which resolves the repeated hour of a DST fall-back to the instant
//! not earlier than the previous line (field case 11).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

use super::ParseError;

/// An instant with the offset the line wrote (seconds east), if it wrote one.
pub type Stamp = (Timestamp, Option<i32>);

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Month number (1–12) of an English three-letter abbreviation.
pub fn month_number(m: &[u8]) -> Option<u8> {
    MONTHS
        .iter()
        .position(|name| name.eq_ignore_ascii_case(m))
        .map(|i| i as u8 + 1)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// Parses nginx `$time_local` / Apache CLF time, `10/Mar/2024:21:07:41 +0800`, with a
/// one-entry cache keyed on the whole 26-byte text.
#[derive(Debug, Default, Clone)]
pub struct ClfTimeCache {
    key: [u8; 26],
    value: Option<Stamp>,
}

impl ClfTimeCache {
    /// Parses `text`, reusing the previous result when the text repeats.
    pub fn parse(&mut self, text: &str) -> Result<Stamp, ParseError> {
        let b = text.as_bytes();
        if let Some(cached) = self.value
            && b == self.key
        {
            return Ok(cached);
        }
        let stamp = parse_clf(b).ok_or_else(|| ParseError::BadTime(text.into()))?;
        if b.len() == 26 {
            self.key.copy_from_slice(b);
            self.value = Some(stamp);
        }
        Ok(stamp)
    }
}

/// `dd/Mon/yyyy:hh:mm:ss ±hhmm` without the cache.
pub fn parse_clf(b: &[u8]) -> Option<Stamp> {
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let day = digits(&b[0..2])?;
    let month = i64::from(month_number(&b[3..6])?);
    let year = digits(&b[7..11])?;
    let (h, mi, s) = (
        digits(&b[12..14])?,
        digits(&b[15..17])?,
        digits(&b[18..20])?,
    );
    let offset = parse_offset(&b[21..])?;
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let local = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s.min(59);
    let ts = Timestamp::from_second(local - i64::from(offset)).ok()?;
    Some((ts, Some(offset)))
}

/// `+0800`, `-05:00`, `Z` → seconds east.
fn parse_offset(b: &[u8]) -> Option<i32> {
    if b == b"Z" || b == b"z" {
        return Some(0);
    }
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest: Vec<u8> = b[1..].iter().copied().filter(|c| *c != b':').collect();
    if rest.len() != 4 && rest.len() != 2 {
        return None;
    }
    let h = digits(&rest[..2])?;
    let m = if rest.len() == 4 {
        digits(&rest[2..])?
    } else {
        0
    };
    (h < 24 && m < 60).then(|| sign * (h * 3600 + m * 60) as i32)
}

/// Reads times written without an offset in the source's zone, resolving DST folds
/// so that time does not run backwards across the repeated hour.
#[derive(Debug, Clone)]
pub struct LocalClock {
    tz: TimeZone,
    last: Option<Timestamp>,
}

impl Default for LocalClock {
    fn default() -> Self {
        LocalClock::new(TimeZone::UTC)
    }
}

impl LocalClock {
    /// A clock for `tz` (use [`TimeZone::UTC`] when the source has no `timezone`).
    pub fn new(tz: TimeZone) -> LocalClock {
        LocalClock { tz, last: None }
    }

    /// The configured zone.
    pub fn zone(&self) -> &TimeZone {
        &self.tz
    }

    /// Remembers an instant seen in the source (lines with offsets count too).
    pub fn observe(&mut self, ts: Timestamp) {
        self.last = Some(ts);
    }

    /// The instant of a local wall-clock time. In a fold the earlier instant is taken
    /// unless it lies before the previous line's instant and the later one does not;
    /// in a gap the time is pushed forward by the gap's length (`compatible`).
    pub fn resolve(&mut self, dt: DateTime) -> Result<Timestamp, ParseError> {
        let amb = self.tz.to_ambiguous_timestamp(dt);
        let bad = || ParseError::BadTime(dt.to_string());
        let ts = match amb.offset() {
            AmbiguousOffset::Fold { .. } => {
                let earlier = amb.earlier().map_err(|_| bad())?;
                let later = amb.later().map_err(|_| bad())?;
                match self.last {
                    Some(last) if earlier < last && later >= last => later,
                    _ => earlier,
                }
            }
            _ => amb.compatible().map_err(|_| bad())?,
        };
        self.last = Some(ts);
        Ok(ts)
    }

    /// The offset in force at `ts` in the configured zone.
    pub fn offset_at(&self, ts: Timestamp) -> i32 {
        self.tz.to_offset(ts).seconds()
    }
}

/// ISO 8601 / RFC 3339: `2024-05-06T21:14:01Z`, `2024-05-06 21:14:01.123+02:00`. Without
/// an offset the time is read by `clock`.
pub fn parse_iso(text: &str, clock: &mut LocalClock) -> Result<Stamp, ParseError> {
    let bad = || ParseError::BadTime(text.into());
    let s = text.trim();
    if s.len() < 19 || !s.is_char_boundary(19) {
        return Err(bad());
    }
    let (civil, tail) = split_fraction(s);
    let b = civil.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let (nanos, offset_text) = parse_fraction(tail).ok_or_else(bad)?;
    let dt = civil_from_bytes(b, 0, 5, 8, 11).ok_or_else(bad)?;
    let dt = dt
        .with()
        .subsec_nanosecond(nanos)
        .build()
        .map_err(|_| bad())?;
    if offset_text.is_empty() {
        return Ok((clock.resolve(dt)?, None));
    }
    let offset = parse_offset(offset_text.as_bytes()).ok_or_else(bad)?;
    let ts = offset_instant(dt, offset).ok_or_else(bad)?;
    clock.observe(ts);
    Ok((ts, Some(offset)))
}

fn split_fraction(s: &str) -> (&str, &str) {
    s.split_at(19)
}

/// `.123456789` then an optional offset.
fn parse_fraction(tail: &str) -> Option<(i32, &str)> {
    let Some(frac) = tail.strip_prefix(['.', ',']) else {
        return Some((0, tail));
    };
    let end = frac
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(frac.len());
    let (num, rest) = frac.split_at(end);
    if num.is_empty() {
        return None;
    }
    let mut nanos = 0i32;
    for (i, c) in num.bytes().take(9).enumerate() {
        nanos += i32::from(c - b'0') * 10i32.pow(8 - i as u32);
    }
    Some((nanos, rest))
}

/// A civil date-time from `yyyy?mm?dd?hh:mm:ss` with the given field starts.
fn civil_from_bytes(b: &[u8], y: usize, mo: usize, d: usize, t: usize) -> Option<DateTime> {
    let year = digits(b.get(y..y + 4)?)? as i16;
    let month = digits(b.get(mo..mo + 2)?)? as i8;
    let day = digits(b.get(d..d + 2)?)? as i8;
    let (h, mi, s) = hms(b.get(t..t + 8)?)?;
    DateTime::new(year, month, day, h, mi, s, 0).ok()
}

fn hms(b: &[u8]) -> Option<(i8, i8, i8)> {
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let s = digits(&b[6..8])?.min(59);
    Some((digits(&b[0..2])? as i8, digits(&b[3..5])? as i8, s as i8))
}

fn offset_instant(dt: DateTime, offset: i32) -> Option<Timestamp> {
    let off = jiff::tz::Offset::from_seconds(offset).ok()?;
    off.to_timestamp(dt).ok()
}

/// nginx error-log time `2024/05/12 03:41:07` (no offset: read by `clock`).
pub fn parse_nginx_error_time(text: &str, clock: &mut LocalClock) -> Result<Stamp, ParseError> {
    let b = text.as_bytes();
    let ok = b.len() == 19 && b[4] == b'/' && b[7] == b'/' && b[10] == b' ';
    let dt = ok
        .then(|| civil_from_bytes(b, 0, 5, 8, 11))
        .flatten()
        .ok_or_else(|| ParseError::BadTime(text.into()))?;
    Ok((clock.resolve(dt)?, None))
}

/// Apache error-log time `Wed Oct 11 14:32:52.123456 2000` (brackets removed).
pub fn parse_apache_time(text: &str, clock: &mut LocalClock) -> Result<Stamp, ParseError> {
    let bad = || ParseError::BadTime(text.into());
    let parts: Vec<&str> = text.split_ascii_whitespace().collect();
    let [_day, mon, dd, time, year] = parts[..] else {
        return Err(bad());
    };
    let month = month_number(mon.as_bytes()).ok_or_else(bad)? as i8;
    let day = digits(dd.as_bytes()).ok_or_else(bad)? as i8;
    let year = digits(year.as_bytes()).ok_or_else(bad)? as i16;
    let (hms_text, frac) = time.split_at(time.len().min(8));
    let (h, mi, s) = hms(hms_text.as_bytes()).ok_or_else(bad)?;
    let (nanos, rest) = parse_fraction(frac).ok_or_else(bad)?;
    if !rest.is_empty() {
        return Err(bad());
    }
    let dt = DateTime::new(year, month, day, h, mi, s, nanos).map_err(|_| bad())?;
    Ok((clock.resolve(dt)?, None))
}

/// syslog `Mar  5 10:00:01` (no year: the year of `reference` is taken, or the one
/// before when that would put the line more than a day after `reference`).
pub fn parse_syslog_time(
    text: &str,
    reference: Timestamp,
    clock: &mut LocalClock,
) -> Result<Stamp, ParseError> {
    let bad = || ParseError::BadTime(text.into());
    let b = text.as_bytes();
    if b.len() != 15 || b[3] != b' ' || b[6] != b' ' {
        return Err(bad());
    }
    let month = month_number(&b[..3]).ok_or_else(bad)? as i8;
    let day_text = text[4..6].trim_start();
    let day = digits(day_text.as_bytes()).ok_or_else(bad)? as i8;
    let (h, mi, s) = hms(&b[7..15]).ok_or_else(bad)?;
    let year = reference.to_zoned(clock.zone().clone()).year();
    let dt = DateTime::new(year, month, day, h, mi, s, 0).map_err(|_| bad())?;
    let ts = clock.resolve(dt)?;
    if ts.as_second() - reference.as_second() > 86_400 {
        let dt = DateTime::new(year - 1, month, day, h, mi, s, 0).map_err(|_| bad())?;
        return Ok((clock.resolve(dt)?, None));
    }
    Ok((ts, None))
}

/// journald `__REALTIME_TIMESTAMP`: microseconds since the epoch, as text.
pub fn parse_epoch_micros(text: &str) -> Result<Timestamp, ParseError> {
    let bad = || ParseError::BadTime(text.into());
    let n: i64 = text.trim().parse().map_err(|_| bad())?;
    Timestamp::from_microsecond(n).map_err(|_| bad())
}

/// Epoch seconds or milliseconds as a JSON number (≥ 1e11 is taken as milliseconds).
pub fn parse_epoch_number(n: f64) -> Option<Timestamp> {
    if !n.is_finite() {
        return None;
    }
    let ms = if n.abs() >= 1e11 { n } else { n * 1000.0 };
    Timestamp::from_millisecond(ms as i64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_offsets_give_the_same_instant() {
        // field case 14
        let mut c = ClfTimeCache::default();
        for t in [
            "10/Mar/2024:21:07:41 +0800",
            "10/Mar/2024:13:07:41 +0000",
            "10/Mar/2024:14:07:41 +0100",
        ] {
            let (ts, _) = c.parse(t).unwrap();
            assert_eq!(ts.to_string(), "2024-03-10T13:07:41Z");
        }
        assert_eq!(
            c.parse("10/Mar/2024:21:07:41 +0800").unwrap().1,
            Some(8 * 3600)
        );
    }

    #[test]
    fn clf_rejects_malformed_time() {
        let mut c = ClfTimeCache::default();
        for t in [
            "10/Foo/2024:21:07:41 +0800",
            "10/Mar/2024:21:07:41 0800",
            "x",
        ] {
            assert!(c.parse(t).is_err(), "{t}");
        }
    }

    #[test]
    fn iso_with_fraction_offset_and_zulu() {
        let mut clock = LocalClock::default();
        let (ts, off) = parse_iso("2024-05-06T21:14:01.250+02:00", &mut clock).unwrap();
        assert_eq!(ts.to_string(), "2024-05-06T19:14:01.25Z");
        assert_eq!(off, Some(7200));
        let (ts, off) = parse_iso("2024-05-06T21:14:01Z", &mut clock).unwrap();
        assert_eq!(
            (ts.to_string(), off),
            ("2024-05-06T21:14:01Z".into(), Some(0))
        );
    }

    #[test]
    fn fold_resolves_to_instant_after_previous_line() {
        // field case 11, variant without offsets
        let tz = TimeZone::get("America/New_York").unwrap();
        let mut clock = LocalClock::new(tz);
        let mut at = |s: &str| parse_nginx_error_time(s, &mut clock).unwrap().0.to_string();
        assert_eq!(at("2024/11/03 01:58:00"), "2024-11-03T05:58:00Z");
        assert_eq!(at("2024/11/03 01:01:00"), "2024-11-03T06:01:00Z");
        assert_eq!(at("2024/11/03 01:03:00"), "2024-11-03T06:03:00Z");
    }

    #[test]
    fn apache_syslog_and_epoch_forms() {
        let mut clock = LocalClock::default();
        let (ts, _) = parse_apache_time("Wed Oct 11 14:32:52.123456 2000", &mut clock).unwrap();
        assert_eq!(ts.to_string(), "2000-10-11T14:32:52.123456Z");
        let reference: Timestamp = "2005-07-01T00:00:00Z".parse().unwrap();
        let (ts, _) = parse_syslog_time("Jun 21 16:47:48", reference, &mut clock).unwrap();
        assert_eq!(ts.to_string(), "2005-06-21T16:47:48Z");
        let ts = parse_epoch_micros("1735752216000000").unwrap();
        assert_eq!(ts.to_string(), "2025-01-01T17:23:36Z");
    }
}
