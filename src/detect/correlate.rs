//! Per-key state behind detections: event-time windows for correlation rules and
//! episodes for every generating rule, with a memory ceiling.
//!
//! A [`Table`] belongs to one rule and maps a group key (e.g. a client address) to
//! its [`Entry`]: the compact window the rule's type needs ([`Window`]: timestamps
//! for `event_count`, distinct values for `value_count`, last-seen times per rule
//! for `temporal`), the open [`Episode`] if the rule fired, and a couple of sample
//! events from before it fired. Windows slide on the events' own timestamps, never
//! the wall clock, so `scan` and `watch` reach the same verdicts; an event older
//! than the window start of its key is not counted (a late line keeps its time).
//!
//! Memory is bounded two ways: an entry is dropped once its window has passed (a
//! min-heap of deadlines finds those without scanning), and a table never holds
//! more than `max_keys` entries: beyond that the least recently seen are evicted,
//! counted, and reported with a rate-limited warning. Per-key queues are capped at
//! what the threshold needs, not at the number of events seen.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::detect::sigma::{CorrelationType, Threshold};
use crate::detect::{Detection, DetectionState, RuleMeta};
use crate::event::{Event, Text};

/// Events kept per key before its rule fires, so a detection shows what led to it.
/// Small on purpose: this is paid for every live key (field case 37).
pub const PRE_FIRE_SAMPLES: usize = 2;

/// Separator between group-by values in a stored key.
pub const KEY_SEP: char = '\u{1f}';

/// The compact per-key window a correlation type needs.
#[derive(Debug)]
pub enum Window {
    /// Single-event rules: no window, only episodes.
    None,
    /// `event_count`: sorted timestamps (ms), at most `cap`, newest kept. A `Vec`
    /// (24 bytes) rather than a `VecDeque` (32): caps are thresholds, a few dozen at
    /// most, and every live key pays for the header (field case 37).
    Count(Vec<i64>),
    /// `value_count`: distinct values with the last time each was seen.
    Values(Vec<(Text, i64)>),
    /// `temporal`: last time each referenced rule matched (`i64::MIN`: never).
    Temporal(Vec<i64>),
}

/// What one event brings to a window.
pub enum Observation<'a> {
    /// One more event (single-event rules and `event_count`).
    Event,
    /// `value_count`: the counted field's value.
    Value(&'a str),
    /// `temporal`: bit set of the referenced rules (by position) the event matched.
    Rules(u64),
}

/// The rule parameters a table applies.
#[derive(Debug, Clone)]
pub struct WindowSpec {
    pub kind: Option<CorrelationType>,
    pub span_ms: i64,
    pub threshold: Threshold,
    /// Referenced rule count (temporal).
    pub nrules: usize,
}

impl WindowSpec {
    fn new_window(&self) -> Window {
        match self.kind {
            None => Window::None,
            Some(CorrelationType::EventCount) => Window::Count(Vec::new()),
            Some(CorrelationType::ValueCount) => Window::Values(Vec::new()),
            Some(CorrelationType::Temporal | CorrelationType::TemporalOrdered) => {
                Window::Temporal(vec![i64::MIN; self.nrules])
            }
        }
    }
}

impl Window {
    /// Adds an observation at `t` and returns the count the condition is tested on,
    /// or `None` when the observation falls outside the window.
    fn observe(
        &mut self,
        spec: &WindowSpec,
        latest: i64,
        t: i64,
        obs: &Observation,
    ) -> Option<u64> {
        let start = latest - spec.span_ms;
        if t < start {
            return None;
        }
        let cap = spec.threshold.cap();
        match (self, obs) {
            (Window::None, _) => Some(1),
            (Window::Count(q), _) => Some(count_push(q, cap, start, t)),
            (Window::Values(vs), Observation::Value(v)) => Some(values_push(vs, cap, start, v, t)),
            (Window::Temporal(seen), Observation::Rules(mask)) => {
                let ordered = spec.kind == Some(CorrelationType::TemporalOrdered);
                Some(temporal_push(seen, start, *mask, t, ordered))
            }
            _ => None,
        }
    }

    /// The earliest time (ms) the window still holds: where the episode it completes
    /// began, even when the events before the threshold were not kept as samples.
    fn earliest(&self) -> Option<i64> {
        match self {
            Window::None => None,
            Window::Count(q) => q.first().copied(),
            Window::Values(vs) => vs.iter().map(|(_, at)| *at).min(),
            Window::Temporal(seen) => seen.iter().copied().filter(|&s| s != i64::MIN).min(),
        }
    }

    fn clear(&mut self) {
        match self {
            Window::None => {}
            Window::Count(q) => q.clear(),
            Window::Values(vs) => vs.clear(),
            Window::Temporal(seen) => seen.iter_mut().for_each(|s| *s = i64::MIN),
        }
    }
}

