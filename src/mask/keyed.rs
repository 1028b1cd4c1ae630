//! Looking for the forms of many values at once ([`Keyed`]).
//!
//! Compiled searchers hold every form and more: Teddy groups of 128 forms, a trie of all
//! of them, every 6-byte substring; for 1,000 values that was 9 MB of heap, and Teddy
//! reads the text once per group. Here each form is 12 bytes, its first [`MIN_LEN`] bytes
//! (every form has at least that many) and which form of which value it is, and 24 bits
//! of a [`Bloom`] table. The text is read once: at each position its next [`MIN_LEN`]
//! bytes are looked up (in the bloom table, then the sorted keys), and a form whose first
//! bytes are there is made again from its value to compare the rest.

use zeroize::Zeroizing;

use super::MIN_LEN;
use super::forms::forms;
use super::skip::Bloom;
use crate::error::{Error, Result};

/// The first [`MIN_LEN`] bytes of `bytes`, as the bloom table takes them.
fn key_of(bytes: &[u8]) -> u64 {
    let mut key = [0u8; MIN_LEN];
    key.copy_from_slice(&bytes[..MIN_LEN]);
    u64::from_be_bytes(key)
}

/// How many first bytes of a form sort it: forms that share their first [`MIN_LEN`]
/// (a thousand keys that all start `sk-proj-`) are told apart by the next four.
const SORTED: usize = MIN_LEN + 4;

/// `prefix` (at most [`SORTED`] bytes) big-endian in the high 96 bits and `fill` after
/// it, down to the last bit. An entry is `bound(first bytes, 0) | value index`: the
/// entries that start with `prefix` lie between `bound(prefix, 0)` and
/// `bound(prefix, 0xff)`. A value has one entry per distinct first bytes of its forms
/// (its base64 forms mostly share theirs, as do the value and its escaped forms).
fn bound(prefix: &[u8], fill: u8) -> u128 {
    let mut bytes = [fill; 16];
    bytes[..prefix.len()].copy_from_slice(prefix);
    u128::from_be_bytes(bytes)
}

/// Sorted entries (see [`bound`]).
#[derive(Default)]
struct Table(Zeroizing<Vec<u128>>);

impl Table {
    /// The entries that start with `prefix`.
    fn starting(&self, prefix: &[u8]) -> &[u128] {
        let (low, high) = (bound(prefix, 0), bound(prefix, 0xff));
        let start = self.0.partition_point(|&e| e < low);
        let rest = &self.0[start..];
        &rest[..rest.partition_point(|&e| e <= high)]
    }
}

/// Every form of every value, by its first bytes.
pub(super) struct Keyed {
    /// The values, one after the other.
    values: Zeroizing<Vec<u8>>,
    /// Where each value ends in `values`.
    ends: Vec<usize>,
    /// The forms of at least [`SORTED`] bytes, by their first [`SORTED`].
    long: Table,
    /// The shorter forms, by their first [`MIN_LEN`] bytes.
    short: Table,
    /// Every form's first [`MIN_LEN`] bytes.
    bloom: Bloom,
}

/// Collects the values for a [`Keyed`]; [`Builder::build`] makes its table. `exec`
/// starts the program in between, when holding the table too would add to the peak.
#[derive(Default)]
pub(super) struct Builder {
    values: Zeroizing<Vec<u8>>,
    ends: Vec<usize>,
}

/// What [`Builder::build`] makes: the search, and what [`super::Patterns`] needs to know of
/// the forms (the bytes one can start with, the longest one's length).
pub(super) struct Indexed {
    pub(super) keyed: Keyed,
    pub(super) first: [bool; 256],
    pub(super) longest: usize,
}

impl Builder {
    /// Room for about `values` values. A vector that grows by doubling leaves the room it
    /// outgrew behind; room that is reserved and not written is not memory used, and
    /// [`Builder::build`] gives back what is left in place.
    pub(super) fn with_room(values: usize) -> Builder {
        let values = values.min(1 << 20);
        let mut builder = Builder::default();
        builder.values.reserve(values * 64);
        builder.ends.reserve(values);
        builder
    }

    /// Add the next value (at least [`MIN_LEN`] bytes).
    pub(super) fn add(&mut self, value: &[u8]) -> Result<()> {
        if u32::try_from(self.ends.len()).is_err() {
            return Err(Error::io(
                "cannot compile the values to look for",
                std::io::Error::other("too many values"),
            ));
        }
        self.values.extend_from_slice(value);
        self.ends.push(self.values.len());
        Ok(())
    }

