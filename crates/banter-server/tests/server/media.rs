//! Pictures, files, voice messages and avatars end to end (docs/protocol.md §4.10): upload,
//! attach, deliver, download with the safety headers, and who may fetch what.

use crate::common::*;
use banter_client::{Client, Connection};
use banter_protocol::frame::AttachmentRequest;
use banter_protocol::model::{
    AttachmentKind, Message, MessageContent, SystemNotice, Upload, UploadKind,
};
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent, UploadId};
use image::{DynamicImage, ImageFormat, RgbImage};
use std::io::Cursor;

/// A `width`×`height` picture in `format`, with a horizontal gradient.
fn picture(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 40) as u8, (y * 40) as u8, 90])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image)
        .write_to(&mut out, format)
        .expect("encode a test picture");
    out.into_inner()
}

/// A JPEG whose EXIF says "rotate 90° clockwise" and carries a GPS latitude reference.
fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
    let plain = picture(width, height, ImageFormat::Jpeg);
    // TIFF, little-endian: IFD0 at 8 with Orientation = 6 and a GPS IFD pointer (to 38);
    // the GPS IFD holds GPSLatitudeRef = "N".
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&[0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = plain[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A small PNG whose header claims `side`×`side` pixels (a decompression bomb's shape).
fn png_claiming(side: u32) -> Vec<u8> {
    let mut png = picture(4, 4, ImageFormat::Png);
    // IHDR's data starts at 16 (8 signature, 4 length, 4 type); its CRC follows 13 bytes.
    png[16..20].copy_from_slice(&side.to_be_bytes());
    png[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// The start of a WebM file, as a browser's recorder makes (EBML header, "webm" doctype).
fn webm_bytes() -> Vec<u8> {
    let mut bytes = vec![
        0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2,
        0x81, 0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x84,
    ];
    bytes.extend_from_slice(b"webm");
    bytes.extend_from_slice(&[0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02]);
    bytes.extend(std::iter::repeat_n(7u8, 2000));
    bytes
}

/// An Ogg stream's first page start, then filler: audio by its bytes.
fn ogg_bytes(len: usize) -> Vec<u8> {
    let mut bytes = b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
    bytes.extend((0..len - bytes.len()).map(|i| (i % 251) as u8));
    bytes
}

async fn friends(server: &TestServer) -> (Client, Client, ConversationId) {
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let direct = alice.open_direct(bob_profile.id).await.expect("direct").id;
    (alice, bob, direct)
}

fn attach(kind: AttachmentKind, upload: &Upload) -> AttachmentRequest {
    AttachmentRequest {
        upload_id: upload.id.clone(),
        kind,
        duration_ms: None,
    }
}

/// Sends a media message and returns the ack's outcome: the message id, or the error.
async fn send_media(
    conn: &mut Connection,
    conversation: ConversationId,
    caption: &str,
    attachment: AttachmentRequest,
) -> Result<banter_protocol::MessageId, (ErrorCode, String)> {
    let id = format!("m{}", rand_suffix());
    conn.send_frame(&ClientFrame::SendMessage {
        id: id.clone(),
        conversation_id: conversation,
        client_msg_id: format!("c-{id}"),
        text: caption.into(),
        attachment: Some(Box::new(attachment)),
    })
    .await
    .expect("send");
    expect_event(conn, |event| match event {
        ServerEvent::Ack {
            id: reply,
            message_id,
            ..
        } if *reply == id => Some(Ok(*message_id)),
        ServerEvent::Error {
            id: Some(reply),
            code,
            message,
        } if *reply == id => Some(Err((*code, message.clone()))),
        _ => None,
    })
    .await
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn received_media(conn: &mut Connection) -> Message {
    expect_event(conn, |event| match event {
        ServerEvent::MessageCreated { message }
            if matches!(message.content, MessageContent::Media { .. }) =>
        {
            Some(message.clone())
        }
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_picture_is_cleaned_delivered_and_served_only_to_members() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, bob, direct) = friends(&server).await;
    let (eve, _) = server.user("eve").await;

    let original = jpeg_with_exif(40, 20);
    assert!(original.windows(4).any(|w| w == b"Exif"));
    let upload = alice.upload("summit.jpg", original).await.expect("upload");
    assert_eq!(upload.kind, UploadKind::Image);
    assert_eq!(upload.mime, "image/jpeg");
    // Orientation 6 turned the 40×20 picture upright: 20×40.
    assert_eq!((upload.width, upload.height), (Some(20), Some(40)));
    assert!(upload.thumbnail);
    assert!(UploadId::is_well_formed(&upload.id.0));

    let mut alice_ws = alice.connect().await.expect("connect");
    let mut bob_ws = bob.connect().await.expect("connect");
    send_media(
        &mut alice_ws,
        direct,
        "top of the route",
        attach(AttachmentKind::Image, &upload),
    )
    .await
    .expect("sent");
    let message = received_media(&mut bob_ws).await;
    let MessageContent::Media {
        caption,
        attachment: Some(attachment),
        recalled: false,
    } = message.content
    else {
        panic!("a media message: {:?}", message.content);
    };
    assert_eq!(caption, "top of the route");
    assert_eq!(attachment.upload_id, upload.id);
    assert_eq!(
        (attachment.kind, attachment.name.as_str()),
        (AttachmentKind::Image, "summit.jpg")
    );
    assert_eq!((attachment.width, attachment.height), (Some(20), Some(40)));

    // Bob downloads it: re-encoded, no EXIF left, served inline with the safety headers.
    let download = bob
        .download(&upload.id.0, false, None)
        .await
        .expect("download");
    assert_eq!(download.status, 200);
    assert_eq!(download.header("content-type"), "image/jpeg");
    assert_eq!(download.header("x-content-type-options"), "nosniff");
    assert!(download
        .header("content-disposition")
        .starts_with("inline;"));
    assert!(download.header("cache-control").starts_with("private"));
    assert_eq!(download.header("vary"), "Authorization");
    assert!(download
        .header("content-security-policy")
        .contains("sandbox"));
    assert_eq!(download.bytes.len() as i64, upload.size);
    assert!(
        !download.bytes.windows(4).any(|w| w == b"Exif"),
        "EXIF survived"
    );
    let decoded = image::load_from_memory(&download.bytes).expect("decodes");
    assert_eq!((decoded.width(), decoded.height()), (20, 40));
    let thumbnail = bob
        .download(&upload.id.0, true, None)
        .await
        .expect("thumbnail");
    assert_eq!(
        (thumbnail.status, thumbnail.header("content-type")),
        (200, "image/jpeg")
    );

    // A stranger, a guessed id and a malformed one all get the same 404.
    let missing = "0123456789abcdef0123456789abcdef";
    let mut answers = Vec::new();
    for (client, id) in [
        (&eve, upload.id.0.as_str()),
        (&bob, missing),
        (&bob, "../../etc/passwd"),
    ] {
        for thumbnail in [false, true] {
            let refused = client.download(id, thumbnail, None).await.expect("answer");
            answers.push((
                refused.status,
                String::from_utf8_lossy(&refused.bytes).into_owned(),
            ));
        }
    }
    assert!(answers.iter().all(|a| a.0 == 404), "{answers:?}");
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // History after a reload shows the same message.
    let page = bob.latest_messages(direct, 10).await.expect("history");
    assert_eq!(page.messages.last().expect("entry").id, message.id);
}

#[tokio::test]
async fn only_the_uploader_attaches_and_the_kind_must_fit() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, bob, direct) = friends(&server).await;
    let mut bob_ws = bob.connect().await.expect("connect");
    let alices = alice
        .upload("cat.png", picture(8, 8, ImageFormat::Png))
        .await
        .expect("upload");
    // Alice's upload id in Bob's message: as if it did not exist.
    let refused = send_media(
        &mut bob_ws,
        direct,
        "",
        attach(AttachmentKind::Image, &alices),
    )
    .await;
    assert_eq!(refused.unwrap_err().0, ErrorCode::NotFound);

    let pdf = bob
        .upload("notes.pdf", b"%PDF-1.4\n%...".to_vec())
        .await
        .expect("pdf");
    assert_eq!(
        (pdf.kind, pdf.mime.as_str()),
        (UploadKind::File, "application/pdf")
    );
    for kind in [AttachmentKind::Image, AttachmentKind::Video] {
        let refused = send_media(&mut bob_ws, direct, "", attach(kind, &pdf)).await;
        assert_eq!(refused.unwrap_err().0, ErrorCode::InvalidInput, "{kind:?}");
    }
    // Voice: an audio upload with a duration; without one, or a duration on a file: refused.
    let voice = bob
        .upload("voice.ogg", ogg_bytes(3000))
        .await
        .expect("voice");
    assert_eq!(voice.kind, UploadKind::Audio);
    let refused = send_media(
        &mut bob_ws,
        direct,
        "",
        attach(AttachmentKind::Voice, &voice),
    )
    .await;
    assert_eq!(refused.unwrap_err().0, ErrorCode::InvalidInput);
    let mut with_duration = attach(AttachmentKind::File, &pdf);
    with_duration.duration_ms = Some(1000);
    let refused = send_media(&mut bob_ws, direct, "", with_duration).await;
    assert_eq!(refused.unwrap_err().0, ErrorCode::InvalidInput);
    let mut voice_request = attach(AttachmentKind::Voice, &voice);
    voice_request.duration_ms = Some(7_250);
    send_media(&mut bob_ws, direct, "", voice_request)
        .await
        .expect("voice sent");
    // A browser's recording (WebM) is a voice message too.
    let recorded = bob.upload("voice.webm", webm_bytes()).await.expect("webm");
    assert_eq!(
        (recorded.kind, recorded.mime.as_str()),
        (UploadKind::Video, "video/webm")
    );
    let mut recorded_request = attach(AttachmentKind::Voice, &recorded);
    recorded_request.duration_ms = Some(1_500);
    send_media(&mut bob_ws, direct, "", recorded_request)
        .await
        .expect("webm voice sent");
    // And any upload can go as a file, with a caption.
    send_media(
        &mut bob_ws,
        direct,
        "the notes",
        attach(AttachmentKind::File, &pdf),
    )
    .await
    .expect("file sent");
    let page = alice.latest_messages(direct, 10).await.expect("history");
    let durations: Vec<Option<i64>> = page
        .messages
        .iter()
        .filter_map(|m| match &m.content {
            MessageContent::Media {
                attachment: Some(a),
                ..
            } => Some(a.duration_ms),
            _ => None,
        })
        .collect();
    assert_eq!(durations, vec![Some(7_250), Some(1_500), None]);
}

#[tokio::test]
async fn markup_named_like_a_picture_is_served_as_an_opaque_download() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, bob, direct) = friends(&server).await;
    let html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>";
    let mut alice_ws = alice.connect().await.expect("connect");
    for (name, bytes) in [("cat.png", &html[..]), ("logo.svg", &svg[..])] {
        let upload = alice.upload(name, bytes.to_vec()).await.expect("upload");
        assert_eq!(
            (upload.kind, upload.mime.as_str()),
            (UploadKind::File, "application/octet-stream")
        );
        let refused = send_media(
            &mut alice_ws,
            direct,
            "",
            attach(AttachmentKind::Image, &upload),
        )
        .await;
        assert_eq!(refused.unwrap_err().0, ErrorCode::InvalidInput);
        send_media(
            &mut alice_ws,
            direct,
            "",
            attach(AttachmentKind::File, &upload),
        )
        .await
        .expect("as a file");
        let download = bob
            .download(&upload.id.0, false, None)
            .await
            .expect("download");
        assert_eq!(download.status, 200);
        assert_eq!(download.header("content-type"), "application/octet-stream");
        assert!(
            download
                .header("content-disposition")
                .starts_with("attachment;"),
            "{name}"
        );
        assert_eq!(download.header("x-content-type-options"), "nosniff");
        assert_eq!(download.bytes, bytes);
    }
}

#[tokio::test]
async fn a_picture_bomb_is_kept_as_a_file_and_never_decoded() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let bomb = png_claiming(100_000);
    let upload = alice
        .upload("bomb.png", bomb.clone())
        .await
        .expect("upload");
    assert_eq!(
        (upload.kind, upload.mime.as_str()),
        (UploadKind::File, "application/octet-stream")
    );
    assert_eq!((upload.width, upload.thumbnail), (None, false));
    // As an avatar it is refused outright.
    let err = alice.set_avatar(bomb).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput));
    // The server is fine: a normal picture still works.
    let fine = alice
        .upload("ok.png", picture(3, 3, ImageFormat::Png))
        .await
        .expect("ok");
    assert_eq!(fine.kind, UploadKind::Image);
}

