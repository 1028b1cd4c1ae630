//! The forms a value is looked for in: the value itself and the encodings it usually
//! leaks in.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::MIN_LEN;

/// The value and the encoded forms of it that are looked for, each at least [`MIN_LEN`]
/// bytes, without duplicates:
/// - the bytes themselves, and with `\n` as `\r\n` (what a terminal's output processing
///   makes of a multi-line value);
/// - base64, standard and URL-safe alphabets, with and without padding, and the part of it
///   that is fixed when the value sits at offset 1 or 2 of a 3-byte group inside a longer
///   encoded text (an `Authorization: Basic` header encodes `user:value`), and the value
///   encoded from the start of a file wrapped at 76 columns (GNU `base64`) and 64 (PEM), with `\n` or `\r\n`;
/// - percent-encoding (RFC 3986: all but `A-Za-z0-9-._~` as `%XX`), with upper- and
///   lowercase hex, with spaces as `+` (HTML forms), keeping `!'()*` as JavaScript's
///   `encodeURIComponent` does, and keeping `/` as Python's `urllib.parse.quote` does;
/// - JSON-escaped, as serde_json and as Python's `json.dumps` (ASCII only) write it;
/// - all of the above also for the value without its trailing newline(s), which is how a
///   value stored with one is usually printed.
pub fn forms(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    if value.len() < MIN_LEN {
        return out;
    }
    add_forms(value, &mut out);
    // A value stored with its trailing newline is usually printed without it.
    let trimmed = value
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(&value[..0], |end| &value[..=end]);
    if trimmed.len() != value.len() && trimmed.len() >= MIN_LEN {
        add_forms(trimmed, &mut out);
    }
    out
}

/// The columns `base64` wraps at: GNU coreutils' default, and PEM's.
const WRAP_COLUMNS: [usize; 2] = [76, 64];

fn add_forms(value: &[u8], out: &mut Vec<Zeroizing<Vec<u8>>>) {
    let mut add = |form: Vec<u8>| {
        let form = Zeroizing::new(form);
        if form.len() >= MIN_LEN && !out.iter().any(|f| **f == *form) {
            out.push(form);
        }
    };
    add(value.to_vec());
    if value.contains(&b'\n') {
        // A terminal's output processing turns every `\n` into `\r\n`, also one that
        // already follows a `\r` (a CRLF value arrives as `\r\r\n`); a program may also
        // write CRLF itself.
        // Sized exactly: a vector that grows leaves a copy behind that is not wiped.
        let newlines = value.iter().filter(|&&b| b == b'\n').count();
        let mut crlf = Vec::with_capacity(value.len() + newlines);
        let mut onlcr = Vec::with_capacity(value.len() + newlines);
        for (i, &b) in value.iter().enumerate() {
            if b == b'\n' {
                onlcr.push(b'\r');
                if i == 0 || value[i - 1] != b'\r' {
                    crlf.push(b'\r');
                }
            }
            crlf.push(b);
            onlcr.push(b);
        }
        add(crlf);
        add(onlcr);
    }
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        add(engine.encode(value).into_bytes());
    }
    for (alphabet, engine) in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD].into_iter().enumerate() {
        for offset in 0..3 {
            let mut shifted = Zeroizing::new(vec![0u8; offset]);
            shifted.extend_from_slice(value);
            let encoded = Zeroizing::new(engine.encode(&*shifted).into_bytes());
            // Character i holds bits [6i, 6i+6); keep those made of the value's bits only.
            let first = (8 * offset).div_ceil(6);
            let end = (8 * (offset + value.len())) / 6;
            let fixed = &encoded[first..end];
            if offset == 0 && alphabet == 0 {
                // `base64` and PEM wrap lines: the value encoded from the start of a file
                // (or followed by anything, a newline included), wrapped.
                for columns in WRAP_COLUMNS {
                    if fixed.len() > columns {
                        add(wrap(fixed, columns, b"\n"));
                        add(wrap(fixed, columns, b"\r\n"));
                    }
                }
            }
            add(fixed.to_vec());
        }
    }
    for style in [
        Percent::Strict { upper: true },
        Percent::Strict { upper: false },
        Percent::Form,
        Percent::Component,
        Percent::Path,
    ] {
        add(percent_encode(value, style));
    }
    if let Ok(text) = std::str::from_utf8(value) {
        for ascii in [false, true] {
            add(json_escape(text, ascii).into_bytes());
        }
    }
}

/// `text` split into lines of `columns` characters joined by `eol` (no `eol` at the end).
fn wrap(text: &[u8], columns: usize, eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / columns * eol.len());
    for (i, line) in text.chunks(columns).enumerate() {
        if i > 0 {
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(line);
    }
    out
}

/// The inside of a JSON string: what serde_json writes, or, with `ascii`, Python's
/// `json.dumps` default (everything past ASCII as `\uXXXX`, lowercase hex, surrogate
/// pairs past the BMP).
fn json_escape(text: &str, ascii: bool) -> String {
    use std::fmt::Write;
    // Room for the worst case (a control character: 6 bytes): a string that grows leaves
    // a copy behind that is not wiped.
    let mut out = String::with_capacity(text.len() * 6);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ascii && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Percent {
    Strict {
        upper: bool,
    },
    /// `application/x-www-form-urlencoded`: space as `+`.
    Form,
    /// JavaScript's `encodeURIComponent`: also keeps `!'()*`.
    Component,
    /// Python's `urllib.parse.quote` default: also keeps `/`.
    Path,
}

fn percent_encode(value: &[u8], style: Percent) -> Vec<u8> {
    const UPPER: &[u8; 16] = b"0123456789ABCDEF";
    const LOWER: &[u8; 16] = b"0123456789abcdef";
    let digits = match style {
        Percent::Strict { upper: false } => LOWER,
        _ => UPPER,
    };
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (matches!(style, Percent::Component)
                && matches!(b, b'!' | b'\'' | b'(' | b')' | b'*'))
            || (matches!(style, Percent::Path) && b == b'/');
        if keep {
            out.push(b);
        } else if b == b' ' && matches!(style, Percent::Form) {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 15)],
            ]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_forms() {
        let f: Vec<String> = forms(b"ab cd/ef!")
            .iter()
            .map(|f| String::from_utf8(f.to_vec()).unwrap())
            .collect();
        for expected in [
            "ab cd/ef!",
            "YWIgY2QvZWYh",
            "ab%20cd%2Fef%21",
            "ab%20cd%2fef%21",
            "ab+cd%2Fef%21",
            "ab%20cd%2Fef!",
        ] {
            assert!(f.contains(&expected.to_string()), "{expected} not in {f:?}");
        }
        // Inside a longer base64 text: "x:" + value, and "xy:" + value.
        let inner = |prefix: &[u8]| {
            let mut v = prefix.to_vec();
            v.extend_from_slice(b"ab cd/ef!");
            STANDARD.encode(v)
        };
        for prefix in [&b"x:"[..], b"xy:", b"wxyz:"] {
            let encoded = inner(prefix);
            assert!(
                f.iter()
                    .any(|form| encoded.contains(form.as_str()) && form.len() >= 9),
                "{encoded}"
            );
        }
        assert!(forms(b"short").is_empty());
        let crlf = forms(b"line one\nline two");
        assert!(crlf.iter().any(|f| **f == b"line one\r\nline two"[..]));
    }
}
