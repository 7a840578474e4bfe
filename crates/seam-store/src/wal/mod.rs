//! Write-ahead log: a directory of CRC-framed segment files with group commit.
//!
//! * Segments are `NNNNNNNNNNNNNNNNNNNN.wal`: a 12-byte header (magic `SEAMWAL\0`, version u32 LE)
//!   then records framed as `len: u32 LE | crc32c(kind + payload): u32 LE | kind: u8 | payload`.
//!   Appends go to the single *active* segment, which is rolled when it would exceed
//!   [`WalConfig::segment_bytes`] or on [`Wal::rotate`]. [`Wal::open`] always starts a fresh
//!   segment, so nothing is ever appended after a truncated tail.
//! * One dedicated writer thread owns the active file. [`Wal::append`] computes the record's CRC
//!   on the caller's thread, queues it and awaits the writer, which drains everything queued,
//!   writes it with one vectored write, fsyncs once (policy [`FsyncPolicy::Always`]) and then
//!   acknowledges the whole group.
//! * A write or fsync error fails every unacknowledged append and poisons the WAL: all later
//!   appends and rotations return [`WalError::Failed`]. Recovery is re-opening (replay).
//! * A `LOCK` file in the directory is `flock`ed while the WAL is open, so two instances cannot
//!   write the same directory.

mod format;
mod replay;
mod writer;

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::oneshot;

pub use format::{
    parse_segment_file_name, segment_file_name, MAX_RECORD_BYTES, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};
use writer::{Queue, Request, Shared, Writer};

/// Default size at which a segment is rolled.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

const LOCK_FILE: &str = "LOCK";

/// When appended records are fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every append resolves only after an `fdatasync` that covers it (shared by its group).
    Always,
    /// Appends resolve after the write; the writer fsyncs at most this long after a write.
    Interval(Duration),
}

/// WAL configuration.
#[derive(Debug, Clone)]
pub struct WalConfig {
    pub dir: PathBuf,
    /// A segment is rolled before a record would make it exceed this size. A single record larger
    /// than this gets a segment of its own.
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
}

impl WalConfig {
    /// `dir` with 64 MiB segments and [`FsyncPolicy::Always`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalConfig {
            dir: dir.into(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            fsync: FsyncPolicy::Always,
        }
    }
}

/// Where a record starts: segment id and byte offset of its framing in that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalPosition {
    pub segment: u64,
    pub offset: u64,
}

/// What [`Wal::open`] replayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Records passed to `on_record`.
    pub records: u64,
    /// Payload bytes passed to `on_record`.
    pub bytes: u64,
    /// Segment files read.
    pub segments: u64,
    /// Bytes cut from the last segment's torn or corrupt tail.
    pub truncated_bytes: u64,
}

/// WAL errors.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal is closed")]
    Closed,
    #[error("wal record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    #[error("wal I/O error: {0}")]
    Io(#[from] io::Error),
    /// An earlier write or fsync failed; the WAL accepts no more writes until re-opened.
    #[error("wal refuses writes after an earlier I/O error ({0})")]
    Failed(String),
}

/// Observability hooks, called on the writer thread (keep them cheap).
pub trait WalObserver: Send + Sync {
    /// Once per group commit: the records and framed bytes written with one (vectored) write,
    /// and the `fdatasync` latency when the group was synced (always under
    /// [`FsyncPolicy::Always`], never under `Interval`).
    fn on_commit(&self, records: u64, bytes: u64, fsync: Option<Duration>);
    /// Every fsync that is not part of a group commit (interval timer, shutdown, sealing a
    /// segment that had no pending group).
    fn on_fsync(&self, _latency: Duration) {}
}

/// Handle to an open WAL. Cheap to clone; `Send + Sync`. The writer thread stops on
/// [`Wal::close`] or when the last handle is dropped.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    lock: Mutex<Option<File>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.close();
    }
}

impl Handle {
    fn close(&self) {
        self.shared.queue.lock().closed = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            if thread.join().is_err() {
                tracing::error!("wal: writer thread panicked");
            }
        }
        self.lock.lock().take();
    }
}

