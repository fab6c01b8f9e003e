//! `cargo run --release`: the local stack on 127.0.0.1:3000 (`--port N` or `PORT`).

use std::sync::Arc;

use mcpush_core::adapters::memory::MemoryJobStore;
use mcpush_core::domain::AllowedOrigins;
use mcpush_local::{FUNCTIONS, LOCAL_ALLOWED_ORIGINS, Stack, router};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    mcpush_core::telemetry::init();
    let port = port()?;
    let origins = AllowedOrigins::parse(&std::env::var("ALLOWED_ORIGINS").unwrap_or_else(|_| LOCAL_ALLOWED_ORIGINS.into()))?;
    let stack = Stack { store: Arc::new(MemoryJobStore::default()), origins: Arc::new(origins) };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("MediaConvert push notifier, local stack (in-memory store)");
    println!("  REST     {base}/media/job_id?input_file=F   {base}/media/status?job_id=J");
    for f in FUNCTIONS {
        println!("  invoke   {base}/2015-03-31/functions/{f}/invocations");
    }
    println!("Ctrl-C stops it.");
    axum::serve(listener, router(stack))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn port() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => return args.next().and_then(|p| p.parse().ok()).ok_or_else(|| "--port needs a number".to_owned()),
            other if other.starts_with("--port=") => return other[7..].parse().map_err(|_| "--port needs a number".to_owned()),
            "-h" | "--help" => {
                println!("usage: mcpush-local [--port N]   (env: PORT, ALLOWED_ORIGINS, RUST_LOG)");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|_| format!("PORT={p:?} is not a port number")),
        Err(_) => Ok(3000),
    }
}
