//! Seam's correlation engine ("the Correlation Station"): joins traces that systems without
//! context propagation split apart, through the business keys they share.
//!
//! Pure and synchronous: no I/O, no clock (callers pass arrival times), no async. The caller feeds
//! span batches to a [`Correlator`], writes the returned [`Link`]s as [`bridge_span`]s through the
//! normal ingest path, and builds the [`stitch()`]ed view from stored traces and [`BridgeEdge`]s.
//!
//! - [`config`]: keys, window, flow patterns, and the latency/accuracy knobs.
//! - [`extract`]: finding keys in span, resource and log attributes and in log text.
//! - [`evidence`]: what the spans say about who called whom (calls in flight, routes, peers).
//! - [`learn`]: flow patterns learned from links decided on strong evidence.
//! - [`segment`]: one trace id's spans seen so far.
//! - [`index`]: the key index trait and its in-memory implementation.
//! - [`matcher`]: the rules, the out-of-order strategy, and the [`Correlator`].
//! - [`link`], [`bridge`]: the decided link, its confidence and its synthetic span.
//! - [`mod@stitch`]: one trace from a connected flow.

#![warn(missing_docs)]

pub mod bridge;
pub mod config;
pub mod evidence;
pub mod extract;
pub mod fxhash;
pub mod index;
pub mod learn;
pub mod link;
pub mod matcher;
pub mod segment;
pub mod stats;
pub mod stitch;
pub mod testing;

pub use bridge::{
    bridge_batch, bridge_edges, bridge_span, edge_from_link, BridgeEdge, BRIDGE_SERVICE,
};
pub use config::{ConfigError, CorrelationConfig, KeySpec};
pub use evidence::{CallClass, Source};
pub use extract::{KeyExtractor, KeyMatch};
pub use index::{IndexEntry, KeyIndex, MemoryKeyIndex};
pub use learn::{flow_patterns_yaml, LearnedPair, LearnedPatterns};
pub use link::{bridge_id, confidence, confidence_with, Link};
pub use matcher::{choose_log_trace, is_synthetic, Correlator, LogCandidate};
pub use segment::{CompactSpan, Kind, RemoteSegment, Segment, SpanDetail, SpanKeyRow};
pub use stats::Stats;
pub use stitch::{component, stitch, StitchedTrace, ORIGINAL_TRACE_ID};
