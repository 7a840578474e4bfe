//! How a batch is framed as a WAL record payload: the record kind names the signal, and the payload
//! is a protobuf message holding the tenant and the batch.

use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::{Batch, LogBatch, SampleBatch, Signal, Tenant};

#[derive(Clone, PartialEq, prost::Message)]
struct WalTraces {
    #[prost(string, tag = "1")]
    tenant: String,
    #[prost(message, repeated, tag = "2")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WalLogs {
    #[prost(string, tag = "1")]
    tenant: String,
    #[prost(message, optional, tag = "2")]
    batch: Option<LogBatch>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WalSamples {
    #[prost(string, tag = "1")]
    tenant: String,
    #[prost(message, optional, tag = "2")]
    batch: Option<SampleBatch>,
}

/// The WAL record kind of a signal.
pub fn kind(signal: Signal) -> u8 {
    match signal {
        Signal::Traces => 1,
        Signal::Logs => 2,
        Signal::Metrics => 3,
    }
}

/// Encodes a batch; returns the batch back so the caller can still use it.
pub fn encode(tenant: &Tenant, batch: Batch) -> (Vec<u8>, Batch) {
    use prost::Message;
    let tenant = tenant.as_str().to_string();
    match batch {
        Batch::Traces(resource_spans) => {
            let m = WalTraces {
                tenant,
                resource_spans,
            };
            (m.encode_to_vec(), Batch::Traces(m.resource_spans))
        }
        Batch::Logs(b) => {
            let m = WalLogs {
                tenant,
                batch: Some(b),
            };
            (m.encode_to_vec(), Batch::Logs(m.batch.unwrap_or_default()))
        }
        Batch::Metrics(b) => {
            let m = WalSamples {
                tenant,
                batch: Some(b),
            };
            (
                m.encode_to_vec(),
                Batch::Metrics(m.batch.unwrap_or_default()),
            )
        }
    }
}

/// Decodes a WAL record back into its tenant and batch.
pub fn decode(kind: u8, payload: &[u8]) -> Result<(Tenant, Batch), String> {
    use prost::Message;
    let tenant = |t: &str| Tenant::new(t).map_err(|e| e.to_string());
    match kind {
        1 => {
            let m = WalTraces::decode(payload).map_err(|e| e.to_string())?;
            Ok((tenant(&m.tenant)?, Batch::Traces(m.resource_spans)))
        }
        2 => {
            let m = WalLogs::decode(payload).map_err(|e| e.to_string())?;
            Ok((tenant(&m.tenant)?, Batch::Logs(m.batch.unwrap_or_default())))
        }
        3 => {
            let m = WalSamples::decode(payload).map_err(|e| e.to_string())?;
            Ok((
                tenant(&m.tenant)?,
                Batch::Metrics(m.batch.unwrap_or_default()),
            ))
        }
        k => Err(format!("unknown WAL record kind {k}")),
    }
}
