//! `.env` files in and out.
//!
//! Hand-written rather than `dotenvy`, because dotenvy expands `$VAR` references inside
//! values, and an importer of secrets must store `pa$$word` as typed, not as whatever the
//! importing shell's environment makes of it. Supported: `#` comments, blank lines,
//! `export ` prefixes, single quotes (literal), double quotes (`\n \r \t \" \\ \$` escapes,
//! may span lines), unquoted values (trailing ` # comment` removed, whitespace trimmed).
//! Errors give a line number, never a value.

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// One `KEY=value` pair. The value is zeroized on drop.
pub struct Pair {
    pub line: usize,
    pub key: String,
    pub value: Zeroizing<Vec<u8>>,
}

fn bad(line: usize, reason: &str) -> Error {
    Error::Usage(format!("line {line} of the .env file: {reason}"))
}

pub fn parse(text: &str) -> Result<Vec<Pair>> {
    let mut pairs = Vec::new();
    let mut rest = text;
    let mut line = 0;
    while !rest.is_empty() {
        line += 1;
        let (current, after) = rest.split_once('\n').unwrap_or((rest, ""));
        let trimmed = current.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            rest = after;
            continue;
        }
        let statement = trimmed
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(trimmed);
        let (key, value_start) = statement
            .split_once('=')
            .ok_or_else(|| bad(line, "expected KEY=value"))?;
        let key = key.trim_end().to_string();
        let value_start = value_start.trim_start();
        // `value_start` is a slice of `rest`: continue from there, so a quoted value may run
        // over several lines.
        let offset = value_start.as_ptr() as usize - rest.as_ptr() as usize;
        let from_value = &rest[offset..];
        let first_line = line;
        let (value, consumed) = match from_value.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let (value, close) = quoted(&from_value[1..], quote, first_line)?;
                // Just past the closing quote (both quotes are one byte).
                let after = close + 2;
                line += from_value[..after].matches('\n').count();
                let tail_end = from_value[after..]
                    .find('\n')
                    .map_or(from_value.len(), |i| after + i);
                let tail = from_value[after..tail_end].trim();
                if !(tail.is_empty() || tail.starts_with('#')) {
                    return Err(bad(line, "unexpected text after the closing quote"));
                }
                (value, tail_end)
            }
            _ => {
                let end = from_value.find('\n').unwrap_or(from_value.len());
                let raw = &from_value[..end];
                let raw = match raw.find(" #").or_else(|| raw.find("\t#")) {
                    Some(i) => &raw[..i],
                    None if raw.starts_with('#') => "",
                    None => raw,
                };
                (Zeroizing::new(raw.trim().as_bytes().to_vec()), end)
            }
        };
        pairs.push(Pair {
            line: first_line,
            key,
            value,
        });
        rest = from_value.get(consumed + 1..).unwrap_or("");
    }
    Ok(pairs)
}

/// The body of a quoted value; returns it and the index of the closing quote in `text`.
fn quoted(text: &str, quote: char, line: usize) -> Result<(Zeroizing<Vec<u8>>, usize)> {
    let mut value = Zeroizing::new(Vec::new());
    let mut chars = text.char_indices();
    let mut buf = [0u8; 4];
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Ok((value, i));
        }
        if c == '\\' && quote == '"' {
            let Some((_, escaped)) = chars.next() else {
                break;
            };
            let replacement = match escaped {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                '"' | '\\' | '$' | '\'' | '`' => escaped,
                // A backslash-newline inside double quotes is a line continuation to a
                // shell; the value keeps neither.
                '\n' => continue,
                other => {
                    value.push(b'\\');
                    other
                }
            };
            value.extend_from_slice(replacement.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    Err(bad(line, "the quoted value is never closed"))
}

/// `KEY='value'`, or, when the value has a single quote, double quotes with only the
/// characters a POSIX shell treats specially there escaped (`\` `"` `$` and backtick):
/// newlines and carriage returns stay literal. So the line means the same to a shell that
/// sources it (sh, bash, dash: nothing runs, the value arrives exactly) and to [`parse`].
/// A value with a NUL byte cannot be a shell variable: see [`shell_safe`].
pub fn dotenv_line(key: &str, value: &str) -> String {
    if !value.contains('\'') {
        return format!("{key}='{value}'\n");
    }
    let mut out = format!("{key}=\"");
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str("\"\n");
    out
}

/// Whether a value can be carried exactly by a shell variable (no NUL byte).
pub fn shell_safe(value: &str) -> bool {
    !value.contains('\0')
}

/// `export KEY='value'`, safe for any POSIX shell to `eval`.
pub fn shell_line(key: &str, value: &str) -> String {
    format!("export {key}='{}'\n", value.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, String::from_utf8(p.value.to_vec()).unwrap()))
            .collect()
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_the_common_forms() {
        let text = "# comment\n\nA=plain\nexport B=\"double \\\"q\\\" \\n $HOME\"\nC='single $x \\n'\nD=value # trailing\nE=\nF=\"multi\nline\"\nG=a#b\n";
        assert_eq!(
            parsed(text),
            kv(&[
                ("A", "plain"),
                ("B", "double \"q\" \n $HOME"),
                ("C", "single $x \\n"),
                ("D", "value"),
                ("E", ""),
                ("F", "multi\nline"),
                ("G", "a#b"),
            ])
        );
    }

    #[test]
    fn errors_name_the_line_not_the_value() {
        let err = parse("A=1\nB=\"secret-unclosed\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        assert!(parse("JUSTAWORD\n").is_err());
    }

    #[test]
    fn dotenv_and_shell_round_trip() {
        for value in [
            "plain",
            "it's",
            "two\nlines",
            "a \"b\" $c \\d",
            "",
            "it's `x` $(y) \\n\r\n",
        ] {
            let line = dotenv_line("K", value);
            assert_eq!(parsed(&line), kv(&[("K", value)]), "{line}");
        }
        assert_eq!(shell_line("K", "it's"), "export K='it'\\''s'\n");
    }
}

/// No input makes the .env parser panic, and what `dotenv_line` writes parses back to the
/// value exactly.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_text_parses_or_fails_cleanly(text in "\\PC*") {
            let _ = parse(&text);
        }

        #[test]
        fn env_shaped_text(lines in proptest::collection::vec("(export )?[A-Z_]{1,6} ?= ?(['\"#\\\\$`a-z \n\t]){0,12}", 0..8)) {
            let _ = parse(&lines.join("\n"));
        }

        #[test]
        fn dotenv_lines_round_trip(value in "[^\u{0}]{0,64}") {
            let line = dotenv_line("KEY", &value);
            let pairs = parse(&line).unwrap();
            prop_assert_eq!(pairs.len(), 1);
            prop_assert_eq!(pairs[0].value.as_slice(), value.as_bytes());
        }
    }
}
