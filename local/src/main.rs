//! `cargo run --release`: the local stack on 127.0.0.1:3000 (`--port N` or `PORT`).
//! `… -- watch INPUT_FILE [--url URL]` and `… -- replay FILES… [--url URL]`: the terminal tools.

use std::process::ExitCode;

use mcpush_local::cli::{self, Ending};
use mcpush_local::{FUNCTIONS, Options, local, local_dynamodb};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    mcpush_core::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(command) = args.first().filter(|c| matches!(c.as_str(), "watch" | "replay")) {
        return tool(command, &args[1..]).await;
    }
    let args = Args::parse()?;
    let options = Options::from_env()?;
    let (upload_bucket, s3_dir) = (options.upload_bucket.clone(), options.s3_dir.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stack = match &args.dynamodb_endpoint {
        Some(endpoint) => {
            let stack = local_dynamodb(&base, options, endpoint).await?;
            println!("MediaConvert push notifier, local stack (DynamoDB at {endpoint}, its stream polled)");
            stack
        }
        None => {
            println!("MediaConvert push notifier, local stack (embedded store)");
            local(&base, options)
        }
    };
    println!("  demo page     {base}/");
    println!("  REST          {base}/media/job_id?input_file=F   {base}/media/status?job_id=J");
    println!("  WebSocket     {}/ws", base.replace("http://", "ws://"));
    println!("  @connections  {base}/@connections/{{connectionId}}");
    for f in FUNCTIONS {
        println!("  invoke        {base}/2015-03-31/functions/{f}/invocations");
    }
    println!("  upload (S3)   PUT {base}/s3/{bucket}/{{key}}   files in {dir}", bucket = upload_bucket, dir = s3_dir.display());
    println!("  MediaConvert  {base}/2017-08-29/ (simulated: GetJobTemplate, CreateJob)");
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
    Ok(ExitCode::SUCCESS)
}

/// `watch` and `replay`; `--url` defaults to the local stack.
async fn tool(command: &str, args: &[String]) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut url = "http://127.0.0.1:3000".to_owned();
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => url = args.next().ok_or("--url needs a value")?.clone(),
            other if other.starts_with("--url=") => url = other[6..].to_owned(),
            _ => rest.push(arg.clone()),
        }
    }
    let mut out = std::io::stderr();
    match command {
        "watch" => {
            let [input_file] = rest.as_slice() else { return Err("usage: watch INPUT_FILE [--url URL]".into()) };
            match cli::watch(&url, input_file, std::time::Duration::from_secs(2), &mut out).await? {
                Ending::Complete(_) => Ok(ExitCode::SUCCESS),
                Ending::Failed(_) => Ok(ExitCode::from(1)),
            }
        }
        _ => {
            if rest.is_empty() {
                return Err("usage: replay FILES... [--url URL]".into());
            }
            let rejected = cli::replay(&url, &rest, &mut out).await?;
            Ok(if rejected == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
    }
}

struct Args {
    port: u16,
    dynamodb_endpoint: Option<String>,
}

impl Args {
    /// `[--port N] [--dynamodb-endpoint URL]`; `PORT` and `AWS_ENDPOINT_URL_DYNAMODB` are the defaults.
    fn parse() -> Result<Self, String> {
        let mut port = match std::env::var("PORT") {
            Ok(p) => p.parse().map_err(|_| format!("PORT={p:?} is not a port number"))?,
            Err(_) => 3000,
        };
        let mut dynamodb_endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok().filter(|v| !v.is_empty());
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"));
            match name.as_str() {
                "--port" => port = value()?.parse().map_err(|_| "--port needs a number".to_owned())?,
                "--dynamodb-endpoint" => dynamodb_endpoint = Some(value()?),
                "-h" | "--help" => {
                    println!(
                        "usage: mcpush-local [--port N] [--dynamodb-endpoint URL]\n\
                         env: PORT, AWS_ENDPOINT_URL_DYNAMODB, ALLOWED_ORIGINS, STREAM_BATCH_SIZE, STREAM_BATCH_WINDOW_MS,\n\
                         LOCAL_S3_DIR, UPLOAD_BUCKET, SIMULATOR_STEP_MS, SIMULATOR_CHAOS, SIMULATOR_FAIL_PATTERN, SIMULATOR_SEED,\n\
                         the functions' variables (table names, OUTPUT_DESTINATION, MAX_SUBSCRIPTIONS_PER_CONNECTION, PUSH_*, ...), RUST_LOG"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?} (try --help)")),
            }
        }
        Ok(Self { port, dynamodb_endpoint })
    }
}
