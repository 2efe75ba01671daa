//! Case mapping by the browser (`String.prototype.toLowerCase`/`toUpperCase`: Unicode's full
//! mappings, final sigma included, as Rust's `str::to_lowercase`/`to_uppercase`), so the app
//! does not ship Rust's Unicode case tables (about 20 KB of wasm). Native builds (the unit
//! tests) use Rust's.

/// `s.to_lowercase()`.
pub(crate) fn lower(s: &str) -> String {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::JsString::from(s).to_lower_case().into()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        s.to_lowercase()
    }
}

/// `s.to_uppercase()`.
pub(crate) fn upper(s: &str) -> String {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::JsString::from(s).to_upper_case().into()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        s.to_uppercase()
    }
}
