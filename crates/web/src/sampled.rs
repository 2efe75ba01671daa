//! Sampled instruments in the browser: fetching a catalogue instrument's manifest and FLAC
//! zones from `/api/samples/<id>/...`, decoding them in Rust (`decode_flac`: the same integer
//! decoder the native export uses, so the worklet plays bit-identical PCM; the browser's
//! `decodeAudioData` is not deterministic) and handing them to the worklet.
//!
//! One engine slot per instrument, shared by every track that plays it, assigned in the order
//! instruments are first needed and kept for the page's life (a player who hears a session
//! never reloads anything another player's edit introduces). Only the zones a note needs are
//! fetched: the notes the session's tracks play, and on demand the note an edit, an audition or
//! the piano roll asks for (a new player downloads what the session plays, not whole
//! instruments). Until a note's own zone arrives the engine plays it from the nearest loaded
//! zone of the same instrument, at the right pitch (`SampledInstrument::zone_for`), never
//! another instrument. [`progress`] tells the UI how far each instrument's needed zones are.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use keyboardia_audio::control;
use keyboardia_audio::engine::MAX_INSTRUMENTS;
use keyboardia_audio::offline::pattern_from_session_with;
use keyboardia_audio::sampler::{decode_flac, SampledInstrument};
use keyboardia_core::catalogue::{self, Kind};
use keyboardia_core::manifest::Manifest;
use keyboardia_core::model::SessionState;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// How far an instrument has loaded: of the files the notes asked of it so far (the session's,
/// auditions'), how many have their PCM in the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub loaded: usize,
    pub total: usize,
    /// Its manifest has arrived (the engine has its description).
    pub described: bool,
    /// The manifest or a file could not be fetched or decoded.
    pub failed: bool,
}

impl Progress {
    pub fn done(&self) -> bool {
        self.described && self.loaded >= self.total
    }
}

struct Slot {
    slot: u8,
    manifest: Option<Rc<Manifest>>,
    /// Keys and velocities the session (or an audition) plays: only their zones are fetched.
    wanted: BTreeSet<(u8, u8)>,
    /// The library's version (zone URLs carry it), once the manifest has arrived.
    version: String,
    /// A loader task is fetching this instrument's files.
    pumping: bool,
    /// Files fetched or being fetched.
    requested: BTreeSet<String>,
    /// Zones with PCM in the engine.
    loaded: BTreeSet<usize>,
    /// Its manifest or a file could not be loaded: it no longer holds the others back.
    failed: bool,
}

