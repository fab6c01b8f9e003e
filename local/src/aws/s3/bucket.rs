//! A simulated S3 upload bucket: objects live under a local folder, and every `PUT` emits an
//! `ObjectCreated:Put` notification shaped like S3's, which the stack hands to `create-job`.
//!
//! - `PUT /s3/{bucket}/{key}`: stores the body (streamed to disk, no size limit) and notifies;
//!   answers 200 with an `ETag`, like S3's PutObject (path-style).
//! - `POST /s3/{bucket}`: a browser upload under a presigned policy (upload-api's), checked as S3
//!   checks it: signature, expiry, key, content type, size; S3's error codes otherwise.
//! - `GET /s3/{bucket}/{key}` (and `HEAD`): reads an object back (streamed from disk), e.g. the
//!   simulated outputs.
//! - multipart uploads (`?uploads`, `?uploadId=…`): [`super::multipart`], SigV4-checked;
//! - `OPTIONS`: CORS preflight for the stack's allowed origins, as a bucket's CORS rules would.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lambda_events::s3::{S3Event, S3EventRecord, S3UserIdentity};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::StreamExt;
use mcpush_core::domain::AllowedOrigins;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::UnboundedSender;

/// Why a bucket name or key cannot name a local file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ObjectNameError {
    #[error("bucket name {0:?} is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')")]
    Bucket(String),
    #[error("object key {0:?} is empty, longer than 1024 bytes, or has an empty, '.' or '..' segment")]
    Key(String),
}

/// The local buckets: `root/{bucket}/{key}`.
pub struct LocalS3 {
    root: PathBuf,
    region: String,
    sequencer: AtomicU64,
    /// Multipart uploads in progress.
    pub uploads: super::multipart::Uploads,
}

impl LocalS3 {
    pub fn new(root: impl Into<PathBuf>, region: &str) -> Self {
        Self {
            root: root.into(),
            region: region.to_owned(),
            sequencer: AtomicU64::new(mcpush_core::now_ms() << 16),
            uploads: Default::default(),
        }
    }

    pub fn root(&self) -> &FsPath {
        &self.root
    }

    /// Where an object lives on disk; refuses names that would step outside its bucket.
    pub fn path(&self, bucket: &str, key: &str) -> Result<PathBuf, ObjectNameError> {
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !bucket.starts_with(['.', '-']);
        if !valid_bucket {
            return Err(ObjectNameError::Bucket(bucket.to_owned()));
        }
        let segments: Vec<&str> = key.split('/').collect();
        let bad_segment = |s: &&str| s.is_empty() || *s == "." || *s == ".." || s.contains('\0');
        if key.is_empty() || key.len() > 1024 || segments.iter().any(bad_segment) {
            return Err(ObjectNameError::Key(key.to_owned()));
        }
        Ok(segments.iter().fold(self.root.join(bucket), |p, s| p.join(s)))
    }

    /// Reads an `s3://bucket/key` URL's object size; `None` when there is no such object.
    pub async fn size_of(&self, url: &str) -> Option<u64> {
        let (bucket, key) = split_s3_url(url)?;
        let path = self.path(bucket, key).ok()?;
        tokio::fs::metadata(path).await.ok().filter(|m| m.is_file()).map(|m| m.len())
    }

    /// Writes an object (used by the simulated MediaConvert for its outputs).
    pub async fn write(&self, url: &str, bytes: &[u8]) -> std::io::Result<()> {
        let (bucket, key) =
            split_s3_url(url).ok_or_else(|| std::io::Error::other(format!("{url:?} is not an s3:// URL")))?;
        let path = self.path(bucket, key).map_err(std::io::Error::other)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(path, bytes).await
    }

    /// The notification S3 sends for a new object (one record; the key URL-encoded as S3 does).
    pub fn object_created(&self, bucket: &str, key: &str, size: u64, etag: &str) -> S3Event {
        self.created_by("ObjectCreated:Put", bucket, key, size, etag)
    }

