//! Who a store's secrets are encrypted to: age X25519 recipients (`age1...`), the common
//! case, and SSH public keys (`ssh-ed25519`, `ssh-rsa`) through age's `ssh` support, so a
//! teammate or a CI runner can be added with the key they already have.
//!
//! `recipients.txt` holds one per line, with `#` comments, in the format `age -R` reads. An
//! SSH key keeps its comment (`user@host`) on its line, for people; the comment is not part
//! of the recipient.

use std::fmt;

use age::x25519;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, STANDARD_NO_PAD as BASE64_NO_PAD};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::util::output::escape;

/// One recipient of a store.
#[derive(Clone)]
pub enum Recipient {
    X25519(x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl Recipient {
    /// Parse a recipient as typed by a user or read from `recipients.txt`. An SSH key may
    /// carry its comment after the key.
    pub fn parse(input: &str) -> Result<Recipient> {
        let text = input.trim();
        // A recipient is public; what is typed in its place may not be (an identity, a
        // private key, a value pasted into the wrong command): only a public-key-shaped
        // argument is repeated.
        let public_shape = ["age1", "ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-"]
            .iter()
            .any(|p| text.starts_with(p));
        let shown = if public_shape && !crate::util::output::looks_like_private_key(text) {
            escape(&shorten(text))
        } else {
            "(not repeated here: it may be a secret)".into()
        };
        let invalid = |reason: String| Error::InvalidValue {
            what: "recipient",
            input: shown.clone(),
            reason,
        };
        if text.starts_with("age1") {
            return text
                .parse::<x25519::Recipient>()
                .map(Recipient::X25519)
                .map_err(|_| invalid("it is not a valid age X25519 recipient".into()));
        }
        if text.starts_with("ssh-")
            || text.starts_with("ecdsa-")
            || text.starts_with("sk-ssh-")
            || text.starts_with("sk-ecdsa-")
        {
            use age::ssh::ParseRecipientKeyError as E;
            return text
                .parse::<age::ssh::Recipient>()
                .map(Recipient::Ssh)
                .map_err(|e| {
                    invalid(match e {
                        E::RsaModulusTooSmall => "the RSA key is shorter than 2048 bits".into(),
                        E::RsaModulusTooLarge => "the RSA key is longer than age supports".into(),
                        E::Unsupported(kind) => format!(
                            "{} keys are not supported; use ssh-ed25519 or ssh-rsa",
                            escape(&kind)
                        ),
                        _ => "it is not a valid SSH public key".into(),
                    })
                });
        }
        Err(invalid(
            "expected an age recipient (age1...) or an SSH public key (ssh-ed25519 ..., ssh-rsa ...); a secret is never an argument: pipe the value or use --from-file"
                .into(),
        ))
    }

    /// For an encryptor.
    pub fn as_age(&self) -> &dyn age::Recipient {
        match self {
            Recipient::X25519(r) => r,
            Recipient::Ssh(r) => r,
        }
    }

    /// `x25519`, `ssh-ed25519` or `ssh-rsa`.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipient::X25519(_) => "x25519",
            Recipient::Ssh(age::ssh::Recipient::SshEd25519(..)) => "ssh-ed25519",
            Recipient::Ssh(age::ssh::Recipient::SshRsa(..)) => "ssh-rsa",
        }
    }

    /// A short form for people and history lines: `age1qyqszqgp...7xk3p2` for an age
    /// recipient, `ssh-ed25519 SHA256:...` (as `ssh-keygen -l` prints it) for an SSH key.
    pub fn short(&self) -> String {
        let full = self.to_string();
        match self {
            Recipient::X25519(_) => {
                let head: String = full.chars().take(12).collect();
                let tail: String = full.chars().skip(full.len().saturating_sub(6)).collect();
                format!("{head}...{tail}")
            }
            Recipient::Ssh(_) => {
                let blob = full
                    .split(' ')
                    .nth(1)
                    .and_then(|b| BASE64.decode(b).ok())
                    .unwrap_or_default();
                format!(
                    "{} SHA256:{}",
                    self.kind(),
                    BASE64_NO_PAD.encode(Sha256::digest(&blob))
                )
            }
        }
    }

