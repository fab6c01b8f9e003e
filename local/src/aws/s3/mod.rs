//! The simulated S3: the buckets on disk ([`bucket`]: objects, ranges, notifications to
//! create-job) and browser POST uploads checked as S3 checks them ([`post`]).

pub mod bucket;
pub mod post;

pub use bucket::{LocalS3, router, split_s3_url};
pub use post::local_post_signer;
