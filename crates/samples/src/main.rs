//! `keyboardia-samples prepare --out DIR [--cache DIR]`: prepares the sampled instrument
//! library (see the library crate's documentation).

use std::path::PathBuf;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (default_out, default_cache) = keyboardia_samples::default_dirs();
    let mut out = default_out;
    let mut cache = default_cache;
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("prepare") => {}
        Some("inspect") => {
            // `inspect BANK PROGRAM`: the zones of one preset, as the pipeline sees them.
            let n: Vec<u16> = it.filter_map(|a| a.parse().ok()).collect();
            let (data, _) = keyboardia_samples::fetch(&cache)?;
            let sf = keyboardia_samples::sf3::SoundFont::parse(data)?;
            let p = sf
                .preset(n[0], n[1])
                .ok_or_else(|| anyhow::anyhow!("no such preset"))?;
            println!("{}", p.name);
            for z in sf.zones(p)? {
                let h = &sf.samples[z.sample];
                println!(
                    "{z:?} {} loop {}..{} rate {}",
                    h.name, h.loop_start, h.loop_end, h.rate
                );
            }
            return Ok(());
        }
        _ => bail!("usage: keyboardia-samples prepare --out DIR [--cache DIR]"),
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = it.next().map(PathBuf::from).unwrap_or(out),
            "--cache" => cache = it.next().map(PathBuf::from).unwrap_or(cache),
            other => bail!("unknown argument {other:?}"),
        }
    }
    let r = keyboardia_samples::prepare(&out, &cache)?;
    if r.up_to_date {
        println!(
            "{}: the sample library is up to date (same recipe and source); nothing to do",
            out.display()
        );
        return Ok(());
    }
    println!(
        "{:<28} {:>5} {:>9} {:>9} {:>7}",
        "instrument", "zones", "KiB", "loud dB", "gain"
    );
    for (id, zones, bytes, loud, gain) in &r.table {
        println!(
            "{id:<28} {zones:>5} {:>9.1} {loud:>9.1} {gain:>+7.1}",
            *bytes as f64 / 1024.0
        );
    }
    println!(
        "prepared {} instruments, {} FLAC files, {:.1} MiB, in {:.1} s into {}",
        r.instruments,
        r.files,
        r.flac_bytes as f64 / (1024.0 * 1024.0),
        r.seconds,
        out.display()
    );
    Ok(())
}
