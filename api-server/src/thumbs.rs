//! Attachment thumbnails: a picture (PNG, JPEG, GIF or WebP, by its sniffed type) scaled to fit
//! [`EDGE`] x [`EDGE`], decoded under size and memory limits (a hostile file is refused, never
//! decoded into gigabytes), at most one per CPU at a time, off the async threads.

use std::io::Cursor;
use std::sync::OnceLock;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use tokio::sync::Semaphore;

/// A thumbnail's longest side, in pixels.
pub const EDGE: u32 = 320;
/// The largest picture decoded, per side.
const MAX_SIDE: u32 = 12_000;
/// The most memory one decoding may take.
const MAX_ALLOC: u64 = 256 << 20;
/// JPEG quality of thumbnails of opaque pictures.
const JPEG_QUALITY: u8 = 80;

/// Why a picture has no thumbnail.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    /// Not a picture of a supported type, corrupt, or beyond the limits.
    #[error("the picture cannot be decoded: {0}")]
    Undecodable(#[from] image::ImageError),
    #[error("making the thumbnail failed: {0}")]
    Failed(String),
}

/// The thumbnail of `bytes`, as PNG (a picture with transparency) or JPEG; made on a blocking
/// thread, waiting for a free CPU first.
pub async fn make(bytes: bytes::Bytes) -> Result<Vec<u8>, ThumbError> {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    let permits = PERMITS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    });
    let _permit = permits
        .acquire()
        .await
        .map_err(|e| ThumbError::Failed(e.to_string()))?;
    tokio::task::spawn_blocking(move || scale(&bytes))
        .await
        .map_err(|e| ThumbError::Failed(e.to_string()))?
}

/// Decodes `bytes` within the limits and encodes the scaled picture.
pub fn scale(bytes: &[u8]) -> Result<Vec<u8>, ThumbError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(image::ImageError::IoError)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let picture = reader.decode()?;
    let small = if picture.width() > EDGE || picture.height() > EDGE {
        picture.thumbnail(EDGE, EDGE)
    } else {
        picture
    };
    let mut out = Vec::new();
    if small.color().has_alpha() {
        small.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)?;
    } else {
        let rgb = DynamicImage::ImageRgb8(small.to_rgb8());
        rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn pictures_shrink_to_fit_keeping_their_shape_and_transparency() {
        let wide = encode(
            DynamicImage::ImageRgb8(RgbImage::from_pixel(1000, 500, Rgb([200, 10, 10]))),
            ImageFormat::Png,
        );
        let t = image::load_from_memory(&scale(&wide).unwrap()).unwrap();
        assert_eq!((t.width(), t.height()), (320, 160));
        assert_eq!(
            image::guess_format(&scale(&wide).unwrap()).unwrap(),
            ImageFormat::Jpeg
        );
        let clear = encode(
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(50, 400, Rgba([0, 0, 0, 0]))),
            ImageFormat::Png,
        );
        let t = scale(&clear).unwrap();
        assert_eq!(image::guess_format(&t).unwrap(), ImageFormat::Png);
        let t = image::load_from_memory(&t).unwrap();
        assert_eq!((t.width(), t.height()), (40, 320));
        // Small ones keep their size.
        let dot = encode(
            DynamicImage::ImageRgb8(RgbImage::new(3, 2)),
            ImageFormat::Gif,
        );
        let t = image::load_from_memory(&scale(&dot).unwrap()).unwrap();
        assert_eq!((t.width(), t.height()), (3, 2));
    }

    #[test]
    fn hostile_pictures_are_refused_without_decoding() {
        // A PNG header claiming 100,000 x 100,000 pixels (40 GB of RGBA), and nothing else.
        let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        let ihdr = [
            &100_000u32.to_be_bytes()[..],
            &100_000u32.to_be_bytes(),
            &[8, 6, 0, 0, 0],
        ]
        .concat();
        let crc = crc32(&[b"IHDR".as_slice(), &ihdr].concat());
        bomb.extend_from_slice(&ihdr);
        bomb.extend_from_slice(&crc.to_be_bytes());
        let refused = scale(&bomb);
        assert!(
            matches!(
                refused,
                Err(ThumbError::Undecodable(image::ImageError::Limits(_)))
            ),
            "{refused:?}"
        );
        // Truncated, and not a picture at all.
        let whole = encode(
            DynamicImage::ImageRgb8(RgbImage::new(64, 64)),
            ImageFormat::Png,
        );
        assert!(scale(&whole[..whole.len() / 2]).is_err());
        assert!(scale(b"plain text, not a picture").is_err());
    }

    /// CRC-32 of PNG chunks (ISO-HDLC), for the hand-made header above.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