impl Wal {
    /// Opens (creating) the WAL directory and replays every record of the segments with
    /// id >= `from_segment`, in order, through `on_record(kind, payload, position)`.
    ///
    /// Segments with id < `from_segment` are deleted. A torn or corrupt tail of the last segment
    /// is truncated at the last good record; damage in an earlier segment ends replay of that
    /// file only (the file is kept). Each damaged file logs exactly one warning. Appends then go
    /// to a new segment with id > every existing one and >= `from_segment`.
    pub fn open(
        cfg: WalConfig,
        from_segment: u64,
        mut on_record: impl FnMut(u8, &[u8], WalPosition),
    ) -> io::Result<(Wal, ReplayStats)> {
        if cfg.segment_bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "wal segment_bytes must be > 0",
            ));
        }
        if let FsyncPolicy::Interval(d) = cfg.fsync {
            if d.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "wal fsync interval must be > 0",
                ));
            }
        }
        fs::create_dir_all(&cfg.dir)?;
        let lock = lock_dir(&cfg.dir)?;

        let mut segments = format::list_segments(&cfg.dir)?;
        let stale = segments.partition_point(|(id, _)| *id < from_segment);
        for (_, path) in segments.drain(..stale) {
            remove_if_exists(&path)?;
        }
        if stale > 0 {
            format::sync_dir(&cfg.dir)?;
        }

        let mut stats = ReplayStats::default();
        let count = segments.len();
        for (i, (id, path)) in segments.iter().enumerate() {
            replay::replay_segment(path, *id, i + 1 == count, &mut on_record, &mut stats)?;
        }

        let mut disk_bytes = 0;
        for (_, path) in &segments {
            disk_bytes += fs::metadata(path)?.len();
        }
        let next = segments
            .last()
            .map_or(1, |(id, _)| {
                id.checked_add(1).expect("wal segment id overflow")
            })
            .max(from_segment);
        let file = writer::create_segment(&cfg.dir, next)?;
        disk_bytes += SEGMENT_HEADER_LEN;

        let shared = Arc::new(Shared {
            dir: cfg.dir.clone(),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            active_segment: AtomicU64::new(next),
            disk_bytes: AtomicU64::new(disk_bytes),
            observer: RwLock::new(None),
            trim_lock: Mutex::new(()),
            #[cfg(test)]
            faults: Default::default(),
        });
        let writer = Writer::new(shared.clone(), cfg.fsync, cfg.segment_bytes, file, next);
        let thread = std::thread::Builder::new()
            .name("seam-wal-writer".into())
            .spawn(move || writer.run())?;
        let wal = Wal {
            inner: Arc::new(Handle {
                shared,
                thread: Mutex::new(Some(thread)),
                lock: Mutex::new(Some(lock)),
            }),
        };
        Ok((wal, stats))
    }

    /// Appends one record and resolves once it is durable per the [`FsyncPolicy`].
    ///
    /// Concurrent appends are group-committed. If the future is dropped early the record may
    /// still be written. Fails with [`WalError::RecordTooLarge`] above [`MAX_RECORD_BYTES`],
    /// [`WalError::Closed`] after [`Wal::close`], and [`WalError::Io`] / [`WalError::Failed`]
    /// on (earlier) I/O errors; an append that fails was never acknowledged as durable.
    pub async fn append(&self, kind: u8, payload: Bytes) -> Result<WalPosition, WalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::RecordTooLarge {
                len: payload.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let header = format::record_header(kind, &payload);
        let (reply, done) = oneshot::channel();
        self.inner.shared.submit(Request::Append {
            header,
            payload,
            reply,
        })?;
        done.await.unwrap_or(Err(WalError::Closed))
    }

    /// Syncs and closes the active segment and starts a new one; returns the new segment's id.
    ///
    /// Every append whose future resolved before this call returned (indeed, every append queued
    /// before the rotation request) is in a segment with a smaller id. Blocks the calling thread
    /// for one fsync round; appends queued after it land in the new segment.
    pub fn rotate(&self) -> Result<u64, WalError> {
        let (reply, done) = std::sync::mpsc::sync_channel(1);
        self.inner.shared.submit(Request::Rotate(reply))?;
        done.recv().unwrap_or(Err(WalError::Closed))
    }

    /// Deletes every segment with id < `before`, then fsyncs the directory. The active segment is
    /// never deleted (`before` is clamped to it).
    pub fn trim(&self, before: u64) -> Result<(), WalError> {
        let shared = &self.inner.shared;
        let _guard = shared.trim_lock.lock();
        let limit = before.min(shared.active_segment.load(Ordering::Acquire));
        let mut removed = false;
        for (id, path) in format::list_segments(&shared.dir)? {
            if id >= limit {
                break;
            }
            let len = match fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if remove_if_exists(&path)? {
                shared.disk_bytes.fetch_sub(len, Ordering::Relaxed);
                removed = true;
            }
        }
        if removed {
            format::sync_dir(&shared.dir)?;
        }
        Ok(())
    }

    /// Bytes currently on disk in WAL segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.inner.shared.disk_bytes.load(Ordering::Relaxed)
    }

    /// Id of the segment new appends currently go to.
    pub fn active_segment(&self) -> u64 {
        self.inner.shared.active_segment.load(Ordering::Acquire)
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.inner.shared.dir
    }

    /// Installs (or replaces) the observer called by the writer thread.
    pub fn set_observer(&self, observer: Arc<dyn WalObserver>) {
        *self.inner.shared.observer.write() = Some(observer);
    }

    /// Writes and fsyncs everything queued so far, then stops the writer thread and releases the
    /// directory lock. Blocks until done; idempotent. Later appends fail with [`WalError::Closed`].
    pub fn close(&self) {
        self.inner.close();
    }
}

fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes an exclusive `flock` on `dir/LOCK`; fails if another open WAL holds it.
fn lock_dir(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))?;
    // SAFETY: flock on a valid, owned file descriptor.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "wal directory {} is already open (LOCK held)",
                    dir.display()
                ),
            ));
        }
        return Err(err);
    }
    Ok(file)
}
