//! Bodies that are searched while they stream, with the masking engine of `exec --mask`
//! ([`crate::mask`]): a value split across chunks is still found, and bytes that cannot be
//! part of one are passed on at once (an SSE event is not held back).
//!
//! - [`ScrubBody`] (responses): every form of the real value is overwritten with a filler
//!   of the same length, so a `Content-Length` stays right.
//! - [`ScanBody`] (requests): a form of the placeholder, or more bytes than the cap, ends
//!   the body with an error, which makes hyper abort the upstream request before its end,
//!   so the upstream never sees a complete request; the verdict is left for the proxy,
//!   which answers 403 or 413.

use std::collections::VecDeque;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use zeroize::Zeroizing;

use crate::mask::{Patterns, Piece, Redactor};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What replaces a scrubbed value.
const LABEL: &[u8] = b"<agentcred:scrubbed>";

/// A filler of `len` bytes: the label padded with `*` (only `*` when shorter).
pub fn filler(len: usize) -> Vec<u8> {
    if len >= LABEL.len() {
        let mut out = LABEL.to_vec();
        out.resize(len, b'*');
        out
    } else {
        vec![b'*'; len]
    }
}

/// One stream's search state, owning its patterns.
pub struct Search {
    patterns: Arc<Patterns>,
    pending: Zeroizing<Vec<u8>>,
}

/// A run of output bytes: a range of the piece that was searched (passed on without a
/// copy), or bytes made here (a replacement, or bytes held over from the piece before).
#[derive(Debug, PartialEq, Eq)]
pub enum Segment {
    Input(Range<usize>),
    Owned(Vec<u8>),
}

/// What searching one piece decided, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scanned(Vec<Segment>);

impl Scanned {
    fn input(&mut self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        if let Some(Segment::Input(last)) = self.0.last_mut()
            && last.end == range.start
        {
            last.end = range.end;
        } else {
            self.0.push(Segment::Input(range));
        }
    }

    fn owned(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(Segment::Owned(last)) = self.0.last_mut() {
            last.extend_from_slice(bytes);
        } else {
            self.0.push(Segment::Owned(bytes.to_vec()));
        }
    }

    /// The segments as chunks: ranges of `data` (the piece searched) and new buffers.
    fn into_chunks(self, data: &Bytes) -> impl Iterator<Item = Bytes> + use<'_> {
        self.0.into_iter().map(move |segment| match segment {
            Segment::Input(range) => data.slice(range),
            Segment::Owned(bytes) => Bytes::from(bytes),
        })
    }

    /// The segments joined into one buffer.
    fn concat(self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for segment in self.0 {
            match segment {
                Segment::Input(range) => out.extend_from_slice(&data[range]),
                Segment::Owned(bytes) => out.extend_from_slice(&bytes),
            }
        }
        out
    }
}

impl Search {
    pub fn new(patterns: Arc<Patterns>) -> Self {
        Search {
            patterns,
            pending: Zeroizing::new(Vec::new()),
        }
    }

    /// Search the next piece (or the end, when `data` is `None`). `found` is told the
    /// length of each match and returns what replaces it.
    ///
    /// The bytes of `data` are passed on as ranges of it, not copied, also after bytes
    /// held back from the piece before: those are searched together with only the first
    /// bytes of `data` (as many as the longest form), and whatever is held back after
    /// that lies within `data`, where the search goes on.
    pub fn feed(
        &mut self,
        data: Option<&[u8]>,
        mut found: impl FnMut(usize) -> Vec<u8>,
    ) -> Scanned {
        let mut out = Scanned::default();
        let patterns = self.patterns.clone();
        let pending = std::mem::take(&mut self.pending);
        let Some(data) = data else {
            let mut redactor = Redactor::resume(&patterns, pending);
            let _ = redactor.finish(|piece| copy(piece, &mut out, &mut found));
            return out;
        };
        let mut from = 0;
        if !pending.is_empty() {
            let stitch = data.len().min(patterns.longest());
            let mut redactor = Redactor::resume(&patterns, pending);
            let _ = redactor.feed(&data[..stitch], |piece| copy(piece, &mut out, &mut found));
            let held = redactor.into_pending();
            if stitch == data.len() {
                self.pending = held;
                return out;
            }
            // What is held back now is a proper beginning of a form, shorter than the
            // longest form: the end of `data[..stitch]`.
            from = stitch - held.len();
        }
        let mut at = from;
        let mut redactor = Redactor::new(&patterns);
        let _ = redactor.feed(&data[from..], |piece| -> std::result::Result<(), ()> {
            let len = match piece {
                Piece::Text(text) => {
                    out.input(at..at + text.len());
                    text.len()
                }
                Piece::Found { bytes, .. } => {
                    out.owned(&found(bytes.len()));
                    bytes.len()
                }
            };
            at += len;
            Ok(())
        });
        self.pending = redactor.into_pending();
        out
    }

