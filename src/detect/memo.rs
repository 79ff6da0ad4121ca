//! Per-thread memory of verdicts on values that repeat (paths, query values, user
//! agents, referrers): a two-way set-associative table from a byte string to a verdict.
//!
//! Real traffic repeats those values heavily, so remembering how a value was judged
//! (clean, flagged with its findings, or matched by a rule's automaton) takes the
//! judging off the hot path for the repeats. A slot holds the whole key and is
//! confirmed by full comparison: a collision costs a re-judgement, never a wrong
//! answer.

/// Verdicts by (tag, bytes) in sets of two slots; the tag tells apart the users (or
/// the parts) of one table. Two ways, not one: two hot values whose hashes share a
/// set (a page's path and an image's, say) would otherwise evict each other on every
/// request; with two ways both stay, the newer in front.
pub struct Memo<V: Clone> {
    slots: Vec<Option<Slot<V>>>,
}

struct Slot<V> {
    /// The whole hash, compared before the key so a set's other way costs no `memcmp`.
    hash: u64,
    tag: u32,
    key: Box<[u8]>,
    verdict: V,
}

impl<V> Slot<V> {
    #[inline]
    fn holds(&self, hash: u64, tag: u32, key: &[u8]) -> bool {
        self.hash == hash && self.tag == tag && *self.key == *key
    }
}

impl<V: Clone> Memo<V> {
    /// A table of `slots` entries (rounded up to a power of two, at least one set).
    pub fn new(slots: usize) -> Memo<V> {
        let n = slots.max(2).next_power_of_two();
        Memo {
            slots: (0..n).map(|_| None).collect(),
        }
    }

    /// The hash of (`tag`, `key`) and the first slot of its set.
    #[inline]
    fn set(&self, tag: u32, key: &[u8]) -> (u64, usize) {
        let h = hash(u64::from(tag), key);
        (h, (h >> 32) as usize & (self.slots.len() - 2))
    }

    /// The verdict remembered for `key` under `tag`.
    #[inline]
    pub fn get(&self, tag: u32, key: &[u8]) -> Option<V> {
        let (h, i) = self.set(tag, key);
        self.slots[i..i + 2]
            .iter()
            .flatten()
            .find(|s| s.holds(h, tag, key))
            .map(|s| s.verdict.clone())
    }

    /// Remembers `verdict` for `key` under `tag` in the front slot of its set; the
    /// value there moves to the back slot unless it is this key's, and the back
    /// slot's value is forgotten.
    pub fn put(&mut self, tag: u32, key: &[u8], verdict: V) {
        let (h, i) = self.set(tag, key);
        if !self.slots[i].as_ref().is_some_and(|s| s.holds(h, tag, key)) {
            self.slots.swap(i, i + 1);
        }
        self.slots[i] = Some(Slot {
            hash: h,
            tag,
            key: key.into(),
            verdict,
        });
    }
}

/// foldhash's fast byte hash (16-byte words, two independent folded-multiply
/// chains) seeded with the tag. Every byte counts: user agents that differ in one
/// version digit have the same length and must not share a slot. The seed is fixed,
/// so slots (and instruction counts) are the same from run to run; a crafted
/// collision only costs its sender a re-judgement.
#[inline]
fn hash(seed: u64, b: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = foldhash::fast::FoldHasher::with_seed(seed, foldhash::SharedSeed::global_fixed());
    h.write(b);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_by_tag_and_whole_key() {
        let mut m = Memo::new(4);
        m.put(1, b"Mozilla/5.0 (X11) Chrome/32.0.1700.107", true);
        assert_eq!(
            m.get(1, b"Mozilla/5.0 (X11) Chrome/32.0.1700.107"),
            Some(true)
        );
        assert_eq!(m.get(2, b"Mozilla/5.0 (X11) Chrome/32.0.1700.107"), None);
        assert_eq!(m.get(1, b"Mozilla/5.0 (X11) Chrome/32.0.1700.102"), None);
    }

    #[test]
    fn a_set_keeps_the_two_newest_and_never_confuses() {
        let mut m = Memo::new(2);
        m.put(0, b"a", 1u8);
        m.put(0, b"b", 2u8);
        assert_eq!(m.get(0, b"a"), Some(1), "two ways: both stay");
        assert_eq!(m.get(0, b"b"), Some(2));
        m.put(0, b"b", 3u8);
        assert_eq!(
            m.get(0, b"a"),
            Some(1),
            "rewriting the front keeps the back"
        );
        assert_eq!(m.get(0, b"b"), Some(3));
        m.put(0, b"c", 4u8);
        assert_eq!(m.get(0, b"a"), None, "the oldest goes");
        assert_eq!(m.get(0, b"b"), Some(3));
        assert_eq!(m.get(0, b"c"), Some(4));
        assert_eq!(m.get(1, b"c"), None);
        assert_eq!(m.get(0, b"cc"), None);
    }

    #[test]
    fn one_byte_apart_spreads_over_slots() {
        let m: Memo<()> = Memo::new(16_384);
        let a = m.set(
            0,
            b"Mozilla/5.0 (Windows NT 6.1) Chrome/32.0.1700.107 Safari/537.36",
        );
        let b = m.set(
            0,
            b"Mozilla/5.0 (Windows NT 6.1) Chrome/32.0.1700.102 Safari/537.36",
        );
        assert_ne!(a.1, b.1);
    }
}
