//! Finding secret values in a stream of bytes: `exec --mask` replaces them in a program's
//! output, `scan` reports where they are in files.
//!
//! A value rarely leaks only as itself: it goes into an `Authorization: Basic` header
//! base64-encoded, into a URL percent-encoded, into a pty with its newlines turned into
//! CRLF. [`forms`] lists what is looked for; [`Patterns`] makes every form of every value
//! searchable (leftmost-longest, so the longest form at a place wins): compiled into SIMD
//! searchers when they are few, by their first bytes in sorted tables when they are many
//! ([`keyed`]); and
//! [`Redactor`] runs it over a stream that arrives in arbitrary pieces, holding back only
//! the bytes at the end of a piece that could still be the start of a value, so output is
//! passed on as soon as it cannot be part of one (a line-buffered program stays
//! line-timed) and a value written one byte at a time is still found.
//!
//! Values shorter than [`MIN_LEN`] bytes are not looked for: a short string turns up by
//! chance (GitLab refuses to mask variables under 8 characters for the same reason).

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Anchored, Input, MatchKind, Span, packed};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

mod forms;
mod keyed;
mod skip;

pub use forms::forms;
use keyed::Keyed;
use skip::Skip;

/// The shortest value that is looked for.
pub const MIN_LEN: usize = 8;

/// `text` with every form of every secret (see [`forms`]) blotted out as `<redacted>`, and
/// also any run of at least [`MIN_LEN`] bytes that starts one of those forms (a server
/// that truncates what it echoes still leaks most of a secret). Secrets shorter than
/// [`MIN_LEN`] but at least 4 bytes are blotted out as they are. For error text from
/// servers, which is short: this is not the streaming [`Redactor`].
pub fn redact(text: &str, secrets: &[&[u8]]) -> String {
    let bytes = text.as_bytes();
    let mut hidden = vec![false; bytes.len()];
    for secret in secrets {
        let mut all = forms(secret);
        if (4..MIN_LEN).contains(&secret.len()) {
            all.push(Zeroizing::new(secret.to_vec()));
        }
        for form in &all {
            let probe = &form[..form.len().min(MIN_LEN)];
            for start in memchr::memmem::find_iter(bytes, probe) {
                let mut end = start + probe.len();
                while end < bytes.len()
                    && end - start < form.len()
                    && bytes[end] == form[end - start]
                {
                    end += 1;
                }
                hidden[start..end].fill(true);
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for (i, c) in text.char_indices() {
        if hidden[i..i + c.len_utf8()].iter().any(|&h| h) {
            if !in_run {
                out.push_str("<redacted>");
                in_run = true;
            }
        } else {
            in_run = false;
            out.push(c);
        }
    }
    out
}

/// Every form of every value, ready to be looked for.
pub struct Patterns {
    /// Leftmost-longest search over all forms.
    search: Search,
    /// A quicker test that no form lies wholly in a buffer, when the forms are long and
    /// few enough to compile.
    skip: Option<Skip>,
    labels: Labels,
    /// Bytes a pattern can start with, to skip the rest quickly.
    first: [bool; 256],
    first_list: Vec<u8>,
    /// The longest pattern's length minus one: how far back a pending match can start.
    window: usize,
}

/// The labels of the values, in one string (10,000 labels in a `String` each took
/// 0.5 MB).
#[derive(Default)]
pub struct Labels {
    text: String,
    ends: Vec<usize>,
}

impl Labels {
    fn push(&mut self, label: &str) {
        self.text.push_str(label);
        self.ends.push(self.text.len());
    }

    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|index| &self[index])
    }
}

impl std::ops::Index<usize> for Labels {
    type Output = str;

    fn index(&self, index: usize) -> &str {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start..self.ends[index]]
    }
}

/// What [`Patterns::build_later`] made of a set of values.
pub struct Later {
    /// `None` when no value was long enough to look for.
    pub patterns: Option<Unready>,
    /// Labels of the values shorter than [`MIN_LEN`], which are not looked for.
    pub too_short: Vec<String>,
}

/// Patterns whose search may still have to be made: [`Unready::finish`].
pub struct Unready(Pending);

enum Pending {
    Ready(Box<Patterns>),
    /// Many values: only they and their labels so far.
    Keyed(keyed::Builder, Labels),
}