    /// Scrub a whole text at once (a header value).
    pub fn scrub_all(patterns: &Arc<Patterns>, text: &[u8]) -> Option<Vec<u8>> {
        let mut search = Search::new(patterns.clone());
        let mut changed = false;
        let mut replace = |len| {
            changed = true;
            filler(len)
        };
        let mut out = search.feed(Some(text), &mut replace).concat(text);
        out.extend_from_slice(&search.feed(None, &mut replace).concat(&[]));
        changed.then_some(out)
    }

    /// Whether a whole text holds a match.
    pub fn contains(patterns: &Arc<Patterns>, text: &[u8]) -> bool {
        let mut search = Search::new(patterns.clone());
        let mut hit = false;
        let mut mark = |len| {
            hit = true;
            vec![0; len]
        };
        search.feed(Some(text), &mut mark);
        search.feed(None, &mut mark);
        hit
    }
}

/// Hand on a piece of held-over bytes as a copy (its replacement, when found).
fn copy(
    piece: Piece<'_>,
    out: &mut Scanned,
    found: &mut impl FnMut(usize) -> Vec<u8>,
) -> std::result::Result<(), ()> {
    match piece {
        Piece::Text(text) => out.owned(text),
        Piece::Found { bytes, .. } => out.owned(&found(bytes.len())),
    }
    Ok(())
}

/// A response body with the real value scrubbed out.
pub struct ScrubBody<B> {
    inner: B,
    search: Option<Search>,
    /// Frames decided and not handed on yet: the pieces of one searched chunk, or a
    /// trailers frame after the held-back bytes.
    queue: VecDeque<Frame<Bytes>>,
    done: bool,
}

impl<B> ScrubBody<B> {
    /// `patterns: None` passes the body through untouched.
    pub fn new(inner: B, patterns: Option<Arc<Patterns>>) -> Self {
        ScrubBody {
            inner,
            search: patterns.map(Search::new),
            queue: VecDeque::new(),
            done: false,
        }
    }
}

impl<B> Body for ScrubBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(frame) = this.queue.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
            let Some(search) = &mut this.search else {
                return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
            };
            let rest = match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let scanned = search.feed(Some(&data), filler);
                        this.queue
                            .extend(scanned.into_chunks(&data).map(Frame::data));
                        continue;
                    }
                    Err(trailers) => {
                        let rest = search.feed(None, filler);
                        this.queue
                            .extend(rest.into_chunks(&Bytes::new()).map(Frame::data));
                        this.queue.push_back(trailers);
                        continue;
                    }
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => search.feed(None, filler),
            };
            this.done = true;
            this.queue
                .extend(rest.into_chunks(&Bytes::new()).map(Frame::data));
        }
    }

    fn is_end_stream(&self) -> bool {
        (self.done && self.queue.is_empty())
            || (self.search.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a request body was cut off.
#[allow(dead_code)] // the default: named for tests and readers
pub const CLEAN: u8 = 0;
pub const PLACEHOLDER: u8 = 1;
pub const TOO_LARGE: u8 = 2;

/// The verdict on a request body, shared between the body and the proxy.
#[derive(Default)]
pub struct Verdict(AtomicU8);

impl Verdict {
    pub fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, why: u8) {
        self.0.store(why, Ordering::Release);
    }
}

#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Refused {}

/// A request body searched for the placeholder and counted against the cap.
pub struct ScanBody<B> {
    inner: B,
    search: Search,
    verdict: Arc<Verdict>,
    seen: u64,
    cap: u64,
    /// The pieces of one searched chunk not handed on yet.
    queue: VecDeque<Bytes>,
    done: bool,
}

impl<B> ScanBody<B> {
    pub fn new(inner: B, placeholder: Arc<Patterns>, cap: u64, verdict: Arc<Verdict>) -> Self {
        ScanBody {
            inner,
            search: Search::new(placeholder),
            verdict,
            seen: 0,
            cap,
            queue: VecDeque::new(),
            done: false,
        }
    }

    fn refuse(&mut self, why: u8) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        self.verdict.set(why);
        self.done = true;
        let text = if why == PLACEHOLDER {
            "the request body holds the placeholder"
        } else {
            "the request body is larger than the cap"
        };
        Poll::Ready(Some(Err(Box::new(Refused(text)))))
    }
}

