//! Entry points for the cargo-fuzz targets in `fuzz/` (one line each) and for the unit
//! test that replays the committed corpus on stable Rust. Not a stable API.
//!
//! Each function panics only when an invariant of this crate breaks; hostile input must
//! otherwise end in a typed error.

use crate::decoder::{Decoder, VerifiedFile};
use crate::encoder::Encoder;
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};

struct Decoded {
    verified: VerifiedFile,
    pages: Vec<(u32, Vec<u8>)>,
}

fn decode_all(data: &[u8]) -> Result<Decoded, DecodeError> {
    let mut decoder = Decoder::new(data)?;
    let mut pages = Vec::new();
    while let Some(page) = decoder.next_page()? {
        pages.push((page.pgno, page.data.to_vec()));
    }
    let verified = decoder.finish()?;
    Ok(Decoded { verified, pages })
}

/// Decodes `data` as an LTX file.
///
/// The file checksum would stop almost every mutated input before the code after it, so
/// when decoding fails *only* on the checksum, the harness writes the computed checksum
/// into the trailer and decodes again, which must then succeed. Every file that decodes
/// is re-encoded, and the result must decode to the same header, pages and trailer.
pub fn decode(data: &[u8]) {
    let decoded = match decode_all(data) {
        Ok(decoded) => decoded,
        Err(err) => match err.kind() {
            DecodeErrorKind::ChecksumMismatch { computed, .. } => {
                let mut fixed = data.to_vec();
                let at = usize::try_from(err.offset()).unwrap_or(usize::MAX);
                match fixed.get_mut(at..at.saturating_add(8)) {
                    Some(slot) => slot.copy_from_slice(&computed.get().to_be_bytes()),
                    None => panic!("checksum mismatch reported at {at}, outside the file"),
                }
                match decode_all(&fixed) {
                    Ok(decoded) => decoded,
                    Err(err) => panic!("file with its checksum fixed still fails: {err}"),
                }
            }
            _ => return,
        },
    };
    round_trip(&decoded);
}

fn round_trip(decoded: &Decoded) {
    let header = *decoded.verified.header();
    let post_apply = decoded.verified.trailer().post_apply_checksum;
    let encoded = Encoder::new(Vec::new(), header).and_then(|mut encoder| {
        for (pgno, page) in &decoded.pages {
            encoder.write_page(*pgno, page)?;
        }
        encoder.finish(post_apply)
    });
    let file = match encoded {
        Ok(file) => file.writer,
        // superfly/ltx's encoder refuses empty databases without the empty checksum,
        // a rule its decoder does not apply; the same asymmetry is kept here.
        Err(EncodeError::PostApply { .. }) if header.commit == 0 => return,
        Err(err) => panic!("a file that decoded does not re-encode: {err}"),
    };
    let again = match decode_all(&file) {
        Ok(again) => again,
        Err(err) => panic!("re-encoded file does not decode: {err}"),
    };
    assert_eq!(again.verified.header(), &header, "header changed");
    assert_eq!(
        again.verified.trailer().post_apply_checksum,
        post_apply,
        "post-apply checksum changed"
    );
    assert!(
        again.pages == decoded.pages,
        "pages changed in the round trip"
    );
}
