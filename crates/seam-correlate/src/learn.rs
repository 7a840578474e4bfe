//! Flow patterns learned from links decided on strong evidence.
//!
//! Every link whose upstream call was in flight or matched the downstream's route or peer counts
//! one observation of its service pair, per tenant. A pair is *well supported* once it has at
//! least `min_links` observations and at least [`MIN_SHARE`] of the observations between the two
//! services point its way (services that call each other back and forth never get a direction).
//! Well-supported pairs then order services like a configured pattern: directly (distance 1) and
//! through chains (`beorn -> mdso -> arda` puts Beorn upstream of Arda at distance 2). Services
//! that would be upstream of each other through a cycle get no learned order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::fxhash::FxHashMap as HashMap;

use serde::{Deserialize, Serialize};

/// The share of a pair's observations that must point one way before its direction is trusted.
pub const MIN_SHARE: f64 = 0.95;
/// Most chains listed by [`LearnedPatterns::patterns`].
const MAX_PATTERNS: usize = 32;
/// Longest chain listed.
const MAX_CHAIN: usize = 16;

/// One observed service pair of one tenant, as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnedPair {
    /// The tenant.
    pub tenant: String,
    /// The calling service.
    pub upstream: String,
    /// The called service.
    pub downstream: String,
    /// Links decided on strong evidence from `upstream` to `downstream`.
    pub links: u64,
    /// Such links the other way round.
    pub reverse_links: u64,
    /// `links / (links + reverse_links)`.
    pub confidence: f64,
    /// True when the pair is well supported and orders the two services.
    pub active: bool,
}

/// One tenant's observations and the order they imply.
#[derive(Debug, Default)]
struct TenantLearning {
    /// upstream -> downstream -> observations.
    counts: HashMap<Arc<str>, HashMap<Arc<str>, u64>>,
    /// upstream -> downstream -> distance, over well-supported pairs (transitively).
    order: HashMap<Arc<str>, HashMap<Arc<str>, usize>>,
    /// The well-supported direct pairs the order was computed from.
    active: BTreeSet<(Arc<str>, Arc<str>)>,
}

impl TenantLearning {
    fn count(&self, up: &str, down: &str) -> u64 {
        self.counts
            .get(up)
            .and_then(|m| m.get(down))
            .copied()
            .unwrap_or(0)
    }

    /// Adds `n` observations of `up` -> `down`.
    fn add(&mut self, up: &Arc<str>, down: &Arc<str>, n: u64) {
        *self
            .counts
            .entry(up.clone())
            .or_default()
            .entry(down.clone())
            .or_insert(0) += n;
    }

    fn is_active(&self, up: &str, down: &str, min_links: u64) -> bool {
        let n = self.count(up, down);
        let r = self.count(down, up);
        n >= min_links && n as f64 >= MIN_SHARE * (n + r) as f64
    }

    /// Recomputes the active pairs and the order from the counts.
    fn rebuild(&mut self, min_links: u64) {
        let mut active = BTreeSet::new();
        for (up, downs) in &self.counts {
            for down in downs.keys() {
                if self.is_active(up, down, min_links) {
                    active.insert((up.clone(), down.clone()));
                }
            }
        }
        let mut next: BTreeMap<Arc<str>, Vec<Arc<str>>> = BTreeMap::new();
        for (u, d) in &active {
            next.entry(u.clone()).or_default().push(d.clone());
        }
        let mut order: HashMap<Arc<str>, HashMap<Arc<str>, usize>> = HashMap::default();
        for start in next.keys() {
            let mut dist: HashMap<Arc<str>, usize> = HashMap::default();
            let mut queue = VecDeque::from([(start.clone(), 0usize)]);
            while let Some((n, d)) = queue.pop_front() {
                for m in next.get(&n).into_iter().flatten() {
                    if m != start && !dist.contains_key(m) {
                        dist.insert(m.clone(), d + 1);
                        queue.push_back((m.clone(), d + 1));
                    }
                }
            }
            order.insert(start.clone(), dist);
        }
        // Services upstream of each other (a cycle) get no order between them.
        let cyclic: Vec<(Arc<str>, Arc<str>)> = order
            .iter()
            .flat_map(|(a, ds)| ds.keys().map(move |b| (a.clone(), b.clone())))
            .filter(|(a, b)| order.get(b).is_some_and(|m| m.contains_key(a)))
            .collect();
        for (a, b) in cyclic {
            if let Some(m) = order.get_mut(&a) {
                m.remove(&b);
            }
        }
        self.active = active;
        self.order = order;
    }
}

