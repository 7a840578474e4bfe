//! Token filters over log lines: per row group, a small bloom filter of winnowed 8-byte grams of
//! the lines' long word runs, so a query for a rare substring (a trace id, a request id, a pod
//! name) skips the row groups whose lines cannot contain it.
//!
//! Why it never gives a false negative: a *word run* is a maximal run of word bytes
//! (`[A-Za-z0-9_-]`). Take a needle and one of its word runs of at least [`MIN_RUN`] bytes. If a
//! line contains the needle, it contains that run as a contiguous piece of word bytes, so the run
//! sits inside one of the line's word runs. Every window of [`WINDOW`] consecutive grams lying
//! inside the needle's run is then also a window of the line's run, and winnowing picks the
//! *smallest gram hash* of a window, a value that depends only on the window's grams. So each
//! hash the needle selects was also selected, and inserted, for the line. A row group is skipped
//! only when one of those hashes is missing from its filter.
//!
//! Why winnowing: indexing every 8-gram would insert one item per word byte; winnowing keeps
//! about 2/(WINDOW+1) of them while still guaranteeing one selected gram per window, so the
//! filter stays a few percent of the row group's compressed size. A needle of 32 hex characters
//! (a trace id) selects about five grams, and all of them must hit, so even a filter with a
//! 15 % false-positive rate per gram wrongly keeps a row group about once in 10,000.

/// Bytes per gram.
pub const GRAM: usize = 8;
/// Grams per winnowing window.
pub const WINDOW: usize = 8;
/// The shortest word run that holds one whole window, hence the shortest indexed run and the
/// shortest needle piece that can prune.
pub const MIN_RUN: usize = GRAM + WINDOW - 1;
/// Filter bits per distinct selected gram. With two bits set per item inside one 64-bit word,
/// 4 bits per item gives about 16 % false positives per gram.
pub const BITS_PER_ITEM: usize = 4;
/// Scheme name stored with each segment; a reader that does not know it does not prune.
pub const SCHEME: &str = "w8g8k2-v1";

/// Word bytes: what a run is made of. Dashes and underscores are included so UUIDs, pod names
/// and snake_case identifiers form one long run instead of several short ones.
const fn word_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        i += 1;
    }
    t
}
static WORD: [bool; 256] = word_table();

/// The murmur3 finaliser: a cheap, well-mixing bijection on 64 bits.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[inline]
fn gram_hash(g: &[u8]) -> u64 {
    fmix64(u64::from_le_bytes(
        g[..GRAM].try_into().expect("8-byte gram"),
    ))
}

/// Calls `f` with the hashes winnowing selects in one word run (`run.len() >= MIN_RUN`).
/// Consecutive windows usually share their minimum; it is reported once.
fn winnow_run(run: &[u8], f: &mut impl FnMut(u64)) {
    let grams = run.len() + 1 - GRAM;
    let mut ring = [0u64; WINDOW];
    for (i, r) in ring.iter_mut().enumerate() {
        *r = gram_hash(&run[i..]);
    }
    let mut last = ring.iter().copied().min().expect("non-empty window");
    f(last);
    for i in WINDOW..grams {
        ring[i % WINDOW] = gram_hash(&run[i..]);
        let m = ring.iter().copied().min().expect("non-empty window");
        if m != last {
            f(m);
            last = m;
        }
    }
}