fn count_push(q: &mut Vec<i64>, cap: usize, start: i64, t: i64) -> u64 {
    let at = q.partition_point(|&x| x <= t);
    q.insert(at, t);
    // Sorted: the ones before the window start and the oldest beyond the cap lead.
    let stale = q
        .partition_point(|&x| x < start)
        .max(q.len().saturating_sub(cap));
    q.drain(..stale);
    q.len() as u64
}

fn values_push(vs: &mut Vec<(Text, i64)>, cap: usize, start: i64, v: &str, t: i64) -> u64 {
    vs.retain(|(_, at)| *at >= start);
    match vs.iter_mut().find(|(x, _)| x == v) {
        Some(slot) => slot.1 = slot.1.max(t),
        None => vs.push((Text::from(v), t)),
    }
    if vs.len() > cap
        && let Some(oldest) = (0..vs.len()).min_by_key(|&i| vs[i].1)
    {
        vs.swap_remove(oldest);
    }
    vs.len() as u64
}

fn temporal_push(seen: &mut [i64], start: i64, mask: u64, t: i64, ordered: bool) -> u64 {
    for (i, s) in seen.iter_mut().enumerate().take(64) {
        if mask & (1 << i) != 0 {
            *s = (*s).max(t);
        }
    }
    if !ordered {
        return seen.iter().filter(|&&s| s >= start).count() as u64;
    }
    // Ordered: how many rules, from the first, matched in order inside the window.
    let mut prev = start;
    seen.iter()
        .take_while(|&&s| {
            let ok = s >= prev;
            prev = s;
            ok
        })
        .count() as u64
}

/// A detection in progress for one key.
#[derive(Debug)]
pub struct Episode {
    pub first: Timestamp,
    pub last: Timestamp,
    pub count: u64,
    head: Vec<Event>,
    tail: VecDeque<Event>,
}

impl Episode {
    fn add(&mut self, ev: &Event, max_samples: usize) {
        self.count += 1;
        self.first = self.first.min(ev.timestamp);
        self.last = self.last.max(ev.timestamp);
        let head_cap = max_samples.div_ceil(2);
        if self.head.len() < head_cap {
            self.head.push(ev.clone());
            return;
        }
        let tail_cap = max_samples - head_cap;
        if tail_cap == 0 {
            return;
        }
        if self.tail.len() == tail_cap {
            self.tail.pop_front();
        }
        self.tail.push_back(ev.clone());
    }

    fn samples(&self) -> Vec<Event> {
        self.head.iter().chain(self.tail.iter()).cloned().collect()
    }
}

/// One key's state: 56 bytes for a key that has not fired and keeps no samples,
/// which is what most of a full table holds (field case 37).
#[derive(Debug)]
pub struct Entry {
    generation: u32,
    /// Events fed since the last episode closed (saturating).
    seen: u32,
    /// Latest event time seen for the key (ms).
    last_ms: i64,
    window: Window,
    /// The open episode and pre-fire samples, boxed: few keys ever have either.
    extra: Option<Box<Extra>>,
}

/// The part of an [`Entry`] that only keys near or past their threshold need.
#[derive(Debug, Default)]
struct Extra {
    episode: Option<Episode>,
    pre: VecDeque<Event>,
}

/// Counters a table reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableStats {
    pub live_keys: usize,
    pub evicted_keys: u64,
    pub open_episodes: usize,
    pub matches: u64,
    pub fired: u64,
}

/// The per-key state of one rule.
pub struct Table {
    pub rule: Arc<RuleMeta>,
    /// Group-by field names (for detection keys).
    key_fields: Vec<Text>,
    spec: WindowSpec,
    /// Time without events after which a key's episode closes and its entry goes.
    horizon_ms: i64,
    max_keys: usize,
    max_samples: usize,
    map: HashMap<Text, Entry>,
    due: BinaryHeap<Reverse<(i64, u32, Text)>>,
    next_gen: u32,
    stats: TableStats,
    last_warn: Option<Instant>,
}

/// Table limits and sampling.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_keys: usize,
    pub max_samples: usize,
}

