//! A manifest read in pieces, for a command that needs one credential of a large store
//! (`get`): every line goes through the seal, only the header and the sections asked for
//! are kept, and the file is never held whole (a store of 10,000 credentials has a 3.7 MB
//! manifest). Anything out of the canonical layout (CRLF line ends, merge or conflict
//! markers, a seal line outside the header) or a seal that does not match gives `None`:
//! the caller then reads the file whole, which explains what is wrong.

use std::io::BufRead;

use super::*;
use crate::crypto::integrity::{StoreKey, tags_equal};
use crate::model::credential::CredentialName;

/// The header's text, read up to the first table; the reader stays at that table's line,
/// which is returned too (empty at the end of the file).
pub struct Head {
    pub text: String,
    pub header: Header,
    next: String,
}

/// Read the header. `Ok(None)` when it is not in canonical layout.
pub fn read_head(input: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut text = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if !read_line(input, &mut line)? || line.starts_with('[') {
            break;
        }
        text.push_str(&line);
    }
    if text.contains('\r') || text.starts_with(conflict::MARKER) || text.contains("\n<<<<<<< ") {
        return Ok(None);
    }
    let Ok(header) = fastpath::header(&text) else {
        return Ok(None);
    };
    Ok(Some(Head {
        text,
        header,
        next: line,
    }))
}

/// A line of UTF-8 text; `Ok(false)` at the end. Invalid UTF-8 is an error.
fn read_line(input: &mut impl BufRead, line: &mut String) -> std::io::Result<bool> {
    Ok(input.read_line(line)? > 0)
}

/// For a reader of one credential (`get`): keep every section but the other credentials'.
pub fn keeps(name: &CredentialName) -> impl FnMut(&str) -> Option<bool> {
    let own = format!("[credentials.{}]\n", fastpath::table_key(name.as_str()));
    move |section: &str| Some(!section.starts_with("[credentials.") || section.starts_with(&own))
}

/// Each credential's section parsed (without history) as it goes by and handed to `each`
/// (the readers of every credential: `exec`, `export`, `list`); `each` returning `false`
/// gives up. What `each` is given is not verified until [`read_rest`] returns the text.
pub fn hands(each: impl FnMut(String, Entry) -> bool) -> impl FnMut(&str) -> Option<bool> {
    hands_parsed(Keep::NoHistory, each)
}

/// How much of each credential's entry [`hands_parsed`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// All but the MAC (a write transaction: its commit signs every entry afresh).
    ForWrite,
    /// All but the history (`list`).
    NoHistory,
    /// Everything, the MAC too (`doctor --reseal` checks each entry's).
    Whole,
    /// What handing values on needs (`exec`, `export`; `doctor`'s checks of a sealed
    /// manifest need no more): no history, description or MAC.
    /// The MAC is 80 bytes on the heap per credential, and once the seal has verified
    /// nothing checks it on a read.
    ForValues,
}

/// As [`hands`], keeping what `keep` says.
pub fn hands_parsed(
    keep: Keep,
    mut each: impl FnMut(String, Entry) -> bool,
) -> impl FnMut(&str) -> Option<bool> {
    move |section: &str| {
        if !section.starts_with("[credentials.") {
            return Some(true);
        }
        let light = match keep {
            Keep::ForWrite | Keep::Whole => None,
            Keep::NoHistory => light::read_section(section, false),
            Keep::ForValues => light::read_section(section, true),
        };
        let (name, entry) = match light {
            Some(found) => found,
            None => {
                let table: EntryTable = toml::from_str(section).ok()?;
                let mut found = table.credentials.into_iter();
                let (name, mut entry) = found.next()?;
                if found.next().is_some() {
                    return None;
                }
                if !matches!(keep, Keep::ForWrite | Keep::Whole) {
                    entry.history = Vec::new();
                }
                if keep == Keep::ForValues {
                    entry.description = None;
                }
                if !matches!(keep, Keep::NoHistory | Keep::Whole) {
                    entry.mac = String::new();
                }
                (name.into_owned(), entry)
            }
        };
        each(name, entry).then_some(false)
    }
}

