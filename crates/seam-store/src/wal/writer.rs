//! The writer thread: group commit, segment rolling and the interval fsync timer.
//!
//! Appenders push requests onto a shared queue (one mutex, one condvar). The single writer
//! thread swaps the whole queue out, frames every record into one vectored write (small payloads
//! are copied into a staging buffer, large ones are referenced in place), issues one
//! `fdatasync` for the group under [`FsyncPolicy::Always`], then completes every waiter. Requests
//! that arrive while it is busy form the next group.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::oneshot;

use super::format::{
    segment_header, segment_path, sync_dir, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::{FsyncPolicy, WalError, WalObserver, WalPosition};

/// Payloads up to this size are copied into the staging buffer; larger ones get their own iovec.
const INLINE_PAYLOAD_MAX: usize = 4096;
/// Linux's IOV_MAX.
const MAX_IOVECS: usize = 1024;

pub(crate) type AppendReply = oneshot::Sender<Result<WalPosition, WalError>>;

pub(crate) enum Request {
    Append {
        header: [u8; RECORD_HEADER_LEN],
        payload: Bytes,
        reply: AppendReply,
    },
    Rotate(std::sync::mpsc::SyncSender<Result<u64, WalError>>),
}

#[derive(Default)]
pub(crate) struct Queue {
    pub(crate) requests: Vec<Request>,
    pub(crate) closed: bool,
    /// Set after a write or fsync error: the WAL refuses all further writes.
    pub(crate) failed: Option<String>,
}

/// State shared by the handles and the writer thread.
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) wake: Condvar,
    /// Id of the segment new appends go to.
    pub(crate) active_segment: AtomicU64,
    pub(crate) disk_bytes: AtomicU64,
    pub(crate) observer: RwLock<Option<Arc<dyn WalObserver>>>,
    pub(crate) trim_lock: Mutex<()>,
    #[cfg(test)]
    pub(crate) faults: Faults,
}

#[cfg(test)]
#[derive(Default)]
pub(crate) struct Faults {
    pub(crate) fail_next_sync: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Enqueues a request, or refuses it if the WAL is closed or failed.
    pub(crate) fn submit(&self, request: Request) -> Result<(), WalError> {
        let mut q = self.queue.lock();
        if q.closed {
            return Err(WalError::Closed);
        }
        if let Some(msg) = &q.failed {
            return Err(WalError::Failed(msg.clone()));
        }
        let was_empty = q.requests.is_empty();
        q.requests.push(request);
        drop(q);
        // The writer only sleeps while the queue is empty.
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    fn observer(&self) -> Option<Arc<dyn WalObserver>> {
        self.observer.read().clone()
    }
}

/// Creates segment `id` with its header, syncs it and the directory.
pub(crate) fn create_segment(dir: &Path, id: u64) -> io::Result<File> {
    let path = segment_path(dir, id);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    file.write_all(&segment_header())?;
    file.sync_data()?;
    sync_dir(dir)?;
    Ok(file)
}

/// One group's bytes: record framings and small payloads in `staging`, large payloads by reference.
#[derive(Default)]
struct Batch {
    staging: Vec<u8>,
    pieces: Vec<Piece>,
    staged_from: usize,
    len: u64,
}

enum Piece {
    Staged(usize, usize),
    Shared(Bytes),
}

impl Batch {
    fn push(&mut self, header: &[u8; RECORD_HEADER_LEN], payload: Bytes) {
        self.len += (RECORD_HEADER_LEN + payload.len()) as u64;
        self.staging.extend_from_slice(header);
        if payload.len() <= INLINE_PAYLOAD_MAX {
            self.staging.extend_from_slice(&payload);
        } else {
            self.pieces
                .push(Piece::Staged(self.staged_from, self.staging.len()));
            self.staged_from = self.staging.len();
            self.pieces.push(Piece::Shared(payload));
        }
    }

