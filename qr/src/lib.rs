//! What a user is shown to enroll: a QR code drawn with Unicode half blocks, the secret in
//! groups of four, and the `otpauth://` URI, as one block of text.
//!
//! Terminals decide the limits (see the README's notes on SSH clients): the block starts with a
//! plain line (OpenSSH puts "(user@host) " before the first line of a prompt), the QR code with
//! its quiet zone fits in 77 columns (PuTTY wraps wider lines), and the secret and URI are
//! always there as text, for a terminal that mangles the drawing.
//!
//! [`png`] draws the same matrix as an image, for a screen or a document.
#![forbid(unsafe_code)]

use pam_mfa_config::QrBackground;
use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// The widest QR code drawn, quiet zone included.
pub const MAX_COLUMNS: usize = 77;
/// The quiet zone the renderer puts around the code, in modules, on each side.
const QUIET_ZONE: usize = 4;

/// The QR code of `data`: medium error correction, or low if that is what fits
/// [`MAX_COLUMNS`]; `None` if even that does not fit.
fn matrix(data: &str) -> Option<QrCode> {
    [EcLevel::M, EcLevel::L]
        .into_iter()
        .filter_map(|level| QrCode::with_error_correction_level(data, level).ok())
        .find(|code| code.width() + 2 * QUIET_ZONE <= MAX_COLUMNS)
}

/// The QR code of `data` drawn for a terminal with `background`, or `None` if it would be
/// wider than [`MAX_COLUMNS`] even with the least error correction.
pub fn draw(data: &str, background: QrBackground) -> Option<String> {
    let code = matrix(data)?;
    // Dense1x2::Dark is a block in the text colour, Light is the background colour. A scanner
    // needs dark modules darker than light ones: on a dark background, draw the dark modules as
    // background and the light ones as text.
    let (dark, light) = match background {
        QrBackground::Dark => (Dense1x2::Light, Dense1x2::Dark),
        QrBackground::Light => (Dense1x2::Dark, Dense1x2::Light),
    };
    Some(
        code.render::<Dense1x2>()
            .dark_color(dark)
            .light_color(light)
            .quiet_zone(true)
            .build(),
    )
}

/// The same QR code as [`draw`] as a PNG image: black on white, `scale` pixels per module, with
/// its quiet zone. `None` when [`draw`] would give none.
pub fn png(data: &str, scale: usize) -> Option<Vec<u8>> {
    let code = matrix(data)?;
    let modules = code.width();
    let side = (modules + 2 * QUIET_ZONE) * scale;
    let colors = code.to_colors();
    let dark = |x: usize, y: usize| -> bool {
        let (x, y) = (x / scale, y / scale);
        if x < QUIET_ZONE || y < QUIET_ZONE {
            return false;
        }
        let (x, y) = (x - QUIET_ZONE, y - QUIET_ZONE);
        x < modules && y < modules && colors[y * modules + x] == qrcode::Color::Dark
    };
    // 8-bit grey scale, each row preceded by filter type 0.
    let mut raw = Vec::with_capacity(side * (side + 1));
    for y in 0..side {
        raw.push(0);
        raw.extend((0..side).map(|x| if dark(x, y) { 0u8 } else { 255 }));
    }
    let mut image = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend((side as u32).to_be_bytes());
    header.extend((side as u32).to_be_bytes());
    header.extend([8, 0, 0, 0, 0]);
    chunk(&mut image, b"IHDR", &header);
    chunk(&mut image, b"IDAT", &zlib_stored(&raw));
    chunk(&mut image, b"IEND", &[]);
    Some(image)
}

fn chunk(image: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    image.extend((data.len() as u32).to_be_bytes());
    let start = image.len();
    image.extend(kind);
    image.extend(data);
    let crc = crc32(&image[start..]);
    image.extend(crc.to_be_bytes());
}

