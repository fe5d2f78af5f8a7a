//! What an upload is, decided from its bytes alone (never from the client's word or the
//! file name), and the processing pictures get: decoded within bounds, turned upright by
//! their EXIF orientation, encoded again without any metadata, and given a thumbnail.
//! Avatars are cropped square and scaled here too. Everything in this module blocks: the
//! callers run it on the blocking pool, a bounded number at a time.

use std::io::Cursor;
use std::path::Path;

use banter_protocol::model::UploadKind;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::config::MediaConfig;

/// The longer side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE_PX: u32 = 320;
/// The sizes an avatar is stored in, in pixels; the largest is the default.
pub const AVATAR_SIZES_PX: [u32; 3] = [64, 128, 256];
/// JPEG quality of re-encoded pictures and thumbnails.
const JPEG_QUALITY: u8 = 88;
/// The type given to whatever is not recognized as a picture, audio or video: served as a
/// download, never shown.
pub const OPAQUE_MIME: &str = "application/octet-stream";

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub mime: String,
    pub kind: UploadKind,
}

/// The raster formats the server decodes (and browsers show inline).
fn picture_format(mime: &str) -> Option<ImageFormat> {
    match mime {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Sniffs the type of a file from its first bytes. A picture is only a candidate `image`
/// here; it becomes one when it decodes ([`process_picture`]). Text of any kind (HTML, SVG,
/// scripts) and anything unknown is an opaque `file`.
pub fn sniff(head: &[u8]) -> Sniffed {
    let Some(found) = infer::get(head) else {
        return Sniffed {
            mime: OPAQUE_MIME.into(),
            kind: UploadKind::File,
        };
    };
    let mime = found.mime_type();
    let kind = match found.matcher_type() {
        infer::MatcherType::Image if picture_format(mime).is_some() => UploadKind::Image,
        infer::MatcherType::Audio => UploadKind::Audio,
        infer::MatcherType::Video => UploadKind::Video,
        _ => UploadKind::File,
    };
    let opaque = mime.starts_with("text/") || mime.contains("xml") || mime.contains("html");
    Sniffed {
        mime: if opaque {
            OPAQUE_MIME.into()
        } else {
            mime.into()
        },
        kind,
    }
}

/// Whether bytes of this type may be shown inline by a browser: raster pictures, audio and
/// video. Everything else is served as an attachment.
pub fn is_inline(mime: &str) -> bool {
    picture_format(mime).is_some() || (mime.starts_with("audio/") || mime.starts_with("video/"))
}

/// A picture after processing.
pub struct Picture {
    /// The bytes to store: the re-encoded picture (or, for a GIF, the original).
    pub bytes: Option<Vec<u8>>,
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
    pub thumbnail: Vec<u8>,
}

/// Why a picture was not processed.
#[derive(Debug, thiserror::Error)]
pub enum PictureRefused {
    #[error("the picture is larger than the limits ({0})")]
    TooLarge(String),
    #[error("the picture does not decode: {0}")]
    Undecodable(String),
}

/// Opens a decoder for `path` after checking its declared size against the limits, so a
/// decompression bomb is refused from its header, before a pixel is decoded.
fn decode(
    path: &Path,
    limits: &MediaConfig,
) -> Result<(DynamicImage, ImageFormat), PictureRefused> {
    let undecodable = |e: &dyn std::fmt::Display| PictureRefused::Undecodable(e.to_string());
    let reader = ImageReader::open(path)
        .map_err(|e| undecodable(&e))?
        .with_guessed_format()
        .map_err(|e| undecodable(&e))?;
    let format = reader
        .format()
        .filter(|f| {
            matches!(
                f,
                ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
            )
        })
        .ok_or_else(|| PictureRefused::Undecodable("not a PNG, JPEG, GIF or WebP".into()))?;
    let mut decoder = reader.into_decoder().map_err(|e| undecodable(&e))?;
    let (width, height) = decoder.dimensions();
    let side_max = limits.image_side_px_max;
    if width > side_max || height > side_max {
        return Err(PictureRefused::TooLarge(format!(
            "{width}×{height} px; at most {side_max} px a side"
        )));
    }
    if u64::from(width) * u64::from(height) > limits.image_pixels_max {
        return Err(PictureRefused::TooLarge(format!(
            "{width}×{height} px; at most {} pixels",
            limits.image_pixels_max
        )));
    }
    let mut bounds = Limits::default();
    bounds.max_image_width = Some(side_max);
    bounds.max_image_height = Some(side_max);
    // Room for the decoded pixels at 8 bytes each (16-bit RGBA), and no more.
    bounds.max_alloc = Some(limits.image_pixels_max.saturating_mul(8));
    decoder.set_limits(bounds).map_err(|e| undecodable(&e))?;
    let orientation = decoder.orientation().ok();
    let mut picture = DynamicImage::from_decoder(decoder).map_err(|e| undecodable(&e))?;
    if let Some(orientation) = orientation {
        picture.apply_orientation(orientation);
    }
    Ok((picture, format))
}

fn encode_jpeg(picture: &DynamicImage) -> Result<Vec<u8>, PictureRefused> {
    let mut out = Vec::new();
    let rgb = DynamicImage::ImageRgb8(picture.to_rgb8());
    rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY))
        .map_err(|e| PictureRefused::Undecodable(e.to_string()))?;
    Ok(out)
}

