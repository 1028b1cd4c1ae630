//! Everything that formats text for people: escaping, tables, relative dates.
//!
//! Names and descriptions come from users and from a store that may be shared, so they are
//! escaped before they reach a terminal: a control character or a bidi override in a name
//! must not be able to rewrite the line it is printed on.

use std::io::{self, IsTerminal, Write};

use jiff::{Timestamp, Unit};

/// Escape control, bidi and other invisible characters as `\u{..}`, so untrusted text is
/// printed as what it is.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_invisible(c) || c == '\\' {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}' // zero-width, LRM, RLM
        | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
        | '\u{2066}'..='\u{2069}' // bidi isolates
        | '\u{feff}'
        | '\u{061c}')
}

/// Whether colour may be used on stdout (a terminal, and `NO_COLOR` unset).
pub fn color_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && io::stdout().is_terminal()
}

/// Write rows as a left-aligned table with two spaces between columns. `rows` is called
/// twice, once to measure and once to print, so a large listing is never held in memory.
pub fn table<I, R>(out: &mut impl Write, header: &[&str], rows: impl Fn() -> I) -> io::Result<()>
where
    I: Iterator<Item = R>,
    R: AsRef<[String]>,
{
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows() {
        for (width, cell) in widths.iter_mut().zip(row.as_ref()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = String::new();
    let mut write_line =
        |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
            line.clear();
            for (i, (cell, width)) in cells.zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(
                    ' ',
                    width.saturating_sub(cell.chars().count()),
                ));
            }
            writeln!(out, "{}", line.trim_end())
        };
    write_line(out, &mut header.iter().copied())?;
    for row in rows() {
        write_line(out, &mut row.as_ref().iter().map(String::as_str))?;
    }
    Ok(())
}

/// `2027-01-31`, the date part of a timestamp in UTC.
pub fn date(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d").to_string()
}

/// `in 12d`, `3d ago`, `now`: whole days, or hours under a day, minutes under an hour.
pub fn relative(at: Timestamp, now: Timestamp) -> String {
    let seconds = at.as_second() - now.as_second();
    let abs = seconds.unsigned_abs();
    let text = if abs < 60 {
        return "now".into();
    } else if abs < 3600 {
        format!("{}m", abs / 60)
    } else if abs < 86_400 {
        format!("{}h", abs / 3600)
    } else {
        format!("{}d", abs / 86_400)
    };
    if seconds >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A timestamp as RFC 3339 at second precision, for JSON output.
pub fn rfc3339(at: Timestamp) -> String {
    at.round(Unit::Second)
        .unwrap_or(at)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Where the library's lines for people go (warnings, notes, `-v` detail): the caller
/// decides, and `cli` prints them to stderr. The library never prints them itself.
pub type Say = std::rc::Rc<dyn Fn(&str)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_and_bidi() {
        assert_eq!(escape("abc"), "abc");
        assert_eq!(escape("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(escape("a\nb"), "a\\u{a}b");
        assert_eq!(escape("a\\b"), "a\\\\b");
    }

    #[test]
    fn relative_dates() {
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let later: Timestamp = "2026-01-22T00:00:00Z".parse().unwrap();
        let earlier: Timestamp = "2026-01-07T00:00:00Z".parse().unwrap();
        assert_eq!(relative(later, now), "in 12d");
        assert_eq!(relative(earlier, now), "3d ago");
        assert_eq!(relative(now, now), "now");
        let soon: Timestamp = "2026-01-10T00:59:59Z".parse().unwrap();
        assert_eq!(relative(soon, now), "in 59m");
        let hours: Timestamp = "2026-01-09T21:00:00Z".parse().unwrap();
        assert_eq!(relative(hours, now), "3h ago");
    }

    #[test]
    fn table_aligns() {
        let mut out = Vec::new();
        let rows = [
            vec!["a".to_string(), "A".to_string()],
            vec!["longer".to_string(), "B".to_string()],
        ];
        table(&mut out, &["NAME", "ENV"], || rows.iter()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME    ENV\na       A\nlonger  B\n"
        );
    }
}
