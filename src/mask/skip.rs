//! A quick test that no form lies wholly in a buffer ([`Skip`]), and the bit table it (and
//! the keyed search) look words up in first ([`Bloom`]).

use zeroize::Zeroizing;

/// Length of the substrings [`Skip`] looks up.
const GRAM: usize = 6;
/// Below this distance between looked-up positions, [`Skip`] saves too little over Teddy.
const SKIP_MIN_STEP: usize = 8;

/// A test that no form lies wholly in a buffer, looking at one position in `step`.
///
/// A form of `len >= shortest` bytes that occurs at `s` covers the positions `s ..= s + len
/// - GRAM` as starts of its `GRAM`-byte substrings: `shortest - GRAM + 1` positions in a
/// row, so one of them is a multiple of `step` (that many). Looking up the substring at
/// every multiple of `step` in the set of all forms' substrings therefore finds at least
/// one for every occurrence; when none is found, no form is in the buffer and the full
/// search is not needed. With forms of 40 bytes that is one lookup (a bit in a bloom
/// table, 8 KiB for one value, then a sorted list on a hit) per 35 bytes, against Teddy's
/// work on every byte. Forms shorter than `GRAM + SKIP_MIN_STEP - 1` bytes turn it off.
pub(super) struct Skip {
    pub(super) step: usize,
    bloom: Bloom,
    /// The substrings, sorted: a hit in `bloom` is confirmed here.
    grams: Zeroizing<Vec<u64>>,
}

fn gram(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..GRAM].copy_from_slice(&bytes[..GRAM]);
    u64::from_le_bytes(word)
}

impl Skip {
    pub(super) fn new(patterns: &[Zeroizing<Vec<u8>>]) -> Option<Skip> {
        let shortest = patterns.iter().map(|p| p.len()).min()?;
        let step = (shortest + 1).checked_sub(GRAM)?;
        if step < SKIP_MIN_STEP {
            return None;
        }
        let mut grams = Zeroizing::new(Vec::new());
        for pattern in patterns {
            grams.extend(pattern.windows(GRAM).map(gram));
        }
        grams.sort_unstable();
        grams.dedup();
        Some(Skip {
            step,
            bloom: Bloom::new(grams.len(), grams.iter().copied()),
            grams,
        })
    }

    /// `false` when no form lies wholly in `buf`.
    pub(super) fn may_contain(&self, buf: &[u8]) -> bool {
        let mut at = 0;
        while at + GRAM <= buf.len() {
            let g = gram(&buf[at..]);
            if self.bloom.may_hold(g) && self.grams.binary_search(&g).is_ok() {
                return true;
            }
            at += self.step;
        }
        false
    }
}

/// A blocked bloom filter over a set of words: each word sets 3 bits of one 64-bit block,
/// so a lookup reads one block. 24 bits per word keep false hits near 0.2%: a hit goes on
/// to a search of the set itself, which costs far more than the lookup.
pub(super) struct Bloom {
    blocks: Zeroizing<Vec<u64>>,
}

/// Bits per word of the set.
const BITS_PER_WORD: usize = 24;
/// The smallest table, in blocks (8 KiB).
const MIN_BLOCKS: usize = 1024;

/// A multiplicative hash, its well-mixed high half folded into the low one (which alone
/// would depend only on the word's low bits).
fn hash(word: u64) -> u64 {
    let hash = word.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    hash ^ (hash >> 32)
}

impl Bloom {
    /// A table for `count` words (in any order, duplicates allowed).
    pub(super) fn new(count: usize, words: impl IntoIterator<Item = u64>) -> Bloom {
        let blocks = (count * BITS_PER_WORD / 64).max(MIN_BLOCKS);
        let mut bloom = Bloom {
            blocks: Zeroizing::new(vec![0u64; blocks]),
        };
        for word in words {
            let (block, bits) = bloom.place(word);
            bloom.blocks[block] |= bits;
        }
        bloom
    }

    /// The block a word goes in (from the hash's high 32 bits, scaled to the table's
    /// size) and its three bits there (from three 6-bit pieces of the low half).
    #[inline]
    fn place(&self, word: u64) -> (usize, u64) {
        let hash = hash(word);
        let block = ((hash >> 32) * self.blocks.len() as u64) >> 32;
        let bits = (1 << (hash & 63)) | (1 << ((hash >> 6) & 63)) | (1 << ((hash >> 12) & 63));
        (block as usize, bits)
    }

    /// `false` when `word` is not in the set; `true` when it may be.
    #[inline]
    pub(super) fn may_hold(&self, word: u64) -> bool {
        let (block, bits) = self.place(word);
        self.blocks[block] & bits == bits
    }
}
