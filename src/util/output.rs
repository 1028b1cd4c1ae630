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

/// Whether a private key is in `text`: an age identity, an age plugin identity, or a PEM /
/// OpenSSH / PuTTY private key. Such text is never repeated in a message.
pub fn looks_like_private_key(text: &str) -> bool {
    text.contains("AGE-SECRET-KEY-1")
        || text.contains("AGE-PLUGIN-")
        || (text.contains("-----BEGIN") && text.contains("PRIVATE KEY"))
        || text.contains("PuTTY-User-Key-File")
}

/// Prefixes of well-known API keys and tokens.
const TOKEN_PREFIXES: &[&str] = &[
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "pk_live_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xapp-",
    "AKIA",
    "ASIA",
    "AIza",
    "ya29.",
    "hf_",
    "npm_",
    "pypi-",
    "shpat_",
    "dop_v1_",
    "SG.",
    "key-",
];

/// Whether an argument looks like a secret value rather than a name, flag, path or URL:
/// a private key, a well-known token prefix, a JWT, or a long string mixing upper case,
/// lower case and digits. Used to keep such text out of error messages; a false positive
/// only costs an error message its echo.
pub fn looks_secret(text: &str) -> bool {
    if looks_like_private_key(text) {
        return true;
    }
    let text = text.trim();
    if text.len() < 12 || text.chars().any(char::is_whitespace) || text.contains("://") {
        return false;
    }
    if TOKEN_PREFIXES.iter().any(|p| text.starts_with(p)) && text.len() >= 16 {
        return true;
    }
    if text.starts_with("eyJ") && text.matches('.').count() == 2 {
        return true;
    }
    let classes = [
        text.chars().any(|c| c.is_ascii_uppercase()),
        text.chars().any(|c| c.is_ascii_lowercase()),
        text.chars().any(|c| c.is_ascii_digit()),
    ];
    text.len() >= 20
        && classes.iter().all(|&c| c)
        && !text.starts_with(['-', '/', '.', '~'])
        && !text.contains('/')
}

fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}' // zero-width, LRM, RLM
        | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
        | '\u{2066}'..='\u{2069}' // bidi isolates
        | '\u{feff}'
        | '\u{061c}')
}

/// Up to [`LISTED`] names, else the first eight, how many more and, given `rest` (e.g.
/// "`agentcred list` shows them"), where to see them all: 10,000 names are not one line.
pub fn first_names<S: AsRef<str>>(names: &[S], rest: Option<&str>) -> String {
    let shown = shown_of(names.len());
    let mut text = (names.iter().take(shown).map(AsRef::as_ref))
        .collect::<Vec<&str>>()
        .join(", ");
    if names.len() > shown {
        text.push_str(&format!(", and {} more", names.len() - shown));
        if let Some(rest) = rest {
            text.push_str(&format!(" ({rest})"));
        }
    }
    text
}

/// How many names a list shows in full; past that, [`shown_of`] of them and a count.
pub const LISTED: usize = 10;

/// How many of `count` names to show: all up to [`LISTED`], else eight and a count ("and
/// 1 more" would say less than the name).
pub fn shown_of(count: usize) -> usize {
    if count > LISTED { 8 } else { count }
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

/// A [`Say`] that prints each line on stderr as it comes (the CLI, and the MCP server,
/// whose stdout is the protocol's).
pub fn say_on_stderr() -> Say {
    std::rc::Rc::new(|line: &str| eprintln!("{line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_of_names_are_cut_with_a_count() {
        let names: Vec<String> = (1..=10_000).map(|i| format!("key-{i}")).collect();
        assert_eq!(
            first_names(&names, Some("`agentcred due` lists them")),
            "key-1, key-2, key-3, key-4, key-5, key-6, key-7, key-8, and 9992 more (`agentcred due` lists them)"
        );
        assert_eq!(
            first_names(&names[..11], None),
            "key-1, key-2, key-3, key-4, key-5, key-6, key-7, key-8, and 3 more"
        );
        assert_eq!(first_names(&names[..10], Some("x")), names[..10].join(", "));
        assert_eq!(first_names::<&str>(&[], Some("x")), "");
    }

    #[test]
    fn secrets_are_told_from_names() {
        for secret in [
            "AGE-SECRET-KEY-1QQQQQQ",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----",
            "sk-live-51HxQ2eZvKYlo2C9x",
            "ghp_abcdefghijklmnop1234",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
            "Zx81Qw7Lm2Zx81Qw7Lm2Zx81",
        ] {
            assert!(looks_secret(secret), "{secret}");
        }
        for plain in [
            "openai-api-key",
            "OPENAI_API_KEY",
            "--rotate-every",
            "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgp",
            "https://auth.example.com/oauth/token",
            "/home/user/Documents/Key2024.pem",
            "90d",
            "a description with Spaces 123",
        ] {
            assert!(!looks_secret(plain), "{plain}");
        }
    }

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