/// Calls `f` with every selected gram hash of `text` (a line or a needle).
pub fn for_each_selected(text: &[u8], mut f: impl FnMut(u64)) {
    let mut i = 0;
    let n = text.len();
    while i < n {
        if !WORD[text[i] as usize] {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && WORD[text[i] as usize] {
            i += 1;
        }
        if i - start >= MIN_RUN {
            winnow_run(&text[start..i], &mut f);
        }
    }
}

/// Where an item lands in a filter of `words` 64-bit words: the word, and the two bits it sets.
/// Winnowing picks small hashes, so the item is rehashed before it chooses its word.
#[inline]
fn locate(item: u64, words: usize) -> (usize, u64) {
    let h = fmix64(item ^ 0x9e37_79b9_7f4a_7c15);
    let word = ((h as u128 * words as u128) >> 64) as usize;
    let mask = (1u64 << (h & 63)) | (1u64 << ((h >> 6) & 63));
    (word, mask)
}

/// Collects the selected grams of a row group's lines and turns them into a filter.
#[derive(Default)]
pub struct FilterBuilder {
    items: Vec<u64>,
}

impl FilterBuilder {
    /// An empty builder.
    pub fn new() -> FilterBuilder {
        FilterBuilder::default()
    }

    /// Adds one line's grams.
    pub fn add_line(&mut self, line: &[u8]) {
        for_each_selected(line, |h| self.items.push(h));
    }

    /// The filter as little-endian 64-bit words, sized for the distinct grams seen (empty when
    /// no line had a long word run: such a filter cannot prune). Clears the builder.
    pub fn finish(&mut self) -> Vec<u8> {
        self.items.sort_unstable();
        self.items.dedup();
        if self.items.is_empty() {
            return Vec::new();
        }
        let words = (self.items.len() * BITS_PER_ITEM).div_ceil(64);
        let mut bits = vec![0u64; words];
        for item in self.items.drain(..) {
            let (w, m) = locate(item, words);
            bits[w] |= m;
        }
        bits.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

/// The grams a set of required substrings selects: what a filter must hold for a row group to
/// possibly contain every one of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    items: Vec<u64>,
}

impl Probe {
    /// The probe of `needles` (all required). Empty when no needle has a word run of at least
    /// [`MIN_RUN`] bytes.
    pub fn new<'a>(needles: impl IntoIterator<Item = &'a [u8]>) -> Probe {
        let mut items = Vec::new();
        for n in needles {
            for_each_selected(n, |h| items.push(h));
        }
        items.sort_unstable();
        items.dedup();
        Probe { items }
    }

    /// Whether this probe can rule anything out.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The words to read from a filter of `words` words and the bits each must have, sorted by
    /// word and merged, so a caller reads each word once.
    fn plan(&self, words: usize) -> Vec<(usize, u64)> {
        let mut v: Vec<(usize, u64)> = self.items.iter().map(|i| locate(*i, words)).collect();
        v.sort_unstable_by_key(|x| x.0);
        let mut out: Vec<(usize, u64)> = Vec::with_capacity(v.len());
        for (w, m) in v {
            match out.last_mut() {
                Some(last) if last.0 == w => last.1 |= m,
                _ => out.push((w, m)),
            }
        }
        out
    }

    /// Whether the filter `bytes` (from [`FilterBuilder::finish`]) may hold every gram. An empty
    /// filter holds anything.
    pub fn may_match(&self, bytes: &[u8]) -> bool {
        let word = |w: usize| {
            Ok::<_, std::convert::Infallible>(u64::from_le_bytes(
                bytes[w * 8..w * 8 + 8].try_into().expect("8 bytes"),
            ))
        };
        let Ok(may) = self.may_match_words(bytes.len() / 8, word);
        may
    }

    /// Whether a filter of `words` 64-bit words may hold every gram, reading (through `word`, by
    /// index) only the words the probe needs, each once. An empty filter or probe holds anything.
    pub fn may_match_words<E>(
        &self,
        words: usize,
        mut word: impl FnMut(usize) -> Result<u64, E>,
    ) -> Result<bool, E> {
        if words == 0 {
            return Ok(true);
        }
        for (w, mask) in self.plan(words) {
            if word(w)? & mask != mask {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (splitmix64), so the property test is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            fmix64(self.0)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn hex(rng: &mut Rng, n: usize) -> String {
        (0..n)
            .map(|_| b"0123456789abcdef"[rng.below(16)] as char)
            .collect()
    }

    fn line(rng: &mut Rng) -> String {
        let words = [
            "GET",
            "user",
            "order",
            "timeout",
            "db",
            "retrying",
            "ok",
            "level=info",
        ];
        let mut s = String::new();
        for _ in 0..(5 + rng.below(20)) {
            match rng.below(6) {
                0 => s.push_str(&format!("trace_id={}", hex(rng, 32))),
                1 => {
                    let n = 4 + rng.below(20);
                    s.push_str(&format!("req-{}-{}", hex(rng, 8), hex(rng, n)));
                }
                2 => {
                    let n = rng.below(40);
                    s.push_str(&format!("{{\"k\":\"{}\"}}", hex(rng, n)));
                }
                _ => s.push_str(words[rng.below(words.len())]),
            }
            s.push(if rng.below(3) == 0 { ',' } else { ' ' });
        }
        s
    }

    #[test]
    fn selected_grams_of_a_window_are_its_minimum() {
        let run = b"abcdefghijklmno"; // exactly one window
        let mut got = Vec::new();
        for_each_selected(run, |h| got.push(h));
        let want = (0..WINDOW).map(|i| gram_hash(&run[i..])).min().unwrap();
        assert_eq!(got, vec![want]);
        let mut none = Vec::new();
        for_each_selected(b"abcdefghijklmn short-run x", |h| none.push(h));
        assert!(none.is_empty(), "runs under 15 bytes select nothing");
    }

    #[test]
    fn needles_cut_from_indexed_lines_always_match() {
        let mut rng = Rng(42);
        for _group in 0..40 {
            let lines: Vec<String> = (0..200).map(|_| line(&mut rng)).collect();
            let mut b = FilterBuilder::new();
            for l in &lines {
                b.add_line(l.as_bytes());
            }
            let filter = b.finish();
            for _ in 0..200 {
                let l = lines[rng.below(lines.len())].as_bytes();
                let start = rng.below(l.len());
                let len = 1 + rng.below(l.len() - start);
                let needle = &l[start..start + len];
                let probe = Probe::new([needle]);
                assert!(
                    probe.may_match(&filter),
                    "false negative for {:?}",
                    String::from_utf8_lossy(needle)
                );
                // Several needles from the same group are required together.
                let other = lines[rng.below(lines.len())].as_bytes();
                assert!(Probe::new([needle, other]).may_match(&filter));
            }
        }
    }

    #[test]
    fn absent_needles_are_pruned() {
        let mut rng = Rng(7);
        let lines: Vec<String> = (0..2000).map(|_| line(&mut rng)).collect();
        let mut b = FilterBuilder::new();
        for l in &lines {
            b.add_line(l.as_bytes());
        }
        let filter = b.finish();
        let mut kept = 0;
        for _ in 0..1000 {
            let id = hex(&mut rng, 32);
            let probe = Probe::new([id.as_bytes()]);
            assert!(!probe.is_empty());
            if probe.may_match(&filter) {
                kept += 1;
            }
        }
        // About five grams at ~16 % each: a handful of false positives in a thousand at most.
        assert!(
            kept <= 10,
            "{kept} of 1000 absent trace ids were not pruned"
        );
        // A needle without a long word run cannot prune.
        assert!(Probe::new([&b"order timeout"[..]]).is_empty());
        assert!(Probe::new([&b"order timeout"[..]]).may_match(&filter));
    }

    #[test]
    fn empty_filter_prunes_nothing() {
        let mut b = FilterBuilder::new();
        b.add_line(b"short words only");
        let f = b.finish();
        assert!(f.is_empty());
        assert!(Probe::new([&b"6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"[..]]).may_match(&f));
    }
}