#[tokio::test]
async fn file_names_with_paths_or_control_characters_are_refused() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    for name in [
        "../../etc/passwd",
        "a\\b",
        "bell\u{7}.txt",
        "line\nbreak",
        "",
        &"x".repeat(256),
    ] {
        let err = alice.upload(name, b"data".to_vec()).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidInput), "{name:?}");
    }
    let upload = alice
        .upload("猫 \"quoted\"; x.txt", b"hello".to_vec())
        .await
        .expect("upload");
    assert_eq!(upload.name, "猫 \"quoted\"; x.txt");
    let download = alice
        .download(&upload.id.0, false, None)
        .await
        .expect("own download");
    assert_eq!(
        download.header("content-disposition"),
        "attachment; filename*=UTF-8''%E7%8C%AB%20%22quoted%22%3B%20x.txt"
    );
    let err = alice.upload("empty.txt", Vec::new()).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput));
}

#[tokio::test]
async fn oversize_uploads_and_the_quota_are_refused_and_keep_nothing() {
    let Some(server) = TestServer::start_with(|config| {
        config.media.file_bytes_max = 1000;
        config.media.upload_quota_bytes = 1500;
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let err = alice.upload("big.bin", vec![1u8; 1001]).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(413), Some(ErrorCode::TooLarge))
    );
    alice.upload("a.bin", vec![2u8; 800]).await.expect("fits");
    let err = alice.upload("b.bin", vec![3u8; 800]).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(413), Some(ErrorCode::QuotaExceeded))
    );
    // What is left of the quota can still be used.
    alice
        .upload("c.bin", vec![4u8; 700])
        .await
        .expect("fits the rest");
    // Another user has a quota of their own.
    let (bob, _) = server.user("bob").await;
    bob.upload("d.bin", vec![5u8; 800])
        .await
        .expect("bob's own quota");
}

