//! Helpers with no knowledge of credentials: files, hashing, HTTP policy, output escaping,
//! process hardening.

pub mod fs;
pub mod hardening;
pub mod hash;
pub mod host;
pub mod http;
pub mod output;
pub mod prompt;
pub mod scratch;
