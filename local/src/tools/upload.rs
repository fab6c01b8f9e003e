//! `upload FILE`: a resumable multipart upload through a stack's upload API (`POST
//! /media/uploads` with `"multipart": true`, then `/media/uploads/parts` and `/complete`), parts
//! PUT to their presigned URLs a few at a time, each retried with backoff, with a bar in bytes.
//!
//! Resumable by the browser client's rules: the upload is remembered (`{input_file, upload_id,
//! size, last_modified, name}` and its token) in a state file, keyed by the file's path; run again
//! on the same unchanged file, it asks the stack which parts S3 holds and sends only the others.
//! Parts are streamed from the file (memory stays at a few buffers, whatever the part size).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::ProgressBar;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::common::{CliError, chain, printable};

/// Tries per part (the first included).
const PART_ATTEMPTS: u32 = 5;
/// Part URLs asked for per call (the API's limit).
const URLS_PER_CALL: usize = 100;

/// One remembered upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    pub url: String,
    pub name: String,
    pub size: u64,
    pub last_modified: u64,
    pub input_file: String,
    pub upload_id: String,
    pub token: Option<String>,
    pub part_size: u64,
    pub part_count: u64,
}

/// What to upload, where, how.
pub struct Upload<'a> {
    pub client: &'a reqwest::Client,
    /// The stack's REST API, e.g. `http://127.0.0.1:3000`.
    pub url: &'a Url,
    pub file: &'a Path,
    pub content_type: Option<&'a str>,
    pub concurrency: usize,
    /// Bytes per second over all parts (`None`: as fast as it goes).
    pub limit_rate: Option<u64>,
    pub state_file: &'a Path,
    /// `Authorization: Bearer …` with sign-in.
    pub bearer: Option<&'a str>,
}

/// How it went.
#[derive(Debug, PartialEq, Eq)]
pub struct Uploaded {
    pub input_file: String,
    pub token: Option<String>,
    /// Parts S3 already held when this run started.
    pub resumed_parts: u64,
    /// Parts this run sent.
    pub sent_parts: u64,
}

/// The state file's default: `$XDG_STATE_HOME/mcpush/uploads.json` (or `~/.local/state/…`).
pub fn default_state_file() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")));
    base.unwrap_or_else(|| PathBuf::from(".")).join("mcpush/uploads.json")
}

/// A media type from the file's extension (what a browser would send).
pub fn content_type_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("mp4" | "m4v") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("mkv") => "video/x-matroska",
        Some("webm") => "video/webm",
        Some("avi") => "video/x-msvideo",
        Some("mxf") => "application/mxf",
        Some("ts" | "m2ts") => "video/mp2t",
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("m4a") => "audio/mp4",
        _ => "video/mp4",
    }
}

fn load(state_file: &Path) -> BTreeMap<String, Remembered> {
    std::fs::read(state_file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
}

fn save(state_file: &Path, state: &BTreeMap<String, Remembered>) -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Input { path: state_file.display().to_string(), reason: e.to_string() };
    if let Some(parent) = state_file.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let partial = state_file.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(state).unwrap_or_default()).map_err(failed)?;
    std::fs::rename(&partial, state_file).map_err(failed)
}

/// Bytes per second over all parts: each chunk waits for its share.
struct Pace {
    rate: Option<u64>,
    started: Instant,
    sent: AtomicU64,
}

