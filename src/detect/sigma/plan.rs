//! Per-shape plans: a rule's condition with every test that the event's shape
//! (kind, attack classes, status) settles already settled.
//!
//! Most selections of the built-in rules pair a classifier verdict
//! (`palisade.attack: jndi`) or a status with a text search; an ordinary access line
//! has no attack class and one of a handful of statuses, so half the field tests a
//! rule would run are known before the event's text is looked at. The engine keeps,
//! per shape, each candidate rule's condition folded over those known tests and
//! flattened to "some group of `any` passes and no group of `none` does", which
//! covers `1 of selection_*`, `selection or keywords`, `selection and not 1 of
//! filter_*` and the like; any other residue evaluates the rule's whole condition.
//! Folding only removes tests whose outcome is fixed by the shape, so a plan matches
//! exactly the events the rule matches.

use super::condition::Cond;
use super::matcher::FieldTest;
use super::{DetectionRule, Selection};
use crate::event::{Event, Field};

use super::fields::FieldRef;
use super::prefilter::kind_bit;

/// An AND of field tests.
pub type Group = Box<[FieldTest]>;

/// How to decide one candidate rule for events of one shape.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Evaluate the rule's whole condition ([`DetectionRule::matches`]).
    Full,
    /// Matches when some group of `any` passes (`None`: the shape alone satisfies
    /// the positive part) and no group of `none` passes.
    Groups {
        any: Option<Box<[Group]>>,
        none: Box<[Group]>,
    },
}

impl Plan {
    /// Whether `ev`, whose shape this plan was made for, matches `rule`.
    #[inline]
    pub fn matches(&self, rule: &DetectionRule, ev: &Event) -> bool {
        match self {
            Plan::Full => rule.matches(ev),
            Plan::Groups { any, none } => {
                any.as_ref().is_none_or(|a| a.iter().any(|g| passes(g, ev)))
                    && !none.iter().any(|g| passes(g, ev))
            }
        }
    }
}

#[inline]
fn passes(group: &[FieldTest], ev: &Event) -> bool {
    group.iter().all(|t| t.matches(ev))
}

/// Most groups a product of `and` operands may make before the plan gives up and
/// evaluates the whole condition.
const MAX_GROUPS: usize = 16;

/// The plan of `rule` for events like `probe` (an event carrying only the shape:
/// kind, attack classes, status), or `None` when no such event can match.
pub fn plan(rule: &DetectionRule, probe: &Event) -> Option<Plan> {
    if rule.kinds != 0 && rule.kinds & kind_bit(probe.kind) == 0 {
        return None;
    }
    match fold(&rule.cond, &rule.selections, probe) {
        Residue::Const(false) => None,
        Residue::Const(true) => Some(Plan::Groups {
            any: None,
            none: Box::default(),
        }),
        Residue::Split { any, none } => Some(Plan::Groups {
            any: any.map(|a| a.into_iter().map(Vec::into_boxed_slice).collect()),
            none: none.into_iter().map(Vec::into_boxed_slice).collect(),
        }),
        Residue::Other => Some(Plan::Full),
    }
}

/// A folded (sub)condition.
#[derive(Debug, Clone)]
enum Residue {
    Const(bool),
    /// Some group of `any` (`None`: true) and no group of `none`. Never both
    /// `any: None` and `none` empty (that is `Const(true)`), never `any` empty.
    Split {
        any: Option<Vec<Vec<FieldTest>>>,
        none: Vec<Vec<FieldTest>>,
    },
    /// Not expressible as a split; evaluate the whole condition.
    Other,
}

impl Residue {
    fn split(any: Option<Vec<Vec<FieldTest>>>, none: Vec<Vec<FieldTest>>) -> Residue {
        // A group with nothing to test always passes.
        let any = any.filter(|a| !a.iter().any(Vec::is_empty));
        match (&any, none.is_empty()) {
            (Some(a), _) if a.is_empty() => Residue::Const(false),
            (None, true) => Residue::Const(true),
            _ if none.iter().any(Vec::is_empty) => Residue::Const(false),
            _ => Residue::Split { any, none },
        }
    }

    fn not(self) -> Residue {
        match self {
            Residue::Const(b) => Residue::Const(!b),
            Residue::Split { any: Some(a), none } if none.is_empty() => Residue::split(None, a),
            Residue::Split { any: None, none } => Residue::split(Some(none), Vec::new()),
            _ => Residue::Other,
        }
    }