#[tokio::test]
async fn audio_is_served_in_ranges() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let bytes = ogg_bytes(5000);
    let upload = alice
        .upload("song.ogg", bytes.clone())
        .await
        .expect("upload");
    let part = alice
        .download(&upload.id.0, false, Some("bytes=100-199"))
        .await
        .expect("range");
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), "bytes 100-199/5000");
    assert_eq!(part.bytes, &bytes[100..200]);
    assert_eq!(part.header("content-type"), "audio/ogg");
    let tail = alice
        .download(&upload.id.0, false, Some("bytes=-10"))
        .await
        .expect("suffix");
    assert_eq!((tail.status, tail.bytes.as_slice()), (206, &bytes[4990..]));
    let beyond = alice
        .download(&upload.id.0, false, Some("bytes=5000-"))
        .await
        .expect("416");
    assert_eq!(
        (beyond.status, beyond.header("content-range")),
        (416, "bytes */5000")
    );
    let whole = alice
        .download(&upload.id.0, false, None)
        .await
        .expect("whole");
    assert_eq!(
        (whole.status, whole.header("accept-ranges")),
        (200, "bytes")
    );
    assert_eq!(whole.bytes, bytes);
}

#[tokio::test]
async fn members_who_leave_and_recalled_messages_lose_the_attachment() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    let (cal, cal_profile) = server.user("cal").await;
    befriend(&alice, &bob).await;
    befriend(&alice, &cal).await;
    let group = alice
        .create_group("climbers", &[bob_profile.id, cal_profile.id])
        .await
        .expect("group")
        .id;
    let upload = alice
        .upload("route.png", picture(6, 6, ImageFormat::Png))
        .await
        .expect("upload");
    let mut alice_ws = alice.connect().await.expect("connect");
    let message_id = send_media(
        &mut alice_ws,
        group,
        "",
        attach(AttachmentKind::Image, &upload),
    )
    .await
    .expect("sent");
    for member in [&bob, &cal] {
        assert_eq!(
            member
                .download(&upload.id.0, false, None)
                .await
                .unwrap()
                .status,
            200
        );
    }
    cal.leave_group(group).await.expect("leave");
    assert_eq!(
        cal.download(&upload.id.0, false, None)
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        cal.download(&upload.id.0, true, None).await.unwrap().status,
        404
    );

    alice_ws
        .send_frame(&ClientFrame::RecallMessage {
            id: "recall".into(),
            conversation_id: group,
            message_id,
        })
        .await
        .expect("recall");
    expect_event(&mut alice_ws, |e| {
        matches!(e, ServerEvent::Ack { id, .. } if id == "recall").then_some(())
    })
    .await;
    assert_eq!(
        bob.download(&upload.id.0, false, None)
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        alice
            .download(&upload.id.0, false, None)
            .await
            .unwrap()
            .status,
        200
    );
    let page = bob.latest_messages(group, 10).await.expect("history");
    let recalled = page
        .messages
        .iter()
        .find(|m| m.id == message_id)
        .expect("entry");
    assert_eq!(
        recalled.content,
        MessageContent::Media {
            caption: String::new(),
            attachment: None,
            recalled: true
        }
    );
}

