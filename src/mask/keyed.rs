//! Looking for the forms of many values at once ([`Keyed`]).
//!
//! Compiled searchers hold every form and more: Teddy groups of 128 forms, a trie of all
//! of them, every 6-byte substring; for 1,000 values that was 9 MB of heap, and Teddy
//! reads the text once per group. Here a value has one 16-byte entry per distinct start of
//! its forms (about four) in sorted tables, and 24 bits of a [`Bloom`] table per entry.
//! The text is read once: at each position its next [`MIN_LEN`] bytes are looked up in
//! the bloom table, and on a hit in the tables; the forms of a value found there are made
//! again from it to compare.

use zeroize::Zeroizing;

use super::forms::forms;
use super::skip::Bloom;
use super::{MIN_LEN, Starts};
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

/// Forms this long or longer are sorted by their first [`MIN_LEN`] bytes and a hash of the
/// next [`HASHED`] - [`MIN_LEN`]: values of one kind often share far more than 12 bytes
/// (`github_pat_11`, a JWT's header, `-----BEGIN PRIVATE KEY-----`), and every value a
/// found key could belong to has its forms made again to compare.
const HASHED: usize = 64;

/// The sort key of a form of at least [`HASHED`] bytes: its first [`MIN_LEN`] bytes, then a
/// 32-bit hash of the bytes up to [`HASHED`], as [`bound`] takes them.
fn hashed_key(form: &[u8]) -> [u8; SORTED] {
    let mut hash = 0u64;
    for word in form[MIN_LEN..HASHED].chunks(8) {
        let mut bytes = [0u8; 8];
        bytes[..word.len()].copy_from_slice(word);
        hash = (hash ^ u64::from_le_bytes(bytes)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        hash ^= hash >> 29;
    }
    let mut key = [0u8; SORTED];
    key[..MIN_LEN].copy_from_slice(&form[..MIN_LEN]);
    key[MIN_LEN..].copy_from_slice(&(hash as u32).to_be_bytes());
    key
}

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

/// Entries (see [`bound`]) and values are kept in pieces of at most this many bytes:
/// below glibc's threshold for giving a block its own mapping, so that they are made in
/// room the heap already has (`exec` makes the table just after the standard library has
/// freed 2.6 MB of copies of the environment) rather than in fresh pages.
/// (Small in tests, so that they cover many pieces.)
const PIECE: usize = if cfg!(test) { 1024 } else { 64 * 1024 };
const PIECE_ENTRIES: usize = PIECE / 16;

/// Entries (see [`bound`]) in pieces, each sorted.
#[derive(Default)]
struct Table(Vec<Zeroizing<Vec<u128>>>);

impl Table {
    fn push(&mut self, entry: u128) {
        match self.0.last_mut() {
            Some(piece) if piece.len() < PIECE_ENTRIES => piece.push(entry),
            _ => {
                let mut piece = Zeroizing::new(Vec::with_capacity(PIECE_ENTRIES));
                piece.push(entry);
                self.0.push(piece);
            }
        }
    }

    fn sort(&mut self) {
        for piece in &mut self.0 {
            piece.shrink_to_fit();
            piece.sort_unstable();
        }
    }

    fn len(&self) -> usize {
        self.0.iter().map(|piece| piece.len()).sum()
    }

    fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        self.0.iter().flat_map(|piece| piece.iter().copied())
    }

    /// The entries that start with `prefix`, a piece at a time.
    fn starting<'t>(&'t self, prefix: &[u8]) -> impl Iterator<Item = u128> + use<'t> {
        let (low, high) = (bound(prefix, 0), bound(prefix, 0xff));
        self.0.iter().flat_map(move |piece| {
            let start = piece.partition_point(|&e| e < low);
            let rest = &piece[start..];
            rest[..rest.partition_point(|&e| e <= high)].iter().copied()
        })
    }
}

/// Byte strings one after the other, in pieces of about [`PIECE`] bytes (one longer than
/// that has a piece of its own).
#[derive(Default)]
struct Pieces {
    pieces: Vec<Zeroizing<Vec<u8>>>,
    /// Each string's piece, start and end.
    spans: Vec<(u32, u32, u32)>,
}

impl Pieces {
    fn push(&mut self, bytes: &[u8]) -> Option<()> {
        let fits = self
            .pieces
            .last()
            .is_some_and(|piece| piece.len() + bytes.len() <= piece.capacity());
        if !fits {
            let piece = Vec::with_capacity(PIECE.max(bytes.len()));
            self.pieces.push(Zeroizing::new(piece));
        }
        let index = self.pieces.len() - 1;
        let piece = &mut self.pieces[index];
        let start = piece.len();
        piece.extend_from_slice(bytes);
        let span = (
            u32::try_from(index).ok()?,
            u32::try_from(start).ok()?,
            u32::try_from(piece.len()).ok()?,
        );
        self.spans.push(span);
        Some(())
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        let (piece, start, end) = self.spans[index];
        &self.pieces[piece as usize][start as usize..end as usize]
    }
}

