//! `cargo run --release`: the local stack on 127.0.0.1:3000 (`serve`, the default), and the
//! terminal tools `watch`, `upload`, `replay`, `redrive`, `token` and `events`; `--help` on each.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mcpush_local::tools::common::{MAX_SDK_RESPONSE_BYTES, ResponseLimit, progress_bar};
use mcpush_local::tools::redrive::Redrive;
use mcpush_local::tools::watch::{self, Ending, Endpoints, Timing, Watched};
use mcpush_local::tools::{events, replay, token, upload};
use mcpush_local::{Function, Options, local, local_dynamodb};
use reqwest::Url;

/// The MediaConvert push notifier on a laptop, and tools for any stack.
#[derive(Parser)]
#[command(name = "mcpush-local", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline locally (the default): demo page, REST, WebSocket, Invoke API,
    /// simulated S3 and MediaConvert. Also reads the functions' variables (see the README).
    Serve(ServeArgs),
    /// Follow a file's newest job to its end: exit 0 on COMPLETE, 1 on ERROR or CANCELED.
    Watch(Box<WatchArgs>),
    /// Send EventBridge events (JSON files or JSON Lines) to a function through the Lambda Invoke API.
    Replay(ReplayArgs),
    /// Invoke again what Lambda sent to an on-failure queue, deleting each message once its
    /// invocation succeeded.
    Redrive(RedriveArgs),
    /// Issue a read token for a file or a folder, from SUBSCRIBE_SECRET or SUBSCRIBE_SECRET_ARN
    /// (the token alone on stdout).
    Token(TokenArgs),
    /// Upload a video through the stack's upload API as a resumable multipart upload (run it again
    /// on the same file to resume); prints the input file to watch.
    Upload(UploadArgs),
    /// Tail the local stack's Job Status Changed events (what EventBridge and a webhook get):
    /// JSON Lines on stdout, or one readable line each with --summary.
    Events(EventsArgs),
}

#[derive(Args)]
struct UploadArgs {
    /// The video (or audio) file.
    file: std::path::PathBuf,
    /// The stack's REST API (e.g. https://abc.execute-api.eu-west-1.amazonaws.com).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: Url,
    /// Media type (default: from the file's extension).
    #[arg(long)]
    content_type: Option<String>,
    /// Parts sent at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Bytes per second at most, over all parts.
    #[arg(long)]
    limit_rate: Option<u64>,
    /// Where unfinished uploads are remembered (default: $XDG_STATE_HOME/mcpush/uploads.json).
    #[arg(long, env = "MCPUSH_UPLOAD_STATE")]
    state_file: Option<std::path::PathBuf>,
    /// With sign-in: the user's access token (sent as `Authorization: Bearer …`).
    #[arg(long, env = "MCPUSH_BEARER", hide_env_values = true)]
    bearer: Option<String>,
    /// The longest wait for a connection, and for the next bytes of an answer, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_seconds: u64,
}

