//! The key index: (tenant, key, value) -> the recent segments carrying it.
//!
//! It sits behind [`KeyIndex`] so a shared backend (Redis sorted sets with a TTL) can replace the
//! in-memory one. Entries are small and self-describing (trace id, time range, expiry), which is
//! what a remote store can hold per value.
//!
//! [`MemoryKeyIndex`] evicts through an [`ExpiryQueue`]: entries are filed under their expiry
//! rounded up to 100 ms, so eviction walks only what is due. An entry whose expiry moved later is
//! filed again and its old filing is skipped as stale when popped, so nothing is searched for.

use crate::fxhash::FxHashMap;
use seam_model::TraceId;
use std::collections::BTreeMap;
use xxhash_rust::xxh3::Xxh3;

/// One segment under one key value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The segment's trace id.
    pub trace_id: TraceId,
    /// The segment's earliest span start, nanoseconds.
    pub start_ns: i64,
    /// The segment's latest span end, nanoseconds.
    pub end_ns: i64,
    /// True when the segment carries the key under its canonical name.
    pub exact: bool,
    /// When the entry may be forgotten, nanoseconds on the arrival clock.
    pub expires_ns: i64,
}

/// Where the matcher finds the segments that share a key value.
pub trait KeyIndex {
    /// Adds or updates (by trace id) the entry for one segment under (tenant, key, value).
    fn insert(&mut self, tenant: &str, key: &str, value: &str, entry: IndexEntry);
    /// Appends the live entries under (tenant, key, value) to `out`.
    fn candidates(&self, tenant: &str, key: &str, value: &str, out: &mut Vec<IndexEntry>);
    /// Removes every entry whose `expires_ns` is at or before `now_ns`; returns how many.
    fn evict(&mut self, now_ns: i64) -> usize;
    /// How many distinct (tenant, key, value) triples hold entries.
    fn active_keys(&self) -> usize;
    /// Roughly the bytes the index holds in this process (0 when it lives elsewhere).
    fn approx_bytes(&self) -> usize {
        0
    }
}

/// Expiry times are filed at this granularity (rounded up, so nothing leaves early).
const QUANTUM_NS: i64 = 100_000_000;

/// Items filed by expiry time, popped in time order.
#[derive(Debug)]
pub struct ExpiryQueue<T> {
    slots: BTreeMap<i64, Vec<T>>,
    len: usize,
}

