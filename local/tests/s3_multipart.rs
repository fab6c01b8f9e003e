//! The simulated bucket's multipart upload against the real S3 client (aws-sdk-s3) and presigned
//! URLs, over HTTP: parts in any order, listed, completed into the object S3 would make (its
//! ETag the MD5 of the parts' MD5s, `-N`), create-job started once by the completion; and every
//! request S3 would refuse refused.

mod common;

use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use mcpush_local::aws::s3::post::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use md5::{Digest, Md5};

const MIB: usize = 1024 * 1024;

fn client(base: &str, secret: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(LOCAL_ACCESS_KEY, secret, None, None, "test"))
        // (a trailing slash: the SDK appends `{bucket}/{key}` to the endpoint's path as it is)
        .endpoint_url(format!("{base}/s3/"))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn error_code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &aws_sdk_s3::error::SdkError<E>) -> String {
    e.as_service_error().and_then(|s| s.code()).unwrap_or("no code").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_uploaded_by_the_sdk_and_by_presigned_urls_complete_into_one_object_and_one_job() {
    // GIVEN the local stack and the S3 client with its credentials
    let (base, stack, s3_dir) = common::serve_stack("multipart", |_| {}).await;
    let s3 = client(&base, LOCAL_SECRET_KEY);
    let key = "clips/big clip.mp4";
    let parts = [bytes(5 * MIB, 1), bytes(5 * MIB, 2), bytes(1234, 3)];

    // WHEN an upload is created, part 3 is sent by the SDK and parts 1 and 2 by presigned PUTs
    // (as a browser sends them), part 2 twice (a retry)
    let created = s3.create_multipart_upload().bucket("uploads").key(key).send().await.expect("created");
    let upload_id = created.upload_id().expect("an upload id").to_owned();
    let third = s3
        .upload_part()
        .bucket("uploads")
        .key(key)
        .upload_id(&upload_id)
        .part_number(3)
        .body(ByteStream::from(parts[2].clone()))
        .send()
        .await
        .expect("part 3");
    let presigned = |number: i32| {
        let s3 = s3.clone();
        let upload_id = upload_id.clone();
        async move {
            s3.upload_part()
                .bucket("uploads")
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .presigned(PresigningConfig::expires_in(Duration::from_secs(900)).unwrap())
                .await
                .expect("a presigned URL")
        }
    };
    let http = reqwest::Client::new();
    let mut etags = vec![];
    for (number, body) in [(1, &parts[0]), (2, &parts[1]), (2, &parts[1])] {
        let url = presigned(number).await;
        assert_eq!(url.method(), "PUT");
        let answer = http.put(url.uri()).body(body.clone()).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
        etags.push(answer.headers()["etag"].to_str().unwrap().to_owned());
    }
    // THEN ListParts shows the three parts, each with its MD5 as ETag and its size
    let listed = s3.list_parts().bucket("uploads").key(key).upload_id(&upload_id).send().await.expect("listed");
    let shown: Vec<(i32, String, i64)> = listed
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap(), p.e_tag().unwrap().to_owned(), p.size().unwrap()))
        .collect();
    let md5 = |b: &[u8]| Md5::digest(b);
    let expected: Vec<(i32, String, i64)> =
        (0..3).map(|i| (i as i32 + 1, format!("\"{}\"", hex::encode(md5(&parts[i]))), parts[i].len() as i64)).collect();
    assert_eq!(shown, expected);
    assert_eq!((etags[0].as_str(), third.e_tag()), (expected[0].1.as_str(), Some(expected[2].1.as_str())));

    // WHEN it is completed
    let completed: Vec<CompletedPart> =
        expected.iter().map(|(n, etag, _)| CompletedPart::builder().part_number(*n).e_tag(etag).build()).collect();
    let done = s3
        .complete_multipart_upload()
        .bucket("uploads")
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
        .send()
        .await
        .expect("completed");
    // THEN the object is the parts joined, with S3's multipart ETag
    let mut whole = Md5::new();
    parts.iter().for_each(|p| whole.update(md5(p)));
    assert_eq!(done.e_tag(), Some(format!("\"{}-3\"", hex::encode(whole.finalize())).as_str()));
    let stored = std::fs::read(s3_dir.join("uploads/clips/big clip.mp4")).unwrap();
    assert_eq!(stored, parts.concat());
    assert!(!s3_dir.join(".multipart").join(&upload_id).exists(), "the parts are gone");
    // AND create-job started one job for it, as S3's CompleteMultipartUpload notification does
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stack.jobs.latest_job_id(key).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "no job for the completed upload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // AND the upload is no more
    let again = s3.list_parts().bucket("uploads").key(key).upload_id(&upload_id).send().await.unwrap_err();
    assert_eq!(error_code(&again), "NoSuchUpload");
    let _ = std::fs::remove_dir_all(s3_dir);
}

