//! S3's multipart upload on the simulated bucket, as aws-sdk-s3 and presigned URLs call it
//! (path-style, `/s3/{bucket}/{key}`), every request SigV4-checked ([`super::sigv4`]):
//!
//! - `POST ?uploads`: CreateMultipartUpload → an upload id;
//! - `PUT ?partNumber=N&uploadId=U`: UploadPart (1–10,000), streamed to disk with its MD5 (the
//!   part's ETag), so memory stays flat whatever the part's size;
//! - `GET ?uploadId=U`: ListParts;
//! - `POST ?uploadId=U`: CompleteMultipartUpload: the listed parts (ascending, ETags matching,
//!   each but the last at least 5 MiB) streamed into the object, whose ETag is S3's: the MD5 of
//!   the parts' MD5s, `-N`; then the `ObjectCreated:CompleteMultipartUpload` notification;
//! - `DELETE ?uploadId=U`: AbortMultipartUpload.
//!
//! Parts live under `{root}/.multipart/{upload id}/` until the upload completes or is aborted.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

/// S3's smallest part (all but the last).
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// S3's largest part.
pub const MAX_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// S3's most parts per upload.
pub const MAX_PARTS: u32 = 10_000;

/// One part S3 holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub md5: [u8; 16],
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

impl Part {
    pub fn etag(&self) -> String {
        format!("\"{}\"", hex::encode(self.md5))
    }
}

/// One upload in progress.
#[derive(Debug)]
struct Upload {
    bucket: String,
    key: String,
    parts: BTreeMap<u32, Part>,
}

/// The uploads in progress of the simulated S3.
#[derive(Debug, Default)]
pub struct Uploads {
    uploads: Mutex<HashMap<String, Upload>>,
    /// UploadPart requests taken (for tests: which parts a resumed upload sent again).
    pub parts_received: std::sync::atomic::AtomicU64,
}

/// An S3 error: status, code, message.
pub type S3Failure = (StatusCode, &'static str, String);

fn no_such_upload() -> S3Failure {
    (
        StatusCode::NOT_FOUND,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.".into(),
    )
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/xml")], format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"))
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

impl Uploads {
    fn dir(root: &std::path::Path, upload_id: &str) -> PathBuf {
        root.join(".multipart").join(upload_id)
    }

    fn with<T>(
        &self,
        upload_id: &str,
        bucket: &str,
        key: &str,
        f: impl FnOnce(&mut Upload) -> T,
    ) -> Result<T, S3Failure> {
        let mut uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        match uploads.get_mut(upload_id) {
            Some(upload) if upload.bucket == bucket && upload.key == key => Ok(f(upload)),
            _ => Err(no_such_upload()),
        }
    }

    /// CreateMultipartUpload.
    pub fn create(&self, bucket: &str, key: &str) -> Response {
        let mut id = [0u8; 24];
        if getrandom::fill(&mut id).is_err() {
            return xml(StatusCode::INTERNAL_SERVER_ERROR, "<Error><Code>InternalError</Code></Error>".into());
        }
        let upload_id = hex::encode(id);
        let upload = Upload { bucket: bucket.to_owned(), key: key.to_owned(), parts: BTreeMap::new() };
        self.uploads.lock().unwrap_or_else(|e| e.into_inner()).insert(upload_id.clone(), upload);
        tracing::info!(bucket, key, upload_id, "multipart upload created");
        xml(
            StatusCode::OK,
            format!(
                "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>",
                escape(bucket),
                escape(key)
            ),
        )
    }