    fn write_to(&mut self, file: &mut File) -> io::Result<()> {
        if self.staged_from < self.staging.len() {
            self.pieces
                .push(Piece::Staged(self.staged_from, self.staging.len()));
        }
        let mut slices: Vec<IoSlice<'_>> = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Staged(a, b) => IoSlice::new(&self.staging[*a..*b]),
                Piece::Shared(b) => IoSlice::new(b),
            })
            .filter(|s| !s.is_empty())
            .collect();
        let result = write_all_vectored(file, &mut slices);
        drop(slices);
        self.clear();
        result
    }

    fn clear(&mut self) {
        self.staging.clear();
        self.pieces.clear();
        self.staged_from = 0;
        self.len = 0;
        if self.staging.capacity() > 16 << 20 {
            self.staging.shrink_to(1 << 20);
        }
    }
}

fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        let n = slices.len().min(MAX_IOVECS);
        match file.write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn clone_io_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

enum Wake {
    Requests,
    TimerSync,
    Exit,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    policy: FsyncPolicy,
    segment_bytes: u64,
    file: File,
    segment: u64,
    /// Bytes written to the active segment file, header included.
    size: u64,
    /// When the oldest written-but-not-fsynced byte was written.
    unsynced_since: Option<Instant>,
    batch: Batch,
    pending: Vec<(AppendReply, WalPosition)>,
    failed: Option<String>,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        policy: FsyncPolicy,
        segment_bytes: u64,
        file: File,
        segment: u64,
    ) -> Self {
        Writer {
            shared,
            policy,
            segment_bytes,
            file,
            segment,
            size: SEGMENT_HEADER_LEN,
            unsynced_since: None,
            batch: Batch::default(),
            pending: Vec::new(),
            failed: None,
        }
    }

    pub(crate) fn run(mut self) {
        let mut requests = Vec::new();
        loop {
            let wake = {
                let mut q = self.shared.queue.lock();
                loop {
                    if !q.requests.is_empty() {
                        std::mem::swap(&mut q.requests, &mut requests);
                        break Wake::Requests;
                    }
                    if q.closed {
                        break Wake::Exit;
                    }
                    match self.sync_deadline() {
                        Some(deadline) if Instant::now() >= deadline => break Wake::TimerSync,
                        Some(deadline) => {
                            self.shared.wake.wait_until(&mut q, deadline);
                        }
                        None => self.shared.wake.wait(&mut q),
                    }
                }
            };
            match wake {
                Wake::Requests => {
                    for request in requests.drain(..) {
                        self.handle(request);
                    }
                    self.commit_group();
                    if self.sync_deadline().is_some_and(|d| Instant::now() >= d) {
                        self.background_sync();
                    }
                }
                Wake::TimerSync => self.background_sync(),
                Wake::Exit => {
                    self.background_sync();
                    return;
                }
            }
        }
    }

    fn sync_deadline(&self) -> Option<Instant> {
        match (self.policy, self.unsynced_since, &self.failed) {
            (FsyncPolicy::Interval(every), Some(since), None) => Some(since + every),
            _ => None,
        }
    }

    fn handle(&mut self, request: Request) {
        if let Some(msg) = &self.failed {
            let err = WalError::Failed(msg.clone());
            match request {
                Request::Append { reply, .. } => drop(reply.send(Err(err))),
                Request::Rotate(reply) => drop(reply.send(Err(err))),
            }
            return;
        }
        match request {
            Request::Append {
                header,
                payload,
                reply,
            } => {
                let record_len = (RECORD_HEADER_LEN + payload.len()) as u64;
                let end = self.size + self.batch.len;
                if end > SEGMENT_HEADER_LEN && end + record_len > self.segment_bytes {
                    if let Err(e) = self.commit(true).and_then(|()| self.roll()) {
                        let _ = reply.send(Err(WalError::Io(clone_io_error(&e))));
                        self.fail(e, "rolling to a new segment");
                        return;
                    }
                }
                let position = WalPosition {
                    segment: self.segment,
                    offset: self.size + self.batch.len,
                };
                self.batch.push(&header, payload);
                self.pending.push((reply, position));
            }
            Request::Rotate(reply) => match self.commit(true).and_then(|()| self.roll()) {
                Ok(()) => drop(reply.send(Ok(self.segment))),
                Err(e) => {
                    let _ = reply.send(Err(WalError::Io(clone_io_error(&e))));
                    self.fail(e, "rotating");
                }
            },
        }
    }

    /// Writes and (per policy) syncs the group built from one drained queue.
    fn commit_group(&mut self) {
        if self.failed.is_some() || (self.pending.is_empty() && self.batch.len == 0) {
            return;
        }
        let sync = matches!(self.policy, FsyncPolicy::Always);
        if let Err(e) = self.commit(sync) {
            self.fail(e, "committing a group");
        }
    }

    /// Writes the batch, fsyncs if `sync` (and anything is unsynced), then acknowledges every
    /// pending append. On error nothing pending is acknowledged; the caller fails them.
    fn commit(&mut self, sync: bool) -> io::Result<()> {
        let records = self.pending.len() as u64;
        let bytes = self.batch.len;
        if bytes > 0 {
            self.batch.write_to(&mut self.file)?;
            self.size += bytes;
            self.shared.disk_bytes.fetch_add(bytes, Ordering::Relaxed);
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
        let mut fsync = None;
        if sync && self.unsynced_since.is_some() {
            fsync = Some(self.sync_data()?);
        }
        if let Some(observer) = self.shared.observer() {
            if records > 0 {
                observer.on_commit(records, bytes, fsync);
            } else if let Some(latency) = fsync {
                observer.on_fsync(latency);
            }
        }
        for (reply, position) in self.pending.drain(..) {
            let _ = reply.send(Ok(position));
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<Duration> {
        let start = Instant::now();
        #[cfg(test)]
        if self
            .shared
            .faults
            .fail_next_sync
            .swap(false, Ordering::SeqCst)
        {
            return Err(io::Error::other("injected fsync failure"));
        }
        self.file.sync_data()?;
        self.unsynced_since = None;
        Ok(start.elapsed())
    }

    /// Interval timer / shutdown: fsync whatever has been written but not synced.
    fn background_sync(&mut self) {
        if self.failed.is_some() || self.unsynced_since.is_none() {
            return;
        }
        match self.sync_data() {
            Ok(latency) => {
                if let Some(observer) = self.shared.observer() {
                    observer.on_fsync(latency);
                }
            }
            Err(e) => self.fail(e, "interval fsync"),
        }
    }

    /// Starts the next segment. The current one must already be committed and synced.
    fn roll(&mut self) -> io::Result<()> {
        debug_assert!(self.unsynced_since.is_none() && self.batch.len == 0);
        let next = self.segment + 1;
        let file = create_segment(&self.shared.dir, next)?;
        self.file = file;
        self.segment = next;
        self.size = SEGMENT_HEADER_LEN;
        self.shared
            .disk_bytes
            .fetch_add(SEGMENT_HEADER_LEN, Ordering::Relaxed);
        self.shared.active_segment.store(next, Ordering::Release);
        Ok(())
    }

    /// Poisons the WAL after a write/fsync error: fails every unacknowledged append and refuses
    /// all further writes (a failed fsync leaves the page cache state unknowable).
    fn fail(&mut self, e: io::Error, context: &str) {
        tracing::error!(
            segment = self.segment,
            error = %e,
            "wal: I/O error while {context}; refusing further appends"
        );
        let msg = format!("segment {}: {context}: {e}", self.segment);
        self.shared.queue.lock().failed = Some(msg.clone());
        self.failed = Some(msg);
        self.batch.clear();
        for (reply, _) in self.pending.drain(..) {
            let _ = reply.send(Err(WalError::Io(clone_io_error(&e))));
        }
    }
}
