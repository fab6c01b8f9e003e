//! The deploy rehearsal's recording side (`infra/rehearse.py` is the checking side).
//!
//! A [`Session`] gives each function binary the environment the expanded template gives it
//! (`rehearse.py env`, with the test's tables and peers bound in), and puts a [`Recorder`] in
//! front of every AWS peer: a reverse proxy that forwards each request and records, from the
//! request itself, who called (the SigV4 access key id is the function's name), the service
//! (the credential scope), the operation (`X-Amz-Target`, or the REST path) and the resources
//! as ARNs (table and index, secret, queue, event bus, MediaConvert job/queue/template and the
//! role passed, the WebSocket API's `@connections`). [`Session::save`] writes it all, with the variables each
//! function reads, to `target/rehearsal/sessions/<name>.json`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mcpush_core::config::{Env, read_function_settings};
use serde_json::{Value, json};

/// The account and Region the rehearsal's ARNs are built with (those `rehearse.py` expands with).
pub const ACCOUNT: &str = "123456789012";

/// One AWS API call as the peer saw it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Call {
    pub function: String,
    pub action: String,
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

/// A recording reverse proxy in front of AWS peers.
#[derive(Clone, Default)]
pub struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
}

#[derive(Clone)]
struct Upstream {
    base: String,
    /// For the Management API: the WebSocket API's id the template gives it.
    api_id: Option<String>,
    calls: Arc<Mutex<Vec<Call>>>,
    client: reqwest::Client,
}

impl Recorder {
    /// A proxy on 127.0.0.1 forwarding to `base`; answers its own base URL.
    pub async fn front(&self, base: &str) -> String {
        self.serve(base, None).await
    }

    /// A proxy for the Management API at `base`: requests come as `/{stage}/@connections/{id}`
    /// (the template's endpoint includes the stage) and are recorded on WebSocket API `api_id`.
    pub async fn front_management(&self, base: &str, api_id: &str) -> String {
        self.serve(base, Some(api_id.to_owned())).await
    }

    async fn serve(&self, base: &str, api_id: Option<String>) -> String {
        let upstream = Upstream {
            base: base.trim_end_matches('/').to_owned(),
            api_id,
            calls: self.calls.clone(),
            client: reqwest::Client::new(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the recorder");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let router = axum::Router::new().fallback(forward).with_state(upstream);
        tokio::spawn(axum::serve(listener, router).into_future());
        url
    }

    /// Adds a call seen elsewhere (e.g. the S3 POST a presigned form authorises).
    pub fn add(&self, call: Call) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn forward(State(up): State<Upstream>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let (stage, path_and_query) = match (up.api_id.is_some(), path_and_query.find("/@connections/")) {
        (true, Some(at)) => (Some(path_and_query[..at].trim_matches('/').to_owned()), &path_and_query[at..]),
        _ => (None, path_and_query),
    };
    let mut request = up.client.request(method.clone(), format!("{}{}", up.base, path_and_query));
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            request = request.header(name, value);
        }
    }
    let answer = match request.body(body.clone()).send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("recorder: {e}")).into_response(),
    };
    let status = answer.status();
    let mut out_headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
            out_headers.append(name, value.clone());
        }
    }
    let mut bytes = answer.bytes().await.unwrap_or_default();
    // moto 5 names the root elements of ListParts' and CompleteMultipartUpload's answers
    // `…Response`; S3 (and so aws-sdk-s3, which refuses anything else) says `…Result`. Only the
    // peer's quirk is mended here.
    for (moto, s3) in
        [("ListPartsResponse", "ListPartsResult"), ("CompleteMultipartUploadResponse", "CompleteMultipartUploadResult")]
    {
        if bytes.windows(moto.len() + 1).any(|w| w[0] == b'<' && &w[1..] == moto.as_bytes()) {
            bytes = Bytes::from(String::from_utf8_lossy(&bytes).replace(moto, s3));
        }
    }
    let query = uri.query().unwrap_or_default();
    let seen = Seen { method: &method, path: uri.path(), query, headers: &headers, body: &body, answer: &bytes };
    let calls = describe(&seen, stage.as_deref(), up.api_id.as_deref());
    up.calls.lock().unwrap_or_else(|e| e.into_inner()).extend(calls);
    (status, out_headers, bytes).into_response()
}