#[tokio::test]
async fn requests_s3_would_refuse_are_refused() {
    // GIVEN the local stack and an upload with one small part
    let (base, _stack, s3_dir) = common::serve_stack("multipart-refusals", |_| {}).await;
    let s3 = client(&base, LOCAL_SECRET_KEY);
    let key = "refused.mp4";
    let upload_id =
        s3.create_multipart_upload().bucket("uploads").key(key).send().await.unwrap().upload_id().unwrap().to_owned();
    let part = |number: i32, body: Vec<u8>| {
        s3.upload_part()
            .bucket("uploads")
            .key(key)
            .upload_id(&upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
    };
    let small = part(1, bytes(100, 7)).send().await.unwrap().e_tag().unwrap().to_owned();
    let last = part(2, bytes(100, 8)).send().await.unwrap().e_tag().unwrap().to_owned();
    let complete = |parts: Vec<(i32, &str)>| {
        let parts = parts.into_iter().map(|(n, e)| CompletedPart::builder().part_number(n).e_tag(e).build()).collect();
        s3.complete_multipart_upload()
            .bucket("uploads")
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
    };
    let http = reqwest::Client::new();

    // THEN a part under 5 MiB that is not the last, parts out of order, a wrong ETag are refused
    assert_eq!(error_code(&complete(vec![(1, &small), (2, &last)]).await.unwrap_err()), "EntityTooSmall");
    assert_eq!(error_code(&complete(vec![(2, &last), (1, &small)]).await.unwrap_err()), "InvalidPartOrder");
    assert_eq!(error_code(&complete(vec![(1, "\"0000\"")]).await.unwrap_err()), "InvalidPart");
    // AND a part number out of range, an unknown upload id, a wrong secret, an unsigned request
    assert_eq!(error_code(&part(10_001, vec![1]).send().await.unwrap_err()), "InvalidArgument");
    let unknown = s3.list_parts().bucket("uploads").key(key).upload_id("feedface").send().await.unwrap_err();
    assert_eq!(error_code(&unknown), "NoSuchUpload");
    let other_key = s3.list_parts().bucket("uploads").key("other.mp4").upload_id(&upload_id).send().await.unwrap_err();
    assert_eq!(error_code(&other_key), "NoSuchUpload");
    let forged = client(&base, "not-the-secret").list_parts().bucket("uploads").key(key).upload_id(&upload_id).send();
    assert_eq!(error_code(&forged.await.unwrap_err()), "SignatureDoesNotMatch");
    let unsigned = http.get(format!("{base}/s3/uploads/{key}?uploadId={upload_id}")).send().await.unwrap();
    assert_eq!(unsigned.status(), 403);
    // AND a presigned URL whose part number was changed, or that has expired
    let presigned = |expires: u64| {
        s3.upload_part()
            .bucket("uploads")
            .key(key)
            .upload_id(&upload_id)
            .part_number(3)
            .presigned(PresigningConfig::expires_in(Duration::from_secs(expires)).unwrap())
    };
    let url = presigned(900).await.unwrap().uri().to_owned();
    let tampered = http.put(url.replace("partNumber=3", "partNumber=4")).body("x").send().await.unwrap();
    assert_eq!(tampered.status(), 403);
    assert!(tampered.text().await.unwrap().contains("SignatureDoesNotMatch"));
    let short = presigned(1).await.unwrap().uri().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = http.put(short).body("x").send().await.unwrap();
    assert_eq!(expired.status(), 403);
    assert!(expired.text().await.unwrap().contains("Request has expired"));

    // WHEN the upload is aborted THEN it and its parts are gone
    s3.abort_multipart_upload().bucket("uploads").key(key).upload_id(&upload_id).send().await.expect("aborted");
    let gone = s3.list_parts().bucket("uploads").key(key).upload_id(&upload_id).send().await.unwrap_err();
    assert_eq!(error_code(&gone), "NoSuchUpload");
    assert!(!s3_dir.join(".multipart").join(&upload_id).exists());
    let _ = std::fs::remove_dir_all(s3_dir);
}
