//! QR codes as inline SVG, for enrolling an authenticator app (an `otpauth://` URI).
//!
//! The SVG is built here from the module matrix of the `qrcode` crate rather than with its SVG
//! renderer, which starts with an XML prolog (not allowed inside HTML). The markup has no `style`
//! attribute, so the page's `Content-Security-Policy: default-src 'self'` does not block it, and
//! its colours are fixed presentation attributes (black on white, in dark mode too: scanners need
//! the contrast).

use std::fmt::Write;

use qrcode::{Color, EcLevel, QrCode};

/// The light margin around the code, in modules (ISO/IEC 18004 asks for 4).
const QUIET_ZONE: usize = 4;
/// The rendered size is at least this many pixels (a whole number of pixels per module).
const MIN_DIMENSION: usize = 200;
const DARK: &str = "#000000";
const LIGHT: &str = "#ffffff";

/// `data` as a QR code (error correction level M) in an `<svg>` element to inline in HTML; `Err`
/// if `data` does not fit in a QR code.
pub fn qr_svg(data: &str) -> Result<String, String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| format!("cannot encode a QR code: {e}"))?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let px = size * MIN_DIMENSION.div_ceil(size);

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         width=\"{px}\" height=\"{px}\" shape-rendering=\"crispEdges\" class=\"qr\" role=\"img\" \
         aria-label=\"QR code for the authenticator app\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"{LIGHT}\"/><path fill=\"{DARK}\" d=\""
    );
    // One horizontal run of dark modules per subpath.
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] != Color::Dark {
                x += 1;
                continue;
            }
            let start = x;
            while x < width && row[x] == Color::Dark {
                x += 1;
            }
            let (left, top, run) = (start + QUIET_ZONE, y + QUIET_ZONE, x - start);
            let _ = write!(svg, "M{left} {top}h{run}v1h-{run}z");
        }
    }
    svg.push_str("\"/></svg>");
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_otpauth_uri() {
        let uri = "otpauth://totp/authz:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=authz\
                   &algorithm=SHA1&digits=6&period=30";
        let svg = qr_svg(uri).expect("qr");
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("<path fill=\"#000000\" d=\"M"));
        assert!(svg.contains("fill=\"#ffffff\""));
        assert!(svg.contains("class=\"qr\""));
        assert!(svg.contains("aria-label=\"QR code for the authenticator app\""));
        assert!(!svg.contains("style="));
        assert!(!svg.contains("<?xml"));

        // The size is a whole number of pixels per module, at least MIN_DIMENSION.
        let code = QrCode::with_error_correction_level(uri, EcLevel::M).expect("qr");
        let size = code.width() + 2 * QUIET_ZONE;
        assert!(svg.contains(&format!("viewBox=\"0 0 {size} {size}\"")));
        let px: usize = svg
            .split("width=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .expect("width");
        assert!(
            px >= MIN_DIMENSION && px.is_multiple_of(size),
            "{px} for {size}"
        );

        // The path covers exactly the dark modules: one unit square each.
        let dark = code
            .to_colors()
            .iter()
            .filter(|c| **c == Color::Dark)
            .count();
        let d = svg
            .split(" d=\"")
            .nth(1)
            .expect("d")
            .split('"')
            .next()
            .expect("d");
        let covered: usize = d
            .split('M')
            .skip(1)
            .map(|run| {
                let h = run
                    .split('h')
                    .nth(1)
                    .expect("h")
                    .split('v')
                    .next()
                    .expect("len");
                h.parse::<usize>().expect("run length")
            })
            .sum();
        assert_eq!(covered, dark);
    }

    #[test]
    fn too_much_data_is_an_error() {
        assert!(qr_svg(&"x".repeat(5000)).is_err());
    }
}