impl Table {
    /// A table for `rule`; `horizon_ms` is the correlation timespan or, for
    /// single-event rules, the episode gap.
    pub fn new(
        rule: Arc<RuleMeta>,
        key_fields: Vec<Text>,
        spec: WindowSpec,
        horizon_ms: i64,
        limits: Limits,
    ) -> Table {
        Table {
            rule,
            key_fields,
            spec,
            horizon_ms: horizon_ms.max(1),
            max_keys: limits.max_keys.max(1),
            max_samples: limits.max_samples,
            map: HashMap::new(),
            due: BinaryHeap::new(),
            next_gen: 0,
            stats: TableStats::default(),
            last_warn: None,
        }
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            live_keys: self.map.len(),
            ..self.stats
        }
    }

    /// The earliest time at which an entry may be due (for the engine's clock).
    pub fn next_deadline(&self) -> Option<i64> {
        self.due.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Feeds one matching event for `key`; a newly met condition emits `Fired`.
    pub fn feed(&mut self, key: &str, ev: &Event, obs: Observation, out: &mut Vec<Detection>) {
        let t = ev.timestamp.as_millisecond();
        self.stats.matches += 1;
        if !self.map.contains_key(key) {
            self.make_room(out);
            self.insert(key, t);
        }
        let (spec, max_samples) = (&self.spec, self.max_samples);
        let Some(entry) = self.map.get_mut(key) else {
            return;
        };
        entry.last_ms = entry.last_ms.max(t);
        entry.seen = entry.seen.saturating_add(1);
        if let Some(ep) = entry.extra.as_mut().and_then(|x| x.episode.as_mut()) {
            ep.add(ev, max_samples);
            return;
        }
        let Some(n) = entry.window.observe(spec, entry.last_ms, t, &obs) else {
            return;
        };
        if !spec.threshold.met(n) {
            keep_pre_sample(
                entry,
                ev,
                n,
                spec.threshold,
                PRE_FIRE_SAMPLES.min(max_samples),
            );
            return;
        }
        let count = if spec.kind == Some(CorrelationType::EventCount) {
            n
        } else {
            u64::from(entry.seen)
        };
        let ep = open_episode(entry, ev, count, max_samples);
        out.push(self.detection(key, &ep, DetectionState::Fired));
        self.stats.fired += 1;
        self.stats.open_episodes += 1;
        if let Some(entry) = self.map.get_mut(key) {
            entry.extra.get_or_insert_default().episode = Some(ep);
        }
    }

    fn insert(&mut self, key: &str, t: i64) {
        self.next_gen = self.next_gen.wrapping_add(1);
        let entry = Entry {
            generation: self.next_gen,
            seen: 0,
            last_ms: t,
            window: self.spec.new_window(),
            extra: None,
        };
        // Grow the deadline heap by a quarter, not by doubling: it holds one entry per
        // live key, and a doubled buffer would be paid for by every table at its ceiling.
        if self.due.len() == self.due.capacity() {
            self.due.reserve_exact(self.due.len() / 4 + 64);
        }
        self.due.push(Reverse((
            t.saturating_add(self.horizon_ms),
            self.next_gen,
            Text::from(key),
        )));
        self.map.insert(Text::from(key), entry);
    }

    /// Closes episodes and drops entries whose window ended before `now` (ms).
    pub fn expire(&mut self, now: i64, out: &mut Vec<Detection>) {
        while let Some(Reverse((deadline, _, _))) = self.due.peek() {
            if *deadline >= now {
                break;
            }
            let Some(Reverse((_, generation, key))) = self.due.pop() else {
                break;
            };
            let Some(entry) = self.map.get(&key) else {
                continue;
            };
            if entry.generation != generation {
                continue;
            }
            let real = entry.last_ms.saturating_add(self.horizon_ms);
            if real >= now {
                self.due.push(Reverse((real, generation, key)));
                continue;
            }
            if let Some(entry) = self.map.remove(&key) {
                self.close(&key, entry, out);
            }
        }
    }

    /// Closes every open episode and forgets all keys (end of a scan).
    pub fn finish(&mut self, out: &mut Vec<Detection>) {
        let mut keys: Vec<Text> = self.map.keys().cloned().collect();
        keys.sort();
        for key in keys {
            if let Some(entry) = self.map.remove(&key) {
                self.close(&key, entry, out);
            }
        }
        self.due.clear();
    }

    fn close(&mut self, key: &str, entry: Entry, out: &mut Vec<Detection>) {
        let Some(ep) = entry.extra.and_then(|x| x.episode) else {
            return;
        };
        self.stats.open_episodes = self.stats.open_episodes.saturating_sub(1);
        out.push(self.detection(key, &ep, DetectionState::Closed));
    }

    /// Evicts the least recently seen eighth of the keys when the table is full.
    /// Finds the cut-off time on a copy of the times alone, then copies only the
    /// evicted keys: a full table is large, and a copy of every key is not small.
    fn make_room(&mut self, out: &mut Vec<Detection>) {
        if self.map.len() < self.max_keys {
            return;
        }
        let n = (self.max_keys / 8).max(1).min(self.map.len());
        let mut times: Vec<i64> = self.map.values().map(|e| e.last_ms).collect();
        // Keys seen before `cutoff` go; of those seen at `cutoff`, as many as are needed.
        let cutoff = if n < times.len() {
            *times.select_nth_unstable(n).1
        } else {
            i64::MAX
        };
        drop(times);
        let mut victims: Vec<Text> = Vec::with_capacity(n);
        let mut ties: Vec<Text> = Vec::new();
        for (k, e) in &self.map {
            if e.last_ms < cutoff {
                victims.push(k.clone());
            } else if e.last_ms == cutoff && ties.len() < n {
                ties.push(k.clone());
            }
        }
        let fill = n.saturating_sub(victims.len());
        victims.extend(ties.into_iter().take(fill));
        for key in victims {
            if let Some(entry) = self.map.remove(&key) {
                self.close(&key, entry, out);
            }
        }
        self.stats.evicted_keys += n as u64;
        self.compact_due();
        self.warn_eviction();
    }

    /// Drops deadlines of evicted keys. Without this the heap keeps one entry per
    /// key ever inserted within the horizon: with 500,000 clients and a 1 h rule that
    /// is more memory than the live keys themselves (field case 37). Each live key has
    /// one deadline, so a quarter more than the live keys is all stale.
    fn compact_due(&mut self) {
        let keep = self.map.len() + self.map.len() / 4 + 1024;
        if self.due.len() <= keep {
            return;
        }
        let map = &self.map;
        self.due.retain(|Reverse((_, generation, key))| {
            map.get(key).is_some_and(|e| e.generation == *generation)
        });
        self.due.shrink_to(keep);
    }

    fn warn_eviction(&mut self) {
        let now = Instant::now();
        if self
            .last_warn
            .is_some_and(|w| now - w < Duration::from_secs(60))
        {
            return;
        }
        self.last_warn = Some(now);
        tracing::warn!(
            rule = %self.rule.id,
            max_keys = self.max_keys,
            evicted_total = self.stats.evicted_keys,
            "Rule state is full; evicting the least recently seen keys (raise \
             detection.max_keys_per_rule if this host has the memory)"
        );
    }

    fn detection(&self, key: &str, ep: &Episode, state: DetectionState) -> Detection {
        let key = if self.key_fields.is_empty() || key.is_empty() {
            Vec::new()
        } else {
            self.key_fields
                .iter()
                .cloned()
                .zip(key.split(KEY_SEP).map(Text::from))
                .collect()
        };
        Detection {
            rule: self.rule.clone(),
            key,
            count: ep.count,
            first_seen: ep.first,
            last_seen: ep.last,
            samples: ep.samples(),
            state,
        }
    }
}

