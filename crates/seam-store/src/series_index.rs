//! The stream and series dictionary of one tenant and signal, with label postings, so a selector
//! touches only its own streams instead of scanning every row.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;
use seam_model::Labels;

/// How a matcher compares a label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored, as in Prometheus and Loki)
    Regex,
    /// `!~`
    NotRegex,
}

/// One label matcher of a selector. A missing label matches as the empty string, as in Prometheus.
#[derive(Clone, Debug)]
pub struct LabelMatcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or pattern as written.
    pub value: String,
    re: Option<Regex>,
}

impl LabelMatcher {
    /// Builds a matcher; regex patterns are anchored at both ends.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<LabelMatcher, regex::Error> {
        let value = value.into();
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(Regex::new(&format!("^(?s:{value})$"))?),
            _ => None,
        };
        Ok(LabelMatcher {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    /// True when `value` (empty when the label is absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// True when the matcher also matches series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

/// A stream or series known to the index.
#[derive(Clone, Debug)]
pub struct SeriesInfo {
    /// The label set.
    pub labels: Labels,
    /// Earliest time seen (ns).
    pub min_time_ns: i64,
    /// Latest time seen (ns).
    pub max_time_ns: i64,
}

/// Series of one tenant and signal, with postings `name -> value -> ids`.
#[derive(Default)]
pub struct SeriesIndex {
    series: HashMap<u64, SeriesInfo>,
    postings: BTreeMap<String, BTreeMap<String, BTreeSet<u64>>>,
}

impl SeriesIndex {
    /// Records a series (or widens its time range when known).
    pub fn insert(&mut self, id: u64, labels: &Labels, min_time_ns: i64, max_time_ns: i64) {
        if let Some(s) = self.series.get_mut(&id) {
            s.min_time_ns = s.min_time_ns.min(min_time_ns);
            s.max_time_ns = s.max_time_ns.max(max_time_ns);
            return;
        }
        for l in labels.as_slice() {
            self.postings
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .insert(id);
        }
        self.series.insert(
            id,
            SeriesInfo {
                labels: labels.clone(),
                min_time_ns,
                max_time_ns,
            },
        );
    }

    /// The number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no series is known.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// A series by id.
    pub fn get(&self, id: u64) -> Option<&SeriesInfo> {
        self.series.get(&id)
    }

    /// Ids (sorted) of the series matching every matcher with data overlapping `[start_ns, end_ns]`.
    pub fn select(&self, matchers: &[LabelMatcher], start_ns: i64, end_ns: i64) -> Vec<u64> {
        // Narrow with the smallest posting list of an equality matcher, then check every matcher.
        let seed: Option<&BTreeSet<u64>> = matchers
            .iter()
            .filter(|m| m.op == MatchOp::Equal && !m.value.is_empty())
            .map(|m| self.postings.get(&m.name).and_then(|v| v.get(&m.value)))
            .min_by_key(|p| p.map_or(0, |s| s.len()))
            .map(|p| p.unwrap_or(&EMPTY));
        let check = |id: &u64| {
            let s = &self.series[id];
            s.max_time_ns >= start_ns
                && s.min_time_ns <= end_ns
                && matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
        };
        let mut out: Vec<u64> = match seed {
            Some(set) => set.iter().copied().filter(check).collect(),
            None => self.series.keys().copied().filter(check).collect(),
        };
        out.sort_unstable();
        out
    }

    /// Label names of the selected series (all series when `matchers` is empty), sorted.
    pub fn label_names(
        &self,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<String> {
        let mut names = BTreeSet::new();
        for id in self.select(matchers, start_ns, end_ns) {
            for l in self.series[&id].labels.as_slice() {
                if !names.contains(&l.name) {
                    names.insert(l.name.clone());
                }
            }
        }
        names.into_iter().collect()
    }

    /// Values of label `name` among the selected series, sorted.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Vec<String> {
        let mut values = BTreeSet::new();
        for id in self.select(matchers, start_ns, end_ns) {
            if let Some(v) = self.series[&id].labels.get(name) {
                if !values.contains(v) {
                    values.insert(v.to_string());
                }
            }
        }
        values.into_iter().collect()
    }
}

static EMPTY: BTreeSet<u64> = BTreeSet::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_with_postings_and_regex() {
        let mut ix = SeriesIndex::default();
        let a = Labels::from_pairs([("job", "api"), ("env", "prod")]);
        let b = Labels::from_pairs([("job", "api"), ("env", "dev")]);
        let c = Labels::from_pairs([("job", "db")]);
        ix.insert(1, &a, 0, 10);
        ix.insert(2, &b, 0, 10);
        ix.insert(3, &c, 20, 30);
        let eq = |n: &str, v: &str| LabelMatcher::new(n, MatchOp::Equal, v).unwrap();
        assert_eq!(ix.select(&[eq("job", "api")], 0, 100), vec![1, 2]);
        assert_eq!(
            ix.select(
                &[
                    eq("job", "api"),
                    LabelMatcher::new("env", MatchOp::Regex, "pr.*").unwrap()
                ],
                0,
                100
            ),
            vec![1]
        );
        assert_eq!(ix.select(&[eq("env", "")], 0, 100), vec![3]);
        assert_eq!(
            ix.select(
                &[LabelMatcher::new("job", MatchOp::NotEqual, "api").unwrap()],
                0,
                15
            ),
            Vec::<u64>::new()
        );
        assert_eq!(ix.label_values("env", &[], 0, 100), vec!["dev", "prod"]);
        assert_eq!(ix.label_names(&[eq("job", "db")], 0, 100), vec!["job"]);
        assert_eq!(ix.select(&[eq("job", "nope")], 0, 100), Vec::<u64>::new());
    }
}
