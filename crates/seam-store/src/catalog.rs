//! The SQLite catalog: which segments exist, where replay starts, the trace-id index and the
//! stream/series dictionaries. A segment becomes visible only when its catalog transaction commits.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use seam_model::traces::TraceEdge;
use seam_model::{Labels, Signal, SpanId, Tenant, TraceId};

use crate::StoreError;

/// One immutable Parquet segment.
#[derive(Debug, Clone)]
pub struct SegmentMeta {
    /// Catalog id; also the file name.
    pub id: i64,
    /// Owning tenant.
    pub tenant: Tenant,
    /// Signal stored in the file.
    pub signal: Signal,
    /// Path relative to the data directory.
    pub rel_path: String,
    /// Smallest row time (ns).
    pub min_time_ns: i64,
    /// Largest row time (ns).
    pub max_time_ns: i64,
    /// Number of rows.
    pub rows: i64,
    /// File size in bytes.
    pub bytes: i64,
}

/// A trace's presence in one segment.
#[derive(Debug, Clone)]
pub struct TraceIndexEntry {
    /// The trace.
    pub trace_id: TraceId,
    /// Earliest span start in the segment (ns).
    pub start_ns: i64,
    /// Latest span start in the segment (ns).
    pub end_ns: i64,
}

/// A stream or series recorded in the dictionary, with the time range seen in segments.
#[derive(Debug, Clone)]
pub struct SeriesEntry {
    /// Fingerprint of the labels.
    pub id: u64,
    /// The label set.
    pub labels: Labels,
    /// Earliest time seen (ns).
    pub min_time_ns: i64,
    /// Latest time seen (ns).
    pub max_time_ns: i64,
}

/// One trace's spans carrying a correlation key value, per service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// The key name.
    pub key: String,
    /// Its value.
    pub value: String,
    /// The trace.
    pub trace_id: TraceId,
    /// The service whose spans carry it.
    pub service: String,
    /// Earliest span start (ns).
    pub start_ns: i64,
    /// Latest span end (ns).
    pub end_ns: i64,
}

impl KeyRow {
    /// One row per (key, value, trace, service) from per-span sightings `(key, value, trace,
    /// service, start, end)`, with the time range of all the spans that carry it.
    pub fn merge<'a>(
        sightings: impl IntoIterator<Item = (&'a str, &'a str, TraceId, &'a str, i64, i64)>,
    ) -> Vec<KeyRow> {
        let mut rows: std::collections::HashMap<(&str, &str, TraceId, &str), (i64, i64)> =
            std::collections::HashMap::new();
        for (key, value, trace, service, start, end) in sightings {
            let e = rows
                .entry((key, value, trace, service))
                .or_insert((start, end));
            e.0 = e.0.min(start);
            e.1 = e.1.max(end);
        }
        rows.into_iter()
            .map(
                |((key, value, trace_id, service), (start_ns, end_ns))| KeyRow {
                    key: key.to_string(),
                    value: value.to_string(),
                    trace_id,
                    service: service.to_string(),
                    start_ns,
                    end_ns,
                },
            )
            .collect()
    }
}

/// One new segment and the index rows that come with it.
pub struct FlushedSegment {
    /// The segment.
    pub meta: SegmentMeta,
    /// Traces in it (spans).
    pub traces: Vec<TraceIndexEntry>,
    /// Streams or series in it (logs, samples).
    pub series: Vec<SeriesEntry>,
    /// Bridge edges recorded by its bridge spans.
    pub edges: Vec<TraceEdge>,
    /// Correlation key rows of its spans.
    pub keys: Vec<KeyRow>,
}

/// Everything one flush commits at once.
pub struct FlushCommit {
    /// New segments with what the catalog indexes of them.
    pub segments: Vec<FlushedSegment>,
    /// From which WAL segment replay must start after this commit.
    pub replay_from_wal_segment: u64,
}

/// The catalog database.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