    /// The notification for an object made by `event_name` (`ObjectCreated:Put`, `…:Post`,
    /// `…:CompleteMultipartUpload`).
    pub fn created_by(&self, event_name: &str, bucket: &str, key: &str, size: u64, etag: &str) -> S3Event {
        let sequencer = format!("{:016X}", self.sequencer.fetch_add(1, Ordering::Relaxed));
        let mut record = S3EventRecord::default();
        record.event_version = Some("2.1".into());
        record.event_source = Some("aws:s3".into());
        record.aws_region = Some(self.region.clone());
        record.event_time = chrono::DateTime::from_timestamp_millis(mcpush_core::now_ms() as i64).unwrap_or_default();
        record.event_name = Some(event_name.to_owned());
        record.principal_id.principal_id = Some("AWS:LOCAL".into());
        record.request_parameters.source_ip_address = Some("127.0.0.1".into());
        record.response_elements =
            HashMap::from([("x-amz-request-id".into(), sequencer.clone()), ("x-amz-id-2".into(), "local".into())]);
        record.s3.schema_version = Some("1.0".into());
        record.s3.configuration_id = Some("create-job".into());
        record.s3.bucket.name = Some(bucket.to_owned());
        record.s3.bucket.arn = Some(format!("arn:aws:s3:::{bucket}"));
        let mut owner = S3UserIdentity::default();
        owner.principal_id = Some("LOCAL".into());
        record.s3.bucket.owner_identity = Some(owner);
        record.s3.object.key = Some(encode_event_key(key));
        record.s3.object.size = i64::try_from(size).ok();
        record.s3.object.e_tag = Some(etag.to_owned());
        record.s3.object.sequencer = Some(sequencer);
        let mut event = S3Event::default();
        event.records = vec![record];
        event
    }
}

/// `s3://bucket/key` → (`bucket`, `key`).
pub fn split_s3_url(url: &str) -> Option<(&str, &str)> {
    url.strip_prefix("s3://")?.split_once('/').filter(|(b, k)| !b.is_empty() && !k.is_empty())
}

/// Characters S3 leaves unescaped in notification keys (besides letters and digits).
const KEY_ESCAPES: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'*').remove(b'/').remove(b' ');

/// `Big Buck Bunny.mp4` → `Big+Buck+Bunny.mp4`, as S3 event notifications carry keys.
pub fn encode_event_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ESCAPES).to_string().replace(' ', "+")
}

#[derive(Clone)]
struct S3State {
    s3: Arc<LocalS3>,
    origins: Arc<AllowedOrigins>,
    notify: UnboundedSender<S3Event>,
    /// Plain `PUT`s (scripts) are taken only while read tokens are off: with tokens on, every
    /// upload goes through upload-api's grant, as on AWS where the bucket is private.
    open_puts: bool,
}

/// The bucket's routes; each notification goes to `notify`. `open_puts`: see [`S3State`].
pub fn router(
    s3: Arc<LocalS3>,
    origins: Arc<AllowedOrigins>,
    notify: UnboundedSender<S3Event>,
    open_puts: bool,
) -> Router {
    Router::new()
        .route("/s3/{bucket}/{*key}", any(object))
        .route("/s3/{bucket}", any(form_upload))
        .layer(DefaultBodyLimit::disable())
        .with_state(S3State { s3, origins, notify, open_puts })
}

async fn object(
    State(state): State<S3State>,
    Path((bucket, key)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let cors = cors_headers(&state.origins, &headers);
    let multipart =
        uri.query().is_some_and(|q| q.split('&').any(|p| matches!(p.split('=').next(), Some("uploads" | "uploadId"))));
    let mut response = match state.s3.path(&bucket, &key) {
        Err(e) => s3_error(StatusCode::BAD_REQUEST, "InvalidArgument", &e.to_string()),
        Ok(_) if method == Method::OPTIONS => StatusCode::OK.into_response(),
        Ok(path) if multipart => multipart_request(&state, (&bucket, &key), &path, method, &uri, &headers, body).await,
        Ok(path) => match method {
            Method::OPTIONS => StatusCode::OK.into_response(),
            Method::PUT if !state.open_puts => s3_error(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Access Denied: read tokens are on, so uploads go through POST /media/uploads and its signed POST",
            ),
            Method::PUT => put(&state, &bucket, &key, &path, body).await,
            Method::GET | Method::HEAD => get(&path, method == Method::HEAD).await,
            _ => s3_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "only PUT, GET, HEAD and OPTIONS"),
        },
    };
    response.headers_mut().extend(cors);
    response
}

/// The most of a CompleteMultipartUpload body read (10,000 parts fit in about 1 MB).
const MAX_COMPLETE_BODY: usize = 2 * 1024 * 1024;