/// The learned patterns of every tenant.
#[derive(Debug)]
pub struct LearnedPatterns {
    min_links: u64,
    tenants: HashMap<Box<str>, TenantLearning>,
    /// True when counts changed since [`LearnedPatterns::take_changed`].
    changed: bool,
}

impl LearnedPatterns {
    /// Nothing learned yet; a pair orders services once it has `min_links` observations (at least
    /// 1).
    pub fn new(min_links: u64) -> LearnedPatterns {
        LearnedPatterns {
            min_links: min_links.max(1),
            tenants: HashMap::default(),
            changed: false,
        }
    }

    /// Counts `n` links from `up` to `down` decided on strong evidence.
    pub fn observe(&mut self, tenant: &str, up: &Arc<str>, down: &Arc<str>, n: u64) {
        if n == 0 || up == down {
            return;
        }
        let t = match self.tenants.get_mut(tenant) {
            Some(t) => t,
            None => self.tenants.entry(tenant.into()).or_default(),
        };
        t.add(up, down, n);
        self.changed = true;
        let stale = [(up, down), (down, up)].iter().any(|(u, d)| {
            t.is_active(u, d, self.min_links) != t.active.contains(&((*u).clone(), (*d).clone()))
        });
        if stale {
            t.rebuild(self.min_links);
        }
    }

    /// The learned order of two services: `Some((true, d))` when `a` is upstream of `b` at
    /// distance `d`, `Some((false, d))` when `b` is upstream of `a`.
    pub fn order(&self, tenant: &str, a: &str, b: &str) -> Option<(bool, usize)> {
        let t = self.tenants.get(tenant)?;
        if let Some(d) = t.order.get(a).and_then(|m| m.get(b)) {
            return Some((true, *d));
        }
        t.order.get(b).and_then(|m| m.get(a)).map(|d| (false, *d))
    }

