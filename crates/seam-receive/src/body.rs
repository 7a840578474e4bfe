//! Request bodies: size limits and gzip, with errors that name the limit or the offset.

use std::io::Read;

use flate2::read::MultiGzDecoder;

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
    /// A `Content-Encoding` Seam does not decode.
    #[error("unsupported Content-Encoding {0:?} (supported: gzip, identity)")]
    UnsupportedEncoding(String),
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
