//! The memory budget shared by ingest buffers and the head: work is refused before the process
//! grows past it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A byte budget. Cloning shares it.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: usize,
    used: AtomicUsize,
}

/// Bytes held against a budget; released on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: usize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes in use now.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Reserves `bytes` if they fit under the limit; `None` means the caller must refuse the work.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        let mut cur = self.inner.used.load(Ordering::Relaxed);
        loop {
            if cur.saturating_add(bytes) > self.inner.limit {
                return None;
            }
            match self.inner.used.compare_exchange_weak(
                cur,
                cur + bytes,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(Reservation {
                        budget: self.clone(),
                        bytes,
                    })
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Accounts bytes that are already held (data in the head after an ack): they may push the
    /// total over the limit, which then refuses new work until a flush releases them.
    pub fn charge(&self, bytes: usize) -> Reservation {
        self.inner.used.fetch_add(bytes, Ordering::AcqRel);
        Reservation {
            budget: self.clone(),
            bytes,
        }
    }
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget
            .inner
            .used
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_limit_and_releases_on_drop() {
        let b = MemoryBudget::new(100);
        let r = b.try_reserve(60).unwrap();
        assert!(b.try_reserve(50).is_none());
        drop(r);
        assert!(b.try_reserve(100).is_some());
        let c = b.charge(150);
        assert_eq!(b.used(), 150);
        assert!(b.try_reserve(1).is_none());
        drop(c);
        assert_eq!(b.used(), 0);
    }
}
