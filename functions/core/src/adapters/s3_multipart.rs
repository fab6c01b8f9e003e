//! [`MultipartUploads`] over aws-sdk-s3 on one bucket: S3's errors become [`MultipartError`]s
//! (`NoSuchUpload`; the caller's mistakes with their code; the rest unavailable), part URLs are
//! presigned with the function's own credentials (the role's `s3:PutObject` authorises them).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::ports::{MultipartError, MultipartUploads, UploadedPart};

pub struct S3Multipart {
    client: Client,
    bucket: String,
}

impl S3Multipart {
    pub fn new(client: Client, bucket: &str) -> Self {
        Self { client, bucket: bucket.to_owned() }
    }

    /// A client with the SDK's region, credentials and endpoint (`AWS_ENDPOINT_URL_S3`), path-style
    /// when an endpoint is set (the local stack's `…/s3/`), checksums only where S3 requires them
    /// (a browser's presigned `PUT` sends none).
    pub fn from_sdk_config(config: &aws_config::SdkConfig, bucket: &str) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Self::new(Client::from_conf(conf), bucket)
    }
}

/// S3's answer as a [`MultipartError`].
fn failed<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(e: SdkError<E>) -> MultipartError {
    let code = e.as_service_error().and_then(|s| s.code()).map(str::to_owned);
    let message = e.as_service_error().and_then(|s| s.message()).unwrap_or_default().to_owned();
    match code.as_deref() {
        Some("NoSuchUpload") => MultipartError::NoSuchUpload,
        Some(
            code @ ("InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" | "EntityTooLarge" | "MalformedXML"
            | "InvalidArgument" | "KeyTooLongError" | "InvalidRequest"),
        ) => MultipartError::Refused(code.to_owned(), message),
        _ => MultipartError::Unavailable(DisplayErrorContext(e).to_string()),
    }
}

#[async_trait]
impl MultipartUploads for S3Multipart {
    async fn create(&self, key: &str, content_type: &str) -> Result<String, MultipartError> {
        let created = (self.client.create_multipart_upload().bucket(&self.bucket).key(key))
            .content_type(content_type)
            .send()
            .await
            .map_err(failed)?;
        created.upload_id.ok_or_else(|| MultipartError::Unavailable("CreateMultipartUpload gave no UploadId".into()))
    }

    async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        now: SystemTime,
        expires: Duration,
    ) -> Result<String, MultipartError> {
        let config = PresigningConfig::builder()
            .start_time(now)
            .expires_in(expires)
            .build()
            .map_err(|e| MultipartError::Unavailable(e.to_string()))?;
        let number = i32::try_from(part_number)
            .map_err(|_| MultipartError::Refused("InvalidArgument".into(), "part number".into()))?;
        let request = (self.client.upload_part().bucket(&self.bucket).key(key).upload_id(upload_id))
            .part_number(number)
            .presigned(config)
            .await
            .map_err(failed)?;
        Ok(request.uri().to_owned())
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<UploadedPart>, MultipartError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = (self.client.list_parts().bucket(&self.bucket).key(key).upload_id(upload_id))
                .set_part_number_marker(marker.clone())
                .send()
                .await
                .map_err(failed)?;
            for part in page.parts() {
                parts.push(UploadedPart {
                    part_number: part.part_number().and_then(|n| u32::try_from(n).ok()).unwrap_or_default(),
                    etag: part.e_tag().unwrap_or_default().to_owned(),
                    size: part.size().and_then(|n| u64::try_from(n).ok()).unwrap_or_default(),
                });
            }
            match (page.is_truncated(), page.next_part_number_marker()) {
                (Some(true), Some(next)) if marker.as_deref() != Some(next) => marker = Some(next.to_owned()),
                _ => return Ok(parts),
            }
        }
    }

    async fn complete(&self, key: &str, upload_id: &str, parts: &[(u32, String)]) -> Result<(), MultipartError> {
        let parts =
            parts.iter().map(|(n, etag)| CompletedPart::builder().part_number(*n as i32).e_tag(etag).build()).collect();
        (self.client.complete_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id))
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), MultipartError> {
        (self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }
}
