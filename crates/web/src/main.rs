//! # keyboardia-web
//!
//! The browser app, in Rust with Leptos (client-side rendered). `main` only mounts; the pages
//! are in [`app`], the live connection in [`live`] (the core's sync client over a WebSocket),
//! sound in [`audio`] (the engine in an AudioWorklet), HTTP in [`api`].
//! Built by `cargo xtask build-web`; served by the native server (`--web-dir`).

mod api;
mod app;
mod audio;
mod live;
mod picker;
mod record;
mod sampled;

fn main() {
    leptos::mount::mount_to_body(app::App);
}