/// Where the next `\n[` in `bytes` starts (its newline). memchr's portable searcher, not
/// its vectorized ones: those detect the CPU's features at their first use in a process
/// (about eight `cpuid` instructions, each a trap to the hypervisor on a VM), and this is
/// the only use on `exec`'s path. The portable one is fast enough: `list` of 10,000
/// credentials (a 3.7 MB manifest) took 28.5 ms with it against 30.6 with `memmem`.
fn next_opener(bytes: &[u8]) -> Option<usize> {
    let brackets = memchr::arch::all::memchr::One::new(b'[');
    let mut from = 1;
    while from < bytes.len() {
        let at = from + brackets.find(&bytes[from..])?;
        if bytes[at - 1] == b'\n' {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}

/// Read the rest of the manifest after [`read_head`], checking the seal under `key` and
/// handing each section (a top-level table with the tables nested in it) to `section`,
/// which says whether to keep its text (`None`: give up). Returns the header and the kept
/// sections as one text, in the file's order, or `None` when the layout is not canonical,
/// `section` gave up or the seal does not match.
pub fn read_rest(
    input: &mut impl BufRead,
    head: Head,
    key: &StoreKey,
    section: &mut dyn FnMut(&str) -> Option<bool>,
) -> std::io::Result<Option<(String, Header)>> {
    let read = read_rest_with(input, head, Some(key), section)?;
    Ok(read.and_then(|read| read.sealed.then_some((read.text, read.header))))
}

/// [`read_rest`] without the store key, for a read that says it is unverified (no
/// identity at hand): the seal line must be there, but nothing checks it.
pub fn read_rest_unverified(
    input: &mut impl BufRead,
    head: Head,
    section: &mut dyn FnMut(&str) -> Option<bool>,
) -> std::io::Result<Option<(String, Header)>> {
    let read = read_rest_with(input, head, None, section)?;
    Ok(read.map(|read| (read.text, read.header)))
}

/// What [`read_rest_tagged`] read.
pub struct Tagged {
    /// The header and the kept sections.
    pub text: String,
    pub header: Header,
    /// The seal `key` makes over the file as read: the same file read again gives the same.
    pub tag: String,
    /// `tag` is the file's own seal.
    pub sealed: bool,
}

/// [`read_rest`] that hands back a manifest whose seal does not match too, with the seal
/// the key makes over it (`doctor --reseal`, which accepts such a manifest, reads it twice
/// and must know the second read is of the same file).
pub fn read_rest_tagged(
    input: &mut impl BufRead,
    head: Head,
    key: &StoreKey,
    section: &mut dyn FnMut(&str) -> Option<bool>,
) -> std::io::Result<Option<Tagged>> {
    read_rest_with(input, head, Some(key), section)
}

fn read_rest_with(
    input: &mut impl BufRead,
    head: Head,
    key: Option<&StoreKey>,
    section: &mut dyn FnMut(&str) -> Option<bool>,
) -> std::io::Result<Option<Tagged>> {
    let Head {
        mut text,
        header,
        next,
    } = head;
    let mut sealer = key.map(StoreKey::sealer);
    let mut seal = None;
    for line in text.split_inclusive('\n') {
        match line.strip_prefix(SEAL_PREFIX) {
            Some(rest) if seal.is_none() => seal = Some(rest.trim_end().to_string()),
            _ => sealer.iter_mut().for_each(|s| s.update(line.as_bytes())),
        }
    }
    let Some(seal) = seal.and_then(|s| s.strip_suffix('"').map(str::to_string)) else {
        return Ok(None);
    };
    // After the header every byte goes through the seal as it is read; complete sections
    // are cut off the front of `pending` (one ends where a line starting another begins).
    let mut pending = next.into_bytes();
    sealer.iter_mut().for_each(|s| s.update(&pending));
    let mut hand = |bytes: &[u8], text: &mut String| -> Option<()> {
        let piece = std::str::from_utf8(bytes).ok()?;
        if piece.contains('\r') || piece.starts_with("<<<<<<< ") || piece.contains("\n<<<<<<< ") {
            return None;
        }
        if section(piece)? {
            text.push_str(piece);
        }
        Some(())
    };
    // `pending[begin..]` is the section being read; `from` is where to look for the next.
    let (mut begin, mut from) = (0, 0);
    loop {
        loop {
            let Some(at) = next_opener(&pending[from..]) else {
                // Nothing here opens a section: look only at what comes next (and this
                // last byte, which may be the newline before one).
                from = pending.len().saturating_sub(1).max(begin);
                break;
            };
            let start = from + at + 1;
            let Some(len) = memchr::arch::all::memchr::One::new(b'\n').find(&pending[start..])
            else {
                // That line is not all here yet.
                from += at;
                break;
            };
            let opens = std::str::from_utf8(&pending[start..start + len]).is_ok_and(starts_section);
            if opens {
                if hand(&pending[begin..start], &mut text).is_none() {
                    return Ok(None);
                }
                begin = start;
            }
            from = start;
        }
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        sealer.iter_mut().for_each(|s| s.update(chunk));
        pending.drain(..begin);
        from -= begin;
        begin = 0;
        pending.extend_from_slice(chunk);
        let read = chunk.len();
        input.consume(read);
    }
    // A last line without its newline may open a section: the whole-file read decides.
    if !pending.is_empty() && !pending.ends_with(b"\n") {
        return Ok(None);
    }
    if begin < pending.len() && hand(&pending[begin..], &mut text).is_none() {
        return Ok(None);
    }
    let tag = sealer.map(|sealer| sealer.finish()).unwrap_or_default();
    Ok(Some(Tagged {
        text,
        header,
        sealed: key.is_some() && tags_equal(&seal, &tag),
        tag,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    /// Every credential parsed into `credentials`; `None` (read the file whole) for a name
    /// twice.
    fn parses<'m>(
        credentials: &'m mut BTreeMap<String, Entry>,
    ) -> impl FnMut(&str) -> Option<bool> + 'm {
        hands(move |name, entry| credentials.insert(name, entry).is_none())
    }

    proptest::proptest! {
        /// The portable search finds what memchr's `memmem` finds.
        #[test]
        fn next_opener_finds_what_memmem_finds(
            bytes in proptest::collection::vec(proptest::sample::select(vec![b'\n', b'[', b'a']), 0..64),
        ) {
            proptest::prop_assert_eq!(
                super::next_opener(&bytes),
                memchr::memmem::find(&bytes, b"\n[")
            );
        }
    }

    use super::*;
    use crate::crypto::integrity::StoreKey;

    fn read(text: &str, key: &StoreKey, name: &str) -> Option<String> {
        let name = CredentialName::parse(name).unwrap();
        let mut input = std::io::BufReader::with_capacity(16, text.as_bytes());
        let head = read_head(&mut input).unwrap()?;
        read_rest(&mut input, head, key, &mut keeps(&name))
            .unwrap()
            .map(|(t, _)| t)
    }

    /// An `age` secret in `env` with this description and one `created` event.
    fn described(env: &str, description: &str, at: Timestamp) -> Entry {
        Entry {
            description: Some(description.into()),
            sha256: Some("00".repeat(32)),
            history: vec![Event {
                at,
                action: "created".into(),
                by: "me@host".into(),
                reason: None,
            }],
            ..Entry::plain(env, at)
        }
    }

    fn sealed_store() -> (String, StoreKey) {
        let key = StoreKey::generate().unwrap();
        let mut m = Manifest::new("0123456789abcdef".into(), "0".repeat(64));
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for (name, env) in [("a", "A"), ("b.c", "BC"), ("d", "D")] {
            m.credentials
                .insert(name.into(), described(env, &format!("[{name}]"), at));
        }
        m.agents.insert(
            "bot".into(),
            Agent {
                allow: ["a", "b.c"].iter().map(|s| s.to_string()).collect(),
                program: Some("/usr/bin/bot".into()),
                program_sha256: Some("ab".repeat(32)),
                program_name: None,
                clean_env: true,
                mask: false,
                deny_overdue: false,
                sandbox: false,
                broker: false,
                created_at: at,
                created_by: "me@host".into(),
                commands: BTreeMap::new(),
                mac: String::new(),
            },
        );
        (m.render(&key), key)
    }

    fn json<T: Serialize>(value: &T) -> serde_json::Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn keeps_the_header_and_the_one_section_and_checks_the_seal() {
        let (text, key) = sealed_store();
        for name in ["a", "b.c", "d"] {
            let credential = CredentialName::parse(name).unwrap();
            let excerpt = read(&text, &key, name).unwrap();
            let expected = find_entry(&text, &credential).unwrap();
            let found = find_entry(&excerpt, &credential).unwrap();
            assert!(found.is_some(), "{name}");
            assert_eq!(json(&found), json(&expected), "{name}");
            assert_eq!(header(&excerpt).unwrap().seal, header(&text).unwrap().seal);
            assert_eq!(
                json(&find_defaults(&excerpt).unwrap()),
                json(&find_defaults(&text).unwrap())
            );
            assert!(excerpt.len() < text.len());
        }
        assert!(
            read(&text, &key, "zz").is_some(),
            "a missing name is not an error"
        );
    }

    #[test]
    fn every_credential_parses_as_the_whole_file_does() {
        let (text, key) = sealed_store();
        let whole = Manifest::parse_sealed_without_history(&text).unwrap();
        assert_eq!(whole.agents.len(), 1);
        // Pieces of every size, so that lines and sections are cut anywhere.
        for capacity in [1, 2, 7, 16, 100, 64 * 1024] {
            let mut credentials = BTreeMap::new();
            let mut input = std::io::BufReader::with_capacity(capacity, text.as_bytes());
            let head = read_head(&mut input).unwrap().unwrap();
            let (rest, _) = read_rest(&mut input, head, &key, &mut parses(&mut credentials))
                .unwrap()
                .unwrap();
            assert!(!rest.contains("[credentials."), "{rest}");
            assert!(rest.contains("[agents.bot]"), "{rest}");
            assert_eq!(json(&credentials), json(&whole.credentials), "{capacity}");
            let assembled = Manifest::assemble(&rest, credentials).unwrap();
            assert_eq!(json(&assembled), json(&whole), "{capacity}");
        }
        // Without its last newline the file is left to the whole-file read.
        let cut = text.strip_suffix('\n').unwrap();
        let mut input = std::io::BufReader::with_capacity(16, cut.as_bytes());
        let head = read_head(&mut input).unwrap().unwrap();
        let mut credentials = BTreeMap::new();
        assert!(
            read_rest(&mut input, head, &key, &mut parses(&mut credentials))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn each_keep_drops_the_same_fields_on_the_fast_path_and_the_toml_parser() {
        let key = StoreKey::generate().unwrap();
        let mut m = Manifest::new("0123456789abcdef".into(), "0".repeat(64));
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        // "fast" is read line by line; the quote sends "slow" to the TOML parser.
        for (name, description) in [("fast", "plain"), ("slow", "say \"hi\"")] {
            m.credentials.insert(
                name.into(),
                described(&name.to_uppercase(), description, at),
            );
        }
        let text = m.render(&key);
        let whole = Manifest::parse_sealed(&text).unwrap();
        for keep in [
            Keep::Whole,
            Keep::ForWrite,
            Keep::NoHistory,
            Keep::ForValues,
        ] {
            let mut read = BTreeMap::new();
            let mut input = std::io::BufReader::with_capacity(64, text.as_bytes());
            let head = read_head(&mut input).unwrap().unwrap();
            let mut each = hands_parsed(keep, |name, entry| read.insert(name, entry).is_none());
            read_rest(&mut input, head, &key, &mut each)
                .unwrap()
                .unwrap();
            drop(each);
            assert_eq!(read.len(), 2, "{keep:?}");
            for (name, entry) in &read {
                let mut expected = whole.credentials[name].clone();
                assert!(!expected.mac.is_empty() && expected.description.is_some());
                if !matches!(keep, Keep::ForWrite | Keep::Whole) {
                    expected.history.clear();
                }
                if keep == Keep::ForValues {
                    expected.description = None;
                }
                if !matches!(keep, Keep::NoHistory | Keep::Whole) {
                    expected.mac = String::new();
                }
                assert_eq!(json(entry), json(&expected), "{keep:?} {name}");
            }
        }
    }

    #[test]
    fn any_change_or_unusual_layout_reads_as_none() {
        let (text, key) = sealed_store();
        assert!(read(&text, &key, "a").is_some());
        let other = StoreKey::generate().unwrap();
        assert!(read(&text, &other, "a").is_none(), "another key");
        for at in 0..text.len() {
            let mut changed = text.clone().into_bytes();
            changed[at] = if changed[at] == b'x' { b'y' } else { b'x' };
            let Ok(changed) = String::from_utf8(changed) else {
                continue;
            };
            assert!(read(&changed, &key, "a").is_none(), "byte {at} changed");
        }
        assert!(read(&text.replace('\n', "\r\n"), &key, "a").is_none());
    }

    #[test]
    fn a_tagged_read_gives_the_same_tag_for_the_same_file_and_another_for_any_change() {
        let (text, key) = sealed_store();
        let tagged = |text: &str| {
            let mut input = std::io::BufReader::with_capacity(16, text.as_bytes());
            let head = read_head(&mut input).unwrap().unwrap();
            read_rest_tagged(&mut input, head, &key, &mut |_| Some(false))
                .unwrap()
                .map(|read| (read.tag, read.sealed))
        };
        let (tag, sealed) = tagged(&text).unwrap();
        assert!(sealed);
        assert_eq!(tagged(&text), Some((tag.clone(), true)));
        // One byte anywhere after the seal line: another tag, not sealed, still read.
        let seal_end = text.find(SEAL_PREFIX).unwrap();
        let seal_end = seal_end + text[seal_end..].find('\n').unwrap();
        for at in [seal_end + 2, text.len() / 2, text.len() - 3] {
            let mut bytes = text.clone().into_bytes();
            if !bytes[at].is_ascii_alphanumeric() {
                continue;
            }
            bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
            let changed = String::from_utf8(bytes).unwrap();
            if let Some((other, sealed)) = tagged(&changed) {
                assert_ne!(other, tag, "byte {at}");
                assert!(!sealed, "byte {at}");
            }
        }
        // An untagged read of a file whose seal does not match gives nothing.
        let mut input = std::io::BufReader::with_capacity(16, text.as_bytes());
        let head = read_head(&mut input).unwrap().unwrap();
        let other_key = StoreKey::generate().unwrap();
        assert!(
            read_rest(&mut input, head, &other_key, &mut |_| Some(false))
                .unwrap()
                .is_none()
        );
    }
}
