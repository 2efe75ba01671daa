//! # keyboardia-core
//!
//! The sans-IO heart of Keyboardia. Everything that is a *rule* lives here; the hosts (the native
//! server in `crates/server`, the Cloudflare Durable Object in `crates/worker`) and the browser
//! only move bytes, keep time and store things.
//!
//! Start reading at:
//! - [`model`]: the session (tracks, steps, parameter locks, transport) and its validation,
//! - [`protocol`]: the wire messages, one enum per direction, and the edit vocabulary,
//! - [`live`]: the live-session state machine a host drives with `handle(now, input)`,
//!   `poll_output()` and `poll_timeout()`,
//! - [`client`]: the client half of the sync (optimistic edits, confirmation by mutation id,
//!   resume), used by the browser and by the convergence tests,
//! - [`clock`]: clock-sync math and the shared transport's time-to-step mapping,
//! - [`api`]: the HTTP API's rules (request bodies, documents, errors), shared by both hosts,
//! - [`limits`]: every limit, defined once,
//! - [`music`]: keys and scales, and the pattern tools (rotate, shift, euclid, ...),
//! - [`catalogue`]: every instrument (id, name, category, kind, range, licence), defined once,
//!   and [`manifest`]: the format of a sampled instrument's zones,
//! - [`storage`]: what the hosts persist, with a schema version and migrations,
//! - [`undo`]: undo and redo of a player's own edits, never overwriting someone else's,
//! - [`effects`]: every effect parameter (master chain, track sends and filter), defined once,
//! - [`sorted`]: stable sorting with one copy of the sort (the browser app's size).
//!
//! The crate never reads a clock, opens a socket or spawns a thread; time is always an argument
//! (milliseconds since the Unix epoch, as `f64`). It builds for `wasm32-unknown-unknown`.

#![forbid(unsafe_code)]

pub mod api;
pub mod catalogue;
pub mod client;
pub mod clock;
pub mod effects;
pub mod limits;
pub mod live;
pub mod manifest;
pub mod model;
pub mod music;
pub mod protocol;
pub mod rate;
pub mod sorted;
pub mod storage;
mod tagged;
pub mod undo;

pub use live::{Input, LiveConfig, LiveSession, Output};
pub use model::{Lock, SessionMeta, SessionState, Track, Transport};
pub use protocol::{Applied, Change, ClientMessage, Edit, ErrorCode, ServerMessage};