impl Unready {
    /// Make the search (for many values, the keyed table: 50 ms for 10,000 credentials).
    pub fn finish(self) -> Patterns {
        match self.0 {
            Pending::Ready(patterns) => *patterns,
            Pending::Keyed(builder, labels) => {
                let (keyed, starts) = builder.build();
                Patterns::assemble(Search::Keyed(keyed), None, labels, &starts)
            }
        }
    }
}

/// What [`Patterns`] needs to know of the forms besides the search: the bytes they start
/// with and the longest one's length.
struct Starts {
    first: [bool; 256],
    longest: usize,
}

impl Default for Starts {
    fn default() -> Self {
        Starts {
            first: [false; 256],
            longest: 0,
        }
    }
}

impl Starts {
    fn note(&mut self, form: &[u8]) {
        self.first[usize::from(form[0])] = true;
        self.longest = self.longest.max(form.len());
    }
}

/// What [`Patterns::build`] made of a set of values.
pub struct Built {
    /// `None` when no value was long enough to look for.
    pub patterns: Option<Patterns>,
    /// Labels of the values shorter than [`MIN_LEN`], which are not looked for.
    pub too_short: Vec<String>,
}

/// Which search [`Patterns::build_with`] makes: [`Patterns::build`] lets the number of
/// forms decide; tests ask for each.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum How {
    /// Compiled (Teddy where the CPU has it) up to [`COMPILED_MAX`] forms, keyed past it.
    Auto,
    /// Compiled into one automaton, however many.
    #[cfg(test)]
    Automaton,
    /// Keyed, however few.
    Keyed,
}

/// Past this many forms (about a hundred values) they are looked up by their first bytes
/// ([`keyed`]) instead of compiled: compiled searchers take 9 MB of heap for 1,000 values
/// and Teddy reads the text once per 128 forms.
const COMPILED_MAX: usize = 8 * TEDDY_GROUP;

