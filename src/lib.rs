//! agentcred: a credential manager for AI agents and bots.
//!
//! The binary is a thin shell over this library (see `cli`): the store, its integrity, the
//! identity, and exec are plain modules that tests and the man-page generator can reach.
//!
//! Layers only look down: `cli` -> features (`exec`, `oauth`, `doctor`, `policy`, `scan`,
//! `mask`, `audit`, `envfile`, `rotate`) -> `store` -> `backend` -> `manifest` -> `model`
//! and `crypto` -> `error`/`exit` -> `util`. tests/layers.rs fails on an upward import.
#![forbid(unsafe_code)]

pub mod audit;
pub mod backend;
pub mod cli;
pub mod crypto;
pub mod doctor;
pub mod envfile;
pub mod error;
pub mod exec;
pub mod exit;
pub mod manifest;
pub mod mask;
pub mod model;
pub mod oauth;
pub mod policy;
pub mod rotate;
pub mod scan;
pub mod store;
pub mod util;