fn encode_png(picture: &DynamicImage) -> Result<Vec<u8>, PictureRefused> {
    let mut out = Cursor::new(Vec::new());
    let picture = match picture {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => picture.clone(),
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    };
    picture
        .write_with_encoder(PngEncoder::new(&mut out))
        .map_err(|e| PictureRefused::Undecodable(e.to_string()))?;
    Ok(out.into_inner())
}

/// Decodes the picture at `path` within the limits, applies its EXIF orientation and
/// encodes it again, so that no metadata of the original (camera, location) survives: a
/// JPEG as a JPEG, a PNG or WebP as a PNG. A GIF is kept as it is (animation included;
/// GIF has no EXIF). The thumbnail is a JPEG for a JPEG and a PNG otherwise.
pub fn process_picture(path: &Path, limits: &MediaConfig) -> Result<Picture, PictureRefused> {
    let (picture, format) = decode(path, limits)?;
    // Never enlarged: a picture that fits is its own thumbnail.
    let small = if picture.width().max(picture.height()) <= THUMBNAIL_SIDE_PX {
        picture.clone()
    } else {
        picture.thumbnail(THUMBNAIL_SIDE_PX, THUMBNAIL_SIDE_PX)
    };
    let (bytes, mime, thumbnail) = match format {
        ImageFormat::Jpeg => (
            Some(encode_jpeg(&picture)?),
            "image/jpeg",
            encode_jpeg(&small)?,
        ),
        ImageFormat::Gif => (None, "image/gif", encode_png(&small)?),
        _ => (
            Some(encode_png(&picture)?),
            "image/png",
            encode_png(&small)?,
        ),
    };
    Ok(Picture {
        bytes,
        mime,
        width: picture.width(),
        height: picture.height(),
        thumbnail,
    })
}

/// The thumbnail's type for a stored picture of type `mime` (see [`process_picture`]).
pub fn thumbnail_mime(mime: &str) -> &'static str {
    if mime == "image/jpeg" {
        "image/jpeg"
    } else {
        "image/png"
    }
}

/// An avatar from the picture at `path`: upright, the largest centred square, as a PNG in
/// each of [`AVATAR_SIZES_PX`] (smallest first).
pub fn process_avatar(path: &Path, limits: &MediaConfig) -> Result<Vec<Vec<u8>>, PictureRefused> {
    let (picture, _) = decode(path, limits)?;
    let side = picture.width().min(picture.height());
    let square = picture.crop_imm(
        (picture.width() - side) / 2,
        (picture.height() - side) / 2,
        side,
        side,
    );
    AVATAR_SIZES_PX
        .iter()
        .map(|&size| {
            encode_png(&square.resize_exact(size, size, image::imageops::FilterType::Triangle))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_markup_are_opaque_files_whatever_they_claim() {
        for bytes in [
            &b"<!DOCTYPE html><html><script>alert(1)</script></html>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
            b"<?xml version=\"1.0\"?><svg/>",
            b"just some text",
        ] {
            assert_eq!(
                sniff(bytes),
                Sniffed {
                    mime: OPAQUE_MIME.into(),
                    kind: UploadKind::File
                },
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn pictures_audio_and_video_are_recognized_by_their_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(sniff(png).kind, UploadKind::Image);
        assert_eq!(sniff(b"OggS\0\x02").kind, UploadKind::Audio);
        assert_eq!(
            sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01").mime,
            "video/webm"
        );
        assert!(is_inline("image/png") && is_inline("video/webm") && is_inline("audio/ogg"));
        assert!(
            !is_inline(OPAQUE_MIME) && !is_inline("image/svg+xml") && !is_inline("application/pdf")
        );
    }
}
