use crate::server::{TestServer, walk};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

fn content(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index % 251) as u8).collect()
}

#[tokio::test]
async fn documents_stream_in_and_out_over_tls_and_a_disconnect_leaves_nothing() {
    let server = TestServer::start();
    let created = server.cli_json(&["tenant", "create", "acme", "--name", "Acme"]);
    let blobs = server
        .data_dir()
        .join("tenants")
        .join(created["id"].as_str().unwrap())
        .join("blobs");
    let token = server.cli_json(&[
        "token",
        "create",
        "acme",
        "--scope",
        "documents:read",
        "--scope",
        "documents:write",
    ])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = server.client();
    let url = server.public_url("/v1/tenants/acme/documents/archive/big.bin");
    let file = content(3 * 1024 * 1024 + 17);
    let uploaded: Value = client
        .put(&url)
        .bearer_auth(&token)
        .body(file.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(uploaded["size"], file.len());
    let whole = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(
        whole.headers()["content-length"],
        file.len().to_string().as_str()
    );
    assert_eq!(whole.bytes().await.unwrap().as_ref(), &file[..]);
    let part = client
        .get(&url)
        .bearer_auth(&token)
        .header("range", "bytes=1000000-1000099")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.bytes().await.unwrap().as_ref(),
        &file[1_000_000..1_000_100]
    );

    // A client that announces a large body, sends part of it and disconnects.
    let mut stream = server.raw_tls().await;
    let head = format!(
        "PUT /v1/tenants/acme/documents/cut.bin HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Length: 5000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&content(500_000)).await.unwrap();
    stream.flush().await.unwrap();
    drop(stream);

    let started = std::time::Instant::now();
    loop {
        let partial_uploads = walk(&blobs.join("uploads")).len();
        if partial_uploads == 0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the partial upload was not removed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let missing = client
        .get(server.public_url("/v1/tenants/acme/documents/cut.bin"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let stored: Vec<_> = walk(&blobs)
        .into_iter()
        .filter(|path| !path.starts_with(blobs.join("uploads")))
        .collect();
    assert_eq!(
        stored.len(),
        1,
        "only the complete upload is stored: {stored:?}"
    );
}