impl Pace {
    async fn take(&self, bytes: u64) {
        let Some(rate) = self.rate.filter(|r| *r > 0) else { return };
        let sent = self.sent.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}

impl Upload<'_> {
    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        url.set_path(path);
        url
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), CliError> {
        let url = self.endpoint(path);
        let mut request = (self.client.post(url.clone()))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(bearer) = self.bearer {
            request = request.bearer_auth(bearer);
        }
        let http = |reason: String| CliError::Http { url: url.to_string(), reason };
        let answer = request.send().await.map_err(|e| http(chain(&e)))?;
        let status = answer.status().as_u16();
        let text = answer.text().await.map_err(|e| http(chain(&e)))?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| http(format!("answered {status}: {}", printable(&text))))?
        };
        Ok((status, value))
    }

    fn reference(&self, remembered: &Remembered) -> Value {
        let mut body = json!({"input_file": remembered.input_file, "upload_id": remembered.upload_id});
        if let Some(token) = &remembered.token {
            body["token"] = json!(token);
        }
        body
    }

    /// The parts S3 holds, and URLs for `numbers`; `None` when the upload is gone (403).
    async fn parts(&self, remembered: &Remembered, numbers: &[u64]) -> Result<Option<Value>, CliError> {
        let mut body = self.reference(remembered);
        body["part_numbers"] = json!(numbers);
        match self.post("/media/uploads/parts", &body).await? {
            (200, answer) => Ok(Some(answer)),
            (403, _) => Ok(None),
            (status, answer) => Err(CliError::Refused(format!(
                "/media/uploads/parts answered {status}: {}",
                printable(&answer.to_string())
            ))),
        }
    }

    /// Runs the upload to its completion; `bar` counts bytes.
    pub async fn run(&self, bar: &ProgressBar, out: &mut impl std::io::Write) -> Result<Uploaded, CliError> {
        let input = |reason: String| CliError::Input { path: self.file.display().to_string(), reason };
        let path = std::fs::canonicalize(self.file).map_err(|e| input(e.to_string()))?;
        let meta = std::fs::metadata(&path).map_err(|e| input(e.to_string()))?;
        let last_modified =
            meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let key = path.display().to_string();
        let mut state = load(self.state_file);
        let same = |r: &Remembered| {
            r.url == self.url.as_str() && r.size == meta.len() && r.last_modified == last_modified && r.name == name
        };
        let mut remembered = state.get(&key).filter(|r| same(r)).cloned();
        let mut held = Vec::new();
        if let Some(r) = &remembered {
            match self.parts(r, &[]).await? {
                Some(answer) => held = answer["uploaded"].as_array().cloned().unwrap_or_default(),
                None => {
                    writeln!(out, "the earlier upload of {name} is gone; starting again").ok();
                    remembered = None;
                }
            }
        }
        let remembered = match remembered {
            Some(r) => r,
            None => {
                let content_type = self.content_type.unwrap_or_else(|| content_type_of(&path));
                let request =
                    json!({"file_name": name, "content_type": content_type, "size": meta.len(), "multipart": true});
                let granted = match self.post("/media/uploads", &request).await? {
                    (200, granted) => granted,
                    (status, answer) => {
                        return Err(CliError::Refused(format!(
                            "/media/uploads answered {status}: {}",
                            printable(&answer.to_string())
                        )));
                    }
                };
                let field = |name: &str| {
                    granted[name].as_u64().ok_or_else(|| CliError::Refused(format!("the grant has no {name}")))
                };
                let r = Remembered {
                    url: self.url.to_string(),
                    name: name.clone(),
                    size: meta.len(),
                    last_modified,
                    input_file: granted["input_file"].as_str().unwrap_or_default().to_owned(),
                    upload_id: granted["upload_id"].as_str().unwrap_or_default().to_owned(),
                    token: granted["token"].as_str().map(str::to_owned),
                    part_size: field("part_size")?,
                    part_count: field("part_count")?,
                };
                state.insert(key.clone(), r.clone());
                save(self.state_file, &state)?;
                r
            }
        };
        let mut etags: BTreeMap<u64, String> = BTreeMap::new();
        for part in &held {
            if let (Some(n), Some(etag), Some(size)) =
                (part["part_number"].as_u64(), part["etag"].as_str(), part["size"].as_u64())
            {
                // A part S3 holds counts only if it is the size this file's part has.
                let expected = remembered.part_size.min(remembered.size - (n - 1) * remembered.part_size);
                if n <= remembered.part_count && size == expected {
                    etags.insert(n, etag.to_owned());
                }
            }
        }
        let resumed_parts = etags.len() as u64;
        if resumed_parts > 0 {
            writeln!(
                out,
                "resuming {}: {resumed_parts} of {} parts already uploaded",
                remembered.input_file, remembered.part_count
            )
            .ok();
        }
        bar.set_length(remembered.size);
        bar.set_position(
            etags.keys().map(|n| remembered.part_size.min(remembered.size - (n - 1) * remembered.part_size)).sum(),
        );
        let missing: Vec<u64> = (1..=remembered.part_count).filter(|n| !etags.contains_key(n)).collect();
        let pace = Arc::new(Pace { rate: self.limit_rate, started: Instant::now(), sent: AtomicU64::new(0) });
        let mut sent_parts = 0;
        for batch in missing.chunks(URLS_PER_CALL) {
            let urls =
                self.parts(&remembered, batch).await?.ok_or_else(|| CliError::Refused("the upload is gone".into()))?;
            let urls: BTreeMap<u64, String> = (urls["parts"].as_array().into_iter().flatten())
                .filter_map(|p| Some((p["part_number"].as_u64()?, p["url"].as_str()?.to_owned())))
                .collect();
            let sends = batch.iter().map(|&n| {
                let url = urls.get(&n).cloned();
                let pace = pace.clone();
                let remembered = &remembered;
                let path = &path;
                async move {
                    let url = url.ok_or_else(|| CliError::Refused(format!("no URL for part {n}")))?;
                    let offset = (n - 1) * remembered.part_size;
                    let length = remembered.part_size.min(remembered.size - offset);
                    self.send_part(path, &url, offset, length, &pace, bar).await.map(|etag| (n, etag))
                }
            });
            let mut sending = futures::stream::iter(sends).buffer_unordered(self.concurrency.max(1));
            while let Some(done) = sending.next().await {
                let (n, etag) = done?;
                etags.insert(n, etag);
                sent_parts += 1;
            }
        }
        let mut complete = self.reference(&remembered);
        complete["parts"] = json!(etags.iter().map(|(n, e)| json!({"part_number": n, "etag": e})).collect::<Vec<_>>());
        match self.post("/media/uploads/complete", &complete).await? {
            (200, _) => {}
            (status, answer) => {
                return Err(CliError::Refused(format!(
                    "/media/uploads/complete answered {status}: {}",
                    printable(&answer.to_string())
                )));
            }
        }
        state.remove(&key);
        save(self.state_file, &state)?;
        bar.finish();
        Ok(Uploaded { input_file: remembered.input_file, token: remembered.token, resumed_parts, sent_parts })
    }

    /// PUTs one part streamed from the file, retried with backoff; answers its ETag.
    async fn send_part(
        &self,
        path: &Path,
        url: &str,
        offset: u64,
        length: u64,
        pace: &Arc<Pace>,
        bar: &ProgressBar,
    ) -> Result<String, CliError> {
        let mut last = String::new();
        for attempt in 1..=PART_ATTEMPTS {
            let mut file = tokio::fs::File::open(path)
                .await
                .map_err(|e| CliError::Input { path: path.display().to_string(), reason: e.to_string() })?;
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| CliError::Input { path: path.display().to_string(), reason: e.to_string() })?;
            let counted = Arc::new(AtomicU64::new(0));
            let (pace_for_stream, bar_for_stream, counted_for_stream) = (pace.clone(), bar.clone(), counted.clone());
            let chunks =
                tokio_util::io::ReaderStream::with_capacity(file.take(length), 256 * 1024).then(move |chunk| {
                    let (pace, bar, counted) =
                        (pace_for_stream.clone(), bar_for_stream.clone(), counted_for_stream.clone());
                    async move {
                        if let Ok(bytes) = &chunk {
                            pace.take(bytes.len() as u64).await;
                            counted.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                            bar.inc(bytes.len() as u64);
                        }
                        chunk
                    }
                });
            let request = self
                .client
                .put(url)
                .header(reqwest::header::CONTENT_LENGTH, length)
                .body(reqwest::Body::wrap_stream(chunks));
            match request.send().await {
                Ok(answer) if answer.status().is_success() => {
                    if let Some(etag) = answer.headers().get("etag").and_then(|e| e.to_str().ok()) {
                        return Ok(etag.to_owned());
                    }
                    last = "the part's answer has no ETag".into();
                }
                Ok(answer) => {
                    last = format!("{}: {}", answer.status(), printable(&answer.text().await.unwrap_or_default()))
                }
                Err(e) => last = chain(&e),
            }
            bar.set_position(bar.position().saturating_sub(counted.load(Ordering::Relaxed)));
            if attempt < PART_ATTEMPTS {
                tracing::warn!(offset, attempt, error = %last, "a part failed; retrying");
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
        }
        Err(CliError::Refused(format!("a part (at byte {offset}) failed {PART_ATTEMPTS} times: {last}")))
    }
}
