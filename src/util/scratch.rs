//! A read buffer for data that may hold secrets (a program's output before masking), wiped
//! when dropped: only as far as reads have filled it.
//!
//! `Zeroizing<Vec<u8>>` wipes the whole buffer, byte by byte with volatile writes, and so
//! first faults in every page of it: for `exec --mask`'s 1 MiB relay buffers that was
//! about half a millisecond per relay for a program that printed nothing (perf:
//! `do_anonymous_page` under the relay threads). A page no read has written to holds no
//! data to wipe.

use zeroize::Zeroize;

pub struct Scratch {
    buf: Vec<u8>,
    /// How far reads have written.
    used: usize,
}

impl Scratch {
    pub fn new(len: usize) -> Scratch {
        Scratch {
            buf: vec![0; len],
            used: 0,
        }
    }

    /// All of it, to read into; say with [`Scratch::filled`] how much a read wrote.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The first `n` bytes, which a read has just written.
    pub fn filled(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.buf.len());
        self.used = self.used.max(n);
        &self.buf[..n]
    }
}

impl Scratch {
    fn wipe(&mut self) {
        self.buf[..self.used].zeroize();
        self.used = 0;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.wipe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_reads_wrote_is_wiped() {
        let mut scratch = Scratch::new(16);
        scratch.space()[..5].copy_from_slice(b"sk-12");
        assert_eq!(scratch.filled(5), b"sk-12");
        scratch.space()[..3].copy_from_slice(b"abc");
        assert_eq!(scratch.filled(3), b"abc");
        assert_eq!(scratch.used, 5, "the high-water mark stays");
        scratch.wipe();
        assert_eq!(scratch.buf, vec![0; 16]);
    }
}
