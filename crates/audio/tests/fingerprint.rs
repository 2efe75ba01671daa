//! The native side of the sampler's native-versus-wasm check (see
//! `examples/sampler_fingerprint.rs`), and its stability: two renders, same bits.

mod common {
    pub mod fingerprint;
}

#[test]
fn sampled_render_fingerprint() {
    let a = common::fingerprint::fingerprint();
    assert_eq!(a, common::fingerprint::fingerprint());
    println!("sampler fingerprint (native): {a}");
    // Checked equal to the wasm build's on 2026-12-02. When the sampler's sound changes on
    // purpose, update this and compare with the wasm export again (see the example).
    assert_eq!(
        a, 9_466_771_115_570_960_093,
        "the sampler renders differently"
    );
}
