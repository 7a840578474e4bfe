//! The scan kernel: which rows of a decoded batch pass a line test, found without copying a line.
//!
//! When the query names a substring every wanted line contains, the kernel searches the batch's
//! whole line buffer for it at once (Arrow keeps a column's strings back to back), so the lines
//! without it are never visited one by one; only the lines holding it meet the full test.

use arrow::array::{Array, BooleanArray, StringArray};
use memchr::memmem::Finder;

/// The test a row's line must pass.
pub struct LineTest<'a> {
    /// A substring every kept line contains (the longest of the required ones).
    required: Option<Finder<'a>>,
    /// The full test.
    keep: &'a (dyn Fn(&str) -> bool + Sync),
}

impl<'a> LineTest<'a> {
    /// A test that first looks for the longest non-empty `required` substring, then runs `keep`.
    pub fn new(required: &'a [Vec<u8>], keep: &'a (dyn Fn(&str) -> bool + Sync)) -> LineTest<'a> {
        let longest = required
            .iter()
            .filter(|r| !r.is_empty())
            .max_by_key(|r| r.len());
        LineTest {
            required: longest.map(|r| Finder::new(r.as_slice())),
            keep,
        }
    }
}

/// What a kernel call looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Rows tested.
    pub rows: u64,
    /// Line bytes tested.
    pub bytes: u64,
}

/// Appends to `out` the indices of the rows of `lines` that `rows` selects (all when `None`) and
/// whose line passes `test`.
pub fn matching_rows(
    lines: &StringArray,
    rows: Option<&BooleanArray>,
    test: &LineTest<'_>,
    out: &mut Vec<u32>,
) -> Scanned {
    let offsets = lines.value_offsets();
    let n = lines.len();
    let selected = |i: usize| rows.is_none_or(|m| m.value(i));
    let mut scanned = Scanned::default();
    match rows {
        None => {
            scanned.rows = n as u64;
            scanned.bytes = (offsets[n] - offsets[0]) as u64;
        }
        Some(m) => {
            for i in 0..n {
                if m.value(i) {
                    scanned.rows += 1;
                    scanned.bytes += (offsets[i + 1] - offsets[i]) as u64;
                }
            }
        }
    }
    let Some(finder) = &test.required else {
        for i in 0..n {
            if selected(i) && (test.keep)(lines.value(i)) {
                out.push(i as u32);
            }
        }
        return scanned;
    };
    let data = lines.value_data();
    let end = offsets[n] as usize;
    let len = finder.needle().len();
    let mut pos = offsets[0] as usize;
    let mut row = 0usize;
    while pos < end {
        let Some(hit) = finder.find(&data[pos..end]) else {
            break;
        };
        let at = pos + hit;
        // The row whose line starts at or before the hit (rows ahead of `row` only).
        row += offsets[row + 1..=n].partition_point(|o| (*o as usize) <= at);
        let line_end = offsets[row + 1] as usize;
        // A hit straddling two lines is no match; either way the search goes on at the next line.
        if at + len <= line_end && selected(row) && (test.keep)(lines.value(row)) {
            out.push(row as u32);
        }
        pos = line_end;
        row += 1;
    }
    scanned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        lines: &[&str],
        mask: Option<Vec<bool>>,
        required: &[&str],
        keep: &(dyn Fn(&str) -> bool + Sync),
    ) -> Vec<u32> {
        let arr = StringArray::from(lines.to_vec());
        let req: Vec<Vec<u8>> = required.iter().map(|s| s.as_bytes().to_vec()).collect();
        let mask = mask.map(BooleanArray::from);
        let test = LineTest::new(&req, keep);
        let mut out = Vec::new();
        matching_rows(&arr, mask.as_ref(), &test, &mut out);
        out
    }

    #[test]
    fn finds_the_lines_holding_the_needle_and_passing_the_test() {
        let lines = [
            "abc",
            "xneedle",
            "needle y",
            "nee",
            "dle",
            "",
            "no",
            "needleneedle",
        ];
        let all = |_: &str| true;
        // A needle split across two lines ("nee" + "dle") is not a match.
        assert_eq!(run(&lines, None, &["needle"], &all), vec![1, 2, 7]);
        assert_eq!(
            run(&lines, None, &["eedl", "x"], &|l: &str| l.contains('x')),
            vec![1]
        );
        let mask = vec![true, false, true, true, true, true, true, true];
        assert_eq!(run(&lines, Some(mask), &["needle"], &all), vec![2, 7]);
        // Without a required substring every selected row meets the test.
        assert_eq!(
            run(&lines, None, &[], &|l: &str| l.len() == 3),
            vec![0, 3, 4]
        );
        assert_eq!(run(&lines, None, &[""], &|l: &str| l.is_empty()), vec![5]);
    }

    #[test]
    fn counts_what_it_scanned() {
        let arr = StringArray::from(vec!["ab", "cde", "f"]);
        let keep = |_: &str| true;
        let test = LineTest::new(&[], &keep);
        let mut out = Vec::new();
        let s = matching_rows(
            &arr,
            Some(&BooleanArray::from(vec![true, false, true])),
            &test,
            &mut out,
        );
        assert_eq!(s, Scanned { rows: 2, bytes: 3 });
        assert_eq!(out, vec![0, 2]);
        let sliced = arr.slice(1, 2);
        out.clear();
        let s = matching_rows(&sliced, None, &test, &mut out);
        assert_eq!(s, Scanned { rows: 2, bytes: 4 });
        assert_eq!(out, vec![0, 1]);
    }
}