    fn or(parts: Vec<Residue>) -> Residue {
        let mut any = Vec::new();
        for p in parts {
            match p {
                Residue::Const(true) => return Residue::Const(true),
                Residue::Const(false) => {}
                Residue::Split { any: Some(a), none } if none.is_empty() => any.extend(a),
                _ => return Residue::Other,
            }
        }
        Residue::split(Some(any), Vec::new())
    }

    fn and(parts: Vec<Residue>) -> Residue {
        let mut any: Option<Vec<Vec<FieldTest>>> = None;
        let mut none = Vec::new();
        for p in parts {
            match p {
                Residue::Const(false) => return Residue::Const(false),
                Residue::Const(true) => {}
                Residue::Split { any: a, none: n } => {
                    none.extend(n);
                    any = match (any, a) {
                        (x, None) | (None, x) => x,
                        (Some(x), Some(y)) => {
                            if x.len() * y.len() > MAX_GROUPS {
                                return Residue::Other;
                            }
                            Some(product(&x, &y))
                        }
                    };
                }
                Residue::Other => return Residue::Other,
            }
        }
        Residue::split(any, none)
    }
}

/// Every group of `x` joined with every group of `y`.
fn product(x: &[Vec<FieldTest>], y: &[Vec<FieldTest>]) -> Vec<Vec<FieldTest>> {
    let mut out = Vec::with_capacity(x.len() * y.len());
    for a in x {
        for b in y {
            let mut g: Vec<FieldTest> = a.iter().chain(b).cloned().collect();
            g.sort_by_key(|t| t.cost);
            out.push(g);
        }
    }
    out
}

fn fold(c: &Cond, sels: &[Selection], probe: &Event) -> Residue {
    let sel = |i: usize| fold_selection(&sels[i], probe);
    match c {
        Cond::Sel(i) => sel(*i),
        Cond::Not(c) => fold(c, sels, probe).not(),
        Cond::And(cs) => Residue::and(cs.iter().map(|c| fold(c, sels, probe)).collect()),
        Cond::Or(cs) => Residue::or(cs.iter().map(|c| fold(c, sels, probe)).collect()),
        Cond::All(is) => Residue::and(is.iter().map(|&i| sel(i)).collect()),
        Cond::AtLeast(1, is) => Residue::or(is.iter().map(|&i| sel(i)).collect()),
        Cond::AtLeast(n, is) => {
            let folded: Vec<Residue> = is.iter().map(|&i| sel(i)).collect();
            let sure = folded
                .iter()
                .filter(|r| matches!(r, Residue::Const(true)))
                .count();
            let open = folded
                .iter()
                .filter(|r| !matches!(r, Residue::Const(_)))
                .count();
            if sure >= *n {
                Residue::Const(true)
            } else if sure + open < *n {
                Residue::Const(false)
            } else {
                Residue::Other
            }
        }
    }
}

/// A selection with the tests the shape settles removed: groups with a failing
/// test dropped, a group with nothing left to test makes the selection true.
fn fold_selection(s: &Selection, probe: &Event) -> Residue {
    let mut groups = Vec::new();
    for g in &s.groups {
        let mut left = Vec::new();
        let mut fails = false;
        for t in g {
            match settled(t, probe) {
                Some(true) => {}
                Some(false) => {
                    fails = true;
                    break;
                }
                None => left.push(t.clone()),
            }
        }
        if fails {
            continue;
        }
        if left.is_empty() {
            return Residue::Const(true);
        }
        groups.push(left);
    }
    Residue::split(Some(groups), Vec::new())
}