thread_local! {
    static SLOTS: RefCell<HashMap<String, Slot>> = RefCell::new(HashMap::new());
    static PROGRESS: ArcRwSignal<BTreeMap<String, Progress>> = ArcRwSignal::new(BTreeMap::new());
    /// What to call when an instrument becomes playable (the session's pattern is sent again);
    /// set by [`sync`], so an instrument first loaded for an audition and then chosen still
    /// gets its track mapped.
    static ON_CHANGE: RefCell<Option<Rc<dyn Fn()>>> = RefCell::new(None);
    /// The sampled instruments the session's tracks play now (never evicted).
    static IN_USE: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
    /// Bytes downloaded and `performance.now()` when every instrument in use could first play
    /// every note the session plays.
    static READY: std::cell::Cell<Option<(f64, f64)>> = const { std::cell::Cell::new(None) };
    /// Bytes of sample files (manifests included) this page downloaded.
    static BYTES: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

/// Loading progress per instrument id (only instruments this page has started loading). A
/// reference-counted signal: it lives as long as the page, not as long as a component.
pub fn progress() -> ArcRwSignal<BTreeMap<String, Progress>> {
    PROGRESS.with(|p| p.clone())
}

/// Bytes of sample files this page downloaded so far.
pub fn bytes_downloaded() -> f64 {
    BYTES.with(|b| b.get())
}

/// The engine slot of a sampled instrument, once the worklet has its description (tracks that
/// play it are silent before that, never another sound in its place).
pub fn slot_of(id: &str) -> Option<u8> {
    SLOTS.with(|s| {
        s.borrow()
            .get(id)
            .filter(|x| x.manifest.is_some())
            .map(|x| x.slot)
    })
}

/// Bytes downloaded and `performance.now()` when every note the session's sampled tracks play
/// first had its zone loaded (None until then).
pub fn ready() -> Option<(f64, f64)> {
    READY.with(|r| r.get())
}

/// Whether some instrument still waits for a zone a track (or an audition) plays.
fn wanted_pending(s: &HashMap<String, Slot>) -> bool {
    s.values().any(|x| {
        !x.failed
            && match &x.manifest {
                None => true,
                Some(m) => m
                    .zones_for(x.wanted.iter().copied())
                    .iter()
                    .any(|z| !x.loaded.contains(z)),
            }
    })
}

/// Every (id, slot) assigned so far.
pub fn slots() -> Vec<(String, u8)> {
    SLOTS.with(|s| {
        let mut v: Vec<_> = s
            .borrow()
            .iter()
            .map(|(k, x)| (k.clone(), x.slot))
            .collect();
        keyboardia_core::sorted::sort_by_key(&mut v, |x| x.1);
        v
    })
}

/// Whether zone for (`key`, `velocity`) of instrument `id` has its PCM in the engine.
pub fn note_ready(id: &str, key: u8, velocity: u8) -> bool {
    SLOTS.with(|s| {
        s.borrow().get(id).is_some_and(|x| {
            x.manifest
                .as_ref()
                .and_then(|m| m.zones_for([(key, velocity)]).into_iter().next())
                .is_some_and(|z| x.loaded.contains(&z))
        })
    })
}

/// Starts loading every sampled instrument the session's tracks play (those not loaded yet),
/// the zones of the notes they play first. `changed` runs whenever an instrument becomes
/// playable (send the pattern again).
pub fn sync(s: &SessionState, changed: impl Fn() + Clone + 'static) {
    ON_CHANGE.with(|c| *c.borrow_mut() = Some(Rc::new(changed)));
    // The engine's view of each track (transposes, locks) tells which notes it plays.
    let p = pattern_from_session_with(s, |_| None, |_| None);
    let mut wanted: BTreeMap<&str, Vec<(u8, u8)>> = BTreeMap::new();
    for (i, t) in s.tracks.iter().enumerate() {
        let Some(e) = catalogue::lookup(&t.instrument).filter(|e| e.kind == Kind::Sampled) else {
            continue;
        };
        wanted
            .entry(e.id)
            .or_default()
            .extend(p.tracks[i].notes(e.base));
    }
    IN_USE.with(|u| {
        // Extended, not collected: collecting a set sorts (keyboardia_core::sorted).
        let mut u = u.borrow_mut();
        u.clear();
        u.extend(wanted.keys().map(|k| k.to_string()));
    });
    for (id, notes) in wanted {
        ensure(id, notes);
    }
}

/// Makes sure instrument `id` (a sampled catalogue id) is loading, with the zones of `notes`
/// before the others. Returns false if it is not a sampled instrument or no slot is free.
pub fn ensure(id: &str, notes: Vec<(u8, u8)>) -> bool {
    let Some(entry) = catalogue::lookup(id).filter(|e| e.kind == Kind::Sampled) else {
        return false;
    };
    let start = SLOTS.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(x) = s.get_mut(id) {
            x.wanted.extend(notes);
            // Its loader finished: a note the engine has no zone for yet starts it again.
            let more = !x.pumping && !x.failed && x.manifest.is_some() && has_unrequested(x);
            if more {
                x.pumping = true;
            }
            return Some(more);
        }
        if s.len() >= MAX_INSTRUMENTS {
            // Full (many auditions): the instrument no track plays that came first goes.
            let in_use = IN_USE.with(|u| u.borrow().clone());
            let victim = s
                .iter()
                .filter(|(k, _)| !in_use.contains(*k))
                .min_by_key(|(_, x)| x.slot)
                .map(|(k, _)| k.clone())?;
            let old = s.remove(&victim).expect("just found");
            crate::audio::post_json(&control::unload_message(old.slot));
            progress().update(|p| {
                p.remove(&victim);
            });
        }
        let slot = (0..MAX_INSTRUMENTS as u8).find(|n| s.values().all(|x| x.slot != *n))?;
        // Extended, not collected: collecting a set sorts (keyboardia_core::sorted).
        let mut wanted = BTreeSet::new();
        wanted.extend(notes);
        s.insert(
            id.to_string(),
            Slot {
                slot,
                manifest: None,
                wanted,
                version: String::new(),
                pumping: true,
                requested: BTreeSet::new(),
                loaded: BTreeSet::new(),
                failed: false,
            },
        );
        Some(true)
    });
    let fresh = SLOTS.with(|s| s.borrow().get(id).is_some_and(|x| x.manifest.is_none()));
    match start {
        None => false,
        Some(false) => {
            update_progress(id);
            true
        }
        Some(true) => {
            let (id, base) = (entry.id, entry.base);
            if fresh {
                progress().update(|p| {
                    p.insert(id.to_string(), Progress::default());
                });
            } else {
                update_progress(id);
            }
            wasm_bindgen_futures::spawn_local(async move {
                let r = if fresh {
                    crate::lazy::run(load_task(id, base)).await
                } else {
                    crate::lazy::run(pump_task(id)).await
                };
                if let Err(e) = r {
                    web_sys::console::warn_1(&JsValue::from_str(&format!(
                        "instrument {id}: {}",
                        crate::api::js_err(e)
                    )));
                    SLOTS.with(|s| {
                        if let Some(x) = s.borrow_mut().get_mut(id) {
                            x.failed = true;
                            x.pumping = false;
                        }
                    });
                    progress().update(|p| {
                        p.entry(id.to_string()).or_default().failed = true;
                    });
                }
            });
            true
        }
    }
}

