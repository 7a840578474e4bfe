//! Replay of segment files on open, with torn-tail / corruption handling.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::format::{
    parse_record_header, record_crc, MAX_RECORD_BYTES, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
    SEGMENT_MAGIC, SEGMENT_VERSION,
};
use super::{ReplayStats, WalPosition};

const READ_BUFFER: usize = 1 << 20;

/// Where and why a segment stops being readable.
struct Damage {
    offset: u64,
    reason: &'static str,
}

/// Replays one segment through `on_record`.
///
/// Damage in the `last` segment is truncated away (the file is cut at the last good record and
/// synced); damage in an earlier segment ends replay of that file only. Either way exactly one
/// warning is logged per damaged file; truncated bytes are added to `stats`.
pub(crate) fn replay_segment(
    path: &Path,
    segment: u64,
    last: bool,
    on_record: &mut dyn FnMut(u8, &[u8], WalPosition),
    stats: &mut ReplayStats,
) -> io::Result<()> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    stats.segments += 1;
    if file_len == 0 {
        // Created but crashed before the header reached the disk: an empty segment.
        return Ok(());
    }
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    let damage = match scan(&mut reader, file_len, segment, on_record, stats)? {
        None => return Ok(()),
        Some(d) => d,
    };
    drop(reader);
    let dropped = file_len - damage.offset;
    if last {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(damage.offset)?;
        f.sync_all()?;
        stats.truncated_bytes += dropped;
        tracing::warn!(
            file = %path.display(),
            offset = damage.offset,
            dropped_bytes = dropped,
            reason = damage.reason,
            "wal: torn or corrupt tail in last segment; truncated at last good record"
        );
    } else {
        tracing::warn!(
            file = %path.display(),
            offset = damage.offset,
            skipped_bytes = dropped,
            reason = damage.reason,
            "wal: corrupt record in a non-last segment; skipping the rest of that segment"
        );
    }
    Ok(())
}

/// Reads the header and every good record. `Ok(Some(damage))` when the file does not end
/// cleanly; `Err` only for real I/O errors or an unsupported format version.
fn scan(
    reader: &mut BufReader<File>,
    file_len: u64,
    segment: u64,
    on_record: &mut dyn FnMut(u8, &[u8], WalPosition),
    stats: &mut ReplayStats,
) -> io::Result<Option<Damage>> {
    if file_len < SEGMENT_HEADER_LEN {
        return Ok(Some(Damage {
            offset: 0,
            reason: "short segment header",
        }));
    }
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    reader.read_exact(&mut header)?;
    if header[..8] != SEGMENT_MAGIC {
        return Ok(Some(Damage {
            offset: 0,
            reason: "bad segment magic",
        }));
    }
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if version != SEGMENT_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("wal segment {segment}: unsupported format version {version}"),
        ));
    }

    let mut offset = SEGMENT_HEADER_LEN;
    let mut payload = Vec::new();
    loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            return Ok(None);
        }
        if remaining < RECORD_HEADER_LEN as u64 {
            return Ok(Some(Damage {
                offset,
                reason: "short record header",
            }));
        }
        let mut frame = [0u8; RECORD_HEADER_LEN];
        reader.read_exact(&mut frame)?;
        let (len, crc, kind) = parse_record_header(&frame);
        let len = len as u64;
        if len > MAX_RECORD_BYTES as u64 {
            return Ok(Some(Damage {
                offset,
                reason: "record length exceeds maximum",
            }));
        }
        if len > remaining - RECORD_HEADER_LEN as u64 {
            return Ok(Some(Damage {
                offset,
                reason: "short record payload",
            }));
        }
        payload.clear();
        let read = reader.by_ref().take(len).read_to_end(&mut payload)?;
        if read as u64 != len {
            // The file shrank under us; treat like a short payload.
            return Ok(Some(Damage {
                offset,
                reason: "short record payload",
            }));
        }
        if record_crc(kind, &payload) != crc {
            return Ok(Some(Damage {
                offset,
                reason: "record checksum mismatch",
            }));
        }
        on_record(kind, &payload, WalPosition { segment, offset });
        stats.records += 1;
        stats.bytes += len;
        offset += RECORD_HEADER_LEN as u64 + len;
    }
}
