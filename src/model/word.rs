//! [`Word`]: a short text that recurs across a manifest (a history event's action and
//! author), held once. A store of 10,000 credentials has 10,000 `created` events by a
//! handful of `user@host`s: as strings they took 64 bytes of heap each and 48 inline;
//! read through a `Word` they share one allocation per distinct text.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable text, shared with the other `Word`s of the same text this thread read.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Word(Arc<str>);

/// The distinct texts read so far; past this many, new ones are not remembered (history
/// reasons are free text, and a hostile manifest must not grow the table without end).
const REMEMBERED: usize = 256;

thread_local! {
    static READ: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
}

impl Word {
    /// The shared `Word` for `text`.
    pub fn shared(text: &str) -> Word {
        READ.with(|read| {
            let mut read = read.borrow_mut();
            if let Some(known) = read.get(text) {
                return Word(Arc::clone(known));
            }
            let word: Arc<str> = Arc::from(text);
            if read.len() < REMEMBERED {
                read.insert(Arc::clone(&word));
            }
            Word(word)
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Word {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Word {
    fn from(text: &str) -> Word {
        Word::shared(text)
    }
}

impl From<String> for Word {
    fn from(text: String) -> Word {
        Word::shared(&text)
    }
}

impl PartialEq<str> for Word {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Word {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Word {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Word {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Word, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Word;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Word, E> {
                Ok(Word::shared(text))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_is_held_once_and_behaves_as_a_string() {
        let a: Word = serde_json::from_str("\"created\"").unwrap();
        let b: Word = toml::from_str::<std::collections::BTreeMap<String, Word>>("k = 'created'")
            .unwrap()
            .remove("k")
            .unwrap();
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "created");
        assert_eq!(a, b);
        assert_eq!(format!("[{a:<9}]"), "[created  ]");
        assert_eq!(format!("{a:?}"), "\"created\"");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"created\"");
        let escaped: Word = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(escaped.as_str(), "a\"b");
        assert!(serde_json::from_str::<Word>("3").is_err());
    }

    #[test]
    fn only_so_many_texts_are_remembered() {
        std::thread::spawn(|| {
            for i in 0..REMEMBERED + 50 {
                let _ = Word::shared(&format!("reason {i}"));
            }
            READ.with(|read| assert_eq!(read.borrow().len(), REMEMBERED));
            // One past the table is still a word, just not shared.
            let late = Word::shared("late");
            assert_eq!(late, "late");
            assert!(!Arc::ptr_eq(&late.0, &Word::shared("late").0));
        })
        .join()
        .unwrap();
    }
}
