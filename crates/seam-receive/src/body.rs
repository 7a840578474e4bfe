//! Request bodies: size limits and gzip, with errors that name the limit or the offset.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use crate::sink::{Admission, Refusal, Sink};

/// Why a body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// The body (or its decompressed form) is larger than the limit.
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// "request body" or "decompressed body".
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// The gzip stream is corrupt or truncated.
    #[error("invalid gzip body: {detail} (after {offset} decompressed bytes)")]
    BadGzip {
        /// What the decoder said.
        detail: String,
        /// Decompressed bytes produced before the failure.
        offset: usize,
    },
    /// The snappy block is corrupt.
    #[error("invalid snappy body: {0}")]
    BadSnappy(String),
    /// A `Content-Encoding` Seam does not decode.
    #[error("unsupported Content-Encoding {0:?} (supported: gzip, identity)")]
    UnsupportedEncoding(String),
}

impl BodyError {
    /// The HTTP status a receiver answers it with: 413 past a limit, 415 for an encoding Seam
    /// does not decode, 400 for a corrupt body.
    pub fn status(&self) -> http::StatusCode {
        match self {
            BodyError::TooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::UnsupportedEncoding(_) => http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::BadGzip { .. } | BodyError::BadSnappy(_) => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// The content encodings Seam accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
}

impl Encoding {
    /// Reads a `Content-Encoding` header value.
    pub fn from_header(v: Option<&str>) -> Result<Encoding, BodyError> {
        match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Ok(Encoding::Identity),
            Some("gzip") | Some("x-gzip") => Ok(Encoding::Gzip),
            Some(other) => Err(BodyError::UnsupportedEncoding(other.to_string())),
        }
    }
}

/// Decompresses `raw` if needed, refusing output past `limit` bytes (so a small gzip bomb cannot
/// exhaust memory).
pub fn decode(
    raw: bytes::Bytes,
    encoding: Encoding,
    limit: usize,
) -> Result<bytes::Bytes, BodyError> {
    match encoding {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => {
            let mut out = Vec::with_capacity((raw.len() * 4).min(limit));
            let mut dec = MultiGzDecoder::new(&raw[..]).take(limit as u64 + 1);
            dec.read_to_end(&mut out).map_err(|e| BodyError::BadGzip {
                detail: e.to_string(),
                offset: out.len(),
            })?;
            if out.len() > limit {
                return Err(BodyError::TooLarge {
                    what: "decompressed body",
                    limit,
                });
            }
            Ok(out.into())
        }
    }
}

/// The request's media type, lower-cased and without parameters (`""` when absent).
pub fn media_type(headers: &http::HeaderMap) -> String {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decompresses a snappy block (Loki push, Prometheus remote write), refusing output past `limit`.
pub fn snappy(data: &[u8], limit: usize) -> Result<bytes::Bytes, BodyError> {
    let n = snap::raw::decompress_len(data).map_err(|e| BodyError::BadSnappy(e.to_string()))?;
    if n > limit {
        return Err(BodyError::TooLarge {
            what: "decompressed body",
            limit,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .map(Into::into)
        .map_err(|e| BodyError::BadSnappy(e.to_string()))
}

/// Why a request body could not be taken in.
pub enum IntakeError {
    /// Too large, badly compressed, or an unsupported encoding.
    Body(BodyError),
    /// The sink refused the memory (overloaded, not ready).
    Refused(Refusal),
    /// The connection failed while the body was read.
    Read(String),
}

/// A request body, read under the size limit, decompressed, and held against the memory budget
/// until dropped.
pub struct Intake {
    /// The decompressed body.
    pub data: bytes::Bytes,
    _held: Vec<Admission>,
}

/// Reads a request body the way every receiver must: refuse a declared length over `limit` before
/// reading; reserve memory (draining the body when refused, so the client sees the answer rather
/// than a reset); read at most `limit` bytes; decompress with `encoding`, then with `unwrap` (e.g.
/// snappy); and hold about twice the decompressed size while the caller decodes it.
pub async fn intake(
    body: axum::body::Body,
    headers: &http::HeaderMap,
    encoding: Encoding,
    limit: usize,
    sink: &dyn Sink,
    unwrap: impl FnOnce(bytes::Bytes) -> Result<bytes::Bytes, BodyError>,
) -> Result<Intake, IntakeError> {
    use http_body_util::{BodyExt, LengthLimitError, Limited};
    let too_large = || {
        IntakeError::Body(BodyError::TooLarge {
            what: "request body",
            limit,
        })
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut held = Vec::with_capacity(2);
    if let Some(n) = declared {
        match sink.admit(n) {
            Ok(a) => held.push(a),
            Err(r) => {
                discard(body).await;
                return Err(IntakeError::Refused(r));
            }
        }
    }
    let raw = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => return Err(IntakeError::Read(format!("reading request body: {e}"))),
    };
    if declared.is_none() {
        held.push(sink.admit(raw.len()).map_err(IntakeError::Refused)?);
    }
    let raw_len = raw.len();
    let data = decode(raw, encoding, limit)
        .and_then(unwrap)
        .map_err(IntakeError::Body)?;
    // Decoded messages take a few times their wire size; hold that too while the caller works.
    held.push(
        sink.admit(data.len().saturating_mul(2).saturating_sub(raw_len))
            .map_err(IntakeError::Refused)?,
    );
    Ok(Intake { data, _held: held })
}

/// Reads a body to its end without keeping it.
async fn discard(mut body: axum::body::Body) {
    use http_body_util::BodyExt;
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    fn gz(data: &[u8]) -> bytes::Bytes {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap().into()
    }

    #[test]
    fn gzip_round_trip_limits_and_corruption() {
        assert_eq!(
            &decode(gz(b"hello"), Encoding::Gzip, 10).unwrap()[..],
            b"hello"
        );
        assert_eq!(
            decode(gz(&[0u8; 100]), Encoding::Gzip, 10),
            Err(BodyError::TooLarge {
                what: "decompressed body",
                limit: 10
            })
        );
        let mut bad = gz(b"hello world").to_vec();
        let n = bad.len();
        bad.truncate(n - 6);
        assert!(matches!(
            decode(bad.into(), Encoding::Gzip, 100),
            Err(BodyError::BadGzip { .. })
        ));
        assert!(matches!(
            decode(bytes::Bytes::from_static(b"not gzip"), Encoding::Gzip, 100),
            Err(BodyError::BadGzip { .. })
        ));
        assert_eq!(
            Encoding::from_header(Some("br")),
            Err(BodyError::UnsupportedEncoding("br".into()))
        );
    }
}