    /// Every observed pair of `tenant` (one row per direction with observations), most observed
    /// first.
    pub fn pairs(&self, tenant: &str) -> Vec<LearnedPair> {
        let Some(t) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let mut out: Vec<LearnedPair> = t
            .counts
            .iter()
            .flat_map(|(up, downs)| {
                downs.iter().map(move |(down, n)| {
                    let r = t.count(down, up);
                    LearnedPair {
                        tenant: tenant.to_string(),
                        upstream: up.to_string(),
                        downstream: down.to_string(),
                        links: *n,
                        reverse_links: r,
                        confidence: round6(*n as f64 / (*n + r).max(1) as f64),
                        active: t.active.contains(&(up.clone(), down.clone())),
                    }
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (b.links, &a.upstream, &a.downstream).cmp(&(a.links, &b.upstream, &b.downstream))
        });
        out
    }

    /// The learned flow patterns of `tenant`: every longest chain of well-supported pairs, with
    /// pairs implied by a longer chain left out (`beorn -> arda` when `beorn -> mdso -> arda`
    /// holds). Ready to be pasted as `flow_patterns`.
    pub fn patterns(&self, tenant: &str) -> Vec<Vec<String>> {
        let Some(t) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let dist = |a: &Arc<str>, b: &Arc<str>| t.order.get(a).and_then(|m| m.get(b)).copied();
        // Direct edges that no longer path implies, and only between ordered services.
        let edges: Vec<(Arc<str>, Arc<str>)> = t
            .active
            .iter()
            .filter(|(u, d)| dist(u, d) == Some(1))
            .filter(|(u, d)| {
                !t.active
                    .iter()
                    .any(|(x, m)| x == u && m != d && dist(m, d).is_some())
            })
            .cloned()
            .collect();
        let mut next: BTreeMap<Arc<str>, Vec<Arc<str>>> = BTreeMap::new();
        let mut has_in = BTreeSet::new();
        for (u, d) in &edges {
            next.entry(u.clone()).or_default().push(d.clone());
            has_in.insert(d.clone());
        }
        let mut out = Vec::new();
        let sources: Vec<Arc<str>> = next
            .keys()
            .filter(|u| !has_in.contains(*u))
            .cloned()
            .collect();
        let mut stack: Vec<Vec<Arc<str>>> = sources.into_iter().rev().map(|s| vec![s]).collect();
        while let Some(path) = stack.pop() {
            if out.len() >= MAX_PATTERNS {
                break;
            }
            let last = path.last().expect("paths are never empty");
            let nexts: Vec<&Arc<str>> = next
                .get(last)
                .into_iter()
                .flatten()
                .filter(|n| !path.contains(n))
                .collect();
            if nexts.is_empty() || path.len() >= MAX_CHAIN {
                if path.len() >= 2 {
                    out.push(path.iter().map(|s| s.to_string()).collect());
                }
                continue;
            }
            for n in nexts.into_iter().rev() {
                let mut p = path.clone();
                p.push(n.clone());
                stack.push(p);
            }
        }
        out
    }

    /// The tenants with observations.
    pub fn tenants(&self) -> Vec<String> {
        let mut t: Vec<String> = self.tenants.keys().map(|k| k.to_string()).collect();
        t.sort();
        t
    }

    /// Every count, for saving: (tenant, upstream, downstream, observations).
    pub fn export(&self) -> Vec<(String, String, String, u64)> {
        let mut out: Vec<_> = self
            .tenants
            .iter()
            .flat_map(|(tenant, t)| {
                t.counts.iter().flat_map(move |(up, downs)| {
                    downs.iter().map(move |(down, n)| {
                        (tenant.to_string(), up.to_string(), down.to_string(), *n)
                    })
                })
            })
            .collect();
        out.sort();
        out
    }

    /// Adds saved counts (from [`LearnedPatterns::export`]) to what is known.
    pub fn import(&mut self, rows: &[(String, String, String, u64)]) {
        for (tenant, up, down, n) in rows {
            let (up, down): (Arc<str>, Arc<str>) = (up.as_str().into(), down.as_str().into());
            if n == &0 || up == down {
                continue;
            }
            self.tenants
                .entry(tenant.as_str().into())
                .or_default()
                .add(&up, &down, *n);
        }
        let min = self.min_links;
        self.tenants.values_mut().for_each(|t| t.rebuild(min));
    }

    /// True once since the counts last changed: the caller saves them then.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The observations a pair needs before it orders services.
    pub fn min_links(&self) -> u64 {
        self.min_links
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// `flow_patterns` as a YAML block to paste under the configuration.
pub fn flow_patterns_yaml(patterns: &[Vec<String>]) -> String {
    let mut s = String::from("correlation:\n  flow_patterns:\n");
    if patterns.is_empty() {
        s.push_str("    []\n");
    }
    for p in patterns {
        s.push_str("    - [");
        s.push_str(&p.join(", "));
        s.push_str("]\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn pairs_order_services_once_well_supported_and_chains_are_found() {
        let mut l = LearnedPatterns::new(3);
        l.observe("t", &a("beorn"), &a("mdso"), 2);
        assert_eq!(l.order("t", "beorn", "mdso"), None, "two are not enough");
        l.observe("t", &a("beorn"), &a("mdso"), 1);
        assert_eq!(l.order("t", "beorn", "mdso"), Some((true, 1)));
        assert_eq!(l.order("t", "mdso", "beorn"), Some((false, 1)));
        l.observe("t", &a("mdso"), &a("arda"), 5);
        l.observe("t", &a("beorn"), &a("arda"), 3);
        assert_eq!(l.order("t", "beorn", "arda"), Some((true, 1)));
        assert_eq!(l.patterns("t"), vec![vec!["beorn", "mdso", "arda"]]);
        assert_eq!(l.order("u", "beorn", "mdso"), None, "per tenant");
        let p = l.pairs("t");
        assert_eq!(
            (p[0].upstream.as_str(), p[0].links, p[0].active),
            ("mdso", 5, true)
        );
        assert!(flow_patterns_yaml(&l.patterns("t")).contains("    - [beorn, mdso, arda]\n"));
    }

    #[test]
    fn services_calling_each_other_get_no_direction() {
        let mut l = LearnedPatterns::new(3);
        l.observe("t", &a("beorn"), &a("mdso"), 10);
        l.observe("t", &a("mdso"), &a("beorn"), 4);
        assert_eq!(l.order("t", "beorn", "mdso"), None);
        let p = l.pairs("t");
        assert_eq!(p[0].confidence, round6(10.0 / 14.0));
        assert!(!p[0].active);
        // A cycle through three services orders none of them against each other.
        let mut l = LearnedPatterns::new(1);
        l.observe("t", &a("x"), &a("y"), 1);
        l.observe("t", &a("y"), &a("z"), 1);
        l.observe("t", &a("z"), &a("x"), 1);
        assert_eq!(l.order("t", "x", "y"), None);
        assert!(l.patterns("t").is_empty());
    }

    #[test]
    fn counts_survive_export_and_import() {
        let mut l = LearnedPatterns::new(2);
        l.observe("t", &a("beorn"), &a("mdso"), 2);
        assert!(l.take_changed());
        assert!(!l.take_changed());
        let rows = l.export();
        let mut m = LearnedPatterns::new(2);
        m.import(&rows);
        assert_eq!(m.order("t", "beorn", "mdso"), Some((true, 1)));
        assert_eq!(m.export(), rows);
    }
}
