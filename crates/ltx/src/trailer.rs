//! The 16-byte trailer that ends every LTX file.
//!
//! ```text
//! offset from end  size  field
//!             -16     8  post-apply database checksum (BE): 0 with NoChecksum, else bit 63 set
//!              -8     8  file checksum (BE): CRC-64/GO-ISO of everything before it, pages
//!                        decompressed, with bit 63 set; never covered by itself
//! ```

use crate::checksum::Checksum;
use crate::header::Header;

/// Size of the trailer in bytes.
pub const TRAILER_SIZE: usize = 16;

/// The trailer of a file whose file checksum has been verified (decoder) or computed
/// (encoder).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Database checksum after the file applies; `None` when the header has NoChecksum.
    pub post_apply_checksum: Option<Checksum>,
    /// The file checksum.
    pub file_checksum: Checksum,
}

/// Checks a post-apply checksum against the header's flags; returns the rule broken.
pub(crate) fn post_apply_rule(header: &Header, post: Option<Checksum>) -> Result<(), &'static str> {
    match (header.flags.tracks_checksums(), post) {
        (true, None) => Err("required because the header tracks checksums (NoChecksum unset)"),
        (false, Some(_)) => Err("not allowed because the header has the NoChecksum flag"),
        _ => Ok(()),
    }
}
