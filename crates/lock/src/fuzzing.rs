//! Entry points for the cargo-fuzz targets in `fuzz/` (one line each), also run over the
//! committed corpus by a unit test so stable CI exercises them. Each must never panic.

use crate::position::PositionToken;
use crate::wal_header::WalHeader;

/// Decodes a position token (binary and text) and checks both encodings round-trip.
pub fn position_token(data: &[u8]) {
    if let Ok(token) = PositionToken::decode(data) {
        assert_eq!(PositionToken::decode(&token.encode()), Ok(token));
    }
    if let Ok(Ok(token)) = std::str::from_utf8(data).map(str::parse::<PositionToken>) {
        assert_eq!(token.to_string().parse::<PositionToken>(), Ok(token));
    }
}

/// Parses a WAL header; a parsed header must report a frame offset past the header.
pub fn wal_header(data: &[u8]) {
    if let Ok(header) = WalHeader::parse(data) {
        assert!(header.frame_offset(1) == 32);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Runs every fuzzing function over its committed seed corpus.
    #[test]
    fn corpus_never_panics() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        type Target = (&'static str, fn(&[u8]));
        let targets: [Target; 2] = [
            ("lock_position_token", super::position_token),
            ("lock_wal_header", super::wal_header),
        ];
        for (name, run) in targets {
            let dir = root.join(name);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let mut seen = 0;
            for entry in entries {
                let path = entry.unwrap().path();
                run(&std::fs::read(&path).unwrap());
                seen += 1;
            }
            assert!(seen > 0, "{}: empty corpus", dir.display());
        }
    }
}
