//! On-disk framing of WAL segments.
//!
//! A segment file is named `NNNNNNNNNNNNNNNNNNNN.wal` (20-digit, zero-padded segment id) and
//! holds a [`SEGMENT_HEADER_LEN`]-byte header followed by records:
//!
//! ```text
//! header: magic "SEAMWAL\0" (8 bytes) | version: u32 LE
//! record: len: u32 LE (payload length) | crc: u32 LE (CRC32C of kind + payload) | kind: u8 | payload
//! ```

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SEAMWAL\0";
/// Current segment format version.
pub const SEGMENT_VERSION: u32 = 1;
/// Length of the segment file header (magic + version).
pub const SEGMENT_HEADER_LEN: u64 = 12;
/// Length of a record's framing (len + crc + kind).
pub const RECORD_HEADER_LEN: usize = 9;
/// Largest payload a single record may carry.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

const SEGMENT_SUFFIX: &str = ".wal";
const SEGMENT_ID_DIGITS: usize = 20;

/// The bytes of a segment file header.
pub(crate) fn segment_header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h
}

/// CRC32C over the kind byte followed by the payload.
pub(crate) fn record_crc(kind: u8, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&[kind]), payload)
}

/// The framing that precedes `payload` on disk. `payload.len()` must be <= [`MAX_RECORD_BYTES`].
pub(crate) fn record_header(kind: u8, payload: &[u8]) -> [u8; RECORD_HEADER_LEN] {
    debug_assert!(payload.len() <= MAX_RECORD_BYTES);
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&record_crc(kind, payload).to_le_bytes());
    h[8] = kind;
    h
}

/// Decoded record framing: `(payload_len, crc, kind)`.
pub(crate) fn parse_record_header(h: &[u8; RECORD_HEADER_LEN]) -> (u32, u32, u8) {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    (len, crc, h[8])
}

/// File name of segment `id`.
pub fn segment_file_name(id: u64) -> String {
    format!("{id:0width$}{SEGMENT_SUFFIX}", width = SEGMENT_ID_DIGITS)
}

/// Path of segment `id` in `dir`.
pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(segment_file_name(id))
}

/// Parses a segment file name; `None` for any other file.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_ID_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment ids and paths in `dir`, sorted by id.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(parse_segment_file_name) else {
            continue;
        };
        if entry.file_type()?.is_file() {
            out.push((id, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(id, _)| *id);
    Ok(out)
}

/// fsyncs a directory so that entries created or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_format_names_round_trip() {
        assert_eq!(segment_file_name(7), "00000000000000000007.wal");
        assert_eq!(segment_file_name(u64::MAX), "18446744073709551615.wal");
        assert_eq!(parse_segment_file_name("00000000000000000007.wal"), Some(7));
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("7.wal"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000a.wal"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000007.wal.tmp"),
            None
        );
        assert_eq!(parse_segment_file_name("99999999999999999999.wal"), None);
    }

    #[test]
    fn wal_format_header_round_trip() {
        let h = record_header(3, b"hello");
        let (len, crc, kind) = parse_record_header(&h);
        assert_eq!((len, kind), (5, 3));
        assert_eq!(crc, record_crc(3, b"hello"));
        assert_ne!(crc, record_crc(4, b"hello"));
        // An all-zero frame never carries a valid CRC, so zero-filled tails are detected.
        assert_ne!(record_crc(0, b""), 0);
    }
}