async fn fetch_bytes(url: &str) -> Result<Vec<u8>, JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await?
        .dyn_into()?;
    if !resp.ok() {
        return Err(JsValue::from_str(&format!("{url}: HTTP {}", resp.status())));
    }
    let buf = JsFuture::from(resp.array_buffer()?).await?;
    let bytes = js_sys::Uint8Array::new(&buf).to_vec();
    BYTES.with(|b| b.set(b.get() + bytes.len() as f64));
    Ok(bytes)
}

/// Whether a zone some wanted note needs has a file not fetched yet.
fn has_unrequested(x: &Slot) -> bool {
    x.manifest.as_ref().is_some_and(|m| {
        m.zones_for(x.wanted.iter().copied())
            .into_iter()
            .any(|z| !x.requested.contains(&m.zones[z].file))
    })
}

/// The files the wanted notes need, and how many of them have their PCM in the engine.
fn wanted_files(x: &Slot) -> (usize, usize) {
    let Some(m) = &x.manifest else {
        return (0, 0);
    };
    let mut files = BTreeMap::new();
    for z in m.zones_for(x.wanted.iter().copied()) {
        *files.entry(m.zones[z].file.as_str()).or_insert(false) |= x.loaded.contains(&z);
    }
    (files.values().filter(|l| **l).count(), files.len())
}

/// Brings instrument `id`'s progress up to date.
fn update_progress(id: &str) {
    let Some(p) = SLOTS.with(|s| {
        s.borrow().get(id).map(|x| {
            let (loaded, total) = wanted_files(x);
            Progress {
                loaded,
                total,
                described: x.manifest.is_some(),
                failed: x.failed,
            }
        })
    }) else {
        return;
    };
    progress().update(|m| {
        if m.get(id) != Some(&p) {
            m.insert(id.to_string(), p);
        }
    });
}

/// The next file a wanted note needs, with its slot and zones; None (and the loader stops)
/// once every such file is fetched or being fetched.
fn next_file(id: &str) -> Option<(u8, String, Vec<usize>)> {
    SLOTS.with(|s| {
        let mut s = s.borrow_mut();
        let x = s.get_mut(id)?;
        let m = x.manifest.clone();
        let file = m.as_ref().and_then(|m| {
            m.zones_for(x.wanted.iter().copied())
                .into_iter()
                .map(|z| m.zones[z].file.clone())
                .find(|f| !x.requested.contains(f))
        });
        let (Some(m), Some(file)) = (m, file) else {
            x.pumping = false;
            return None;
        };
        x.requested.insert(file.clone());
        let zones = (0..m.zones.len())
            .filter(|&z| m.zones[z].file == file)
            .collect();
        Some((x.slot, file, zones))
    })
}