/// The outcome of `t` for every event of the probe's shape, when the shape fixes it:
/// tests of `palisade.attack`, `event.kind` and `http.response.status_code` read
/// nothing else.
fn settled(t: &FieldTest, probe: &Event) -> Option<bool> {
    match t.field {
        FieldRef::Typed(Field::Attacks | Field::Kind | Field::Status) => Some(t.matches(probe)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RulesConfig;
    use crate::detect::sigma::RuleSet;
    use crate::event::{AttackClasses, EventKind};

    const EXTRA: &str = r#"
title: two of three
id: t-2of3
detection:
    a:
        http.response.status_code: 404
    b:
        cs-method: POST
    c:
        palisade.attack: sqli
    condition: 2 of them
---
title: all of
id: t-all
detection:
    sel_a:
        http.response.status_code|gte: 400
        cs-method: [GET, POST]
    sel_b:
        - palisade.attack: sqli
        - cs-user-agent|contains: sqlmap
    condition: all of sel_* and not (filter or event.kind_is_security)
    filter:
        url.path|startswith: /health
    event.kind_is_security:
        event.kind: security
---
title: nested
id: t-nested
detection:
    a:
        palisade.attack: [jndi, xss]
    b:
        sc-status: [200, 404]
    c:
        url.path|endswith: .php
    d:
        user.name|exists: true
    condition: (a or c) and (b or d) and not (a and d)
---
title: negated status
id: t-not
detection:
    ok:
        sc-status: 200
    ua:
        cs-user-agent|contains: [nikto, sqlmap]
    condition: not ok or ua
"#;

    fn events() -> Vec<Event> {
        let mut out = Vec::new();
        let kinds = [EventKind::Access, EventKind::Security, EventKind::RateLimit];
        let statuses = [None, Some(200), Some(401), Some(404), Some(500)];
        let attacks = [
            AttackClasses::default(),
            AttackClasses::SQLI,
            AttackClasses::JNDI,
            AttackClasses(AttackClasses::SCANNER_UA.0 | AttackClasses::SENSITIVE_FILE.0),
        ];
        let texts = [
            ("Mozilla/5.0", "/index.php", "GET", None, "GET /index.php"),
            (
                "sqlmap/1.8",
                "/.env",
                "POST",
                Some("ann"),
                "GET /?x=${jndi:ldap}",
            ),
            ("Nikto", "/health/x", "DELETE", Some("-"), "a %24%7bjndi:x"),
            ("curl", "/favicon.ico", "GET", None, "plain"),
        ];
        for kind in kinds {
            for status in statuses {
                for a in attacks {
                    for (ua, path, method, user, raw) in texts {
                        let mut e = Event {
                            kind,
                            status,
                            attacks: a,
                            user_agent: Some(ua.into()),
                            method: Some(method.into()),
                            user_name: user.map(Into::into),
                            source_ip: Some("192.0.2.1".parse().unwrap()),
                            raw: raw.into(),
                            action: Some("rate_limit".into()),
                            ..Event::default()
                        };
                        e.set_url(path);
                        out.push(e);
                    }
                }
            }
        }
        out
    }

    fn probe(ev: &Event) -> Event {
        Event {
            kind: ev.kind,
            status: ev.status,
            attacks: ev.attacks,
            ..Event::default()
        }
    }

    /// Every rule, built-in and odd, decides every event the same through its plan.
    #[test]
    fn plans_match_exactly_what_rules_match() {
        let builtin = RuleSet::load(&RulesConfig::default()).unwrap();
        let extra = RuleSet::from_yaml_str(EXTRA, "t").unwrap();
        let mut folded = 0;
        for rule in builtin.detections.iter().chain(&extra.detections) {
            for ev in events() {
                let want = rule.matches(&ev);
                match plan(rule, &probe(&ev)) {
                    None => assert!(!want, "{} ruled out for {ev:?}", rule.meta.id),
                    Some(p) => {
                        folded += usize::from(matches!(p, Plan::Groups { .. }));
                        assert_eq!(p.matches(rule, &ev), want, "{} on {ev:?}", rule.meta.id);
                    }
                }
            }
        }
        assert!(folded > 0);
    }

    #[test]
    fn attack_tests_fold_away_for_clean_lines() {
        let set = RuleSet::load(&RulesConfig::default()).unwrap();
        let jndi = set
            .detections
            .iter()
            .find(|d| d.meta.name.as_deref() == Some("web_jndi"))
            .unwrap();
        let clean = Event {
            kind: EventKind::Access,
            status: Some(200),
            ..Event::default()
        };
        let Some(Plan::Groups {
            any: Some(any),
            none,
        }) = plan(jndi, &clean)
        else {
            panic!("web_jndi should fold to its keywords");
        };
        assert!(none.is_empty());
        assert_eq!(any.len(), 1);
        assert_eq!(any[0].len(), 1);
        assert_eq!(any[0][0].field, FieldRef::Typed(Field::Raw));
        let flagged = Event {
            attacks: AttackClasses::JNDI,
            ..clean
        };
        assert!(matches!(
            plan(jndi, &flagged),
            Some(Plan::Groups { any: None, .. })
        ));
    }
}
