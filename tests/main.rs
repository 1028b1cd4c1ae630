//! The integration tests: one binary (as ripgrep does), a module per area, sharing the
//! `common` helper (a temp HOME and store, and the real `agentcred` binary run in them).

mod common;

mod agents;
mod audit;
mod broker;
mod commands;
mod completions;
mod concurrency;
mod doctor;
mod exec;
mod filecred;
mod generated;
mod gitmerge;
mod hardening;
mod integrity;
mod interop;
mod keychain;
mod layers;
mod login;
mod mask;
mod mcp;
mod newuser;
mod oauth;
mod recipients;
mod rotation;
mod sandbox;
mod scan;
mod scripting;
mod signals;
mod unlock;
mod unlock_cache;
mod value_cache;
mod values;
mod vault;
mod wording;