impl<T> Default for ExpiryQueue<T> {
    fn default() -> Self {
        ExpiryQueue {
            slots: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<T> ExpiryQueue<T> {
    /// The slot an expiry time is filed under.
    pub fn slot(expires_ns: i64) -> i64 {
        expires_ns.div_euclid(QUANTUM_NS).saturating_add(1) * QUANTUM_NS
    }

    /// Files `item` to come due at `expires_ns` (up to 100 ms later).
    pub fn push(&mut self, expires_ns: i64, item: T) {
        self.slots
            .entry(Self::slot(expires_ns))
            .or_default()
            .push(item);
        self.len += 1;
    }

    /// Removes and hands over every item filed at or before `now_ns`.
    pub fn pop_due(&mut self, now_ns: i64, mut f: impl FnMut(T)) {
        while let Some(entry) = self.slots.first_entry() {
            if *entry.key() > now_ns {
                break;
            }
            let items = entry.remove();
            self.len -= items.len();
            items.into_iter().for_each(&mut f);
        }
    }

    /// Items filed, including stale ones not yet popped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is filed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The earliest filing time, if any.
    pub fn next_due(&self) -> Option<i64> {
        self.slots.keys().next().copied()
    }
}

/// The entries of one (tenant, key, value). The names are kept (in one allocation) to tell
/// values apart whose 64-bit hashes collide; such rare neighbours live in `more`.
#[derive(Debug)]
struct Bucket {
    /// tenant, key and value, concatenated; `split` gives the first two lengths.
    text: Box<str>,
    split: (u32, u32),
    entries: Vec<IndexEntry>,
    more: Vec<Bucket>,
}

impl Bucket {
    fn new(tenant: &str, key: &str, value: &str) -> Bucket {
        let mut text = String::with_capacity(tenant.len() + key.len() + value.len());
        text.push_str(tenant);
        text.push_str(key);
        text.push_str(value);
        Bucket {
            text: text.into_boxed_str(),
            split: (tenant.len() as u32, key.len() as u32),
            entries: Vec::with_capacity(2),
            more: Vec::new(),
        }
    }

    fn is(&self, tenant: &str, key: &str, value: &str) -> bool {
        let (a, b) = (self.split.0 as usize, self.split.1 as usize);
        a == tenant.len()
            && b == key.len()
            && self.text.len() == a + b + value.len()
            && self.text.as_bytes().ends_with(value.as_bytes())
            && self.text.as_bytes()[..a] == *tenant.as_bytes()
            && self.text.as_bytes()[a..a + b] == *key.as_bytes()
    }

    /// This bucket or a colliding neighbour, if it holds (tenant, key, value).
    fn find(&self, tenant: &str, key: &str, value: &str) -> Option<&Bucket> {
        if self.is(tenant, key, value) {
            return Some(self);
        }
        self.more.iter().find(|b| b.is(tenant, key, value))
    }
}

/// The in-process [`KeyIndex`]: a hash map of buckets plus an expiry queue.
#[derive(Debug)]
pub struct MemoryKeyIndex {
    buckets: FxHashMap<u64, Bucket>,
    queue: ExpiryQueue<(u64, TraceId)>,
    active: usize,
    max_per_value: usize,
    /// xxh3 of the triple; replaceable so tests can force collisions.
    hasher: fn(&str, &str, &str) -> u64,
}

impl Default for MemoryKeyIndex {
    fn default() -> Self {
        MemoryKeyIndex::new(usize::MAX)
    }
}

impl MemoryKeyIndex {
    /// An empty index keeping at most `max_per_value` segments per key value (the oldest by end
    /// time go first), so a hot value cannot make lookups slow.
    pub fn new(max_per_value: usize) -> MemoryKeyIndex {
        MemoryKeyIndex {
            buckets: FxHashMap::default(),
            queue: ExpiryQueue::default(),
            active: 0,
            max_per_value: max_per_value.max(1),
            hasher: Self::hash,
        }
    }

    /// The number of entries over all values.
    pub fn entries(&self) -> usize {
        self.buckets
            .values()
            .flat_map(|b| std::iter::once(b).chain(&b.more))
            .map(|b| b.entries.len())
            .sum()
    }

    fn hash(tenant: &str, key: &str, value: &str) -> u64 {
        let mut h = Xxh3::new();
        for part in [tenant, key, value] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.digest()
    }
}

impl KeyIndex for MemoryKeyIndex {
    fn insert(&mut self, tenant: &str, key: &str, value: &str, entry: IndexEntry) {
        let h = (self.hasher)(tenant, key, value);
        let head = match self.buckets.entry(h) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                self.active += 1;
                v.insert(Bucket::new(tenant, key, value))
            }
        };
        let bucket = if head.is(tenant, key, value) {
            head
        } else if let Some(i) = head.more.iter().position(|b| b.is(tenant, key, value)) {
            &mut head.more[i]
        } else {
            self.active += 1;
            head.more.push(Bucket::new(tenant, key, value));
            head.more.last_mut().expect("just pushed")
        };
        match bucket
            .entries
            .iter_mut()
            .find(|e| e.trace_id == entry.trace_id)
        {
            Some(e) => {
                let refile = ExpiryQueue::<()>::slot(entry.expires_ns)
                    != ExpiryQueue::<()>::slot(e.expires_ns);
                *e = IndexEntry {
                    exact: e.exact || entry.exact,
                    ..entry
                };
                if refile {
                    self.queue.push(entry.expires_ns, (h, entry.trace_id));
                }
            }
            None => {
                if bucket.entries.len() >= self.max_per_value {
                    // The queue's filing for the dropped entry finds nothing later: harmless.
                    let oldest = (0..bucket.entries.len())
                        .min_by_key(|&i| bucket.entries[i].end_ns)
                        .expect("bucket is full");
                    bucket.entries.swap_remove(oldest);
                }
                bucket.entries.push(entry);
                self.queue.push(entry.expires_ns, (h, entry.trace_id));
            }
        }
    }

    fn candidates(&self, tenant: &str, key: &str, value: &str, out: &mut Vec<IndexEntry>) {
        if let Some(b) = self
            .buckets
            .get(&(self.hasher)(tenant, key, value))
            .and_then(|b| b.find(tenant, key, value))
        {
            out.extend_from_slice(&b.entries);
        }
    }

    fn evict(&mut self, now_ns: i64) -> usize {
        let mut removed = 0;
        let buckets = &mut self.buckets;
        let active = &mut self.active;
        self.queue.pop_due(now_ns, |(h, trace)| {
            let Some(head) = buckets.get_mut(&h) else {
                return;
            };
            // Only an entry that really is due: a refiled one stays for its later filing.
            let mut drop_due = |b: &mut Bucket| {
                if let Some(i) = b
                    .entries
                    .iter()
                    .position(|e| e.trace_id == trace && e.expires_ns <= now_ns)
                {
                    b.entries.swap_remove(i);
                    removed += 1;
                }
            };
            drop_due(head);
            head.more.iter_mut().for_each(&mut drop_due);
            let before = head.more.len();
            head.more.retain(|b| !b.entries.is_empty());
            *active -= before - head.more.len();
            if head.entries.is_empty() {
                *active -= 1;
                if head.more.is_empty() {
                    buckets.remove(&h);
                } else {
                    // A neighbour takes the head's place.
                    let mut next = head.more.remove(0);
                    next.more = std::mem::take(&mut head.more);
                    *head = next;
                }
            }
        });
        removed
    }

    fn active_keys(&self) -> usize {
        self.active
    }

    fn approx_bytes(&self) -> usize {
        // A bucket: its map slot, its names and a few entries; then the queue's filings.
        self.active
            * (std::mem::size_of::<Bucket>() + 16 + 48 + 2 * std::mem::size_of::<IndexEntry>())
            + self.queue.len() * 56
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(t: u8, start: i64, end: i64, expires: i64) -> IndexEntry {
        IndexEntry {
            trace_id: TraceId([t; 16]),
            start_ns: start,
            end_ns: end,
            exact: false,
            expires_ns: expires,
        }
    }

    fn cands(ix: &MemoryKeyIndex, tenant: &str, value: &str) -> Vec<u8> {
        let mut out = Vec::new();
        ix.candidates(tenant, "circuit_id", value, &mut out);
        let mut v: Vec<u8> = out.iter().map(|e| e.trace_id.0[0]).collect();
        v.sort();
        v
    }

    #[test]
    fn lookup_is_per_tenant_key_and_value_and_upserts_by_trace() {
        let mut ix = MemoryKeyIndex::default();
        ix.insert("a", "circuit_id", "c1", e(1, 0, 10, 1_000));
        ix.insert("a", "circuit_id", "c1", e(2, 0, 10, 1_000));
        ix.insert("b", "circuit_id", "c1", e(3, 0, 10, 1_000));
        ix.insert(
            "a",
            "circuit_id",
            "c1",
            IndexEntry {
                exact: true,
                ..e(1, 0, 20, 2_000)
            },
        );
        ix.insert("a", "circuit_id", "c1", e(1, 0, 20, 2_000));
        assert_eq!(cands(&ix, "a", "c1"), [1, 2]);
        assert_eq!(cands(&ix, "b", "c1"), [3]);
        assert_eq!(cands(&ix, "a", "c2"), Vec::<u8>::new());
        let mut out = Vec::new();
        ix.candidates("a", "circuit_id", "c1", &mut out);
        let one = out.iter().find(|x| x.trace_id.0[0] == 1).unwrap();
        assert_eq!((one.end_ns, one.exact), (20, true), "exact is sticky");
        assert_eq!(ix.active_keys(), 2);
    }

    #[test]
    fn eviction_removes_only_what_is_due_and_follows_refiling() {
        let mut ix = MemoryKeyIndex::default();
        ix.insert("t", "circuit_id", "c1", e(1, 0, 10, 1_000_000_000));
        ix.insert("t", "circuit_id", "c1", e(2, 0, 10, 3_000_000_000));
        ix.insert("t", "circuit_id", "c2", e(3, 0, 10, 1_000_000_000));
        // Trace 3 gets more spans: its expiry moves later.
        ix.insert("t", "circuit_id", "c2", e(3, 0, 10, 5_000_000_000));
        assert_eq!(ix.evict(999_999_999), 0);
        assert_eq!(ix.evict(1_100_000_000), 1);
        assert_eq!(cands(&ix, "t", "c1"), [2]);
        assert_eq!(cands(&ix, "t", "c2"), [3], "the stale filing is skipped");
        assert_eq!(ix.active_keys(), 2);
        assert_eq!(ix.evict(3_100_000_000), 1);
        assert_eq!(ix.active_keys(), 1);
        assert_eq!(ix.evict(10_000_000_000), 1);
        assert_eq!((ix.active_keys(), ix.entries()), (0, 0));
        assert!(ix.queue.is_empty());
        assert!(ix.buckets.is_empty());
    }

    #[test]
    fn colliding_hashes_keep_values_apart() {
        let mut ix = MemoryKeyIndex {
            hasher: |_, _, _| 7,
            ..MemoryKeyIndex::default()
        };
        ix.insert("t", "circuit_id", "c1", e(1, 0, 10, 100));
        ix.insert("t", "circuit_id", "c2", e(2, 0, 10, 5_000_000_000));
        ix.insert("t", "circuit_id", "c3", e(3, 0, 10, 100));
        ix.insert("u", "circuit_id", "c1", e(4, 0, 10, 5_000_000_000));
        assert_eq!(ix.active_keys(), 4);
        assert_eq!(cands(&ix, "t", "c1"), [1]);
        assert_eq!(cands(&ix, "t", "c2"), [2]);
        assert_eq!(cands(&ix, "u", "c1"), [4]);
        // The head (c1) and one neighbour (c3) go; c2 becomes the head.
        assert_eq!(ix.evict(1_000_000_000), 2);
        assert_eq!(ix.active_keys(), 2);
        assert_eq!(cands(&ix, "t", "c1"), Vec::<u8>::new());
        assert_eq!(cands(&ix, "t", "c2"), [2]);
        assert_eq!(cands(&ix, "u", "c1"), [4]);
        assert_eq!(ix.evict(6_000_000_000), 2);
        assert!(ix.buckets.is_empty());
    }

    #[test]
    fn a_hot_value_keeps_only_the_newest_segments() {
        let mut ix = MemoryKeyIndex::new(2);
        ix.insert("t", "circuit_id", "hot", e(1, 0, 10, 100));
        ix.insert("t", "circuit_id", "hot", e(2, 0, 30, 100));
        ix.insert("t", "circuit_id", "hot", e(3, 0, 20, 100));
        assert_eq!(cands(&ix, "t", "hot"), [2, 3]);
        assert_eq!(ix.evict(1_000_000_000), 2);
        assert_eq!(ix.active_keys(), 0);
    }

    #[test]
    fn expiry_slots_round_up() {
        assert_eq!(ExpiryQueue::<()>::slot(0), QUANTUM_NS);
        assert_eq!(ExpiryQueue::<()>::slot(QUANTUM_NS - 1), QUANTUM_NS);
        assert_eq!(ExpiryQueue::<()>::slot(QUANTUM_NS), 2 * QUANTUM_NS);
        let mut q = ExpiryQueue::default();
        q.push(250_000_000, 'b');
        q.push(50_000_000, 'a');
        let mut got = Vec::new();
        q.pop_due(200_000_000, |x| got.push(x));
        assert_eq!(got, ['a']);
        assert_eq!(q.next_due(), Some(300_000_000));
        q.pop_due(300_000_000, |x| got.push(x));
        assert_eq!(got, ['a', 'b']);
        assert!(q.is_empty());
    }
}
