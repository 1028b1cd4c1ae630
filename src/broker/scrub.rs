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

/// The outcome of searching one piece.
pub enum Scanned {
    /// Everything decided is clean: these bytes of the input, from its start (no copy).
    Prefix(usize),
    /// Something was found (or bytes were held over from before): the bytes to pass on.
    Copied(Vec<u8>),
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
    pub fn feed(
        &mut self,
        data: Option<&[u8]>,
        mut found: impl FnMut(usize) -> Vec<u8>,
    ) -> Scanned {
        let copying = !self.pending.is_empty() || data.is_none();
        let mut out: Option<Vec<u8>> = copying.then(Vec::new);
        let mut plain = 0usize;
        let input = data.unwrap_or_default();
        let pending = std::mem::take(&mut self.pending);
        let mut redactor = Redactor::resume(&self.patterns, pending);
        let mut emit = |piece: Piece<'_>| -> std::result::Result<(), ()> {
            match piece {
                Piece::Text(text) => match &mut out {
                    Some(buf) => buf.extend_from_slice(text),
                    None => plain += text.len(),
                },
                Piece::Found { bytes, .. } => {
                    let buf = out.get_or_insert_with(|| input[..plain].to_vec());
                    buf.extend_from_slice(&found(bytes.len()));
                }
            }
            Ok(())
        };
        let _ = match data {
            Some(data) => redactor.feed(data, &mut emit),
            None => redactor.finish(&mut emit),
        };
        self.pending = redactor.into_pending();
        match out {
            Some(buf) => Scanned::Copied(buf),
            None => Scanned::Prefix(plain),
        }
    }

    /// Scrub a whole text at once (a header value).
    pub fn scrub_all(patterns: &Arc<Patterns>, text: &[u8]) -> Option<Vec<u8>> {
        let mut search = Search::new(patterns.clone());
        let mut changed = false;
        let mut out = match search.feed(Some(text), |len| {
            changed = true;
            filler(len)
        }) {
            Scanned::Prefix(n) => text[..n].to_vec(),
            Scanned::Copied(buf) => buf,
        };
        if let Scanned::Copied(rest) = search.feed(None, |len| {
            changed = true;
            filler(len)
        }) {
            out.extend_from_slice(&rest);
        }
        changed.then_some(out)
    }

    /// Whether a whole text holds a match.
    pub fn contains(patterns: &Arc<Patterns>, text: &[u8]) -> bool {
        let mut search = Search::new(patterns.clone());
        let mut hit = false;
        search.feed(Some(text), |len| {
            hit = true;
            vec![0; len]
        });
        search.feed(None, |len| {
            hit = true;
            vec![0; len]
        });
        hit
    }
}

fn to_bytes(data: &Bytes, scanned: Scanned) -> Bytes {
    match scanned {
        Scanned::Prefix(n) => data.slice(..n),
        Scanned::Copied(buf) => Bytes::from(buf),
    }
}

/// A response body with the real value scrubbed out.
pub struct ScrubBody<B> {
    inner: B,
    search: Option<Search>,
    /// A trailers frame that waits for the held-back bytes to go first.
    stashed: Option<Frame<Bytes>>,
    done: bool,
}

impl<B> ScrubBody<B> {
    /// `patterns: None` passes the body through untouched.
    pub fn new(inner: B, patterns: Option<Arc<Patterns>>) -> Self {
        ScrubBody {
            inner,
            search: patterns.map(Search::new),
            stashed: None,
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
        if let Some(frame) = this.stashed.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
            let Some(search) = &mut this.search else {
                return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
            };
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = to_bytes(&data, search.feed(Some(&data), filler));
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(other) => {
                        let Scanned::Copied(rest) = search.feed(None, filler) else {
                            return Poll::Ready(Some(Ok(other)));
                        };
                        if rest.is_empty() {
                            return Poll::Ready(Some(Ok(other)));
                        }
                        this.stashed = Some(other);
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                    }
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => {
                    this.done = true;
                    if let Scanned::Copied(rest) = search.feed(None, filler)
                        && !rest.is_empty()
                    {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.search.is_none() && self.inner.is_end_stream())
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
            if this.done {
                return Poll::Ready(None);
            }
            let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
            let mut hit = false;
            let mut mark = |len: usize| {
                hit = true;
                vec![0; len]
            };
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.seen += data.len() as u64;
                        if this.seen > this.cap {
                            return this.refuse(TOO_LARGE);
                        }
                        let scanned = this.search.feed(Some(&data), &mut mark);
                        if hit {
                            return this.refuse(PLACEHOLDER);
                        }
                        let out = to_bytes(&data, scanned);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    // Trailers: the held-back bytes cannot be sent before them, and a
                    // request with trailers is rare enough to refuse.
                    Err(_) => return this.refuse(PLACEHOLDER),
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => {
                    this.done = true;
                    let scanned = this.search.feed(None, &mut mark);
                    if hit {
                        this.done = false;
                        return this.refuse(PLACEHOLDER);
                    }
                    if let Scanned::Copied(rest) = scanned
                        && !rest.is_empty()
                    {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

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

    #[test]
    fn scan_refuses_a_split_placeholder_and_the_cap() {
        let placeholder = b"sk-agentcred-XYZXYZXYZ";
        let verdict = Arc::new(Verdict::default());
        let body = ScanBody::new(
            chunks(&[b"hello sk-agentcred-XY", b"ZXYZXYZ there"]),
            patterns(placeholder),
            1000,
            verdict.clone(),
        );
        assert!(block_on(body.collect()).is_err());
        assert_eq!(verdict.get(), PLACEHOLDER);

        let verdict = Arc::new(Verdict::default());
        let body = ScanBody::new(
            chunks(&[b"0123456789", b"0123456789"]),
            patterns(placeholder),
            15,
            verdict.clone(),
        );
        assert!(block_on(body.collect()).is_err());
        assert_eq!(verdict.get(), TOO_LARGE);

        let verdict = Arc::new(Verdict::default());
        let body = ScanBody::new(
            chunks(&[b"clean ", b"sk-agentcred-XY"]),
            patterns(placeholder),
            1000,
            verdict.clone(),
        );
        let out = block_on(body.collect()).unwrap().to_bytes();
        assert_eq!(&out[..], b"clean sk-agentcred-XY");
        assert_eq!(verdict.get(), CLEAN);
    }
}