impl Patterns {
    /// Make ready the forms of each `(label, value)`. When two values share a form, the
    /// first label wins.
    pub fn build<'a>(values: impl IntoIterator<Item = (String, &'a [u8])>) -> Result<Built> {
        Self::build_with(values, How::Auto)
    }

    /// As [`Patterns::build`], but with many values the search is made only by
    /// [`Unready::finish`], and until then only the values and labels are held. `exec`
    /// starts the program in between, whose environment strings (1.3 MB for 10,000
    /// credentials) are freed once it has started, and the search's table is then made
    /// in that room; `scan` frees its own copies of the values first. Everything that
    /// can fail is done here.
    pub fn build_later<'a>(values: impl IntoIterator<Item = (String, &'a [u8])>) -> Result<Later> {
        Self::build_later_with(values, How::Auto)
    }

    fn build_with<'a>(
        values: impl IntoIterator<Item = (String, &'a [u8])>,
        how: How,
    ) -> Result<Built> {
        let later = Self::build_later_with(values, how)?;
        Ok(Built {
            patterns: later.patterns.map(Unready::finish),
            too_short: later.too_short,
        })
    }

    fn build_later_with<'a>(
        values: impl IntoIterator<Item = (String, &'a [u8])>,
        how: How,
    ) -> Result<Later> {
        let values = values.into_iter();
        let mut labels = Labels::default();
        let mut too_short = Vec::new();
        // The forms without duplicates, while they are few enough to compile.
        let mut compiled = (how != How::Keyed).then(Distinct::default);
        let mut keyed = keyed::Builder::default();
        let mut starts = Starts::default();
        for (label, value) in values {
            // `forms` makes none of a shorter value, and at least the value itself else.
            if value.len() < MIN_LEN {
                too_short.push(label);
                continue;
            }
            let index = labels.len();
            labels.push(&label);
            keyed.add(value)?;
            if let Some(distinct) = &mut compiled {
                let forms = forms(value);
                forms.iter().for_each(|form| starts.note(form));
                distinct.add(index, forms);
            }
            if how == How::Auto
                && compiled
                    .as_ref()
                    .is_some_and(|d| d.forms.len() > COMPILED_MAX)
            {
                compiled = None;
            }
        }
        // What the vectors outgrew is given back in place (the values wait through the
        // program's start, see above).
        labels.shrink_to_fit();
        keyed.shrink_to_fit();
        if labels.is_empty() {
            return Ok(Later {
                patterns: None,
                too_short,
            });
        }
        let unready = match compiled {
            Some(Distinct { forms, owner }) => {
                drop(keyed);
                let skip = Skip::new(&forms).filter(|_| how == How::Auto);
                let compiled = Compiled::new(&forms, owner, how == How::Auto)?;
                let search = Search::Compiled(Box::new(compiled));
                let patterns = Patterns::assemble(search, skip, labels, &starts);
                Unready(Pending::Ready(Box::new(patterns)))
            }
            None => Unready(Pending::Keyed(keyed, labels)),
        };
        Ok(Later {
            patterns: Some(unready),
            too_short,
        })
    }

    /// `labels` is not empty, so neither are the forms `starts` noted.
    fn assemble(search: Search, skip: Option<Skip>, labels: Labels, starts: &Starts) -> Patterns {
        Patterns {
            search,
            skip,
            labels,
            first: starts.first,
            first_list: (0..=255u8)
                .filter(|&b| starts.first[usize::from(b)])
                .collect(),
            window: starts.longest - 1,
        }
    }

    /// The length of the longest form: more than any held-back beginning of one.
    pub fn longest(&self) -> usize {
        self.window + 1
    }

    /// The labels, indexed as [`Piece::Found`] reports them.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Where the longest suffix of `buf` that is a proper prefix of some pattern starts
    /// (`buf.len()` when there is none): bytes from there on must wait for more input.
    fn hold_from(&self, buf: &[u8]) -> usize {
        let mut at = buf.len().saturating_sub(self.window);
        while let Some(offset) = self.next_first(&buf[at..]) {
            let candidate = at + offset;
            if self.is_proper_prefix(&buf[candidate..]) {
                return candidate;
            }
            at = candidate + 1;
        }
        buf.len()
    }

    /// The first position in `haystack` holding a byte some pattern starts with.
    fn next_first(&self, haystack: &[u8]) -> Option<usize> {
        match self.first_list[..] {
            [a] => memchr::memchr(a, haystack),
            [a, b] => memchr::memchr2(a, b, haystack),
            [a, b, c] => memchr::memchr3(a, b, c, haystack),
            _ => haystack.iter().position(|&b| self.first[usize::from(b)]),
        }
    }

    /// Whether `tail` is a pattern's beginning that more bytes could extend into a match.
    fn is_proper_prefix(&self, tail: &[u8]) -> bool {
        let nfa = match &self.search {
            Search::Keyed(keyed) => return keyed.extends(tail),
            Search::Compiled(compiled) => &compiled.prefixes,
        };
        let Ok(mut state) = nfa.start_state(Anchored::Yes) else {
            return false;
        };
        for &byte in tail {
            state = nfa.next_state(Anchored::Yes, state, byte);
            if nfa.is_dead(state) {
                return false;
            }
        }
        (0..=255u8).any(|byte| !nfa.is_dead(nfa.next_state(Anchored::Yes, state, byte)))
    }
}

/// Forms without duplicates, each with the index of the first label it is a form of.
#[derive(Default)]
struct Distinct {
    forms: Vec<Zeroizing<Vec<u8>>>,
    owner: Vec<usize>,
}

impl Distinct {
    fn add(&mut self, label: usize, forms: Vec<Zeroizing<Vec<u8>>>) {
        for form in forms {
            if !self.forms.iter().any(|f| **f == *form) {
                self.forms.push(form);
                self.owner.push(label);
            }
        }
    }
}

/// How the patterns are searched for: compiled when they are few, by their first bytes
/// when they are many ([`keyed`]).
enum Search {
    Compiled(Box<Compiled>),
    Keyed(Keyed),
}

/// Every form compiled into a searcher.
struct Compiled {
    finder: Finder,
    /// The same forms as a plain trie (standard semantics, anchored), to tell whether the
    /// end of a buffer is the start of one.
    prefixes: contiguous::NFA,
    /// Form index -> label index.
    owner: Vec<usize>,
}

/// Secrets and their base64 forms are made of the same 64 characters as much of what
/// programs print (tokens, hashes, base64 blobs), which defeats the byte-frequency
/// prefilters `AhoCorasick` picks for them: over base64 text it ran at 0.15 GB/s. Teddy,
/// aho-corasick's SIMD multi-literal searcher (the packed module), checks 3-byte
/// fingerprints of every pattern at once and ran at 6-15 GB/s on the same text with up to
/// 128 patterns. So patterns go into Teddy searchers of at most 128 each, whose leftmost-
/// longest matches are merged; `AhoCorasick` is the fallback where Teddy is not available
/// (no SSSE3 or NEON).
enum Finder {
    Teddy(Vec<Group>),
    Automaton(AhoCorasick),
}