/// [`load`] and [`pump`] (and the FLAC decoder) are in a wasm module of their own, fetched with
/// the first sampled instrument, not with the page.
#[leptos::wasm_split::wasm_split(samples, wasm_split_path = ::leptos::wasm_split, fallible)]
fn load_task(
    id: &'static str,
    base: u8,
) -> Result<crate::lazy::Task<Result<(), JsValue>>, crate::lazy::NotLoaded> {
    Ok(Box::pin(load(id, base)))
}

#[leptos::wasm_split::wasm_split(samples, wasm_split_path = ::leptos::wasm_split, fallible)]
fn pump_task(
    id: &'static str,
) -> Result<crate::lazy::Task<Result<(), JsValue>>, crate::lazy::NotLoaded> {
    Ok(Box::pin(pump(id)))
}

/// Loads instrument `id` into slot `base`: its manifest, then its files (`pump`).
async fn load(id: &'static str, base: u8) -> Result<(), JsValue> {
    // The instrument's document: its manifest, and the library's version, which the zone URLs
    // carry so the files can be cached for good (a new library is new URLs).
    let bytes = fetch_bytes(&format!("/api/instruments/{id}")).await?;
    let mut doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let version = doc["version"].as_str().unwrap_or_default().to_string();
    let mut manifest = doc["manifest"].take();
    if let Some(zones) = manifest.get_mut("zones").and_then(|z| z.as_array_mut()) {
        for z in zones {
            if let Some(o) = z.as_object_mut() {
                o.remove("url");
            }
        }
    }
    let m = Manifest::from_json(manifest.to_string().as_bytes())
        .map_err(|e| JsValue::from_str(&e.0))?;
    if m.id != id {
        return Err(JsValue::from_str("the manifest names another instrument"));
    }
    // Evicted while the manifest was on its way: nothing to do.
    let Some(slot) = SLOTS.with(|s| s.borrow().get(id).map(|x| x.slot)) else {
        return Ok(());
    };
    let inst = SampledInstrument::from_manifest(&m, base, |_| None);
    crate::audio::post_json(&control::instrument_message(slot, &inst));
    SLOTS.with(|s| {
        if let Some(x) = s.borrow_mut().get_mut(id) {
            x.manifest = Some(Rc::new(m));
            x.version = version;
        }
    });
    update_progress(id);
    if let Some(f) = ON_CHANGE.with(|c| c.borrow().clone()) {
        f();
    }
    pump(id).await
}

/// Fetches the files the wanted notes of instrument `id` need, one at a time, until none is
/// left (a later note that needs another file starts it again: [`ensure`]).
async fn pump(id: &'static str) -> Result<(), JsValue> {
    while let Some((slot, file, zones)) = next_file(id) {
        let version = SLOTS.with(|s| s.borrow().get(id).map(|x| x.version.clone()));
        let Some(version) = version else {
            return Ok(());
        };
        let bytes = fetch_bytes(&format!("/api/samples/{id}/{file}?v={version}")).await?;
        let (pcm, _rate) = decode_flac(&bytes).map_err(|e| JsValue::from_str(&e))?;
        // Evicted meanwhile (its slot may hold another instrument now): stop.
        if SLOTS.with(|s| s.borrow().get(id).map(|x| x.slot)) != Some(slot) {
            return Ok(());
        }
        for &z in &zones {
            let arr = js_sys::Int16Array::from(pcm.as_slice());
            let msg = control::zone_message_header(slot, z);
            crate::audio::post_with_pcm(&msg, &arr);
        }
        let all_ready = SLOTS.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(x) = s.get_mut(id) {
                x.loaded.extend(zones.iter().copied());
            }
            !wanted_pending(&s)
        });
        if all_ready && ready().is_none() {
            let now = web_sys::window()
                .and_then(|w| w.performance())
                .map_or(0.0, |p| p.now());
            READY.with(|r| r.set(Some((bytes_downloaded(), now))));
        }
        update_progress(id);
    }
    Ok(())
}
