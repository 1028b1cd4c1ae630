//! agentcred: a credential manager for AI agents and bots.
//!
//! The binary is a thin shell over this library (see `cli`): the store, its integrity, the
//! identity, and exec are plain modules that tests and the man-page generator can reach.
#![forbid(unsafe_code)]

pub mod age_key;
pub mod agent;
pub mod audit;
pub mod backend;
pub mod broker;
pub mod cli;
pub mod complete;
pub mod context;
pub mod credential;
pub mod doctor;
pub mod envfile;
pub mod error;
pub mod exec;
pub mod exit;
pub mod filecred;
pub mod fsutil;
pub mod hardening;
pub mod http;
pub mod identity;
pub mod integrity;
pub mod keychain;
pub mod manifest;
pub mod mask;
pub mod mcp;
pub mod oauth;
pub mod output;
pub mod provider;
pub mod recipient;
pub mod rotate;
pub mod rotation;
pub mod scan;
pub mod spawn;
pub mod state;
pub mod store;
pub mod unlock_cache;
pub mod upstream;
pub mod value_info;
