//! agentcred: a credential manager for AI agents and bots.
//!
//! The binary is a thin shell over this library (see `cli`): the store, its integrity, the
//! identity, and exec are plain modules that tests and the man-page generator can reach.
//!
//! Layers only look down: `cli` -> features (`exec`, `rotate`, `doctor`, `broker`, `sandbox`,
//! `mcp` over `policy`, `oauth`, `audit`, `mask`, `scan`, `envfile`) -> `store` -> `backend`
//! -> `manifest` -> `crypto` -> `model` -> `error`/`exit` -> `util`. tests/layers.rs fails on
//! an upward import or an import cycle.
#![forbid(unsafe_code)]

pub(crate) mod audit;
pub(crate) mod backend;
pub(crate) mod broker;
pub mod cli;
pub(crate) mod crypto;
pub(crate) mod doctor;
pub(crate) mod envfile;
pub(crate) mod error;
pub(crate) mod exec;
pub(crate) mod exit;
pub(crate) mod gitmerge;
pub(crate) mod manifest;
pub(crate) mod mask;
pub(crate) mod mcp;
pub(crate) mod model;
pub(crate) mod oauth;
pub(crate) mod policy;
pub(crate) mod rotate;
pub(crate) mod sandbox;
pub(crate) mod scan;
pub(crate) mod store;
pub(crate) mod util;