/// Keeps the event as a pre-fire sample only when the key is within
/// `keep` events of its threshold: keys far below it (most of them, field case 37)
/// then cost no event copies at all.
fn keep_pre_sample(entry: &mut Entry, ev: &Event, n: u64, t: Threshold, keep: usize) {
    if keep == 0 || t.min.is_some_and(|m| n.saturating_add(keep as u64) < m) {
        return;
    }
    let pre = &mut entry.extra.get_or_insert_default().pre;
    if pre.len() == keep {
        pre.pop_front();
    }
    pre.push_back(ev.clone());
}

fn open_episode(entry: &mut Entry, ev: &Event, count: u64, max_samples: usize) -> Episode {
    let mut ep = Episode {
        first: ev.timestamp,
        last: ev.timestamp,
        count: 0,
        head: Vec::new(),
        tail: VecDeque::new(),
    };
    if let Some(extra) = entry.extra.as_mut() {
        for pre in extra.pre.drain(..) {
            ep.add(&pre, max_samples);
        }
    }
    ep.add(ev, max_samples);
    ep.count = count.max(ep.count);
    // Only keys near their threshold keep pre-fire samples (field case 37), so the
    // window, not the samples, knows when the episode began.
    if let Some(ms) = entry.window.earliest()
        && ms < ep.first.as_millisecond()
        && let Ok(t) = Timestamp::from_millisecond(ms)
    {
        ep.first = t;
    }
    entry.window.clear();
    ep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_has_not_fired_stays_small() {
        // Every live key of a full table pays this (field case 37: 200,000 keys a rule).
        assert!(
            std::mem::size_of::<Entry>() <= 56,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn count_window_drops_stale_and_excess_timestamps() {
        let mut q = Vec::new();
        assert_eq!(count_push(&mut q, 3, 0, 10), 1);
        assert_eq!(count_push(&mut q, 3, 0, 5), 2);
        assert_eq!(q, [5, 10]);
        assert_eq!(count_push(&mut q, 3, 0, 20), 3);
        assert_eq!(count_push(&mut q, 3, 0, 30), 3);
        assert_eq!(q, [10, 20, 30]);
        assert_eq!(count_push(&mut q, 3, 25, 40), 2);
        assert_eq!(q, [30, 40]);
    }
}