struct Seen<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a str,
    headers: &'a HeaderMap,
    body: &'a [u8],
    answer: &'a [u8],
}

/// `Credential=KEY/DATE/REGION/SERVICE/aws4_request` of the SigV4 `Authorization` header, or of a
/// presigned URL's `X-Amz-Credential`.
fn credential_scope(headers: &HeaderMap, query: &str) -> Option<(String, String, String)> {
    let presigned =
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "X-Amz-Credential").map(|(_, v)| v.into_owned());
    let auth = headers.get("authorization").and_then(|a| a.to_str().ok()).map(str::to_owned);
    let scope = match (auth, presigned) {
        (Some(auth), _) => auth.split("Credential=").nth(1)?.split([',', ' ']).next()?.to_owned(),
        (None, Some(credential)) => credential,
        (None, None) => return None,
    };
    let parts: Vec<&str> = scope.split('/').collect();
    (parts.len() == 5).then(|| (parts[0].to_owned(), parts[2].to_owned(), parts[3].to_owned()))
}

fn describe(seen: &Seen, stage: Option<&str>, api_id: Option<&str>) -> Vec<Call> {
    let Some((function, region, service)) = credential_scope(seen.headers, seen.query) else {
        return vec![Call {
            function: "unsigned".into(),
            action: format!("unsigned {} {}", seen.method, seen.path),
            resources: vec![],
            context: BTreeMap::new(),
        }];
    };
    let body: Value = serde_json::from_slice(seen.body).unwrap_or(Value::Null);
    let target = seen.headers.get("x-amz-target").and_then(|t| t.to_str().ok()).unwrap_or_default();
    let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
    let call = |action: String, resources: Vec<String>| Call {
        function: function.clone(),
        action,
        resources,
        context: BTreeMap::new(),
    };
    let arn = |service: &str, rest: &str| format!("arn:aws:{service}:{region}:{ACCOUNT}:{rest}");
    match service.as_str() {
        "dynamodb" => {
            let table = |t: &Value, index: Option<&Value>| {
                let t = t.as_str().unwrap_or_default();
                match index.and_then(Value::as_str) {
                    Some(i) => arn("dynamodb", &format!("table/{t}/index/{i}")),
                    None => arn("dynamodb", &format!("table/{t}")),
                }
            };
            let mut resources = Vec::new();
            if let Some(t) = body.get("TableName") {
                resources.push(table(t, body.get("IndexName")));
            }
            if let Some(items) = body.get("RequestItems").and_then(Value::as_object) {
                resources.extend(items.keys().map(|t| table(&json!(t), None)));
            }
            for item in body.get("TransactItems").and_then(Value::as_array).into_iter().flatten() {
                if let Some(inner) = item.as_object().and_then(|o| o.values().next()) {
                    resources.push(table(&inner["TableName"], None));
                }
            }
            vec![call(format!("dynamodb:{operation}"), resources)]
        }
        "secretsmanager" => {
            let id = body["SecretId"].as_str().unwrap_or_default();
            let resource =
                if id.starts_with("arn:") { id.to_owned() } else { arn("secretsmanager", &format!("secret:{id}")) };
            vec![call(format!("secretsmanager:{operation}"), vec![resource])]
        }
        "sqs" => {
            let queue = body["QueueUrl"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default();
            vec![call(format!("sqs:{operation}"), vec![arn("sqs", queue)])]
        }
        "mediaconvert" => mediaconvert(seen, &body, &function, &arn),
        "s3" => {
            // Path-style `/{bucket}/{key}`; the multipart operations by method and query.
            let path = seen.path.trim_start_matches('/');
            let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
            let object = format!("arn:aws:s3:::{bucket}/{}", percent_decode(key));
            let has = |name: &str| form_urlencoded::parse(seen.query.as_bytes()).any(|(k, _)| k == name);
            let action = match seen.method.as_str() {
                "GET" if has("uploadId") => "s3:ListMultipartUploadParts",
                "DELETE" if has("uploadId") => "s3:AbortMultipartUpload",
                // CreateMultipartUpload, UploadPart, CompleteMultipartUpload, PutObject
                "POST" | "PUT" => "s3:PutObject",
                "GET" | "HEAD" => "s3:GetObject",
                other => return vec![call(format!("s3:unknown {other}"), vec![object])],
            };
            vec![call(action.into(), vec![object])]
        }
        "events" => {
            // PutEvents is authorised on each entry's bus (the default bus when none is named).
            let mut buses: Vec<String> = (body["Entries"].as_array().into_iter().flatten())
                .map(|entry| {
                    let bus = entry["EventBusName"].as_str().unwrap_or("default");
                    if bus.starts_with("arn:") { bus.to_owned() } else { arn("events", &format!("event-bus/{bus}")) }
                })
                .collect();
            buses.sort();
            buses.dedup();
            vec![call(format!("events:{operation}"), buses)]
        }
        "execute-api" => {
            let id = percent_decode(seen.path.rsplit("/@connections/").next().unwrap_or_default());
            let resource = format!(
                "arn:aws:execute-api:{region}:{ACCOUNT}:{}/{}/{}/@connections/{id}",
                api_id.unwrap_or("unknown-api"),
                stage.unwrap_or("unknown-stage"),
                seen.method
            );
            vec![call("execute-api:ManageConnections".into(), vec![resource])]
        }
        other => vec![call(format!("{other}:{operation}"), vec![format!("unknown {}", seen.path)])],
    }
}

/// MediaConvert's REST operations, and the role CreateJob passes (`iam:PassRole`).
fn mediaconvert(seen: &Seen, body: &Value, function: &str, arn: &dyn Fn(&str, &str) -> String) -> Vec<Call> {
    let segments: Vec<&str> = seen.path.trim_matches('/').split('/').collect();
    let call = |action: &str, resources: Vec<String>, context: BTreeMap<String, String>| Call {
        function: function.to_owned(),
        action: action.to_owned(),
        resources,
        context,
    };
    let named = |kind: &str, name: &str| {
        if name.starts_with("arn:") { name.to_owned() } else { arn("mediaconvert", &format!("{kind}/{name}")) }
    };
    match (seen.method.as_str(), segments.as_slice()) {
        ("POST", [_, "jobs"]) => {
            let answer: Value = serde_json::from_slice(seen.answer).unwrap_or(Value::Null);
            let job = answer["job"]["id"].as_str().unwrap_or("unknown");
            let mut resources = vec![arn("mediaconvert", &format!("jobs/{job}"))];
            resources.push(named("queues", body["queue"].as_str().unwrap_or("Default")));
            if let Some(template) = body["jobTemplate"].as_str() {
                resources.push(named("jobTemplates", template));
            }
            let role = body["role"].as_str().unwrap_or_default().to_owned();
            let passed = BTreeMap::from([("iam:PassedToService".to_owned(), "mediaconvert.amazonaws.com".to_owned())]);
            vec![call("mediaconvert:CreateJob", resources, BTreeMap::new()), call("iam:PassRole", vec![role], passed)]
        }
        ("GET", [_, "jobs", id]) => {
            vec![call("mediaconvert:GetJob", vec![arn("mediaconvert", &format!("jobs/{id}"))], BTreeMap::new())]
        }
        ("GET", [_, "jobTemplates", name]) => {
            let name = percent_decode(name);
            vec![call("mediaconvert:GetJobTemplate", vec![named("jobTemplates", &name)], BTreeMap::new())]
        }
        (method, _) => vec![call(&format!("mediaconvert:unknown {method} {}", seen.path), vec![], BTreeMap::new())],
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The Python with the SAM CLI and moto: `REHEARSE_PYTHON` (set by `scripts/test`), else the
/// workspace's `.venv`, else `python3`.
pub fn python() -> String {
    std::env::var("REHEARSE_PYTHON").unwrap_or_else(|_| {
        let venv = crate::workspace().join(".venv/bin/python");
        if venv.exists() { venv.display().to_string() } else { "python3".into() }
    })
}

/// Creates a Secrets Manager secret on moto at `endpoint` (the tests' setup, not recorded) and
/// answers its ARN.
pub async fn create_secret(endpoint: &str, name: &str, value: &str) -> String {
    let answer = reqwest::Client::new()
        .post(endpoint)
        .header("x-amz-target", "secretsmanager.CreateSecret")
        .header("content-type", "application/x-amz-json-1.1")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0")
        .body(json!({"Name": name, "SecretString": value}).to_string())
        .send()
        .await
        .expect("moto answers")
        .bytes()
        .await
        .expect("CreateSecret answers");
    let answer: Value = serde_json::from_slice(&answer).expect("CreateSecret answers JSON");
    answer["ARN"].as_str().unwrap_or_else(|| panic!("CreateSecret: {answer}")).to_owned()
}

/// Creates an S3 bucket on moto at `endpoint` (the tests' setup, not recorded).
pub async fn create_bucket(endpoint: &str, bucket: &str) {
    let answer = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send()
        .await
        .expect("moto answers");
    assert!(answer.status().is_success() || answer.status() == 409, "CreateBucket: {}", answer.status());
}

/// What one test rehearses: the template's parameters it deploys with, the resources it binds
/// to its peers, and everything recorded while its functions ran.
pub struct Session {
    name: String,
    parameters: BTreeMap<String, String>,
    binds: BTreeMap<String, String>,
    template: Value,
    pub recorder: Recorder,
    functions: Mutex<BTreeMap<String, Value>>,
    extra: Mutex<BTreeMap<&'static str, Vec<Value>>>,
}

impl Session {
    /// Expands the template with `parameters` (the test's table names, toggles) and `binds`
    /// (logical id = the value its Ref takes in the test).
    pub fn new(name: &str, parameters: &[(&str, &str)], binds: &[(&str, &str)]) -> Self {
        let python = python();
        let mut command = std::process::Command::new(&python);
        command.arg(crate::workspace().join("infra/rehearse.py")).arg("env");
        for (k, v) in parameters {
            command.arg("--param").arg(format!("{k}={v}"));
        }
        for (k, v) in binds {
            command.arg("--bind").arg(format!("{k}={v}"));
        }
        let output = command.output().unwrap_or_else(|e| panic!("{python} infra/rehearse.py env: {e}"));
        assert!(
            output.status.success(),
            "infra/rehearse.py env failed (scripts/test installs the SAM CLI it needs): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let template = serde_json::from_slice(&output.stdout).expect("rehearse.py env answers JSON");
        let owned = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self {
            name: name.to_owned(),
            parameters: owned(parameters),
            binds: owned(binds),
            template,
            recorder: Recorder::default(),
            functions: Mutex::default(),
            extra: Mutex::default(),
        }
    }

    /// The value a resource's Ref takes in the expanded template (e.g. the WebSocket API's id).
    pub fn reference(&self, logical: &str) -> String {
        self.template["refs"][logical].as_str().unwrap_or_else(|| panic!("no resource {logical}")).to_owned()
    }

    /// `function`'s environment from the template, pointed at the test's `peers`: an
    /// `AWS_ENDPOINT_URL_*` is added; any other peer re-points the URL the template gives that
    /// variable (scheme and host replaced, its path kept), and only if the template gives it.
    /// Its access key id is its name (how the recorder tells callers apart). Records which
    /// variables its init reads.
    pub fn env(&self, function: &str, peers: &[(&str, String)]) -> Vec<(String, String)> {
        let template = self.template["functions"][function]["environment"]
            .as_object()
            .unwrap_or_else(|| panic!("the template has no function {function} with these parameters"));
        let mut env: Vec<(String, String)> =
            template.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect();
        for (name, peer) in peers {
            if name.starts_with("AWS_ENDPOINT_URL") {
                env.push((name.to_string(), peer.clone()));
            } else if let Some((_, value)) = env.iter_mut().find(|(k, _)| k == name) {
                let path =
                    value.split("://").nth(1).and_then(|rest| rest.find('/').map(|at| &rest[at..])).unwrap_or("");
                *value = format!("{}{path}", peer.trim_end_matches('/'));
            }
        }
        env.push(("AWS_ACCESS_KEY_ID".into(), function.to_owned()));
        self.record_reads(function, &env);
        env
    }

    /// The variables `function`'s init reads with `env`, and which of them it cannot do without.
    fn record_reads(&self, function: &str, env: &[(String, String)]) {
        let build = |skip: &[&str]| {
            env.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .fold(Env::empty().recording(), |e, (k, v)| e.set(Box::leak(k.clone().into_boxed_str()), v.clone()))
        };
        let full = build(&[]);
        let outcome = read_function_settings(function, &full).expect("a known function");
        assert!(outcome.is_ok(), "{function} refuses the template's environment: {outcome:?}");
        let reads = full.seen();
        // Required: what must come back for the init to pass once every variable whose absence
        // alone fails it is gone (OIDC_ISSUER with OIDC_AUDIENCE, say, may go together).
        let alone: Vec<&str> = reads
            .iter()
            .copied()
            .filter(|name| env.iter().any(|(k, _)| k == name))
            .filter(|name| read_function_settings(function, &build(&[name])).is_some_and(|r| r.is_err()))
            .collect();
        let mut removed = alone.clone();
        let mut required = Vec::new();
        while let Some(Err(e)) = read_function_settings(function, &build(&removed)) {
            let text = e.to_string();
            let Some(at) = removed.iter().position(|name| text.contains(name)) else { break };
            required.push(removed.remove(at));
        }
        let mut functions = self.functions.lock().unwrap_or_else(|e| e.into_inner());
        let entry = functions.entry(function.to_owned()).or_insert_with(|| json!({"reads": [], "required": []}));
        for (field, names) in [("reads", reads), ("required", required)] {
            let list = entry[field].as_array_mut().expect("a list");
            for name in names {
                if !list.iter().any(|v| v == name) {
                    list.push(json!(name));
                }
            }
        }
    }

    /// Adds data the trigger checks need: `events` (simulated MediaConvert events),
    /// `stream_records`, `upload_keys`, `output_keys`.
    pub fn note(&self, kind: &'static str, values: impl IntoIterator<Item = Value>) {
        self.extra.lock().unwrap_or_else(|e| e.into_inner()).entry(kind).or_default().extend(values);
    }

    /// Records the S3 request a presigned POST form authorises (S3 checks it against the role
    /// of the function that signed it, named by the form's `x-amz-credential`), and its key.
    pub fn presigned_post(&self, bucket: &str, fields: &Value) {
        let credential = fields["x-amz-credential"].as_str().unwrap_or_default();
        let key = fields["key"].as_str().unwrap_or_default();
        self.recorder.add(Call {
            function: credential.split('/').next().unwrap_or_default().to_owned(),
            action: "s3:PutObject".into(),
            resources: vec![format!("arn:aws:s3:::{bucket}/{key}")],
            context: BTreeMap::new(),
        });
        self.note("upload_keys", [json!(key)]);
    }

    /// Writes the session to `target/rehearsal/sessions/<name>.json`.
    pub fn save(&self) {
        let mut functions = self.functions.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for call in self.recorder.calls() {
            let entry = functions.entry(call.function.clone()).or_insert_with(|| json!({"reads": [], "required": []}));
            let calls = entry.as_object_mut().expect("an object").entry("calls").or_insert_with(|| json!([]));
            let call = serde_json::to_value(&call).expect("serializable");
            if !calls.as_array().is_some_and(|c| c.contains(&call)) {
                calls.as_array_mut().expect("a list").push(call);
            }
        }
        let mut session = json!({
            "session": self.name,
            "parameters": self.parameters,
            "binds": self.binds,
            "functions": functions,
        });
        for (kind, values) in self.extra.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            session[*kind] = json!(values);
        }
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| crate::workspace().join("target"));
        let folder = target.join("rehearsal/sessions");
        std::fs::create_dir_all(&folder).expect("create target/rehearsal/sessions");
        let text = serde_json::to_string_pretty(&session).expect("serializable");
        std::fs::write(folder.join(format!("{}.json", self.name)), text).expect("write the session");
    }
}
