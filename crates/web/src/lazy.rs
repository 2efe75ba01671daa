//! Parts of the app in wasm modules of their own, fetched the first time they are used (the
//! build splits the wasm at the functions marked `wasm_split`, see xtask's `split_app`): the
//! sheets and menus, sample loading, the landing page, starting the sound. A module that cannot
//! be fetched (the network is away) is an error the caller shows, never a crash; the next use
//! tries again.

use leptos::prelude::*;
use std::future::Future;
use std::pin::Pin;

/// A split module could not be fetched.
pub(crate) use leptos::wasm_split::SplitLoaderError as NotLoaded;

/// Work a split function starts, awaited by its caller.
pub(crate) type Task<T> = Pin<Box<dyn Future<Output = T>>>;

/// A split function's view, or a line saying it could not be loaded.
pub(crate) fn view_or_notice(r: Result<AnyView, NotLoaded>) -> AnyView {
    r.unwrap_or_else(|_| {
        view! {
            <p class="load-failed" role="alert">
                "This part of the app could not be loaded: check the connection and try again."
            </p>
        }
        .into_any()
    })
}

/// A split task's result, its load failure as a JavaScript error.
pub(crate) async fn run<T>(
    task: impl Future<Output = Result<Task<Result<T, wasm_bindgen::JsValue>>, NotLoaded>>,
) -> Result<T, wasm_bindgen::JsValue> {
    match task.await {
        Ok(t) => t.await,
        Err(_) => Err(wasm_bindgen::JsValue::from_str(
            "part of the app could not be loaded (check the connection)",
        )),
    }
}
