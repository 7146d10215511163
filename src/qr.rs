//! QR codes for pay links: content → a small 1-bit PNG → base64 and a `data:` URL.
//!
//! The PNG is written with the `png` crate at bit depth 1 (one bit per pixel, black = 0), error
//! correction level M, a 4-module quiet zone and 8 pixels per module: large enough to scan from a phone
//! screen, and about 0.8 KB for a 100-character URL (an 8-bit image of the same code is about 1.4 KB).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module.
const SCALE: usize = 8;
/// Modules of white border on each side, as the QR standard asks.
const QUIET_ZONE: usize = 4;

/// A rendered QR code.
#[derive(Debug, Clone)]
pub struct QrImage {
    /// The PNG file bytes.
    pub png: Vec<u8>,
    /// Standard base64 of `png`, padded.
    pub base64: String,
    /// Modules per side, without the quiet zone.
    pub modules: usize,
}

impl QrImage {
    /// `data:image/png;base64,…`, ready for an `<img src>` or a Markdown image.
    pub fn data_url(&self) -> String {
        format!("data:image/png;base64,{}", self.base64)
    }
}

/// Why a QR could not be made: the content is too long for any QR version at level M.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a QR code: {0}")]
pub struct QrError(String);

/// Renders `content` as a 1-bit PNG QR code.
///
/// # Errors
/// When the content does not fit in a QR code (over about 2,300 bytes at level M).
pub fn render(content: &str) -> Result<QrImage, QrError> {
    let code =
        QrCode::with_error_correction_level(content.as_bytes(), EcLevel::M).map_err(|e| QrError(e.to_string()))?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * SCALE;
    let row_bytes = side.div_ceil(8);

    // One packed row per module row, repeated SCALE times. Bit 1 = white, 0 = black.
    let mut pixels = vec![0xffu8; row_bytes * side];
    for my in 0..modules {
        let mut row = vec![0xffu8; row_bytes];
        for mx in 0..modules {
            if colors[my * modules + mx] == Color::Dark {
                let x0 = (mx + QUIET_ZONE) * SCALE;
                for x in x0..x0 + SCALE {
                    row[x / 8] &= !(0x80 >> (x % 8));
                }
            }
        }
        let y0 = (my + QUIET_ZONE) * SCALE;
        for y in y0..y0 + SCALE {
            pixels[y * row_bytes..(y + 1) * row_bytes].copy_from_slice(&row);
        }
    }

    let png = encode_png(side, &pixels).map_err(|e| QrError(e.to_string()))?;
    let base64 = STANDARD.encode(&png);
    Ok(QrImage { png, base64, modules })
}

fn encode_png(side: usize, packed: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let side = u32::try_from(side).map_err(|_| png::EncodingError::LimitsExceeded)?;
    let mut out = Vec::with_capacity(1024);
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        encoder.set_compression(png::Compression::High);
        encoder.set_filter(png::Filter::NoFilter);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(packed)?;
        writer.finish()?;
    }
    Ok(out)
}

/// Draws the QR with Unicode half blocks (two module rows per text line), for terminals.
///
/// # Errors
/// As [`render`].
pub fn to_terminal(content: &str) -> Result<String, QrError> {
    let code =
        QrCode::with_error_correction_level(content.as_bytes(), EcLevel::M).map_err(|e| QrError(e.to_string()))?;
    let n = code.width();
    let colors = code.to_colors();
    let q = 2; // a smaller quiet zone is enough on a terminal
    let dark = |x: isize, y: isize| -> bool {
        x >= 0 && y >= 0 && (x as usize) < n && (y as usize) < n && colors[y as usize * n + x as usize] == Color::Dark
    };
    let mut out = String::new();
    let lo = -(q as isize);
    let hi = (n + q) as isize;
    let mut y = lo;
    while y < hi {
        for x in lo..hi {
            // Light-on-dark terminals are the norm, so "dark module" is drawn as a space.
            out.push(match (dark(x, y), dark(x, y + 1)) {
                (false, false) => '█',
                (false, true) => '▀',
                (true, false) => '▄',
                (true, true) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> String {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.bit_depth, png::BitDepth::One);
        let (w, h, stride) = (info.width as usize, info.height as usize, info.line_size);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
            if buf[y * stride + x / 8] & (0x80 >> (x % 8)) != 0 { 255 } else { 0 }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        grids[0].decode().unwrap().1
    }

    #[test]
    fn png_decodes_to_exactly_the_content_and_stays_small() {
        for len in [20usize, 100, 300] {
            let content: String =
                format!("https://pay.example.com/cashier?o={}", "a1B2-_.~".repeat(60))[..len].to_string();
            let qr = render(&content).unwrap();
            assert_eq!(decode(&qr.png), content);
            if len == 100 {
                assert!(qr.png.len() < 1200, "100-char QR PNG is {} bytes", qr.png.len());
            }
        }
    }

    #[test]
    fn data_url_carries_the_base64_png() {
        let qr = render("https://example.com/p/1").unwrap();
        assert!(qr.data_url().starts_with("data:image/png;base64,iVBORw0KGgo"));
    }

    #[test]
    fn terminal_rendering_has_one_line_per_two_rows() {
        let text = to_terminal("hello").unwrap();
        let qr = render("hello").unwrap();
        assert_eq!(text.lines().count(), (qr.modules + 4).div_ceil(2));
    }

    #[test]
    fn oversized_content_is_an_error_not_a_panic() {
        assert!(render(&"x".repeat(5000)).is_err());
    }
}
