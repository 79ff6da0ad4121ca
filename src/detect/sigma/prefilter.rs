//! A per-rule necessary condition checked before the rule's tree.
//!
//! From a compiled condition we derive facts that must hold for any match: which
//! event kinds, which attack classes, which status codes, and which typed fields
//! must be present. They fit in a few words stored contiguously, so the engine can
//! reject most rules for an ordinary access line (status 200, no attack class) with
//! a couple of integer tests and without touching the rule's selections at all.
//! Facts are only ever dropped, never invented, so the prefilter cannot hide a match.

use std::cell::Cell;

use super::condition::Cond;
use super::fields::FieldRef;
use super::matcher::{CmpOp, FieldTest, Leaf, TextOp};
use super::plan::{self, Plan};
use super::{RuleSet, Selection};
use crate::event::{AttackClasses, Event, EventKind, Field};

/// Every event kind, for mapping `event.kind` values to bits.
const KINDS: [EventKind; 7] = [
    EventKind::Access,
    EventKind::ServerError,
    EventKind::RateLimit,
    EventKind::App,
    EventKind::Security,
    EventKind::Auth,
    EventKind::Posture,
];

/// The bit of an event kind.
pub fn kind_bit(k: EventKind) -> u8 {
    1 << (k as u8)
}

/// Bit of a typed field in presence masks (declaration order of [`Field`]).
fn field_bit(f: Field) -> u32 {
    1 << (f as u32)
}

/// Necessary conditions of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefilter {
    /// Allowed event kinds (all bits set: any).
    pub kinds: u8,
    /// Attack classes of which at least one must be present (0: no requirement).
    pub attacks: u16,
    /// Inclusive status range the event must have (`None`: no requirement).
    pub status: Option<(u16, u16)>,
    /// Typed fields that must be present.
    pub present: u32,
}

impl Default for Prefilter {
    fn default() -> Self {
        Prefilter {
            kinds: u8::MAX,
            attacks: 0,
            status: None,
            present: 0,
        }
    }
}

/// The facts of an event that are cheap to compare: kind, attack classes, status.
/// Ordinary traffic comes in a handful of shapes (an access line, no attack, 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    kind: u8,
    attacks: u16,
    status: Option<u16>,
}

/// What the prefilters look at. The shape is read once per event; field presence is
/// looked up only for the fields a rule that passed the shape tests needs, and
/// remembered for the next rule.
#[derive(Debug)]
pub struct EventFacts<'e> {
    ev: &'e Event,
    shape: Shape,
    /// Fields whose presence has been looked up, and which of those are present.
    known: Cell<u32>,
    present: Cell<u32>,
}

impl<'e> EventFacts<'e> {
    /// Facts of `ev`.
    #[inline]
    pub fn of(ev: &'e Event) -> EventFacts<'e> {
        EventFacts {
            ev,
            shape: Shape {
                kind: kind_bit(ev.kind),
                attacks: ev.attacks.0,
                status: ev.status,
            },
            known: Cell::new(0),
            present: Cell::new(0),
        }
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Whether every field in `need` is present.
    #[inline]
    fn has_all(&self, need: u32) -> bool {
        let mut bits = need & !self.known.get();
        if bits != 0 {
            let mut present = self.present.get();
            self.known.set(self.known.get() | bits);
            while bits != 0 {
                let i = bits.trailing_zeros();
                bits &= bits - 1;
                if Field::NAMES
                    .get(i as usize)
                    .is_some_and(|(f, _)| self.ev.field(*f).is_some())
                {
                    present |= 1 << i;
                }
            }
            self.present.set(present);
        }
        need & !self.present.get() == 0
    }
}

/// Slots of the per-shape candidate lists (direct-mapped; a power of two).
const SHAPE_SLOTS: usize = 64;

/// A rule that can match events of some shape, and how to test it for them.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Position of the rule in [`RuleSet::active`].
    pub at: u32,
    pub plan: Plan,
}

/// Per shape, the rules whose prefilters admit it with their [plans](super::plan),
/// so an event of a shape seen before only visits the rules that can match it
/// (usually two or three of the active rules) and only runs the tests its shape
/// leaves open.
#[derive(Debug)]
pub struct Candidates {
    slots: Vec<Option<(Shape, Box<[Candidate]>)>>,
}

impl Default for Candidates {
    fn default() -> Self {
        Candidates {
            slots: vec![None; SHAPE_SLOTS],
        }
    }
}

impl Candidates {
    /// The active rules of `rules` that can match events of `shape`, in order.
    #[inline]
    pub fn for_shape(&mut self, shape: Shape, rules: &RuleSet) -> &[Candidate] {
        let h = usize::from(shape.status.unwrap_or(u16::MAX)).wrapping_mul(31)
            ^ usize::from(shape.attacks).wrapping_mul(7)
            ^ usize::from(shape.kind);
        let slot = &mut self.slots[h % SHAPE_SLOTS];
        if slot.as_ref().is_none_or(|(s, _)| *s != shape) {
            *slot = Some((shape, candidates(shape, rules)));
        }
        slot.as_ref().map_or(&[], |(_, list)| &list[..])
    }
}

/// The candidates of `shape`: rules whose prefilter admits it and whose condition,
/// folded over what the shape settles, can still hold.
fn candidates(shape: Shape, rules: &RuleSet) -> Box<[Candidate]> {
    let probe = Event {
        kind: KINDS
            .into_iter()
            .find(|k| kind_bit(*k) == shape.kind)
            .unwrap_or_default(),
        attacks: AttackClasses(shape.attacks),
        status: shape.status,
        ..Event::default()
    };
    rules
        .active_prefilters
        .iter()
        .enumerate()
        .filter(|(_, p)| p.admits_shape(&shape))
        .filter_map(|(at, _)| {
            let plan = plan::plan(&rules.detections[rules.active[at]], &probe)?;
            Some(Candidate {
                at: at as u32,
                plan,
            })
        })
        .collect()
}

impl Prefilter {
    /// Whether a match is still possible for an event with these facts.
    #[inline]
    pub fn admits(&self, f: &EventFacts) -> bool {
        self.admits_shape(&f.shape) && self.admits_fields(f)
    }