struct Group {
    searcher: packed::Searcher,
    /// Index of the group's first pattern among all patterns.
    first: usize,
}

const TEDDY_GROUP: usize = 128;

/// A match: where, and whose value.
#[derive(Clone, Copy)]
struct Found {
    start: usize,
    end: usize,
    label: usize,
}

impl Compiled {
    /// `all` compiled, in Teddy groups when `teddy` and the CPU allows.
    fn new(all: &[Zeroizing<Vec<u8>>], owner: Vec<usize>, teddy: bool) -> Result<Compiled> {
        let failed = |e: aho_corasick::BuildError| {
            Error::io(
                "cannot compile the values to look for",
                std::io::Error::other(e),
            )
        };
        let finder = match teddy.then(|| Self::teddy(all)).flatten() {
            Some(groups) => Finder::Teddy(groups),
            None => Finder::Automaton(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(all.iter().map(|p| p.as_slice()))
                    .map_err(failed)?,
            ),
        };
        let prefixes = contiguous::Builder::new()
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(all.iter().map(|p| p.as_slice()))
            .map_err(failed)?;
        Ok(Compiled {
            finder,
            prefixes,
            owner,
        })
    }

    fn teddy(patterns: &[Zeroizing<Vec<u8>>]) -> Option<Vec<Group>> {
        let mut groups = Vec::new();
        for (index, chunk) in patterns.chunks(TEDDY_GROUP).enumerate() {
            let searcher = packed::Config::new()
                .match_kind(packed::MatchKind::LeftmostLongest)
                // Past its own pattern-count heuristic Teddy is still far faster on
                // base64-like text than the alternative (see above).
                .heuristic_pattern_limits(false)
                .builder()
                .extend(chunk.iter().map(|p| p.as_slice()))
                .build()?;
            groups.push(Group {
                searcher,
                first: index * TEDDY_GROUP,
            });
        }
        Some(groups)
    }
}

impl Search {
    /// Leftmost-longest matches in `haystack`, in order, not overlapping.
    fn matches<'a>(&'a self, haystack: &'a [u8]) -> Matches<'a> {
        let next = match self {
            Search::Compiled(compiled) => match &compiled.finder {
                Finder::Teddy(groups) => vec![None; groups.len()],
                Finder::Automaton(_) => Vec::new(),
            },
            Search::Keyed(_) => Vec::new(),
        };
        Matches {
            search: self,
            haystack,
            at: 0,
            next,
        }
    }
}

struct Matches<'a> {
    search: &'a Search,
    haystack: &'a [u8],
    at: usize,
    /// Per Teddy group: its leftmost-longest match at or after `at`, once searched
    /// (`Some(None)`: none in the rest of the haystack).
    next: Vec<Option<Option<Found>>>,
}

impl Iterator for Matches<'_> {
    type Item = Found;

    fn next(&mut self) -> Option<Found> {
        if self.at > self.haystack.len() {
            return None;
        }
        let compiled = match self.search {
            Search::Compiled(compiled) => compiled,
            Search::Keyed(keyed) => {
                let (start, end, label) = keyed.find(self.haystack, self.at)?;
                self.at = end;
                return Some(Found { start, end, label });
            }
        };
        let found = match &compiled.finder {
            Finder::Automaton(ac) => ac
                .find(Input::new(self.haystack).range(self.at..))
                .map(|m| Found {
                    start: m.start(),
                    end: m.end(),
                    label: compiled.owner[m.pattern().as_usize()],
                }),
            Finder::Teddy(groups) => {
                let span = Span {
                    start: self.at,
                    end: self.haystack.len(),
                };
                let mut best: Option<Found> = None;
                for (group, next) in groups.iter().zip(self.next.iter_mut()) {
                    // A group's earlier answer stays right while it starts at or
                    // after where this search starts.
                    let stale = match next {
                        Some(Some(found)) => found.start < self.at,
                        Some(None) => false,
                        None => true,
                    };
                    if stale {
                        *next = Some(group.searcher.find_in(self.haystack, span).map(|m| Found {
                            start: m.start(),
                            end: m.end(),
                            label: compiled.owner[group.first + m.pattern().as_usize()],
                        }));
                    }
                    if let Some(Some(found)) = *next {
                        let better = best.is_none_or(|b| {
                            found.start < b.start || (found.start == b.start && found.end > b.end)
                        });
                        if better {
                            best = Some(found);
                        }
                    }
                }
                best
            }
        }?;
        // Patterns are never empty, so this always moves forward.
        self.at = found.end;
        Some(found)
    }
}

