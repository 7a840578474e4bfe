//! Counters the engine keeps for `/metrics`; the caller reads them and exports deltas or totals.

/// What happened to candidate pairs and spans, counted since the correlator was made.
///
/// The `result` counters count *evaluations*: a pair is evaluated when one of its segments changes
/// (new keys, a wider time range, a new root), so a trace split over many batches can count a
/// pair more than once; an unchanged re-delivery is not evaluated at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Links emitted.
    pub matched: u64,
    /// Candidates or decisions dropped for confidence under `min_confidence`.
    pub below_min_confidence: u64,
    /// A key new to a segment found no other segment with the same value.
    pub no_candidate: u64,
    /// A pair already linked was seen again.
    pub duplicate: u64,
    /// A different upstream was offered to a segment already linked.
    pub slot_taken: u64,
    /// A held choice was replaced by a better candidate before it was emitted.
    pub superseded: u64,
    /// A candidate lost to the held choice.
    pub outranked: u64,
    /// Two segments shared a value but were further apart than the window.
    pub outside_window: u64,
    /// Two segments of the same service shared a value (peers, not caller and callee).
    pub same_service: u64,
    /// A flow pattern's upstream started after its downstream by more than `max_skew`.
    pub direction_conflict: u64,
    /// A held decision whose upstream was evicted before it was due.
    pub expired: u64,
    /// The would-be upstream made no call near the downstream's start: no outgoing call at all,
    /// a finished flow, or a downstream that is an entry point.
    pub no_call: u64,
    /// The link would have put one service twice on one path of the flow.
    pub repeated_service: u64,
    /// Links restored from stored bridge spans while rebuilding after a restart.
    pub restored: u64,
    /// Spans ignored because they are bridges (`synthetic=true`).
    pub synthetic_ignored: u64,
    /// Spans ignored because their ids are malformed.
    pub invalid_spans: u64,
    /// Segments evicted.
    pub segments_evicted: u64,
}

impl Stats {
    /// The counters of `correlation_events_total`, by their `result` label.
    pub fn events(&self) -> [(&'static str, u64); 13] {
        [
            ("matched", self.matched),
            ("below_min_confidence", self.below_min_confidence),
            ("no_candidate", self.no_candidate),
            ("duplicate", self.duplicate),
            ("slot_taken", self.slot_taken),
            ("superseded", self.superseded),
            ("outranked", self.outranked),
            ("outside_window", self.outside_window),
            ("same_service", self.same_service),
            ("direction_conflict", self.direction_conflict),
            ("expired", self.expired),
            ("no_call", self.no_call),
            ("repeated_service", self.repeated_service),
        ]
    }
}

/// Why a pair was not a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    OutsideWindow,
    SameService,
    DirectionConflict,
    BelowMin,
    NoCall,
    RepeatedService,
    Expired,
}

impl Stats {
    pub(crate) fn refuse(&mut self, r: Refusal) {
        match r {
            Refusal::OutsideWindow => self.outside_window += 1,
            Refusal::SameService => self.same_service += 1,
            Refusal::DirectionConflict => self.direction_conflict += 1,
            Refusal::NoCall => self.no_call += 1,
            Refusal::RepeatedService => self.repeated_service += 1,
            Refusal::Expired => self.expired += 1,
            Refusal::BelowMin => self.below_min_confidence += 1,
        }
    }
}