    /// UploadPart: streams the body to the part's file with its MD5; a part sent again replaces
    /// the earlier one.
    pub async fn upload_part(
        &self,
        root: &std::path::Path,
        (bucket, key): (&str, &str),
        upload_id: &str,
        part_number: &str,
        body: Body,
    ) -> Result<Response, S3Failure> {
        let number: u32 = part_number.parse().ok().filter(|n| (1..=MAX_PARTS).contains(n)).ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Part number must be an integer between 1 and 10000, inclusive".to_owned(),
            )
        })?;
        self.with(upload_id, bucket, key, |_| ())?;
        let dir = Self::dir(root, upload_id);
        let internal = |e: std::io::Error| (StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e.to_string());
        tokio::fs::create_dir_all(&dir).await.map_err(internal)?;
        let partial = dir.join(format!("{number}.{}", fastrand::u64(..)));
        let mut file = tokio::fs::File::create(&partial).await.map_err(internal)?;
        let (mut md5, mut size) = (Md5::new(), 0u64);
        let mut chunks = body.into_data_stream();
        let written: Result<(), S3Failure> = async {
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| (StatusCode::BAD_REQUEST, "IncompleteBody", e.to_string()))?;
                size += chunk.len() as u64;
                if size > MAX_PART_BYTES {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        "EntityTooLarge",
                        "Your proposed upload exceeds the maximum allowed size".into(),
                    ));
                }
                md5.update(&chunk);
                file.write_all(&chunk).await.map_err(internal)?;
            }
            file.flush().await.map_err(internal)
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
        tokio::fs::rename(&partial, dir.join(number.to_string())).await.map_err(internal)?;
        let part = Part { md5: md5.finalize().into(), size, last_modified: chrono::Utc::now() };
        let etag = part.etag();
        // The upload may have been aborted meanwhile: then the part is no one's.
        self.with(upload_id, bucket, key, |upload| upload.parts.insert(number, part))?;
        self.parts_received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut response = StatusCode::OK.into_response();
        if let Ok(value) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        Ok(response)
    }

    /// ListParts (all of them: at most 10,000, one page).
    pub fn list_parts(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Response, S3Failure> {
        let parts = self.with(upload_id, bucket, key, |upload| upload.parts.clone())?;
        let listed: String = parts
            .iter()
            .map(|(n, p)| {
                format!(
                    "<Part><PartNumber>{n}</PartNumber><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size></Part>",
                    p.last_modified.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    escape(&p.etag()),
                    p.size
                )
            })
            .collect();
        Ok(xml(
            StatusCode::OK,
            format!(
                "<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{upload_id}</UploadId><MaxParts>10000</MaxParts><IsTruncated>false</IsTruncated>{listed}</ListPartsResult>",
                escape(bucket),
                escape(key)
            ),
        ))
    }

    /// AbortMultipartUpload: the upload and its parts are gone.
    pub async fn abort(
        &self,
        root: &std::path::Path,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Response, S3Failure> {
        self.with(upload_id, bucket, key, |_| ())?;
        self.uploads.lock().unwrap_or_else(|e| e.into_inner()).remove(upload_id);
        let _ = tokio::fs::remove_dir_all(Self::dir(root, upload_id)).await;
        tracing::info!(bucket, key, upload_id, "multipart upload aborted");
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// CompleteMultipartUpload: checks the listed parts as S3 does and streams them into
    /// `object`; answers the object's size and ETag. The upload is gone afterwards.
    pub async fn complete(
        &self,
        root: &std::path::Path,
        (bucket, key): (&str, &str),
        upload_id: &str,
        body: &[u8],
        object: &std::path::Path,
    ) -> Result<(u64, String), S3Failure> {
        let listed = parse_complete(body)?;
        let held = self.with(upload_id, bucket, key, |upload| upload.parts.clone())?;
        let invalid_part = || {
            (
                StatusCode::BAD_REQUEST,
                "InvalidPart",
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.".to_owned(),
            )
        };
        if listed.is_empty() {
            return Err((
                StatusCode::BAD_REQUEST,
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our published schema".into(),
            ));
        }
        if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err((StatusCode::BAD_REQUEST, "InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number.".into()));
        }
        let mut parts = Vec::with_capacity(listed.len());
        for (number, etag) in &listed {
            let part = held
                .get(number)
                .filter(|p| p.etag().trim_matches('"') == etag.trim_matches('"'))
                .ok_or_else(invalid_part)?;
            parts.push((*number, part.clone()));
        }
        if parts[..parts.len() - 1].iter().any(|(_, p)| p.size < MIN_PART_BYTES) {
            return Err((
                StatusCode::BAD_REQUEST,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.".into(),
            ));
        }
        let internal = |e: std::io::Error| (StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e.to_string());
        if let Some(parent) = object.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(internal)?;
        }
        let dir = Self::dir(root, upload_id);
        let partial = object.with_extension(format!("upload-{}", fastrand::u64(..)));
        // std::io::copy between files is the kernel's copy_file_range: no bytes through user space.
        let (sources, target) =
            (parts.iter().map(|(number, _)| dir.join(number.to_string())).collect::<Vec<_>>(), partial.clone());
        let joined = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut out = std::fs::File::create(&target)?;
            let mut size = 0;
            for source in &sources {
                size += std::io::copy(&mut std::fs::File::open(source)?, &mut out)?;
            }
            Ok(size)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let size = match joined {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(internal(e));
            }
        };
        tokio::fs::rename(&partial, object).await.map_err(internal)?;
        let mut whole = Md5::new();
        for (_, part) in &parts {
            whole.update(part.md5);
        }
        let etag = format!("{}-{}", hex::encode(whole.finalize()), parts.len());
        self.uploads.lock().unwrap_or_else(|e| e.into_inner()).remove(upload_id);
        let _ = tokio::fs::remove_dir_all(&dir).await;
        tracing::info!(bucket, key, upload_id, size, parts = parts.len(), "multipart upload completed");
        Ok((size, etag))
    }
}

/// `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"…"</ETag></Part>…` → the
/// listed (part number, ETag) pairs, in the order given.
fn parse_complete(body: &[u8]) -> Result<Vec<(u32, String)>, S3Failure> {
    let malformed = || {
        (
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema".to_owned(),
        )
    };
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    let inner = |within: &str, tag: &str| -> Option<String> {
        let start = within.find(&format!("<{tag}>"))? + tag.len() + 2;
        let end = within[start..].find(&format!("</{tag}>"))? + start;
        Some(within[start..end].trim().replace("&quot;", "\"").replace("&#34;", "\""))
    };
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("<Part>") {
        let end = rest[at..].find("</Part>").ok_or_else(malformed)? + at;
        let part = &rest[at..end];
        let number = inner(part, "PartNumber").and_then(|n| n.parse().ok()).ok_or_else(malformed)?;
        let etag = inner(part, "ETag").ok_or_else(malformed)?;
        parts.push((number, etag));
        rest = &rest[end..];
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_complete_request_is_read_as_the_sdk_writes_it() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>&quot;abc&quot;</ETag><PartNumber>1</PartNumber></Part><Part><ETag>"def"</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>"#;
        assert_eq!(parse_complete(body).unwrap(), vec![(1, "\"abc\"".to_owned()), (2, "\"def\"".to_owned())]);
        assert_eq!(parse_complete(b"<Part><ETag>x</ETag></Part>").unwrap_err().1, "MalformedXML");
    }
}