fn signal_code(s: Signal) -> i64 {
    match s {
        Signal::Traces => 1,
        Signal::Logs => 2,
        Signal::Metrics => 3,
    }
}

fn signal_from_code(c: i64) -> Option<Signal> {
    match c {
        1 => Some(Signal::Traces),
        2 => Some(Signal::Logs),
        3 => Some(Signal::Metrics),
        _ => None,
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Catalog(e.to_string())
}

impl Catalog {
    /// Opens (creating if needed) `catalog.db` in `dir`, in WAL journal mode with full sync, so a
    /// committed flush survives power loss.
    pub fn open(dir: &Path) -> Result<Catalog, StoreError> {
        let path = dir.join("catalog.db");
        let conn = Connection::open(&path).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS segments (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 tenant TEXT NOT NULL, signal INTEGER NOT NULL, path TEXT NOT NULL,
                 min_time INTEGER NOT NULL, max_time INTEGER NOT NULL,
                 rows INTEGER NOT NULL, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS segments_by_tenant ON segments (tenant, signal, max_time);
             CREATE TABLE IF NOT EXISTS trace_index (
                 tenant TEXT NOT NULL, trace_id BLOB NOT NULL, segment_id INTEGER NOT NULL,
                 start_time INTEGER NOT NULL, end_time INTEGER NOT NULL,
                 PRIMARY KEY (tenant, trace_id, segment_id)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS series (
                 tenant TEXT NOT NULL, signal INTEGER NOT NULL, id INTEGER NOT NULL,
                 labels TEXT NOT NULL, min_time INTEGER NOT NULL, max_time INTEGER NOT NULL,
                 PRIMARY KEY (tenant, signal, id)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS trace_edges (
                 tenant TEXT NOT NULL, upstream BLOB NOT NULL, bridge_span BLOB NOT NULL,
                 downstream BLOB NOT NULL, downstream_root BLOB NOT NULL, confidence REAL NOT NULL,
                 PRIMARY KEY (tenant, upstream, bridge_span)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS trace_edges_by_downstream ON trace_edges (tenant, downstream);
             CREATE TABLE IF NOT EXISTS trace_keys (
                 tenant TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, trace_id BLOB NOT NULL,
                 service TEXT NOT NULL, start_time INTEGER NOT NULL, end_time INTEGER NOT NULL,
                 PRIMARY KEY (tenant, key, value, trace_id, service)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS trace_keys_by_end ON trace_keys (end_time);
             CREATE TABLE IF NOT EXISTS state (
                 name TEXT PRIMARY KEY, value BLOB NOT NULL, updated_ns INTEGER NOT NULL) WITHOUT ROWID;",
        )
        .map_err(db_err)?;
        Ok(Catalog { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves a named piece of state that is not data (what a component learned), replacing the
    /// previous value.
    pub fn put_state(&self, name: &str, value: &[u8], now_ns: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO state (name, value, updated_ns) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET value=excluded.value, updated_ns=excluded.updated_ns",
                params![name, value, now_ns],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// A piece of state saved with [`Catalog::put_state`].
    pub fn get_state(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row("SELECT value FROM state WHERE name=?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err)
    }

    /// Every (tenant, trace) whose key rows end at or after `since_ns`.
    pub fn keyed_traces_since(&self, since_ns: i64) -> Result<Vec<(Tenant, TraceId)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT DISTINCT tenant, trace_id FROM trace_keys WHERE end_time >= ?1")
            .map_err(db_err)?;
        let rows = st
            .query_map([since_ns], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (t, id) = row.map_err(db_err)?;
            if let (Ok(t), Ok(id)) = (Tenant::new(&t), TraceId::from_slice(&id)) {
                out.push((t, id));
            }
        }
        Ok(out)
    }

    /// The WAL segment replay starts from (0 before the first flush).
    pub fn replay_from(&self) -> Result<u64, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key='replay_from_wal_segment'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        Ok(v.unwrap_or(0) as u64)
    }

    /// The id the next segment will get, so its file can be written before the row exists.
    pub fn next_segment_id(&self) -> Result<i64, StoreError> {
        let max: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name='segments'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        Ok(max.unwrap_or(0) + 1)
    }

    /// Every segment, oldest first.
    pub fn segments(&self) -> Result<Vec<SegmentMeta>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT id, tenant, signal, path, min_time, max_time, rows, bytes FROM segments ORDER BY id")
            .map_err(db_err)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                ))
            })
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, tenant, signal, rel_path, min_time_ns, max_time_ns, rows, bytes) =
                row.map_err(db_err)?;
            let tenant = Tenant::new(&tenant).map_err(|e| StoreError::Catalog(e.to_string()))?;
            let signal = signal_from_code(signal).ok_or_else(|| {
                StoreError::Catalog(format!("segment {id}: unknown signal {signal}"))
            })?;
            out.push(SegmentMeta {
                id,
                tenant,
                signal,
                rel_path,
                min_time_ns,
                max_time_ns,
                rows,
                bytes,
            });
        }
        Ok(out)
    }

    /// The segments holding `trace_id` for a tenant, with the trace's time range in each.
    pub fn trace_segments(
        &self,
        tenant: &Tenant,
        trace_id: &TraceId,
    ) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT segment_id, start_time, end_time FROM trace_index WHERE tenant=?1 AND trace_id=?2")
            .map_err(db_err)?;
        let rows = st
            .query_map(params![tenant.as_str(), &trace_id.0[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    /// Traces whose spans carry `key=value` with a time range overlapping `[start_ns, end_ns]`.
    pub fn trace_keys(
        &self,
        tenant: &Tenant,
        key: &str,
        value: &str,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<KeyRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT trace_id, service, start_time, end_time FROM trace_keys
                 WHERE tenant=?1 AND key=?2 AND value=?3 AND end_time >= ?4 AND start_time <= ?5",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(
                params![tenant.as_str(), key, value, start_ns, end_ns],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (t, service, start_ns, end_ns) = row.map_err(db_err)?;
            if let Ok(trace_id) = TraceId::from_slice(&t) {
                out.push(KeyRow {
                    key: key.to_string(),
                    value: value.to_string(),
                    trace_id,
                    service,
                    start_ns,
                    end_ns,
                });
            }
        }
        Ok(out)
    }

    /// The bridges touching a trace, as upstream or as downstream.
    pub fn trace_edges(
        &self,
        tenant: &Tenant,
        trace_id: &TraceId,
    ) -> Result<Vec<TraceEdge>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT upstream, bridge_span, downstream, downstream_root, confidence FROM trace_edges
                 WHERE tenant=?1 AND (upstream=?2 OR downstream=?2)",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![tenant.as_str(), &trace_id.0[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, f64>(4)?,
                ))
            })
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (u, b, d, r, confidence) = row.map_err(db_err)?;
            if let (Ok(upstream), Ok(bridge_span_id), Ok(downstream), Ok(downstream_root_span_id)) = (
                TraceId::from_slice(&u),
                SpanId::from_slice(&b),
                TraceId::from_slice(&d),
                SpanId::from_slice(&r),
            ) {
                out.push(TraceEdge {
                    upstream,
                    bridge_span_id,
                    downstream,
                    downstream_root_span_id,
                    confidence,
                });
            }
        }
        Ok(out)
    }

    /// Every stream or series of a signal, for all tenants.
    pub fn all_series(&self, signal: Signal) -> Result<Vec<(Tenant, SeriesEntry)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT tenant, id, labels, min_time, max_time FROM series WHERE signal=?1")
            .map_err(db_err)?;
        let rows = st
            .query_map(params![signal_code(signal)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                ))
            })
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (tenant, id, labels, min_time_ns, max_time_ns) = row.map_err(db_err)?;
            let tenant = Tenant::new(&tenant).map_err(|e| StoreError::Catalog(e.to_string()))?;
            let map: Vec<(String, String)> = serde_json::from_str(&labels)
                .map_err(|e| StoreError::Catalog(format!("series {id}: {e}")))?;
            out.push((
                tenant,
                SeriesEntry {
                    id: id as u64,
                    labels: Labels::from_pairs(map),
                    min_time_ns,
                    max_time_ns,
                },
            ));
        }
        Ok(out)
    }

    /// Records a flush in one transaction: the segments, their index rows, the series they hold and
    /// the new replay start. Nothing of it is visible unless all of it is.
    pub fn commit_flush(&mut self, c: &FlushCommit) -> Result<(), StoreError> {
        let now = seam_model::now_ns() / 1_000_000_000;
        let tx = self.conn.transaction().map_err(db_err)?;
        {
            let mut seg = tx
                .prepare_cached(
                    "INSERT INTO segments (id, tenant, signal, path, min_time, max_time, rows, bytes, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(db_err)?;
            let mut tix = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO trace_index (tenant, trace_id, segment_id, start_time, end_time)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(db_err)?;
            let mut ser = tx
                .prepare_cached(
                    "INSERT INTO series (tenant, signal, id, labels, min_time, max_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (tenant, signal, id) DO UPDATE SET
                       min_time = min(min_time, excluded.min_time), max_time = max(max_time, excluded.max_time)",
                )
                .map_err(db_err)?;
            let mut edge = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO trace_edges (tenant, upstream, bridge_span, downstream, downstream_root, confidence)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(db_err)?;
            let mut key_row = tx
                .prepare_cached(
                    "INSERT INTO trace_keys (tenant, key, value, trace_id, service, start_time, end_time)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (tenant, key, value, trace_id, service) DO UPDATE SET
                       start_time = min(start_time, excluded.start_time), end_time = max(end_time, excluded.end_time)",
                )
                .map_err(db_err)?;
            for FlushedSegment {
                meta: m,
                traces,
                series,
                edges,
                keys,
            } in &c.segments
            {
                for k in keys {
                    key_row
                        .execute(params![
                            m.tenant.as_str(),
                            k.key,
                            k.value,
                            &k.trace_id.0[..],
                            k.service,
                            k.start_ns,
                            k.end_ns
                        ])
                        .map_err(db_err)?;
                }
                for e in edges {
                    edge.execute(params![
                        m.tenant.as_str(),
                        &e.upstream.0[..],
                        &e.bridge_span_id.0[..],
                        &e.downstream.0[..],
                        &e.downstream_root_span_id.0[..],
                        e.confidence
                    ])
                    .map_err(db_err)?;
                }
                seg.execute(params![
                    m.id,
                    m.tenant.as_str(),
                    signal_code(m.signal),
                    m.rel_path,
                    m.min_time_ns,
                    m.max_time_ns,
                    m.rows,
                    m.bytes,
                    now
                ])
                .map_err(db_err)?;
                for t in traces {
                    tix.execute(params![
                        m.tenant.as_str(),
                        &t.trace_id.0[..],
                        m.id,
                        t.start_ns,
                        t.end_ns
                    ])
                    .map_err(db_err)?;
                }
                for s in series {
                    let pairs: Vec<(&str, &str)> = s
                        .labels
                        .as_slice()
                        .iter()
                        .map(|l| (l.name.as_str(), l.value.as_str()))
                        .collect();
                    let json = serde_json::to_string(&pairs).expect("labels serialise");
                    ser.execute(params![
                        m.tenant.as_str(),
                        signal_code(m.signal),
                        s.id as i64,
                        json,
                        s.min_time_ns,
                        s.max_time_ns
                    ])
                    .map_err(db_err)?;
                }
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('replay_from_wal_segment', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![c.replay_from_wal_segment as i64],
            )
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }
}
