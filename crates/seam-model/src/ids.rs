//! Trace and span ids, with the hex parsing every API needs.

use std::fmt;

/// A 16-byte trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

/// Why an id could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// The id had the wrong number of bytes.
    #[error("{what} must be {want} bytes, got {got}")]
    Length {
        /// "trace id" or "span id".
        what: &'static str,
        /// The required length in bytes.
        want: usize,
        /// The length found.
        got: usize,
    },
    /// The text was not hexadecimal.
    #[error("{what} is not hex: {text:?}")]
    NotHex {
        /// "trace id" or "span id".
        what: &'static str,
        /// The offending text (cut to 64 characters).
        text: String,
    },
}

impl TraceId {
    /// Reads a trace id from raw bytes, which must be exactly 16 long.
    pub fn from_slice(b: &[u8]) -> Result<TraceId, IdError> {
        <[u8; 16]>::try_from(b)
            .map(TraceId)
            .map_err(|_| IdError::Length {
                what: "trace id",
                want: 16,
                got: b.len(),
            })
    }

    /// Reads a trace id from hex in either case. Shorter ids (64-bit, as Jaeger and
    /// Tempo accept) are left-padded with zeros.
    pub fn from_hex(s: &str) -> Result<TraceId, IdError> {
        let s = s.trim();
        if s.is_empty() || s.len() > 32 {
            return Err(IdError::Length {
                what: "trace id",
                want: 16,
                got: s.len().div_ceil(2),
            });
        }
        let padded = format!("{s:0>32}");
        let mut out = [0u8; 16];
        hex::decode_to_slice(&padded, &mut out).map_err(|_| IdError::NotHex {
            what: "trace id",
            text: s.chars().take(64).collect(),
        })?;
        Ok(TraceId(out))
    }

    /// Lower-case hex, as OTLP/JSON and Tempo write it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// True for the all-zero id, which OTLP calls invalid.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl SpanId {
    /// Reads a span id from raw bytes, which must be exactly 8 long.
    pub fn from_slice(b: &[u8]) -> Result<SpanId, IdError> {
        <[u8; 8]>::try_from(b)
            .map(SpanId)
            .map_err(|_| IdError::Length {
                what: "span id",
                want: 8,
                got: b.len(),
            })
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({})", self.to_hex())
    }
}
impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_any_case_and_short_ids() {
        let t = TraceId::from_hex("5B8EFFF798038103D269B633813FC60C").unwrap();
        assert_eq!(t.to_hex(), "5b8efff798038103d269b633813fc60c");
        assert_eq!(TraceId::from_hex("ff").unwrap().0[15], 0xff);
        assert!(TraceId::from_hex("zz").is_err());
        assert!(TraceId::from_slice(&[1; 15]).is_err());
    }
}
