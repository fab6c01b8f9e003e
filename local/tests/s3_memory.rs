//! The simulated S3 holds no form field in memory beyond S3's own limit: a 200 MB junk field
//! before the file is refused after 20 KB, and the process's peak memory barely moves. (A test
//! binary of its own, so the peak it reads is this test's.)

use mcpush_local::{Options, local};

/// The process's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_junk_field_is_refused_without_being_held_in_memory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // GIVEN the stack on its own server (no policy needed: the field comes before any check)
    let s3_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("junk-{}", std::process::id()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = local(&format!("http://{address}"), Options { s3_dir: s3_dir.clone(), ..Options::default() }).router;
    tokio::spawn(mcpush_local::run::server::serve(listener, app, Default::default(), std::future::pending()));
    let before = peak_rss_kib();

    // WHEN a form POST sends a 200 MB field, written as it goes (the client holds 64 KB of it)
    static JUNK: [u8; 64 * 1024] = [b'a'; 64 * 1024];
    let head = b"--x\r\ncontent-disposition: form-data; name=\"junk\"\r\n\r\n";
    let tail = b"\r\n--x--\r\n";
    let chunks = (200 * 1024 * 1024) / JUNK.len();
    let length = head.len() + chunks * JUNK.len() + tail.len();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let request = format!(
        "POST /s3/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    let sending = tokio::spawn(async move {
        // The server may answer and close before the end: a failed write ends the sending.
        let _ = async {
            writer.write_all(request.as_bytes()).await?;
            writer.write_all(head).await?;
            for _ in 0..chunks {
                writer.write_all(&JUNK).await?;
            }
            writer.write_all(tail).await
        }
        .await;
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(60), reader.read_to_end(&mut answer)).await;
    sending.abort();

    // THEN it is refused as S3 refuses it, and memory grew by far less than the field
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("MaxPostPreDataLengthExceededError"), "{text}");
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(grown_mib < 20, "peak memory grew by {grown_mib} MiB");
    let _ = std::fs::remove_dir_all(&s3_dir);
}