/// Every form of every value, by its first bytes.
pub(super) struct Keyed {
    values: Pieces,
    /// The forms of [`SORTED`] to [`HASHED`] bytes, by their first [`SORTED`].
    long: Table,
    /// The longer forms, by [`hashed_key`].
    longer: Table,
    /// The shorter forms, by their first [`MIN_LEN`] bytes.
    short: Table,
    /// Every form's first [`MIN_LEN`] bytes.
    bloom: Bloom,
}

/// Collects the values for a [`Keyed`]; [`Builder::build`] makes its table. `exec`
/// starts the program in between, when holding the table too would add to the peak.
#[derive(Default)]
pub(super) struct Builder {
    values: Pieces,
}

impl Builder {
    /// Add the next value (at least [`MIN_LEN`] bytes).
    pub(super) fn add(&mut self, value: &[u8]) -> Result<()> {
        let fits = u32::try_from(self.values.len()).is_ok();
        fits.then(|| self.values.push(value))
            .flatten()
            .ok_or_else(|| {
                Error::io(
                    "cannot compile the values to look for",
                    std::io::Error::other("too many values"),
                )
            })
    }

    pub(super) fn shrink_to_fit(&mut self) {
        self.values.spans.shrink_to_fit();
        if let Some(last) = self.values.pieces.last_mut() {
            last.shrink_to_fit();
        }
    }

    /// The search, and what the forms start with.
    pub(super) fn build(self) -> (Keyed, Starts) {
        let mut tables: [Table; 3] = Default::default();
        let mut starts = Starts::default();
        // One entry per distinct sort key of the value's forms, and its table.
        let mut entries: Zeroizing<Vec<u128>> = Zeroizing::new(Vec::new());
        let mut places: Vec<usize> = Vec::new();
        for index in 0..self.values.len() {
            let forms = forms(self.values.get(index));
            entries.clear();
            places.clear();
            for form in &forms {
                starts.note(form);
                let (place, key) = if form.len() >= HASHED {
                    (LONGER, bound(&hashed_key(form), 0))
                } else if form.len() >= SORTED {
                    (LONG, bound(&form[..SORTED], 0))
                } else {
                    (SHORT, bound(&form[..MIN_LEN], 0))
                };
                // `add` made sure the index fits in 32 bits.
                let entry = key | index as u128;
                if !entries.contains(&entry) {
                    entries.push(entry);
                    places.push(place);
                }
            }
            for (&entry, &place) in entries.iter().zip(&places) {
                tables[place].push(entry);
            }
        }
        for table in &mut tables {
            table.sort();
        }
        let bloom = Bloom::new(
            tables.iter().map(Table::len).sum(),
            tables
                .iter()
                .flat_map(Table::iter)
                .map(|e| (e >> 64) as u64),
        );
        let [short, long, longer] = tables;
        let keyed = Keyed {
            values: self.values,
            long,
            longer,
            short,
            bloom,
        };
        (keyed, starts)
    }
}

/// How many entries [`Keyed::extends`] compares before it holds a tail without knowing:
/// bytes held that need not be only wait for the next piece (or, at most, until [`HASHED`]
/// bytes have come), while a tail let go too early could be the start of a value.
const EXTENDS_MAX: usize = 256;

/// Which of [`Builder::build`]'s tables a form goes in.
const SHORT: usize = 0;
const LONG: usize = 1;
const LONGER: usize = 2;

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
        self.values.get(index)
    }

    /// The short forms whose first [`MIN_LEN`] bytes are those of `bytes`.
    fn short_like<'k>(&'k self, bytes: &[u8]) -> impl Iterator<Item = u128> + use<'k> {
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
            .into_iter()
            .flat_map(|first| self.long.starting(first));
        let longer = (rest.len() >= HASHED)
            .then(|| self.longer.starting(&hashed_key(rest)))
            .into_iter()
            .flatten();
        let mut best: Option<(usize, usize)> = None;
        for entry in self.short_like(rest).chain(long).chain(longer) {
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
        if tail.len() < MIN_LEN {
            // Every form is longer than `tail`: does one start with it?
            return [&self.short, &self.long, &self.longer]
                .iter()
                .any(|table| table.starting(tail).next().is_some());
        }
        if !self.bloom.may_hold(key_of(tail)) {
            return false;
        }
        if tail.len() < SORTED && self.long.starting(tail).next().is_some() {
            return true;
        }
        let long = (tail.len() >= SORTED)
            .then(|| self.long.starting(&tail[..SORTED]))
            .into_iter()
            .flatten();
        // A tail shorter than the hashed bytes can be the start of any longer form with
        // its first bytes: each is made again to compare (only at the end of a piece).
        let longer = if tail.len() >= HASHED {
            self.longer.starting(&hashed_key(tail))
        } else {
            self.longer.starting(&tail[..MIN_LEN])
        };
        let mut made = Made::default();
        let candidates = self.short_like(tail).chain(long).chain(longer);
        for (looked, entry) in candidates.enumerate() {
            if looked == EXTENDS_MAX {
                // Many values start like this (a thousand `github_pat_11` tokens): hold the
                // tail rather than make them all again at the end of every piece.
                return true;
            }
            let (forms, _) = made.forms(self, entry);
            if forms
                .iter()
                .any(|form| form.len() > tail.len() && form.starts_with(tail))
            {
                return true;
            }
        }
        false
    }
}
