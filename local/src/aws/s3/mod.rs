//! The simulated S3: the buckets on disk ([`bucket`]: objects, ranges, notifications to
//! create-job), browser POST uploads checked as S3 checks them ([`post`]), multipart uploads
//! ([`multipart`]) and S3's SigV4 check of signed and presigned requests ([`sigv4`]).

pub mod bucket;
pub mod multipart;
pub mod post;
pub mod sigv4;

pub use bucket::{LocalS3, router, split_s3_url};
pub use post::{local_multipart, local_post_signer};