#[derive(Args)]
struct EventsArgs {
    /// The local stack.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: Url,
    /// Print one readable line per event instead of the event's JSON.
    #[arg(long)]
    summary: bool,
    /// Print the events kept (the last 1,000) and end instead of following.
    #[arg(long)]
    once: bool,
    /// How often to ask for new events, in milliseconds.
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct TokenScope {
    /// The input file (S3 key) the token covers.
    input_file: Option<String>,
    /// A folder ending in `/`: the token covers every file under it.
    #[arg(long)]
    prefix: Option<String>,
}

#[derive(Args)]
struct TokenArgs {
    #[command(flatten)]
    scope: TokenScope,
    /// Validity in seconds (default: TOKEN_TTL_SECONDS, else 86400).
    #[arg(long)]
    ttl_seconds: Option<u64>,
}

#[derive(Args)]
struct ServeArgs {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    port: u16,
    /// Run on this DynamoDB API (moto, DynamoDB Local, an account) instead of the embedded store.
    #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB")]
    dynamodb_endpoint: Option<String>,
}

#[derive(Args)]
struct WatchArgs {
    /// The input file (S3 key) to follow.
    input_file: String,
    /// Default of both URLs below: the REST API at this URL, the WebSocket API at ws(s)://HOST/ws.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: Url,
    /// The REST API's base, e.g. https://abc.execute-api.eu-west-1.amazonaws.com
    #[arg(long)]
    rest_url: Option<Url>,
    /// The WebSocket API, e.g. wss://def.execute-api.eu-west-1.amazonaws.com/prod
    #[arg(long)]
    ws_url: Option<Url>,
    /// Polling interval when the WebSocket cannot open, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    poll_ms: u64,
    /// While subscribed, ask the REST API at once and then this often (ms), so a lost push costs
    /// at most this long.
    #[arg(long, default_value_t = 30000)]
    recheck_ms: u64,
    /// The longest wait for a connection, the WebSocket handshake or a REST answer, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout_seconds: u64,
    /// Read token for the file, when the stack requires one (see the `token` subcommand).
    #[arg(long, env = "MCPUSH_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Args)]
struct ReplayArgs {
    /// JSON files (one event, or an array of events) or JSON Lines files.
    #[arg(required = true)]
    files: Vec<String>,
    /// The function to invoke.
    #[arg(long, default_value = Function::ProgressIngest.name())]
    function_name: String,
    /// The Lambda API: the local stack by default; https://lambda.REGION.amazonaws.com for AWS
    /// (credentials and region from the usual AWS settings).
    #[arg(long, env = "AWS_ENDPOINT_URL_LAMBDA", default_value = "http://127.0.0.1:3000")]
    endpoint_url: String,
    /// The longest wait for a connection, and for each attempt of a call, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout_seconds: u64,
}

#[derive(Args)]
struct RedriveArgs {
    /// The on-failure queue (the stack's CreateJobFailureQueueUrl or ProgressIngestFailureQueueUrl).
    #[arg(long)]
    queue_url: String,
    /// The function to invoke (default: the one each record names).
    #[arg(long)]
    function_name: Option<String>,
    /// The Lambda API: the local stack by default; https://lambda.REGION.amazonaws.com for AWS.
    #[arg(long, env = "AWS_ENDPOINT_URL_LAMBDA", default_value = "http://127.0.0.1:3000")]
    endpoint_url: String,
    /// The SQS API (default: the SDK's, for the queue's region).
    #[arg(long, env = "AWS_ENDPOINT_URL_SQS")]
    sqs_endpoint_url: Option<String>,
    /// List what would be invoked; invoke and delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// The longest wait for a connection, and for each attempt of a call, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout_seconds: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    mcpush_core::telemetry::init();
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Watch(args)) => watch_file(*args).await,
        Some(Command::Replay(args)) => replay_events(args).await,
        Some(Command::Redrive(args)) => redrive(args).await,
        Some(Command::Token(args)) => token(args).await,
        Some(Command::Events(args)) => tail_events(args).await,
        Some(Command::Upload(args)) => upload_file(args).await,
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

async fn watch_file(args: WatchArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let endpoints = Endpoints::new(&args.url, args.rest_url, args.ws_url)?;
    let bar = progress_bar(100, "{bar:40.cyan/blue} {pos:>3}% {msg}");
    let mut out = std::io::stderr();
    let watched = Watched { input_file: &args.input_file, token: args.token.as_deref() };
    Ok(
        match watch::watch(
            &endpoints,
            watched,
            Timing {
                poll: Duration::from_millis(args.poll_ms),
                recheck: Duration::from_millis(args.recheck_ms),
                wait: Duration::from_secs(args.timeout_seconds.max(1)),
            },
            &mut out,
            bar,
        )
        .await?
        {
            Ending::Complete(_) => ExitCode::SUCCESS,
            Ending::Failed(_) => ExitCode::from(1),
        },
    )
}

async fn replay_events(args: ReplayArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let client =
        replay::lambda_client(Some(&args.endpoint_url), Duration::from_secs(args.timeout_seconds.max(1))).await;
    let bar = progress_bar(0, "{bar:40.cyan/blue} {pos}/{len} events");
    let rejected = replay::replay(&client, &args.function_name, &args.files, &mut std::io::stderr(), bar).await?;
    Ok(if rejected == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

async fn redrive(args: RedriveArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let wait = Duration::from_secs(args.timeout_seconds.max(1));
    let lambda = replay::lambda_client(Some(&args.endpoint_url), wait).await;
    let sdk = mcpush_local::sdk_config_for(args.sqs_endpoint_url.as_deref()).await;
    let sqs = aws_sdk_sqs::config::Builder::from(&sdk)
        .timeout_config(mcpush_local::sdk::timeouts(wait))
        .interceptor(ResponseLimit(MAX_SDK_RESPONSE_BYTES))
        .build();
    let sqs = aws_sdk_sqs::Client::from_conf(sqs);
    let redrive = Redrive {
        sqs: &sqs,
        lambda: &lambda,
        queue_url: &args.queue_url,
        function_name: args.function_name.as_deref(),
        dry_run: args.dry_run,
    };
    let done = redrive.run(&mut std::io::stderr()).await?;
    Ok(if done.failed + done.skipped == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn upload_file(args: UploadArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let wait = Duration::from_secs(args.timeout_seconds.max(1));
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*mcpush_local::tools::common::tls_config()?).clone())
        .connect_timeout(wait)
        .read_timeout(wait)
        .build()?;
    let state_file = args.state_file.unwrap_or_else(upload::default_state_file);
    let upload = upload::Upload {
        client: &client,
        url: &args.url,
        file: &args.file,
        content_type: args.content_type.as_deref(),
        concurrency: args.concurrency,
        limit_rate: args.limit_rate,
        state_file: &state_file,
        bearer: args.bearer.as_deref(),
    };
    let bar = progress_bar(0, "{bar:40.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} {msg}");
    let done = upload.run(&bar, &mut std::io::stderr()).await?;
    eprintln!(
        "uploaded {} ({} parts sent, {} already there); follow it: cargo run --release -- watch {:?}{}",
        done.input_file,
        done.sent_parts,
        done.resumed_parts,
        done.input_file,
        if done.token.is_some() { " --token \"$MCPUSH_TOKEN\"" } else { "" }
    );
    if let Some(token) = &done.token {
        eprintln!("MCPUSH_TOKEN={token}");
    }
    println!("{}", done.input_file);
    Ok(ExitCode::SUCCESS)
}

async fn tail_events(args: EventsArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let client =
        mcpush_local::tools::common::http_client(&mcpush_local::tools::common::tls_config()?, Duration::from_secs(10))?;
    let tail = events::Tail {
        client: &client,
        url: &args.url,
        interval: Duration::from_millis(args.interval_ms.max(50)),
        once: args.once,
        summary: args.summary,
    };
    tail.run(&mut std::io::stdout().lock()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn token(args: TokenArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let scope = token::scope(args.scope.input_file, args.scope.prefix)?;
    let (token, expires) = token::issue(&mcpush_core::config::Env::process(), &scope, args.ttl_seconds).await?;
    eprintln!("token for {scope:?}, valid until {expires} (epoch seconds)");
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let options = Options::from_env().await?;
    let (upload_bucket, s3_dir, limits) = (options.upload.bucket.clone(), options.s3_dir.clone(), options.server);
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
    for f in Function::ALL {
        println!("  invoke        {base}{}", f.invoke_path());
    }
    println!("  upload API    POST {base}/media/uploads   (then the presigned POST to {base}/s3/{upload_bucket})");
    println!("  token renewal POST {base}/media/tokens");
    println!("  upload (S3)   PUT {base}/s3/{upload_bucket}/{{key}}   files in {}", s3_dir.display());
    println!("  MediaConvert  {base}/2017-08-29/ (simulated: GetJobTemplate, CreateJob)");
    println!("Ctrl-C stops it.");

    // Ctrl-C stops accepting and ends the process: WebSocket clients may never close, so open
    // connections are not waited for.
    let stopped = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    mcpush_local::run::server::serve(listener, stack.router, limits, stopped).await?;
    Ok(ExitCode::SUCCESS)
}
