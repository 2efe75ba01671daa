//! The HTTP API, from the browser.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, Response};

async fn request(method: &str, url: &str) -> Result<serde_json::Value, String> {
    let init = RequestInit::new();
    init.set_method(method);
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|_| "the server could not be reached".to_string())?;
    let resp: Response = resp.dyn_into().map_err(|_| "bad response".to_string())?;
    let text = JsFuture::from(resp.text().map_err(|_| "bad response")?)
        .await
        .map_err(|_| "bad response".to_string())?
        .as_string()
        .unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if resp.ok() {
        Ok(body)
    } else {
        Err(body["details"]
            .as_str()
            .unwrap_or("the request failed")
            .to_string())
    }
}

pub async fn post(url: &str) -> Result<serde_json::Value, String> {
    request("POST", url).await
}

pub async fn get(url: &str) -> Result<serde_json::Value, String> {
    request("GET", url).await
}

pub fn navigate(path: &str) {
    if let Some(w) = web_sys::window() {
        let _ = w.location().set_href(path);
    }
}

pub fn location_path() -> String {
    web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default()
}

pub fn copy_to_clipboard(text: &str) {
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(text);
    }
}

pub fn js_err(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}
