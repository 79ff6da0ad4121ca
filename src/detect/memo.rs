//! Per-thread memory of verdicts on values that repeat (paths, query values, user
//! agents, referrers): a direct-mapped table from a byte string to a small verdict.
//!
//! Real traffic repeats those values heavily, so remembering how a value was judged
//! (clean, flagged with its findings, or matched by a rule's automaton) takes the
//! judging off the hot path for the repeats. A slot holds the whole key and is confirmed by full comparison: a
//! collision costs a re-judgement, never a wrong answer.

/// Direct-mapped verdicts by (tag, bytes); the tag tells apart the users (or the parts)
/// of one table.
pub struct Memo<V: Clone> {
    slots: Vec<Option<Slot<V>>>,
}

struct Slot<V> {
    tag: u32,
    key: Box<[u8]>,
    verdict: V,
}

impl<V: Clone> Memo<V> {
    /// A table of `slots` entries (rounded up to a power of two).
    pub fn new(slots: usize) -> Memo<V> {
        let n = slots.max(1).next_power_of_two();
        Memo {
            slots: (0..n).map(|_| None).collect(),
        }
    }

    fn index(&self, tag: u32, key: &[u8]) -> usize {
        let h = hash(u64::from(tag), key);
        (h >> 32) as usize & (self.slots.len() - 1)
    }

    /// The verdict remembered for `key` under `tag`.
    #[inline]
    pub fn get(&self, tag: u32, key: &[u8]) -> Option<V> {
        match &self.slots[self.index(tag, key)] {
            Some(s) if s.tag == tag && *s.key == *key => Some(s.verdict.clone()),
            _ => None,
        }
    }

    /// Remembers `verdict` for `key` under `tag`, replacing whatever held its slot.
    pub fn put(&mut self, tag: u32, key: &[u8], verdict: V) {
        let i = self.index(tag, key);
        self.slots[i] = Some(Slot {
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
    fn a_collision_replaces_never_confuses() {
        let mut m = Memo::new(1);
        m.put(0, b"a", 1u8);
        m.put(0, b"b", 2u8);
        assert_eq!(m.get(0, b"a"), None);
        assert_eq!(m.get(0, b"b"), Some(2));
    }

    #[test]
    fn one_byte_apart_spreads_over_slots() {
        let m: Memo<()> = Memo::new(16_384);
        let a = m.index(
            0,
            b"Mozilla/5.0 (Windows NT 6.1) Chrome/32.0.1700.107 Safari/537.36",
        );
        let b = m.index(
            0,
            b"Mozilla/5.0 (Windows NT 6.1) Chrome/32.0.1700.102 Safari/537.36",
        );
        assert_ne!(a, b);
    }
}