    /// The kind, attack-class and status part of [`Prefilter::admits`].
    #[inline]
    pub fn admits_shape(&self, s: &Shape) -> bool {
        self.kinds & s.kind != 0
            && (self.attacks == 0 || self.attacks & s.attacks != 0)
            && self
                .status
                .is_none_or(|(lo, hi)| s.status.is_some_and(|x| x >= lo && x <= hi))
    }

    /// The field-presence part of [`Prefilter::admits`].
    #[inline]
    pub fn admits_fields(&self, f: &EventFacts) -> bool {
        self.present == 0 || f.has_all(self.present)
    }

    /// Both sets of facts (a conjunction); where both constrain one thing, either
    /// may be kept, so keep the narrower when cheap to tell.
    fn and(self, o: Prefilter) -> Prefilter {
        Prefilter {
            kinds: self.kinds & o.kinds,
            attacks: if self.attacks == 0 {
                o.attacks
            } else {
                self.attacks
            },
            status: match (self.status, o.status) {
                (Some((a, b)), Some((c, d))) => Some((a.max(c), b.min(d))),
                (s, None) | (None, s) => s,
            },
            present: self.present | o.present,
        }
    }

    /// Facts true of either side (a disjunction).
    fn or(self, o: Prefilter) -> Prefilter {
        Prefilter {
            kinds: self.kinds | o.kinds,
            attacks: if self.attacks == 0 || o.attacks == 0 {
                0
            } else {
                self.attacks | o.attacks
            },
            status: match (self.status, o.status) {
                (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
                _ => None,
            },
            present: self.present & o.present,
        }
    }
}

/// Derives the prefilter of a condition over `sels`, narrowed by `kinds`.
pub fn derive(cond: &Cond, sels: &[Selection], kinds: u8) -> Prefilter {
    let mut p = of_cond(cond, sels);
    if kinds != 0 {
        p.kinds &= kinds;
    }
    p
}

fn of_cond(c: &Cond, sels: &[Selection]) -> Prefilter {
    let sel = |i: usize| of_selection(&sels[i]);
    match c {
        Cond::Sel(i) => sel(*i),
        Cond::Not(_) => Prefilter::default(),
        Cond::And(cs) => cs
            .iter()
            .fold(Prefilter::default(), |p, c| p.and(of_cond(c, sels))),
        Cond::Or(cs) => cs
            .iter()
            .map(|c| of_cond(c, sels))
            .reduce(Prefilter::or)
            .unwrap_or_default(),
        Cond::All(is) => is.iter().fold(Prefilter::default(), |p, &i| p.and(sel(i))),
        Cond::AtLeast(1, is) => is
            .iter()
            .map(|&i| sel(i))
            .reduce(Prefilter::or)
            .unwrap_or_default(),
        Cond::AtLeast(..) => Prefilter::default(),
    }
}

fn of_selection(s: &Selection) -> Prefilter {
    s.groups
        .iter()
        .map(|g| {
            g.iter()
                .fold(Prefilter::default(), |p, t| p.and(of_test(t)))
        })
        .reduce(Prefilter::or)
        .unwrap_or_default()
}

fn of_test(t: &FieldTest) -> Prefilter {
    let mut p = Prefilter::default();
    let FieldRef::Typed(field) = &t.field else {
        return p;
    };
    let absent_ok = t
        .leaves
        .iter()
        .any(|l| matches!(l.leaf, Leaf::Null | Leaf::Exists(false)));
    if absent_ok {
        return p;
    }
    if *field != Field::Attacks {
        p.present = field_bit(*field);
    }
    if t.all {
        return p;
    }
    match field {
        Field::Attacks => p.attacks = attack_mask(t),
        Field::Kind => p.kinds = kind_mask(t),
        Field::Status => p.status = status_range(t),
        _ => {}
    }
    p
}

fn attack_mask(t: &FieldTest) -> u16 {
    let mut mask = 0;
    for l in &t.leaves {
        match l.leaf {
            Leaf::Attack(c) => mask |= c.0,
            _ => return 0,
        }
    }
    mask
}

fn kind_mask(t: &FieldTest) -> u8 {
    let mut mask = 0;
    for l in &t.leaves {
        let Leaf::Text {
            op: TextOp::Equals,
            needle,
            ..
        } = &l.leaf
        else {
            return u8::MAX;
        };
        match KINDS
            .iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(needle))
        {
            Some(k) => mask |= kind_bit(*k),
            None => return 0,
        }
    }
    mask
}

fn status_range(t: &FieldTest) -> Option<(u16, u16)> {
    let mut range: Option<(u16, u16)> = None;
    for l in &t.leaves {
        let r = match &l.leaf {
            Leaf::Text {
                op: TextOp::Equals,
                int: Some(n),
                ..
            } => {
                let n = u16::try_from(*n).ok()?;
                (n, n)
            }
            Leaf::Cmp(op, n) => cmp_range(*op, *n)?,
            _ => return None,
        };
        range = Some(match range {
            None => r,
            Some((a, b)) => (a.min(r.0), b.max(r.1)),
        });
    }
    range
}

fn cmp_range(op: CmpOp, n: f64) -> Option<(u16, u16)> {
    if !(0.0..=65535.0).contains(&n) {
        return None;
    }
    Some(match op {
        CmpOp::Gt => ((n.floor() as u16).saturating_add(1), u16::MAX),
        CmpOp::Gte => (n.ceil() as u16, u16::MAX),
        CmpOp::Lt => (0, (n.ceil() as u16).saturating_sub(1)),
        CmpOp::Lte => (0, n.floor() as u16),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::sigma::RuleSet;
    use crate::event::AttackClasses;

    fn prefilter(yaml: &str) -> Prefilter {
        let set = RuleSet::from_yaml_str(yaml, "t").unwrap();
        set.detections[0].prefilter
    }

    #[test]
    fn status_kind_and_attack_facts_are_derived() {
        let p = prefilter(
            "title: t\nid: a\nlogsource: {category: webserver}\ndetection:\n  s:\n    sc-status: [401, 403]\n    cs-method: POST\n  condition: s\n",
        );
        assert_eq!(p.status, Some((401, 403)));
        assert_eq!(p.kinds, kind_bit(EventKind::Access));
        assert_ne!(p.present & field_bit(Field::Method), 0);
        let a = prefilter(
            "title: t\nid: a\ndetection:\n  s:\n    palisade.attack: [sqli, xss]\n  condition: s\n",
        );
        assert_eq!(a.attacks, AttackClasses::SQLI.0 | AttackClasses::XSS.0);
    }

    #[test]
    fn negations_and_null_tests_add_no_facts() {
        let p = prefilter(
            "title: t\nid: a\ndetection:\n  s:\n    cs-referer: null\n  f:\n    sc-status: 200\n  condition: s and not f\n",
        );
        assert_eq!(p, Prefilter::default());
    }

    #[test]
    fn prefilter_never_rejects_a_matching_event() {
        let yaml = "title: t\nid: a\ndetection:\n  a:\n    sc-status|gte: 400\n  b:\n    event.kind: security\n  condition: a or b\n";
        let set = RuleSet::from_yaml_str(yaml, "t").unwrap();
        let d = &set.detections[0];
        for (kind, status) in [(EventKind::Security, None), (EventKind::Access, Some(404))] {
            let ev = Event {
                kind,
                status,
                ..Event::default()
            };
            assert!(d.matches(&ev));
            assert!(d.prefilter.admits(&EventFacts::of(&ev)));
        }
    }
}

#[cfg(test)]
mod order_tests {
    use crate::event::Field;

    /// Presence bits index `Field::NAMES` by the enum's discriminant.
    #[test]
    fn field_names_are_in_declaration_order() {
        for (i, (f, _)) in Field::NAMES.iter().enumerate() {
            assert_eq!(*f as usize, i, "{f}");
        }
    }
}