#[tokio::test]
async fn uploads_no_message_uses_are_cleaned_up() {
    let Some(server) = TestServer::start_with(|config| {
        config.media.unattached_upload_ttl = std::time::Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let (alice, bob, direct) = friends(&server).await;
    let used = alice
        .upload("used.bin", vec![1u8; 300])
        .await
        .expect("upload");
    let unused = alice
        .upload("unused.bin", vec![2u8; 300])
        .await
        .expect("upload");
    let mut alice_ws = alice.connect().await.expect("connect");
    send_media(
        &mut alice_ws,
        direct,
        "",
        attach(AttachmentKind::File, &used),
    )
    .await
    .expect("sent");
    // The clean-up runs every second; wait (bounded) until it has taken the unused one.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = alice
            .download(&unused.id.0, false, None)
            .await
            .expect("answer");
        if answer.status == 404 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unused upload stayed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        bob.download(&used.id.0, false, None).await.unwrap().status,
        200
    );
    // Its bytes count no more: the quota is back.
    let err = alice
        .upload("again.bin", vec![3u8; 300])
        .await
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(err, Ok(()));
}

#[tokio::test]
async fn avatars_are_squared_sized_and_public_and_groups_have_them_too() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let profile = alice
        .set_avatar(picture(60, 30, ImageFormat::Png))
        .await
        .expect("avatar");
    let url = profile.avatar_url.clone().expect("avatar_url");
    let key = url
        .strip_prefix("/api/v1/avatars/")
        .expect("a path on this server");
    assert_eq!(key.len(), 64);
    // Public: any client, no token.
    let anyone = server.client();
    for size in [64u32, 128, 256] {
        let avatar = anyone.avatar(&url, size).await.expect("avatar");
        assert_eq!(
            (avatar.status, avatar.header("content-type")),
            (200, "image/png")
        );
        assert!(avatar.header("cache-control").starts_with("public"));
        let decoded = image::load_from_memory(&avatar.bytes).expect("a picture");
        assert_eq!((decoded.width(), decoded.height()), (size, size));
    }
    assert_eq!(anyone.avatar(&url, 99).await.unwrap().status, 404);
    assert_eq!(
        anyone
            .avatar(&format!("/api/v1/avatars/{}", "0".repeat(64)), 64)
            .await
            .unwrap()
            .status,
        404
    );
    // Friends see it in their lists.
    let friends = bob.friends().await.expect("friends");
    assert_eq!(friends[0].user.avatar_url.as_deref(), Some(url.as_str()));
    let err = alice
        .set_avatar(b"not a picture".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput));
    assert_eq!(
        alice.remove_avatar().await.expect("removed").avatar_url,
        None
    );

    // A group's avatar: admins set it, members hear of it, others may not.
    let group = alice
        .create_group("g", &[bob_profile.id])
        .await
        .expect("group")
        .id;
    let mut bob_ws = bob.connect().await.expect("connect");
    let err = bob
        .set_group_avatar(group, picture(10, 10, ImageFormat::Png))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden));
    let (eve, _) = server.user("eve").await;
    let err = eve
        .set_group_avatar(group, picture(10, 10, ImageFormat::Png))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    alice
        .set_group_avatar(group, picture(10, 10, ImageFormat::Jpeg))
        .await
        .expect("group avatar");
    let notice_url = expect_event(&mut bob_ws, |event| match event {
        ServerEvent::MessageCreated { message } => match &message.content {
            MessageContent::System {
                notice: SystemNotice::AvatarChanged { avatar_url, .. },
            } => Some(avatar_url.clone()),
            _ => None,
        },
        _ => None,
    })
    .await;
    let summary = bob.conversation(group).await.expect("detail").summary;
    assert_eq!(summary.avatar_url.as_deref(), Some(notice_url.as_str()));
    assert_eq!(anyone.avatar(&notice_url, 64).await.unwrap().status, 200);
}
