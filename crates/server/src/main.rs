//! The `keyboardia` binary: parses configuration, sets up logging, runs the server.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use keyboardia_server::{run, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if config.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    }
    match serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One sentence saying what is wrong and what to do; never a backtrace.
            eprintln!("keyboardia: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join(".write-test"), b""))
        .and_then(|()| std::fs::remove_file(dir.join(".write-test")))
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot use the data folder {} ({e}); pick a writable one with --data-dir",
                dir.display()
            )
        })?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                "the address is already in use (is Keyboardia already running?); stop that, or pick another with --addr HOST:PORT".to_string()
            } else {
                format!("{e}; pick another address with --addr HOST:PORT")
            };
            anyhow::anyhow!("cannot listen on {}: {hint}", config.addr)
        })?;
    let addr = listener.local_addr()?;
    tracing::info!(data_dir = %config.data_dir.display(), "storage ready");
    println!("Keyboardia is running: open http://{addr}/");
    run(config, listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