    /// Whether `query` names this recipient: the recipient itself (an SSH key's comment
    /// ignored), or its short form or SSH fingerprint.
    pub fn matches(&self, query: &str) -> bool {
        let query = query.trim();
        if let Ok(other) = Recipient::parse(query) {
            return other == *self;
        }
        let short = self.short();
        query == short || (query.starts_with("SHA256:") && short.ends_with(&format!(" {query}")))
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl fmt::Display for Recipient {
    /// The canonical form: `age1...`, or `ssh-ed25519 BASE64` without a comment.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::X25519(r) => r.fmt(f),
            Recipient::Ssh(r) => r.fmt(f),
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 80 {
        let head: String = text.chars().take(77).collect();
        format!("{head}...")
    } else {
        text.to_string()
    }
}

/// One recipient line of `recipients.txt`: the recipient, and the comment an SSH key
/// carried after it.
pub struct Line {
    pub recipient: Recipient,
    pub comment: Option<String>,
}

/// Parse the text of `recipients.txt`. `Err` holds the 1-based number of the first line
/// that is not a recipient (the line itself is never quoted).
pub fn parse_file(text: &str) -> std::result::Result<Vec<Line>, usize> {
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let recipient = Recipient::parse(line).map_err(|_| index + 1)?;
        let comment = match recipient {
            Recipient::Ssh(_) => line
                .splitn(3, ' ')
                .nth(2)
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from),
            Recipient::X25519(_) => None,
        };
        lines.push(Line { recipient, comment });
    }
    Ok(lines)
}

/// The text of a new `recipients.txt`.
pub fn render_file(recipients: &[Recipient]) -> String {
    let mut text = String::from(HEADER);
    for r in recipients {
        text.push_str(&r.to_string());
        text.push('\n');
    }
    text
}

const HEADER: &str = "# age recipients of this agentcred store, one per line.\n";

/// `recipients.txt` with one more recipient at the end (comments and other lines kept). An
/// SSH key keeps its comment, with control characters removed.
pub fn add_to_file(text: &str, recipient: &Recipient, comment: Option<&str>) -> String {
    let mut out = if text.trim().is_empty() {
        HEADER.to_string()
    } else {
        text.to_string()
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&recipient.to_string());
    if let (Recipient::Ssh(_), Some(comment)) = (recipient, comment) {
        let clean: String = comment.chars().filter(|c| !c.is_control()).collect();
        let clean = clean.trim();
        if !clean.is_empty() {
            out.push(' ');
            out.push_str(clean);
        }
    }
    out.push('\n');
    out
}

/// `recipients.txt` without the lines naming `recipient` (everything else kept).
pub fn remove_from_file(text: &str, recipient: &Recipient) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let is_it = !trimmed.is_empty()
            && !trimmed.starts_with('#')
            && Recipient::parse(trimmed).is_ok_and(|r| r == *recipient);
        if !is_it {
            out.push_str(line);
        }
    }
    out
}

/// The comment after an SSH key as typed (`ssh-ed25519 AAAA... bob@laptop`).
pub fn comment_of(input: &str) -> Option<&str> {
    let input = input.trim();
    if !input.starts_with("ssh-") {
        return None;
    }
    input
        .splitn(3, ' ')
        .nth(2)
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL+H96OIaxJVL2ooJRsk3wujUdTNwm6fpyyTMPYenEfo";

    #[test]
    fn parses_age_and_ssh_recipients() {
        let age = x25519::Identity::generate().to_public().to_string();
        let r = Recipient::parse(&age).unwrap();
        assert_eq!(r.kind(), "x25519");
        assert_eq!(r.to_string(), age);
        assert!(r.short().starts_with(&age[..12]) && r.short().contains("..."));
        let ssh = Recipient::parse(&format!("{ED25519} bob@laptop")).unwrap();
        assert_eq!(ssh.kind(), "ssh-ed25519");
        assert_eq!(ssh.to_string(), ED25519);
        assert!(
            ssh.short().starts_with("ssh-ed25519 SHA256:"),
            "{}",
            ssh.short()
        );
        assert!(ssh.matches(ED25519));
        assert!(ssh.matches(&ssh.short()));
        assert!(ssh.matches(ssh.short().split(' ').nth(1).unwrap()));
        assert!(!ssh.matches(&age));
        for bad in [
            "",
            "age1notakey",
            "ssh-ed25519 AAAA",
            "ecdsa-sha2-nistp256 AAAA",
            "hello",
        ] {
            let err = Recipient::parse(bad).err().unwrap();
            assert_eq!(err.exit(), crate::exit::Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn files_keep_comments_and_lose_only_the_removed_line() {
        let a = Recipient::parse(&x25519::Identity::generate().to_public().to_string()).unwrap();
        let b = Recipient::parse(ED25519).unwrap();
        let text = render_file(std::slice::from_ref(&a));
        let text = add_to_file(&text, &b, Some("bob@laptop\x1b[31m"));
        let lines = parse_file(&text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].comment.as_deref(), Some("bob@laptop[31m"));
        let text = remove_from_file(&text, &a);
        let lines = parse_file(&text).unwrap();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].recipient == b);
        assert!(text.starts_with('#'));
        assert_eq!(parse_file("# x\nage1bad\n").err(), Some(2));
    }
}