/// A piece of a stream, in order: bytes to pass on, or a found value.
pub enum Piece<'a> {
    Text(&'a [u8]),
    /// A form of the value with this label index; `bytes` is what was found.
    Found {
        label: usize,
        bytes: &'a [u8],
    },
}

/// One stream being searched. Feed it pieces as they come; it hands back what is decided.
pub struct Redactor<'p> {
    patterns: &'p Patterns,
    /// Bytes that could be the start of a value, waiting for the next piece.
    pending: Zeroizing<Vec<u8>>,
}

impl<'p> Redactor<'p> {
    pub fn new(patterns: &'p Patterns) -> Self {
        Redactor {
            patterns,
            pending: Zeroizing::new(Vec::new()),
        }
    }

    /// Carry on a stream searched before, from the bytes it held back
    /// ([`Redactor::into_pending`]): for a caller that owns its patterns behind an `Arc`
    /// and cannot keep a borrow between pieces (the broker's response bodies).
    pub fn resume(patterns: &'p Patterns, pending: Zeroizing<Vec<u8>>) -> Self {
        Redactor { patterns, pending }
    }

    /// The bytes held back, to [`Redactor::resume`] with.
    pub fn into_pending(self) -> Zeroizing<Vec<u8>> {
        self.pending
    }

    /// Search the next piece of the stream. Everything that cannot be (part of) a value
    /// found later is handed to `emit` before this returns.
    pub fn feed<E>(
        &mut self,
        data: &[u8],
        mut emit: impl FnMut(Piece<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        if self.pending.is_empty() {
            let kept = self.process(data, false, &mut emit)?;
            self.pending.extend_from_slice(&data[kept..]);
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(data);
            let kept = self.process(&buf, false, &mut emit)?;
            buf.drain(..kept);
            self.pending = buf;
        }
        Ok(())
    }

    /// The stream has ended: hand over what was held back.
    pub fn finish<E>(
        &mut self,
        mut emit: impl FnMut(Piece<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let buf = std::mem::take(&mut self.pending);
        self.process(&buf, true, &mut emit)?;
        Ok(())
    }

    /// Emit the decided part of `buf`; return where the undecided rest starts.
    fn process<E>(
        &self,
        buf: &[u8],
        at_end: bool,
        emit: &mut impl FnMut(Piece<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<usize, E> {
        let patterns = self.patterns;
        // A match that starts before `hold` is final: more input could only make a longer
        // match start at or after `hold`, never an earlier or longer one here.
        let hold = if at_end {
            buf.len()
        } else {
            patterns.hold_from(buf)
        };
        if patterns
            .skip
            .as_ref()
            .is_some_and(|skip| !skip.may_contain(buf))
        {
            // No form in `buf`: what the search below would find too.
            if hold > 0 {
                emit(Piece::Text(&buf[..hold]))?;
            }
            return Ok(hold);
        }
        let mut at = 0;
        for found in patterns.search.matches(buf) {
            if found.start >= hold {
                break;
            }
            if found.start > at {
                emit(Piece::Text(&buf[at..found.start]))?;
            }
            emit(Piece::Found {
                label: found.label,
                bytes: &buf[found.start..found.end],
            })?;
            at = found.end;
        }
        let decided = hold.max(at);
        if decided > at {
            emit(Piece::Text(&buf[at..decided]))?;
        }
        Ok(decided)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn build(values: &[(&str, &[u8])]) -> Patterns {
        Patterns::build(values.iter().map(|(l, v)| (l.to_string(), *v)))
            .unwrap()
            .patterns
            .unwrap()
    }

    /// Feed `input` in pieces of `size` bytes; replace values with `<NAME>`; also return
    /// how many bytes were emitted before the last piece was fed, per piece.
    fn redact(patterns: &Patterns, input: &[u8], size: usize) -> String {
        let mut out = Vec::new();
        let mut redactor = Redactor::new(patterns);
        let mut emit = |piece: Piece<'_>| -> std::result::Result<(), ()> {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Found { label, .. } => {
                    out.extend_from_slice(format!("<{}>", &patterns.labels()[label]).as_bytes())
                }
            }
            Ok(())
        };
        for chunk in input.chunks(size.max(1)) {
            redactor.feed(chunk, &mut emit).unwrap();
        }
        redactor.finish(&mut emit).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn finds_values_across_any_split() {
        let p = build(&[("key", b"sk-0123456789"), ("other", b"hunter22-long")]);
        let input = b"a sk-0123456789 b c2stMDEyMzQ1Njc4OQ== sk-01234 hunter22-long end";
        let want = "a <key> b <key> sk-01234 <other> end";
        for size in [1, 2, 3, 5, 7, 64] {
            assert_eq!(redact(&p, input, size), want, "pieces of {size}");
        }
    }

    #[test]
    fn longest_form_wins_and_prefix_values() {
        // The unpadded base64 form is a prefix of the padded one.
        let p = build(&[("k", b"0123456789a")]);
        let padded = STANDARD.encode(b"0123456789a");
        assert!(padded.ends_with('='));
        assert_eq!(redact(&p, format!("[{padded}]").as_bytes(), 1), "[<k>]");
        // One value a prefix of another.
        let p = build(&[("short", b"abcdefgh"), ("long", b"abcdefghijkl")]);
        assert_eq!(
            redact(&p, b"abcdefghijkl abcdefghij", 1),
            "<long> <short>ij"
        );
    }

    /// Two values with the same form (here, the same value): the first label is reported,
    /// whichever search is used; and of forms that start alike, the longest.
    #[test]
    fn each_search_reports_the_first_value_and_the_longest_form() {
        for how in [How::Auto, How::Automaton, How::Keyed] {
            let values: [(&str, &[u8]); 4] = [
                ("one", b"same-value-here"),
                ("two", b"same-value-here"),
                ("short", b"prefix-of"),
                ("long", b"prefix-of-another"),
            ];
            let p = Patterns::build_with(values.iter().map(|(l, v)| (l.to_string(), *v)), how)
                .unwrap()
                .patterns
                .unwrap();
            for size in [1, 4, 100] {
                assert_eq!(
                    redact(
                        &p,
                        b"a same-value-here b prefix-of-another c prefix-of-x",
                        size
                    ),
                    "a <one> b <long> c <short>-x",
                    "{how:?}, pieces of {size}"
                );
            }
        }
    }

    #[test]
    fn undecided_bytes_are_only_those_that_can_start_a_value() {
        let p = build(&[("k", b"secret-value")]);
        let mut redactor = Redactor::new(&p);
        let mut out = Vec::new();
        let mut emit = |piece: Piece<'_>| -> std::result::Result<(), ()> {
            if let Piece::Text(t) = piece {
                out.extend_from_slice(t);
            }
            Ok(())
        };
        redactor.feed(b"line 1\n", &mut emit).unwrap();
        redactor.feed(b"progress 50% sec", &mut emit).unwrap();
        assert_eq!(out, b"line 1\nprogress 50% ");
    }

    #[test]
    fn a_complete_value_at_the_end_is_not_held() {
        let p = build(&[("k", b"secret-value")]);
        let mut redactor = Redactor::new(&p);
        let mut found = 0;
        redactor
            .feed(b"x secret-value", |piece| -> std::result::Result<(), ()> {
                found += usize::from(matches!(piece, Piece::Found { .. }));
                Ok(())
            })
            .unwrap();
        assert_eq!(found, 1);
    }

    /// Random streams, cut at random places, against a one-shot leftmost-longest search of
    /// the whole input: both searchers (Teddy groups, merged past 128 patterns; the
    /// automaton), few and many values.
    #[test]
    fn streaming_equals_searching_the_whole_input() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        const ALPHABET: &[u8] = b"ab+/=%\n x0";
        // Long values are long enough for the skipping test (`Skip`) and for the keyed
        // search's fingerprints; shared ones all start alike (`sk-proj-`), as a thousand
        // keys of one service do.
        for (count, how, long, shared) in [
            (3, How::Auto, false, false),
            (3, How::Automaton, false, false),
            (3, How::Keyed, false, false),
            (30, How::Auto, false, false),
            (30, How::Automaton, false, false),
            (30, How::Keyed, false, false),
            (3, How::Auto, true, false),
            (30, How::Auto, true, false),
            (30, How::Keyed, true, false),
            (30, How::Keyed, true, true),
            (30, How::Keyed, false, true),
            (200, How::Auto, false, false),
            (200, How::Auto, false, true),
        ] {
            let values: Vec<Vec<u8>> = (0..count)
                .map(|_| {
                    // Shared long values start alike for longer than the sorted bytes.
                    let mut value = match (shared, long) {
                        (false, _) => Vec::new(),
                        (true, false) => b"sk-proj-".to_vec(),
                        (true, true) => b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.".to_vec(),
                    };
                    value.extend(
                        (0..if long { 30 + next(20) } else { 8 + next(8) })
                            .map(|_| ALPHABET[next(ALPHABET.len())]),
                    );
                    value
                })
                .collect();
            let built = Patterns::build_with(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v.as_slice())),
                how,
            )
            .unwrap();
            let p = built.patterns.unwrap();
            match &p.search {
                Search::Compiled(compiled) => match &compiled.finder {
                    Finder::Teddy(groups) => {
                        assert_eq!(how, How::Auto);
                        assert_eq!(groups.len() > 1, count > 10, "{} groups", groups.len());
                    }
                    Finder::Automaton(_) => assert_eq!(how, How::Automaton),
                },
                Search::Keyed(_) => {
                    assert!(how == How::Keyed || count > 100, "{count} values keyed")
                }
            }
            assert!(
                p.skip.is_some() || !long || how != How::Auto || count > 100,
                "{count} values"
            );
            let value_forms: Vec<Vec<Vec<u8>>> = values
                .iter()
                .map(|v| forms(v).iter().map(|f| f.to_vec()).collect())
                .collect();
            let all: Vec<Vec<u8>> = value_forms.iter().flatten().cloned().collect();
            let reference = AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&all)
                .unwrap();
            for _ in 0..200 {
                let mut input = Vec::new();
                for _ in 0..next(12) {
                    match next(4) {
                        0 => input.extend_from_slice(&all[next(all.len())]),
                        1 => {
                            let form = &all[next(all.len())];
                            input.extend_from_slice(&form[..next(form.len())]);
                        }
                        _ => input.extend((0..next(20)).map(|_| ALPHABET[next(ALPHABET.len())])),
                    }
                }
                let mut expected = Vec::new();
                let mut at = 0;
                for m in reference.find_iter(&input) {
                    expected.extend_from_slice(&input[at..m.start()]);
                    // Of equal forms of several values, the first value's.
                    let found = &input[m.start()..m.end()];
                    let owner = value_forms
                        .iter()
                        .position(|forms| forms.iter().any(|f| f == found))
                        .unwrap();
                    let label = &p.labels()[owner];
                    expected.extend_from_slice(format!("<{label}>").as_bytes());
                    at = m.end();
                }
                expected.extend_from_slice(&input[at..]);
                let size = if next(2) == 0 {
                    1 + next(9)
                } else {
                    1 + next(300)
                };
                let got = redact(&p, &input, size);
                assert_eq!(
                    got.as_bytes(),
                    expected,
                    "{count} values, {how:?}, long {long}, shared {shared}"
                );
            }
        }
    }

    /// The skipping test finds every form at every offset (and so never lets the full
    /// search be skipped over one), and passes text without one.
    #[test]
    fn skip_finds_each_form_at_every_offset() {
        let value = b"sk-proj-0123456789abcdefghijklmnopqrstuv";
        let p = build(&[("k", value)]);
        let skip = p.skip.as_ref().unwrap();
        let noise = |len: usize| -> Vec<u8> { (0..len).map(|i| b"ABCDE"[i % 5]).collect() };
        assert!(!skip.may_contain(&noise(4096)));
        for form in forms(value) {
            for offset in 0..2 * skip.step + 3 {
                let mut buf = noise(offset);
                buf.extend_from_slice(&form);
                buf.extend_from_slice(&noise(7));
                assert!(skip.may_contain(&buf), "offset {offset}");
            }
        }
    }

    #[test]
    fn short_values_are_reported_not_masked() {
        let built = Patterns::build([("pin".to_string(), &b"1234"[..])]).unwrap();
        assert!(built.patterns.is_none());
        assert_eq!(built.too_short, ["pin"]);
    }
}
