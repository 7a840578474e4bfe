//! Seam's query engines. They read the store only through its read interface
//! (`seam_store::Store`'s `select_series`, `scan_logs`, `samples`, `trace`).

pub mod logql;
pub mod promql;
