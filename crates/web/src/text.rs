//! Text work the browser already knows how to do, so the app does not ship Rust's tables for
//! it: case mapping (`String.prototype.toLowerCase`/`toUpperCase`: Unicode's full mappings,
//! final sigma included, as Rust's `str::to_lowercase`/`to_uppercase`; about 20 KB of wasm)
//! and reading the numbers of form controls (`parseFloat`). Native builds (the unit tests) use
//! Rust's.

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

/// The number in an `<input type="range">`'s or `<input type="number">`'s value (or a
/// `<select>`'s with numbers for option values), as `s.parse::<f64>().ok()` reads it: the
/// browser keeps such a value a valid floating-point number or empty (HTML's value
/// sanitization), on which JavaScript's `parseFloat` and Rust's `f64::from_str` agree (both
/// round correctly). It spares the app Rust's float parser and its tables (about 10 KB).
pub(crate) fn number(s: &str) -> Option<f64> {
    #[cfg(target_arch = "wasm32")]
    {
        let v = js_sys::parse_float(s);
        (!v.is_nan()).then_some(v)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        s.parse().ok()
    }
}