    pub(super) fn build(mut self) -> Indexed {
        self.values.shrink_to_fit();
        self.ends.shrink_to_fit();
        let (mut long, mut short) = (Table::default(), Table::default());
        // About four entries a value; what is not used is given back below, in place.
        long.0.reserve(self.ends.len() * 8);
        let mut first = [false; 256];
        let mut longest = 0;
        for index in 0..self.ends.len() {
            let forms = forms(value_of(&self.values, &self.ends, index));
            let (long_from, short_from) = (long.0.len(), short.0.len());
            for form in &forms {
                first[usize::from(form[0])] = true;
                longest = longest.max(form.len());
                let (table, from, start) = match form.get(..SORTED) {
                    Some(start) => (&mut long, long_from, start),
                    None => (&mut short, short_from, &form[..MIN_LEN]),
                };
                // `add` made sure the index fits in 32 bits.
                let entry = bound(start, 0) | index as u128;
                if !table.0[from..].contains(&entry) {
                    table.0.push(entry);
                }
            }
        }
        for table in [&mut long, &mut short] {
            table.0.shrink_to_fit();
            table.0.sort_unstable();
        }
        let bloom = Bloom::new(
            long.0.len() + short.0.len(),
            long.0
                .iter()
                .chain(short.0.iter())
                .map(|&e| (e >> 64) as u64),
        );
        Indexed {
            keyed: Keyed {
                values: self.values,
                ends: self.ends,
                long,
                short,
                bloom,
            },
            first,
            longest,
        }
    }
}

/// Value `index` of `values`, which end at `ends`.
fn value_of<'v>(values: &'v [u8], ends: &[usize], index: usize) -> &'v [u8] {
    let start = index.checked_sub(1).map_or(0, |before| ends[before]);
    &values[start..ends[index]]
}

/// The forms of the value last looked at, made once for all its entries.
#[derive(Default)]
struct Made {
    value: Option<usize>,
    forms: Vec<Zeroizing<Vec<u8>>>,
}

impl Made {
    /// The forms of the value an entry stands for, and its index.
    fn forms<'m>(&'m mut self, keyed: &Keyed, entry: u128) -> (&'m [Zeroizing<Vec<u8>>], usize) {
        let value = entry as u32 as usize;
        if self.value != Some(value) {
            self.forms = forms(keyed.value(value));
            self.value = Some(value);
        }
        (&self.forms, value)
    }
}

impl Keyed {
    fn value(&self, index: usize) -> &[u8] {
        value_of(&self.values, &self.ends, index)
    }

    /// The short forms whose first [`MIN_LEN`] bytes are those of `bytes`.
    fn short_like(&self, bytes: &[u8]) -> &[u128] {
        let mut first = [0u8; SORTED];
        first[..MIN_LEN].copy_from_slice(&bytes[..MIN_LEN]);
        self.short.starting(&first)
    }

    /// The leftmost-longest form in `haystack` that starts at or after `from`, as (start,
    /// end, value index). Of equal forms of several values, the first value's.
    pub(super) fn find(&self, haystack: &[u8], from: usize) -> Option<(usize, usize, usize)> {
        let last = haystack.len().checked_sub(MIN_LEN)?;
        let mut made = Made::default();
        // Every position is looked up: this loop is the search's cost (a bloom lookup a
        // byte), and what a hit costs is kept out of it.
        let mut start = from;
        if start > last {
            return None;
        }
        // The key of the next position is this one's shifted by a byte.
        let mut key = key_of(&haystack[start..]);
        loop {
            if self.bloom.may_hold(key)
                && let Some((end, value)) = self.longest_at(&haystack[start..], &mut made)
            {
                return Some((start, start + end, value));
            }
            start += 1;
            let next = haystack.get(start + MIN_LEN - 1)?;
            key = key << 8 | u64::from(*next);
        }
    }

    /// The longest form `rest` starts with, as (length, value index); of equal ones the
    /// first value's.
    #[inline(never)]
    fn longest_at(&self, rest: &[u8], made: &mut Made) -> Option<(usize, usize)> {
        let long = rest
            .get(..SORTED)
            .map_or(&[][..], |first| self.long.starting(first));
        let mut best: Option<(usize, usize)> = None;
        for &entry in self.short_like(rest).iter().chain(long) {
            let (forms, value) = made.forms(self, entry);
            for form in forms.iter().filter(|form| rest.starts_with(form)) {
                let better = best.is_none_or(|(len, first)| {
                    form.len() > len || (form.len() == len && value < first)
                });
                if better {
                    best = Some((form.len(), value));
                }
            }
        }
        best
    }

    /// Whether `tail` is a proper prefix of some form: more bytes could make it one.
    pub(super) fn extends(&self, tail: &[u8]) -> bool {
        let first = &tail[..tail.len().min(SORTED)];
        if tail.len() < SORTED && !self.long.starting(first).is_empty() {
            return true;
        }
        if tail.len() < MIN_LEN {
            // Every form is longer than `tail`.
            return !self.short.starting(tail).is_empty();
        }
        if !self.bloom.may_hold(key_of(tail)) {
            return false;
        }
        let long = if tail.len() < SORTED {
            &[][..]
        } else {
            self.long.starting(first)
        };
        let mut made = Made::default();
        self.short_like(tail).iter().chain(long).any(|&entry| {
            let (forms, _) = made.forms(self, entry);
            forms
                .iter()
                .any(|form| form.len() > tail.len() && form.starts_with(tail))
        })
    }
}
