//! Seam's embedded store: a write-ahead log for durability, an in-memory columnar head for reads
//! right after the ack, immutable Parquet segments, and a SQLite catalog that says which segments
//! exist and where WAL replay starts.
//!
//! Write path: [`Store::append`] frames the batch into the WAL, waits for the group-commit fsync,
//! then adds the rows to the head. A flush freezes the heads, rotates the WAL, writes one sorted
//! Parquet file per tenant and signal, commits them to the catalog with the new replay start, and
//! only then deletes the WAL files the segments made redundant.

pub mod budget;
pub mod catalog;
pub mod head;
mod late_keys;
pub mod line_scan;
mod log_scan;
mod read;
pub mod schema;
pub mod segment;
pub mod segment_read;
pub mod series_index;
mod store;
pub mod token_filter;
pub mod wal;
mod wal_entry;

pub use budget::{MemoryBudget, Reservation};
pub use catalog::KeyRow;
pub use late_keys::LateLogKeys;
pub use log_scan::{LogRowRef, LogScan, LogVisitor, ScanStats};
pub use read::{Direction, LogRow};
pub use series_index::{LabelMatcher, MatchOp};
pub use store::{AppendError, SpanKeys, Store, StoreConfig, StoreObserver, StoreStats};
pub use wal::FsyncPolicy;

/// A failure of the store itself (not of the caller's input).
#[derive(Debug, thiserror::Error, Clone)]
pub enum StoreError {
    /// A file operation failed; the message names the file.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// The catalog database failed.
    #[error("catalog error: {0}")]
    Catalog(String),
    /// The WAL failed or is closed.
    #[error("WAL error: {0}")]
    Wal(String),
}
