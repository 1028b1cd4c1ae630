//! Keys and seals: the age identity and its recipients, the store key and its MACs, the
//! unlock cache, and the OS keychain that can hold the identity.

pub mod age_key;
pub mod identity;
pub mod integrity;
pub mod os_keychain;
pub mod recipient;
pub mod unlock_cache;