/// A multipart upload request (see [`super::multipart`]), SigV4-checked first.
async fn multipart_request(
    state: &S3State,
    (bucket, key): (&str, &str),
    path: &FsPath,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = super::sigv4::check(&method, uri, headers, std::time::SystemTime::now()) {
        return s3_error(StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN), r.code, &r.message);
    }
    let params: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let (uploads, root) = (&state.s3.uploads, state.s3.root());
    let upload_id = params.get("uploadId").map(String::as_str);
    let outcome = match (&method, upload_id, params.get("partNumber")) {
        (&Method::POST, None, None) if params.contains_key("uploads") => Ok(uploads.create(bucket, key)),
        (&Method::PUT, Some(id), Some(number)) => uploads.upload_part(root, (bucket, key), id, number, body).await,
        (&Method::GET, Some(id), None) => uploads.list_parts(bucket, key, id),
        (&Method::DELETE, Some(id), None) => uploads.abort(root, bucket, key, id).await,
        (&Method::POST, Some(id), None) => match axum::body::to_bytes(body, MAX_COMPLETE_BODY).await {
            Ok(listed) => uploads.complete(root, (bucket, key), id, &listed, path).await.map(|(size, etag)| {
                tracing::info!(bucket, key, size, "object stored");
                let event = state.s3.created_by("ObjectCreated:CompleteMultipartUpload", bucket, key, size, &etag);
                let _ = state.notify.send(event);
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>/s3/{bucket}/{}</Location><Bucket>{bucket}</Bucket><Key>{}</Key><ETag>&quot;{etag}&quot;</ETag></CompleteMultipartUploadResult>",
                    xml_escape(key),
                    xml_escape(key)
                );
                (StatusCode::OK, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
            }),
            Err(_) => Err((StatusCode::BAD_REQUEST, "MalformedXML", "the part list is over 2 MB".to_owned())),
        },
        _ => Err((StatusCode::BAD_REQUEST, "InvalidRequest", format!("{method} with this query is no multipart operation"))),
    };
    outcome.unwrap_or_else(|(status, code, message)| s3_error(status, code, &message))
}

/// S3's limit on a POST form's fields before the file (`MaxPostPreDataLengthExceededError`).
const MAX_PRE_DATA_BYTES: usize = 20 * 1024;

/// `POST /s3/{bucket}`: a browser upload with a presigned policy (multipart form, the file last),
/// checked as S3 checks it ([`crate::aws::s3::post`]); 204 and the notification on success.
async fn form_upload(
    State(state): State<S3State>,
    Path(bucket): Path<String>,
    method: Method,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    use axum::extract::FromRequest;
    let cors = cors_headers(&state.origins, &headers);
    let mut response = match method {
        Method::OPTIONS => StatusCode::OK.into_response(),
        Method::POST => match axum::extract::Multipart::from_request(request, &()).await {
            Ok(form) => post_form(&state, &bucket, form).await,
            Err(e) => s3_error(
                StatusCode::BAD_REQUEST,
                "MalformedPOSTRequest",
                &format!("The body of your POST request is not well-formed multipart/form-data: {e}"),
            ),
        },
        _ => s3_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "only POST and OPTIONS on a bucket"),
    };
    response.headers_mut().extend(cors);
    response
}

async fn post_form(state: &S3State, bucket: &str, mut form: axum::extract::Multipart) -> Response {
    let refused = |r: crate::aws::s3::post::Refusal| {
        s3_error(StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST), r.code, &r.message)
    };
    let mut fields = std::collections::BTreeMap::new();
    let mut pre_data = 0usize;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => {
                return s3_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "POST requires exactly one file upload per request.",
                );
            }
            Err(e) => return s3_error(StatusCode::BAD_REQUEST, "MalformedPOSTRequest", &e.to_string()),
        };
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name != "file" {
            // Read a chunk at a time against S3's limit on everything before the file, so a huge
            // field is refused after 20 KB instead of being held in memory.
            let mut value = Vec::new();
            let mut field = field;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        pre_data += chunk.len();
                        if pre_data > MAX_PRE_DATA_BYTES {
                            return s3_error(
                                StatusCode::BAD_REQUEST,
                                "MaxPostPreDataLengthExceededError",
                                "Your POST request fields preceding the upload file were too large.",
                            );
                        }
                        value.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return s3_error(StatusCode::BAD_REQUEST, "MalformedPOSTRequest", &e.to_string()),
                }
            }
            fields.insert(name, String::from_utf8_lossy(&value).into_owned());
            continue;
        }
        let range = match crate::aws::s3::post::check(&fields, bucket, std::time::SystemTime::now()) {
            Ok(range) => range,
            Err(refusal) => return refused(refusal),
        };
        let key = fields.get("key").cloned().unwrap_or_default();
        let path = match state.s3.path(bucket, &key) {
            Ok(path) => path,
            Err(e) => return s3_error(StatusCode::BAD_REQUEST, "InvalidArgument", &e.to_string()),
        };
        return match store(&path, field, range.max).await {
            Ok(Stored::Whole { size, .. }) if size < range.min => {
                let _ = tokio::fs::remove_file(&path).await;
                s3_error(
                    StatusCode::BAD_REQUEST,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size",
                )
            }
            Ok(Stored::Whole { size, etag }) => created(state, bucket, &key, size, &etag, StatusCode::NO_CONTENT),
            Ok(Stored::TooLarge) => s3_error(
                StatusCode::BAD_REQUEST,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
            ),
            Err(e) => s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e.to_string()),
        };
    }
}

