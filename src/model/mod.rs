//! The domain's plain types: credential names and kinds, rotation policy (pure), what a
//! value looks like, and the settings a store records for its backends and OAuth clients.

pub mod credential;
pub mod provider;
pub mod rotation;
pub mod settings;
pub mod upstream;
pub mod value_info;
pub mod word;
