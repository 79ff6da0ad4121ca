//! Offline blocklists: plain IP/CIDR lists and FireHOL `.netset` files (`#` comments,
//! one address or CIDR per line), reloaded when a file's mtime or size changes.
//!
//! Lookup structure: per list, the networks become sorted, merged `[start, end]`
//! ranges searched by binary search. FireHOL sets are already aggregated and lists
//! never need longest-prefix answers (only "is it listed"), so merged ranges give the
//! same answer as a prefix trie in O(log n) with two flat vectors and no extra crate.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::IpNet;

/// A list that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BlocklistError {
    #[error("blocklist {name} ({path}) could not be read: {source}")]
    Read {
        name: String,
        path: String,
        source: std::io::Error,
    },
}

/// Sorted, merged, inclusive ranges of one address family.
#[derive(Debug, Default, Clone)]
struct Ranges<T>(Vec<(T, T)>);

impl<T: Ord + Copy> Ranges<T> {
    fn build(mut v: Vec<(T, T)>, succ: impl Fn(T) -> Option<T>) -> Ranges<T> {
        v.sort_unstable();
        let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match out.last_mut() {
                Some(last) if succ(last.1).is_none_or(|n| s <= n) => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        Ranges(out)
    }

    fn contains(&self, x: T) -> bool {
        let i = self.0.partition_point(|&(s, _)| s <= x);
        i > 0 && x <= self.0[i - 1].1
    }
}

struct List {
    name: String,
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    v4: Ranges<u32>,
    v6: Ranges<u128>,
    entries: usize,
}

/// Named blocklists with reload-on-change.
#[derive(Default)]
pub struct Blocklists {
    lists: Vec<List>,
}

impl Blocklists {
    /// An empty set of lists.
    pub fn new() -> Blocklists {
        Blocklists::default()
    }

    /// Adds and loads the list `name` from `path`.
    pub fn add(&mut self, name: &str, path: &Path) -> Result<(), BlocklistError> {
        let mut list = List {
            name: name.to_owned(),
            path: path.to_owned(),
            stamp: None,
            v4: Ranges::default(),
            v6: Ranges::default(),
            entries: 0,
        };
        list.load()?;
        self.lists.push(list);
        Ok(())
    }

    /// Reloads every list whose file changed (mtime or size); returns how many did. A
    /// list that fails to read keeps its previous contents.
    pub fn reload_if_changed(&mut self) -> Vec<BlocklistError> {
        let mut errors = Vec::new();
        for list in &mut self.lists {
            if list.current_stamp().is_ok_and(|s| Some(s) == list.stamp) {
                continue;
            }
            if let Err(e) = list.load() {
                tracing::warn!(error = %e, "Blocklist reload failed; keeping the previous contents");
                errors.push(e);
            }
        }
        errors
    }

    /// The name of the first list containing `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.lists
            .iter()
            .find(|l| l.contains(ip))
            .map(|l| l.name.as_str())
    }

    /// `(name, entries)` of every list, for status output.
    pub fn summary(&self) -> Vec<(&str, usize)> {
        self.lists
            .iter()
            .map(|l| (l.name.as_str(), l.entries))
            .collect()
    }
}

impl List {
    fn read_err(&self, source: std::io::Error) -> BlocklistError {
        BlocklistError::Read {
            name: self.name.clone(),
            path: self.path.display().to_string(),
            source,
        }
    }

    fn current_stamp(&self) -> Result<(SystemTime, u64), BlocklistError> {
        let meta = fs::metadata(&self.path).map_err(|e| self.read_err(e))?;
        Ok((meta.modified().map_err(|e| self.read_err(e))?, meta.len()))
    }

    fn load(&mut self) -> Result<(), BlocklistError> {
        let stamp = self.current_stamp()?;
        let text = fs::read_to_string(&self.path).map_err(|e| self.read_err(e))?;
        let (mut v4, mut v6, mut bad) = (Vec::new(), Vec::new(), 0usize);
        for line in text.lines() {
            let entry = line.split(['#', ';']).next().unwrap_or("").trim();
            let Some(token) = entry.split_whitespace().next() else {
                continue;
            };
            match parse_net(token) {
                Some(IpNet::V4(n)) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                Some(IpNet::V6(n)) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
                None => bad += 1,
            }
        }
        if bad > 0 {
            tracing::warn!(list = %self.name, skipped = bad, "Blocklist lines that are not an IP or CIDR were skipped");
        }
        self.entries = v4.len() + v6.len();
        self.v4 = Ranges::build(v4, |x: u32| x.checked_add(1));
        self.v6 = Ranges::build(v6, |x: u128| x.checked_add(1));
        self.stamp = Some(stamp);
        tracing::info!(list = %self.name, entries = self.entries, "Blocklist loaded");
        Ok(())
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.v4.contains(u32::from(a)),
            IpAddr::V6(a) => self.v6.contains(u128::from(a)),
        }
    }
}

fn parse_net(token: &str) -> Option<IpNet> {
    if let Ok(net) = token.parse::<IpNet>() {
        return Some(net.trunc());
    }
    token.parse::<IpAddr>().ok().map(IpNet::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_ranges_answer_like_a_trie() {
        let r = Ranges::build(vec![(10, 20), (21, 30), (50, 60), (15, 18)], |x: u32| {
            x.checked_add(1)
        });
        assert_eq!(r.0, vec![(10, 30), (50, 60)]);
        for (x, want) in [
            (9, false),
            (10, true),
            (25, true),
            (31, false),
            (60, true),
            (61, false),
        ] {
            assert_eq!(r.contains(x), want, "{x}");
        }
    }
}