async fn put(state: &S3State, bucket: &str, key: &str, path: &FsPath, body: Body) -> Response {
    match store(path, body.into_data_stream(), u64::MAX).await {
        Ok(Stored::Whole { size, etag }) => created(state, bucket, key, size, &etag, StatusCode::OK),
        Ok(Stored::TooLarge) => {
            s3_error(StatusCode::BAD_REQUEST, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        }
        Err(e) => {
            tracing::warn!(bucket, key, error = %e, "upload failed");
            s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e.to_string())
        }
    }
}

/// What [`store`] did with a body.
enum Stored {
    Whole {
        size: u64,
        etag: String,
    },
    /// The body went over the limit; nothing was kept.
    TooLarge,
}

/// Streams a body to `path` (beside it, then renamed: a failed or refused upload never leaves
/// half an object), stopping as soon as it exceeds `limit` bytes.
async fn store<S, E>(path: &FsPath, mut chunks: S, limit: u64) -> std::io::Result<Stored>
where
    S: futures::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let partial = path.with_extension(format!("upload-{}", fastrand::u64(..)));
    let mut file = tokio::fs::File::create(&partial).await?;
    let (mut size, mut hash) = (0u64, 0xcbf29ce484222325u64);
    let written: std::io::Result<bool> = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Ok(false);
            }
            for byte in chunk.iter() {
                hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100000001b3);
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(true)
    }
    .await;
    match written {
        Ok(true) => {
            tokio::fs::rename(&partial, path).await?;
            Ok(Stored::Whole { size, etag: format!("{hash:016x}{size:016x}") })
        }
        Ok(false) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Ok(Stored::TooLarge)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(e)
        }
    }
}

/// A new object: S3's notification to create-job, and the answer with its ETag.
fn created(state: &S3State, bucket: &str, key: &str, size: u64, etag: &str, status: StatusCode) -> Response {
    tracing::info!(bucket, key, size, "object stored");
    let _ = state.notify.send(state.s3.object_created(bucket, key, size, etag));
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// An object streamed from disk (a video can be larger than memory); `HEAD` sends no body.
async fn get(path: &FsPath, head: bool) -> Response {
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(_) => return s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist."),
    };
    let length = match file.metadata().await {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => return s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist."),
    };
    let kind = match path.extension().and_then(|e| e.to_str()).unwrap_or_default() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "mp4" => "video/mp4",
        "json" => "application/json",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => "application/octet-stream",
    };
    let body = if head { Body::empty() } else { Body::from_stream(tokio_util::io::ReaderStream::new(file)) };
    ([(header::CONTENT_TYPE, kind.to_owned()), (header::CONTENT_LENGTH, length.to_string())], body).into_response()
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
        xml_escape(message)
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn cors_headers(origins: &AllowedOrigins, request: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    let origin = request.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if let Some(origin) = origin.filter(|o| origins.allows(Some(o)))
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, PUT, GET, HEAD, DELETE"));
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
        out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("etag"));
        out.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_stay_inside_their_bucket() {
        let s3 = LocalS3::new("/data", "us-east-1");
        assert_eq!(
            s3.path("uploads", "a/Big Buck Bunny.mp4").unwrap(),
            PathBuf::from("/data/uploads/a/Big Buck Bunny.mp4")
        );
        for key in ["../etc/passwd", "a/../../b", "", "/abs", "a//b", "./a"] {
            assert!(matches!(s3.path("uploads", key), Err(ObjectNameError::Key(_))), "{key:?}");
        }
        for bucket in ["..", "UP", "a", "-x-", "a/b"] {
            assert!(matches!(s3.path(bucket, "k"), Err(ObjectNameError::Bucket(_))), "{bucket:?}");
        }
    }

    #[test]
    fn notification_keys_are_encoded_like_s3s_and_decode_back() {
        let key = "動画/Big Buck Bunny+1 (final).mp4";
        let encoded = encode_event_key(key);
        assert_eq!(encoded, "%E5%8B%95%E7%94%BB/Big+Buck+Bunny%2B1+%28final%29.mp4");
        assert_eq!(mcpush_core::domain::s3_key::decode_event_key(&encoded).as_deref(), Some(key));
    }
}