impl<B> Body for ScanBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(chunk) = this.queue.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
            let mut hit = false;
            let mut mark = |len: usize| {
                hit = true;
                vec![0; len]
            };
            let (scanned, data) = match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.seen += data.len() as u64;
                        if this.seen > this.cap {
                            return this.refuse(TOO_LARGE);
                        }
                        (this.search.feed(Some(&data), &mut mark), data)
                    }
                    // Trailers: the held-back bytes cannot be sent before them, and a
                    // request with trailers is rare enough to refuse.
                    Err(_) => return this.refuse(PLACEHOLDER),
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => {
                    this.done = true;
                    (this.search.feed(None, &mut mark), Bytes::new())
                }
            };
            if hit {
                return this.refuse(PLACEHOLDER);
            }
            this.queue.extend(scanned.into_chunks(&data));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.queue.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use proptest::prelude::*;

    fn patterns(value: &[u8]) -> Arc<Patterns> {
        Arc::new(
            Patterns::build([("v".to_string(), value)])
                .unwrap()
                .patterns
                .unwrap(),
        )
    }

    /// A body that yields these chunks, one per poll.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn chunks(parts: &[&[u8]]) -> Chunks {
        Chunks(parts.iter().map(|p| Bytes::copy_from_slice(p)).collect())
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn filler_keeps_the_length() {
        assert_eq!(filler(8), b"********");
        assert_eq!(filler(24), b"<agentcred:scrubbed>****");
    }

    #[test]
    fn scrubs_across_chunks_and_keeps_length() {
        let secret = b"sk-live-0123456789abcdef";
        let body = ScrubBody::new(
            chunks(&[
                b"{\"key\":\"sk-live-01",
                b"23456789ab",
                b"cdef\", \"ok\":1}",
            ]),
            Some(patterns(secret)),
        );
        let out = block_on(body.collect()).unwrap().to_bytes();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert_eq!(text, "{\"key\":\"<agentcred:scrubbed>****\", \"ok\":1}");
    }

    #[test]
    fn scrubs_at_every_split_point() {
        let secret = b"sk-live-0123456789abcdef";
        let input = b"a sk-live-0123456789abcdef b sk-live-0123456789abcdef".to_vec();
        let expect = "a <agentcred:scrubbed>**** b <agentcred:scrubbed>****";
        let patterns = patterns(secret);
        for size in 1..input.len() {
            let parts: Vec<&[u8]> = input.chunks(size).collect();
            let body = ScrubBody::new(chunks(&parts), Some(patterns.clone()));
            let out = block_on(body.collect()).unwrap().to_bytes();
            assert_eq!(String::from_utf8_lossy(&out), expect, "size {size}");
        }
    }

    /// A request body of these chunks through [`ScanBody`]: what came out (`None` when it
    /// was cut off) and the verdict.
    fn scan(parts: &[&[u8]], placeholder: &[u8], cap: u64) -> (Option<Bytes>, u8) {
        let verdict = Arc::new(Verdict::default());
        let body = ScanBody::new(chunks(parts), patterns(placeholder), cap, verdict.clone());
        let out = block_on(body.collect()).ok().map(|c| c.to_bytes());
        (out, verdict.get())
    }

    #[test]
    fn scan_refuses_a_split_placeholder_and_the_cap() {
        let placeholder = b"sk-agentcred-XYZXYZXYZ";
        let split = scan(
            &[b"hello sk-agentcred-XY", b"ZXYZXYZ there"],
            placeholder,
            1000,
        );
        assert_eq!(split, (None, PLACEHOLDER));
        let large = scan(&[b"0123456789", b"0123456789"], placeholder, 15);
        assert_eq!(large, (None, TOO_LARGE));
        // A beginning of the placeholder at the very end is held back, then passed on.
        let clean = scan(&[b"clean ", b"sk-agentcred-XY"], placeholder, 1000);
        assert_eq!(
            clean,
            (Some(Bytes::from_static(b"clean sk-agentcred-XY")), CLEAN)
        );
    }

    /// A body made of noise near the secret's own characters, the secret, and beginnings
    /// of it (so that a split often falls inside a possible match).
    fn body_parts(secret: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
        let noise = proptest::collection::vec(
            proptest::sample::select(b"sk-live0123abcXYZ \n\"=".to_vec()),
            0..24,
        );
        let segment = prop_oneof![
            noise,
            Just(secret.to_vec()),
            (1..secret.len()).prop_map(move |n| secret[..n].to_vec()),
        ];
        proptest::collection::vec(segment, 0..12).prop_map(|parts| parts.concat())
    }

    /// Cut `input` at these points (taken modulo its length).
    fn split_at(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.extend([0, input.len()]);
        points.sort_unstable();
        points.dedup();
        points
            .windows(2)
            .map(|w| input[w[0]..w[1]].to_vec())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn scrubbing_does_not_depend_on_the_chunks(
            input in body_parts(b"sk-live-0123abc"),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let patterns = patterns(b"sk-live-0123abc");
            let whole = Search::scrub_all(&patterns, &input).unwrap_or_else(|| input.clone());
            let parts = split_at(&input, &cuts);
            let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let body = ScrubBody::new(chunks(&parts), Some(patterns.clone()));
            let out = block_on(body.collect()).unwrap().to_bytes();
            prop_assert_eq!(&out[..], &whole[..]);
            prop_assert_eq!(out.len(), input.len());
            prop_assert!(!out.windows(15).any(|w| w == b"sk-live-0123abc"));
        }

        #[test]
        fn the_placeholder_is_found_wherever_the_body_is_split(
            input in body_parts(b"sk-live-0123abc"),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let placeholder = b"sk-live-0123abc";
            let holds = input.windows(placeholder.len()).any(|w| w == placeholder);
            let parts = split_at(&input, &cuts);
            let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let (out, verdict) = scan(&parts, placeholder, u64::MAX);
            if holds {
                prop_assert_eq!((out, verdict), (None, PLACEHOLDER));
            } else {
                prop_assert_eq!(out.as_deref(), Some(&input[..]));
                prop_assert_eq!(verdict, CLEAN);
            }
        }
    }
}
