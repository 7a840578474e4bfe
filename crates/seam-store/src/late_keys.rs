//! Log rows whose correlation keys found no trace when they arrived, resolved when they are read.
//!
//! A log line may arrive before any span carrying its key. The ingest path then writes the keys it
//! found into a marker entry of the row's structured metadata (its name is the resolver's
//! [`LateLogKeys::marker`]). Every log read through [`Store::visit_logs`] passes marked rows to the
//! resolver, which looks the keys up in the key index as it is *now*, and the row reaches the
//! reader with the marker replaced by what the resolver found (or just without the marker). So a
//! query sees the enrichment whether the span came before or after the line, and never the
//! marker. Unmarked rows are not touched (a substring check on their metadata).

use std::collections::{BTreeMap, HashMap};

use seam_model::{Signal, Tenant};

use crate::log_scan::{LogRowRef, LogVisitor};
use crate::store::Store;

/// Resolves marked log rows at read time (the correlation engine's side, seen through a trait so
/// the store does not depend on it).
pub trait LateLogKeys: Send + Sync {
    /// The structured-metadata name that marks a row with unresolved keys; readers never see it.
    fn marker(&self) -> &str;
    /// The metadata to add to a marked row, `(name, value)`, from the marker's value, the row's
    /// time and its stream's `service_name`; `None` when there is still nothing to add.
    fn resolve(
        &self,
        store: &Store,
        tenant: &Tenant,
        marker_value: &str,
        ts_ns: i64,
        service: Option<&str>,
    ) -> Option<(String, String)>;
}

/// A visitor that resolves marked rows before handing them on.
pub(crate) struct Resolving<'a> {
    inner: &'a mut dyn LogVisitor,
    keys: &'a dyn LateLogKeys,
    store: &'a Store,
    tenant: &'a Tenant,
    /// `"<marker>"`, quoted as it appears in the JSON object.
    needle: String,
    /// Each stream's service_name, looked up once.
    services: HashMap<u64, Option<String>>,
}

impl<'a> Resolving<'a> {
    /// Wraps `inner`.
    pub fn new(
        inner: &'a mut dyn LogVisitor,
        keys: &'a dyn LateLogKeys,
        store: &'a Store,
        tenant: &'a Tenant,
    ) -> Resolving<'a> {
        let needle = format!("\"{}\"", keys.marker());
        Resolving {
            inner,
            keys,
            store,
            tenant,
            needle,
            services: HashMap::new(),
        }
    }

    fn service(&mut self, stream: u64) -> Option<String> {
        let (store, tenant) = (self.store, self.tenant);
        self.services
            .entry(stream)
            .or_insert_with(|| {
                let st = store.inner.state.read();
                st.series
                    .get(&(tenant.clone(), Signal::Logs))
                    .and_then(|ix| ix.get(stream))
                    .and_then(|e| e.labels.get("service_name").map(str::to_string))
            })
            .clone()
    }
}

impl LogVisitor for Resolving<'_> {
    fn visit(&mut self, row: LogRowRef<'_>) {
        if !row.structured_metadata.contains(self.needle.as_str()) {
            return self.inner.visit(row);
        }
        let Ok(mut md) = serde_json::from_str::<BTreeMap<String, String>>(row.structured_metadata)
        else {
            return self.inner.visit(row);
        };
        let marker = md.remove(self.keys.marker()).unwrap_or_default();
        let service = self.service(row.stream_id);
        if let Some((name, value)) = self.keys.resolve(
            self.store,
            self.tenant,
            &marker,
            row.timestamp_ns,
            service.as_deref(),
        ) {
            md.entry(name).or_insert(value);
        }
        let json = serde_json::to_string(&md).expect("strings serialise");
        self.inner.visit(LogRowRef {
            structured_metadata: &json,
            ..row
        });
    }

    fn wants(&self, min_ns: i64, max_ns: i64) -> bool {
        self.inner.wants(min_ns, max_ns)
    }

    fn needs_structured_metadata(&self) -> bool {
        self.inner.needs_structured_metadata()
    }

    fn needs_lines(&self) -> bool {
        self.inner.needs_lines()
    }
}
