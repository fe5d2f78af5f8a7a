//! The S3 storage backend against a real S3-compatible server: moto's server mode
//! (`pip install 'moto[server]'`), started on a free port for the test. Uploads, dedup,
//! ranges, thumbnails, avatars and the clean-up behave as on local disk; the bytes live in
//! the bucket. Without moto the test says so and passes, except under CI (`CI=true`).

use crate::common::*;
use banter_protocol::frame::AttachmentRequest;
use banter_protocol::model::{AttachmentKind, UploadKind};
use banter_protocol::ClientFrame;
use banter_protocol::ServerEvent;
use banter_server::config::{MediaStorage, Secret};
use image::{DynamicImage, ImageFormat, RgbImage};
use std::io::Cursor;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BUCKET: &str = "banter-test";

/// A moto server, killed when dropped.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts moto on a free port and waits (bounded) until it answers; `None` if moto is not
/// installed.
async fn moto() -> Option<(Moto, String)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let probe = banter_client::Client::new(&endpoint).expect("client");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if probe.raw_get("/").await.is_ok() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "moto did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let created = probe
        .raw(banter_client::Method::PUT, &format!("/{BUCKET}"), None)
        .await
        .expect("create the bucket");
    assert_eq!(created.status, 200, "{}", created.body);
    Some((moto, endpoint))
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, _| {
        image::Rgb([x as u8, 10, 200])
    }))
    .write_to(&mut out, ImageFormat::Png)
    .expect("png");
    out.into_inner()
}

#[tokio::test]
async fn media_lives_in_an_s3_bucket() {
    let Some((_moto, endpoint)) = moto().await else {
        let missing =
            "S3 backend NOT TESTED: moto_server is not installed (pip install 'moto[server]')";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing}");
        eprintln!("{missing}");
        return;
    };
    let Some(server) = TestServer::start_with(|config| {
        config.media.storage = MediaStorage::S3 {
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            endpoint: Some(endpoint.clone()),
            access_key_id: Secret("testing".into()),
            secret_access_key: Secret("testing".into()),
            allow_http: true,
        };
        config.media.unattached_upload_ttl = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let direct = alice.open_direct(bob_profile.id).await.expect("direct").id;

    // A file of several S3 parts (5 MiB each), streamed in.
    let big: Vec<u8> = (0..12 * 1024 * 1024 + 17)
        .map(|i| (i % 253) as u8)
        .collect();
    let upload = alice.upload("big.bin", big.clone()).await.expect("upload");
    assert_eq!(
        (upload.kind, upload.size),
        (UploadKind::File, big.len() as i64)
    );
    let picture = alice.upload("p.png", png(400, 200)).await.expect("picture");
    assert_eq!(
        (picture.kind, picture.width),
        (UploadKind::Image, Some(400))
    );
    // The same bytes again: one object, two uploads.
    let again = alice.upload("again.bin", big.clone()).await.expect("dedup");
    assert_ne!(again.id, upload.id);

    let mut ws = alice.connect().await.expect("connect");
    for (n, (item, kind)) in [
        (&upload, AttachmentKind::File),
        (&picture, AttachmentKind::Image),
    ]
    .into_iter()
    .enumerate()
    {
        ws.send_frame(&ClientFrame::SendMessage {
            id: format!("s{n}"),
            conversation_id: direct,
            client_msg_id: format!("c{n}"),
            text: String::new(),
            attachment: Some(Box::new(AttachmentRequest {
                upload_id: item.id.clone(),
                kind,
                duration_ms: None,
            })),
        })
        .await
        .expect("send");
        let want = format!("s{n}");
        expect_event(&mut ws, |e| {
            matches!(e, ServerEvent::Ack { id, .. } if *id == want).then_some(())
        })
        .await;
    }
    let whole = bob
        .download(&upload.id.0, false, None)
        .await
        .expect("download");
    assert_eq!(whole.status, 200);
    assert!(whole.bytes == big, "the bytes came back changed");
    let part = bob
        .download(&upload.id.0, false, Some("bytes=6291456-6291465"))
        .await
        .expect("range");
    assert_eq!(
        (part.status, part.bytes.as_slice()),
        (206, &big[6_291_456..6_291_466])
    );
    let thumbnail = bob
        .download(&picture.id.0, true, None)
        .await
        .expect("thumbnail");
    let decoded = image::load_from_memory(&thumbnail.bytes).expect("a picture");
    assert_eq!((decoded.width(), decoded.height()), (320, 160));

    let avatar_url = alice
        .set_avatar(png(50, 80))
        .await
        .expect("avatar")
        .avatar_url
        .unwrap();
    let avatar = server
        .client()
        .avatar(&avatar_url, 128)
        .await
        .expect("avatar");
    assert_eq!(avatar.status, 200);
    // And the bytes are in the bucket, not on local disk.
    let listing = banter_client::Client::new(&endpoint)
        .expect("client")
        .raw_get(&format!("/{BUCKET}?list-type=2"))
        .await
        .expect("list the bucket");
    for prefix in ["<Key>blobs/", "<Key>thumbnails/", "<Key>avatars/"] {
        assert!(
            listing.body.contains(prefix),
            "no {prefix} in {}",
            listing.body
        );
    }
    assert_eq!(
        listing.body.matches("<Key>blobs/").count(),
        2,
        "one object per content"
    );

    // The clean-up deletes the unused duplicate's record; the shared object stays, since
    // the sent upload still uses it.
    let deadline = tokio::time::Instant::now() + WAIT;
    while alice
        .download(&again.id.0, false, None)
        .await
        .unwrap()
        .status
        != 404
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unused upload stayed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let still = bob
        .download(&upload.id.0, false, Some("bytes=0-9"))
        .await
        .unwrap();
    assert_eq!((still.status, still.bytes.as_slice()), (206, &big[..10]));
}
