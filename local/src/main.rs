//! `cargo run --release`: the local stack on 127.0.0.1:3000 (`--port N` or `PORT`).

use mcpush_local::{FUNCTIONS, Options, local};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    mcpush_core::telemetry::init();
    let port = port()?;
    let options = Options::from_env()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stack = local(&base, options);
    println!("MediaConvert push notifier, local stack (embedded store)");
    println!("  REST       {base}/media/job_id?input_file=F   {base}/media/status?job_id=J");
    println!("  WebSocket  {}/ws", base.replace("http://", "ws://"));
    println!("  @connections {base}/@connections/{{connectionId}}");
    for f in FUNCTIONS {
        println!("  invoke     {base}/2015-03-31/functions/{f}/invocations");
    }
    println!("Ctrl-C stops it.");

    // Graceful shutdown waits for open connections; WebSocket clients may never close, so the
    // stack stops at most two seconds after Ctrl-C.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    let (mut graceful, mut deadline) = (stopped.clone(), stopped);
    let server = axum::serve(listener, stack.router).with_graceful_shutdown(async move {
        let _ = graceful.changed().await;
    });
    tokio::select! {
        result = server => result?,
        _ = async {
            let _ = deadline.changed().await;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        } => {}
    }
    Ok(())
}

fn port() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => return args.next().and_then(|p| p.parse().ok()).ok_or_else(|| "--port needs a number".to_owned()),
            other if other.starts_with("--port=") => return other[7..].parse().map_err(|_| "--port needs a number".to_owned()),
            "-h" | "--help" => {
                println!("usage: mcpush-local [--port N]   (env: PORT, ALLOWED_ORIGINS, STREAM_BATCH_SIZE, STREAM_BATCH_WINDOW_MS, the functions' variables, RUST_LOG)");
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
