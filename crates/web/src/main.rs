//! # keyboardia-web
//!
//! The browser app, in Rust with Leptos (client-side rendered). `main` only mounts; the app's
//! root is [`app`] (it says where each part of the page lives), the live connection in [`live`] (the core's sync client over a WebSocket),
//! sound in [`audio`] (the engine in an AudioWorklet), HTTP in [`api`].
//! Built by `cargo xtask build-web`; served by the native server (`--web-dir`).

mod api;
mod app;
mod audio;
mod controls;
mod effects_panel;
mod grid;
mod header;
mod key;
mod lazy;
mod live;
mod pages;
mod pattern_tools;
mod piano_roll;
mod picker;
mod record;
mod ruler;
mod sampled;
mod sheets;
mod text;
mod track_row;
mod transport;

fn main() {
    leptos::mount::mount_to_body(app::App);
}
