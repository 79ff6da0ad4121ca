//! Sigma `condition` expressions: `and`, `or`, `not`, parentheses, `1 of sel*`,
//! `all of sel*`, `N of them`. Parsed once into a [`Cond`] tree over selection
//! indices; precedence is `not` > `and` > `or`.

use super::SigmaError;

/// A compiled condition over the rule's selections (by index).
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Sel(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    /// At least `n` of these selections.
    AtLeast(usize, Vec<usize>),
    /// Every one of these selections.
    All(Vec<usize>),
}

impl Cond {
    /// Evaluates with `sel(i)` telling whether selection `i` matched.
    pub fn eval(&self, sel: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Cond::Sel(i) => sel(*i),
            Cond::Not(c) => !c.eval(sel),
            Cond::And(cs) => cs.iter().all(|c| c.eval(sel)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(sel)),
            Cond::All(is) => is.iter().all(|&i| sel(i)),
            Cond::AtLeast(n, is) => {
                let mut hits = 0;
                is.iter().any(|&i| {
                    hits += usize::from(sel(i));
                    hits >= *n
                })
            }
        }
    }

    /// Reorders `and`/`or` operands cheapest first (by `cost` of a selection), which
    /// is sound because conditions have no side effects.
    pub fn sort_by_cost(&mut self, cost: &impl Fn(usize) -> u32) -> u32 {
        match self {
            Cond::Sel(i) => cost(*i),
            Cond::Not(c) => c.sort_by_cost(cost),
            Cond::And(cs) | Cond::Or(cs) => {
                let mut costed: Vec<(u32, Cond)> = cs
                    .drain(..)
                    .map(|mut c| (c.sort_by_cost(cost), c))
                    .collect();
                costed.sort_by_key(|(k, _)| *k);
                let total = costed.iter().map(|(k, _)| *k).sum();
                cs.extend(costed.into_iter().map(|(_, c)| c));
                total
            }
            Cond::All(is) | Cond::AtLeast(_, is) => {
                is.sort_by_key(|&i| cost(i));
                is.iter().map(|&i| cost(i)).sum()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Of,
    Them,
    All,
    Num(usize),
    Ident(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, SigmaError> {
    let mut toks = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '(' || c == ')' {
            toks.push(if c == '(' { Tok::LParen } else { Tok::RParen });
            chars.next();
            continue;
        }
        if c == '|' {
            return Err(SigmaError::rule(format!(
                "condition {s:?}: aggregation pipes (`| count() …`) are Sigma v1; write a \
                 correlation rule instead"
            )));
        }
        let mut end = i;
        while let Some(&(j, d)) = chars.peek() {
            if d.is_whitespace() || d == '(' || d == ')' {
                break;
            }
            end = j + d.len_utf8();
            chars.next();
        }
        toks.push(word(&s[i..end]));
    }
    Ok(toks)
}

fn word(w: &str) -> Tok {
    match w.to_ascii_lowercase().as_str() {
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "of" => Tok::Of,
        "them" => Tok::Them,
        "all" => Tok::All,
        "any" => Tok::Num(1),
        _ => match w.parse() {
            Ok(n) => Tok::Num(n),
            Err(_) => Tok::Ident(w.to_string()),
        },
    }
}

/// Parses `text` against the rule's selection names (in definition order).
pub fn parse(text: &str, names: &[String]) -> Result<Cond, SigmaError> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        names,
        text,
    };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(p.err("unexpected text after the end"));
    }
    Ok(c)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    names: &'a [String],
    text: &'a str,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> SigmaError {
        SigmaError::rule(format!("condition {:?}: {what}", self.text))
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Cond, SigmaError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Cond::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Cond, SigmaError> {
        let mut parts = vec![self.not()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Cond::And(parts)
        })
    }

    fn not(&mut self) -> Result<Cond, SigmaError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, SigmaError> {
        match self.next() {
            Some(Tok::LParen) => {
                let c = self.or()?;
                if self.next() != Some(Tok::RParen) {
                    return Err(self.err("missing `)`"));
                }
                Ok(c)
            }
            Some(Tok::Num(n)) => self.quantified(Some(n)),
            Some(Tok::All) => self.quantified(None),
            Some(Tok::Ident(name)) => self.ident(&name),
            Some(t) => Err(self.err(&format!("unexpected {t:?}"))),
            None => Err(self.err("ends too early")),
        }
    }

    fn ident(&self, name: &str) -> Result<Cond, SigmaError> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(Cond::Sel)
            .ok_or_else(|| self.err(&format!("no selection named `{name}`")))
    }

    fn quantified(&mut self, n: Option<usize>) -> Result<Cond, SigmaError> {
        if self.next() != Some(Tok::Of) {
            return Err(self.err("expected `of` after a quantifier"));
        }
        let set: Vec<usize> = match self.next() {
            Some(Tok::Them) => (0..self.names.len())
                .filter(|&i| !self.names[i].starts_with('_'))
                .collect(),
            Some(Tok::Ident(pat)) => self.matching(&pat),
            _ => return Err(self.err("expected a selection pattern or `them` after `of`")),
        };
        if set.is_empty() {
            return Err(self.err("a quantifier matches no selection"));
        }
        Ok(match n {
            None => Cond::All(set),
            Some(n) => Cond::AtLeast(n.max(1), set),
        })
    }

    fn matching(&self, pat: &str) -> Vec<usize> {
        (0..self.names.len())
            .filter(|&i| glob_match(pat, &self.names[i]))
            .collect()
    }
}

/// `*` (any run) and `?` (one char) matching for selection-name patterns.
fn glob_match(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ns: &[&str]) -> Vec<String> {
        ns.iter().map(|s| s.to_string()).collect()
    }

    fn eval(c: &Cond, hits: &[bool]) -> bool {
        c.eval(&mut |i| hits[i])
    }

    #[test]
    fn not_binds_tighter_than_and_than_or() {
        let n = names(&["a", "b", "c"]);
        let c = parse("a or b and not c", &n).unwrap();
        assert!(eval(&c, &[true, false, true]));
        assert!(eval(&c, &[false, true, false]));
        assert!(!eval(&c, &[false, true, true]));
        let p = parse("(a or b) and not c", &n).unwrap();
        assert!(!eval(&p, &[true, false, true]));
    }

    #[test]
    fn quantifiers_over_patterns_and_them() {
        let n = names(&["selection_a", "selection_b", "filter_main_x", "_hidden"]);
        let one = parse("1 of selection_* and not 1 of filter_main_*", &n).unwrap();
        assert!(eval(&one, &[false, true, false, true]));
        assert!(!eval(&one, &[false, true, true, false]));
        let all = parse("all of selection*", &n).unwrap();
        assert!(!eval(&all, &[true, false, false, false]));
        assert!(eval(&all, &[true, true, false, false]));
        let them = parse("all of them", &n).unwrap();
        assert_eq!(them, Cond::All(vec![0, 1, 2]));
        assert!(parse("1 of nothing*", &n).is_err());
    }

    #[test]
    fn errors_name_the_problem() {
        let n = names(&["a"]);
        assert!(
            parse("a and b", &n)
                .unwrap_err()
                .to_string()
                .contains("`b`")
        );
        assert!(parse("(a", &n).is_err());
        assert!(
            parse("a | count() > 5", &n)
                .unwrap_err()
                .to_string()
                .contains("correlation")
        );
    }
}