/// A zlib stream of stored (uncompressed) deflate blocks: a QR image is small, and this needs
/// no compressor.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (index, block) in blocks.iter().enumerate() {
        out.push(u8::from(index + 1 == blocks.len()));
        let length = block.len() as u16;
        out.extend(length.to_le_bytes());
        out.extend((!length).to_le_bytes());
        out.extend(*block);
    }
    if blocks.is_empty() {
        out.extend([1, 0, 0, 0xff, 0xff]);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A Base32 secret in groups of four, easier to type.
pub fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The block that enrolls `user`: heading, QR code, secret, URI.
pub fn enrollment_block(
    heading: &str,
    uri: &str,
    secret: &str,
    background: QrBackground,
) -> String {
    let mut block = String::new();
    block.push_str(heading);
    block.push('\n');
    match draw(uri, background) {
        Some(drawing) => {
            block.push_str("Scan this QR code with an authenticator app:\n");
            block.push_str(&drawing);
            block.push('\n');
            block.push_str("Or the secret, typed by hand: ");
        }
        None => block.push_str(
            "(The QR code would be too wide for a terminal.)\nThe secret, typed by hand: ",
        ),
    }
    block.push_str(&grouped(secret));
    block.push_str("\nURI: ");
    block.push_str(uri);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/pam-mfa%20on%20host:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=pam-mfa%20on%20host&algorithm=SHA1&digits=6&period=30";

    fn columns(text: &str) -> usize {
        text.lines().map(|line| line.chars().count()).max().unwrap()
    }

    #[test]
    fn the_code_fits_77_columns_with_its_quiet_zone() {
        let drawing = draw(URI, QrBackground::Dark).unwrap();
        assert!(columns(&drawing) <= MAX_COLUMNS, "{drawing}");
        // The longest account names still fit, with less error correction.
        let long = format!("{URI}{}", "x".repeat(230));
        let drawing = draw(&long, QrBackground::Dark).unwrap();
        assert!(columns(&drawing) <= MAX_COLUMNS);
        // Past what fits, no drawing at all, rather than one a terminal wraps into noise.
        assert!(draw(&"x".repeat(2000), QrBackground::Dark).is_none());
    }

    #[test]
    fn the_two_backgrounds_are_inverses() {
        let dark = draw(URI, QrBackground::Dark).unwrap();
        let light = draw(URI, QrBackground::Light).unwrap();
        assert_ne!(dark, light);
        let swapped: String = light
            .chars()
            .map(|c| match c {
                ' ' => '█',
                '█' => ' ',
                '▀' => '▄',
                '▄' => '▀',
                other => other,
            })
            .collect();
        // All but the last line: with an odd number of rows, its lower half is padding.
        let all_but_last = |text: &str| {
            let lines: Vec<&str> = text.lines().collect();
            lines[..lines.len() - 1].join("\n")
        };
        assert_eq!(all_but_last(&swapped), all_but_last(&dark));
        // Drawn for a light background, the quiet zone is the background itself.
        assert!(light.lines().next().unwrap().trim().is_empty());
    }

    #[test]
    fn the_png_is_well_formed() {
        // CRC-32 of "IEND", as every PNG ends with it.
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        let image = png(URI, 4).unwrap();
        assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(image.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));
        let side = u32::from_be_bytes(image[16..20].try_into().unwrap()) as usize;
        let modules = matrix(URI).unwrap().width();
        assert_eq!(side, (modules + 8) * 4);
    }

    #[test]
    fn the_block_starts_with_plain_text_and_has_the_secret_and_uri() {
        let block = enrollment_block(
            "Two-factor authentication is required.",
            URI,
            "JBSWY3DPEHPK3PXP",
            QrBackground::Dark,
        );
        assert!(block.starts_with("Two-factor authentication is required.\n"));
        assert!(block.contains("by hand: JBSW Y3DP EHPK 3PXP\n"));
        // Every line but the URI fits a terminal, a 160-bit secret included.
        let block = enrollment_block(
            "Two-factor authentication is required.",
            URI,
            "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
            QrBackground::Dark,
        );
        for line in block.lines().filter(|line| !line.starts_with("URI: ")) {
            assert!(line.chars().count() <= MAX_COLUMNS, "{line:?}");
        }
        assert!(block.ends_with(&format!("URI: {URI}")));
        assert!(block.contains('▀') || block.contains('▄'));
    }
}
