//! Evaluating a log query against the store: select streams through the label index, then scan
//! only their rows with the line filters pushed down.

use memchr::memmem;
use regex::Regex;
use seam_model::{Labels, Signal, Tenant};
use seam_store::{Direction, LabelMatcher, LogRow, Store, StoreError};

use super::super::ast::{LineFilterOp, LogExpr, Stage};

/// What to read for a log query.
pub struct LogSelection {
    /// Range start (ns, inclusive).
    pub start_ns: i64,
    /// Range end (ns, inclusive).
    pub end_ns: i64,
    /// Most entries to return over all streams.
    pub limit: usize,
    /// Which end of the range first.
    pub direction: Direction,
}

/// The entries of one stream in a result.
pub struct StreamResult {
    /// The stream labels.
    pub labels: Labels,
    /// Entries in the requested direction.
    pub entries: Vec<LogRow>,
}

enum Compiled {
    Contains(memmem::Finder<'static>, bool),
    Regex(Regex, bool),
}

/// Runs a log query. Blocking: call it off the async reactor.
pub fn select_logs(
    store: &Store,
    tenant: &Tenant,
    q: &LogExpr,
    sel: &LogSelection,
) -> Result<Vec<StreamResult>, StoreError> {
    let matchers: Vec<LabelMatcher> = q
        .matchers
        .iter()
        .map(|m| {
            LabelMatcher::new(m.name.clone(), m.op, m.value.clone())
                .expect("regexes were checked by the parser")
        })
        .collect();
    let streams = store.select_series(tenant, Signal::Logs, &matchers, sel.start_ns, sel.end_ns);
    let ids: Vec<u64> = streams.iter().map(|(id, _)| *id).collect();
    let filters: Vec<Compiled> = q
        .pipeline
        .iter()
        .filter_map(|s| match s {
            Stage::LineFilter(f) => Some(f),
            _ => None,
        })
        .map(|f| match f.op {
            LineFilterOp::Contains | LineFilterOp::NotContains => Compiled::Contains(
                memmem::Finder::new(f.pattern.as_bytes()).into_owned(),
                f.op == LineFilterOp::Contains,
            ),
            _ => Compiled::Regex(
                Regex::new(&f.pattern).expect("checked by the parser"),
                f.op == LineFilterOp::Regex,
            ),
        })
        .collect();
    let keep = |line: &str| {
        filters.iter().all(|f| match f {
            Compiled::Contains(finder, want) => finder.find(line.as_bytes()).is_some() == *want,
            Compiled::Regex(re, want) => re.is_match(line) == *want,
        })
    };
    let rows = store.scan_logs(
        tenant,
        &ids,
        sel.start_ns,
        sel.end_ns,
        &keep,
        sel.direction,
        sel.limit,
    )?;
    let mut out: Vec<StreamResult> = Vec::new();
    let mut index: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for row in rows {
        let i = *index.entry(row.stream_id).or_insert_with(|| {
            let labels = streams
                .binary_search_by_key(&row.stream_id, |(id, _)| *id)
                .map(|i| streams[i].1.clone())
                .unwrap_or_default();
            out.push(StreamResult {
                labels,
                entries: Vec::new(),
            });
            out.len() - 1
        });
        out[i].entries.push(row);
    }
    Ok(out)
}
