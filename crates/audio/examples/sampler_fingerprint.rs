//! The sampler's render fingerprint as a wasm export, to compare with the native one
//! (`cargo test -p keyboardia-audio --test fingerprint -- --nocapture` prints it):
//! `cargo build -p keyboardia-audio --no-default-features --example sampler_fingerprint
//! --target wasm32-unknown-unknown --release`, then in node:
//! `new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(PATH)), {})
//! .exports.fingerprint()` (a BigInt).
#![allow(dead_code)]

#[path = "../tests/common/fingerprint.rs"]
mod fingerprint;

#[no_mangle]
pub extern "C" fn fingerprint() -> u64 {
    fingerprint::fingerprint()
}
