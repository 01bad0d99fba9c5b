//! Properties over generated input: writer -> parser round trips in both word orders, the
//! stop frame and reason for every kind of damage, resuming a chain anywhere, and "any
//! bytes: a value or an error, never a panic" for every parser.

use proptest::prelude::*;
use walcast_format::fuzzing;
use walcast_format::wal::{
    FrameDamage, Salts, StopReason, WalHeader, WalReader, WalSlice, WalWriter,
};
use walcast_format::wal_index::{self, CheckpointInfo, WalIndex, WalIndexHeader};
use walcast_format::{PageSize, WalChecksum, WordOrder};

#[derive(Clone, Debug)]
struct FrameSpec {
    pgno: u32,
    commit: bool,
    fill: u8,
}

fn frame_spec() -> impl Strategy<Value = FrameSpec> {
    (1u32..5000, any::<bool>(), any::<u8>()).prop_map(|(pgno, commit, fill)| FrameSpec {
        pgno,
        commit,
        fill,
    })
}

fn order() -> impl Strategy<Value = WordOrder> {
    prop_oneof![Just(WordOrder::Little), Just(WordOrder::Big)]
}

fn page_size() -> impl Strategy<Value = PageSize> {
    prop_oneof![Just(512u32), Just(1024), Just(4096)].prop_map(|s| PageSize::new(s).unwrap())
}

fn page(size: PageSize, spec: &FrameSpec) -> Vec<u8> {
    (0..size.as_usize())
        .map(|i| spec.fill.wrapping_add((i as u32 * spec.pgno) as u8))
        .collect()
}

fn write_wal(
    order: WordOrder,
    size: PageSize,
    salts: Salts,
    specs: &[FrameSpec],
    damage: Option<(usize, FrameDamage)>,
) -> Vec<u8> {
    let header = WalHeader::new(order, size, 0, salts);
    let mut w = WalWriter::new(Vec::new(), header).unwrap();
    for (i, spec) in specs.iter().enumerate() {
        let commit = if spec.commit { spec.pgno } else { 0 };
        let page = page(size, spec);
        match damage {
            Some((at, d)) if at == i => {
                w.write_damaged_frame(spec.pgno, commit, &page, d).unwrap();
                if matches!(d, FrameDamage::Torn { .. }) {
                    break;
                }
            }
            _ => w.write_frame(spec.pgno, commit, &page).unwrap(),
        }
    }
    w.into_inner()
}

fn salts() -> impl Strategy<Value = Salts> {
    (any::<u32>(), any::<u32>()).prop_map(|(salt1, salt2)| Salts { salt1, salt2 })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn writer_output_parses_back_frame_for_frame(
        order in order(), size in page_size(), salts in salts(),
        specs in prop::collection::vec(frame_spec(), 0..24),
    ) {
        let bytes = write_wal(order, size, salts, &specs, None);
        let wal = WalSlice::parse(&bytes).unwrap();
        prop_assert_eq!(wal.header().word_order, order);
        let frames: Vec<_> = wal.frames().collect();
        prop_assert_eq!(frames.len(), specs.len());
        for (frame, spec) in frames.iter().zip(&specs) {
            prop_assert_eq!(frame.pgno().get(), spec.pgno);
            prop_assert_eq!(frame.is_commit(), spec.commit);
            prop_assert_eq!(frame.page(), &page(size, spec)[..]);
        }
        let r = wal.recover();
        let last_commit = specs.iter().rposition(|s| s.commit).map_or(0, |i| i as u32 + 1);
        prop_assert_eq!(r.mx_frame(), last_commit);
        prop_assert_eq!(r.transactions as usize, specs.iter().filter(|s| s.commit).count());
        prop_assert_eq!(r.stop.reason, StopReason::EndOfFile);
        prop_assert_eq!(WalReader::open(&bytes[..]).unwrap().recover().unwrap(), r);
        let grouped: usize = wal.transactions().iter().map(|t| t.frames().len()).sum();
        prop_assert_eq!(grouped as u32, r.mx_frame());
    }

    #[test]
    fn damage_stops_the_valid_log_at_the_damaged_frame(
        order in order(), salts in salts(),
        specs in prop::collection::vec(frame_spec(), 1..16),
        at in any::<prop::sample::Index>(),
        kind in 0usize..4, torn in 1usize..535,
    ) {
        let size = PageSize::new(512).unwrap();
        let at = at.index(specs.len());
        let (damage, reason) = [
            (FrameDamage::Checksum, StopReason::ChecksumMismatch),
            (FrameDamage::Salt, StopReason::SaltMismatch),
            (FrameDamage::ZeroPageNumber, StopReason::ZeroPageNumber),
            (FrameDamage::Torn { len: torn }, StopReason::PartialFrame),
        ][kind];
        let bytes = write_wal(order, size, salts, &specs, Some((at, damage)));
        let r = WalSlice::parse(&bytes).unwrap().recover();
        prop_assert_eq!(r.stop.reason, reason);
        prop_assert_eq!(r.stop.frame as usize, at + 1);
        prop_assert_eq!(r.frames_valid as usize, at);
        prop_assert_eq!(r.stop.offset, WalSlice::parse(&bytes).unwrap().header().frame_offset(at as u32 + 1));
        prop_assert_eq!(WalReader::open(&bytes[..]).unwrap().recover().unwrap(), r);
    }

    #[test]
    fn resuming_at_any_frame_continues_the_same_chain(
        order in order(), salts in salts(),
        specs in prop::collection::vec(frame_spec(), 1..20),
        cut in any::<prop::sample::Index>(),
    ) {
        let size = PageSize::new(1024).unwrap();
        let bytes = write_wal(order, size, salts, &specs, None);
        let n = cut.index(specs.len() + 1) as u32;
        let mut first = WalReader::open(&bytes[..]).unwrap().with_frame_limit(n);
        while first.next_frame().unwrap().is_some() {}
        let position = first.position();
        prop_assert_eq!(position.frame, n);
        let header = *first.header();
        // The token matches the stored checksum at its offset.
        let at = position.checksum_offset(size) as usize;
        prop_assert_eq!(&bytes[at..at + 8], &position.checksum.to_be_bytes()[..]);
        let rest = &bytes[header.frame_offset(n + 1) as usize..];
        let mut resumed = WalReader::resume(rest, header, position);
        let mut numbers = Vec::new();
        while let Some(frame) = resumed.next_frame().unwrap() {
            numbers.push(frame.number());
        }
        prop_assert_eq!(numbers, ((n + 1)..=specs.len() as u32).collect::<Vec<_>>());
        prop_assert_eq!(resumed.stop().unwrap().reason, StopReason::EndOfFile);
    }

    #[test]
    fn wal_index_round_trips(
        change in any::<u32>(), big in any::<bool>(), size in page_size(),
        mx in any::<u32>(), n_page in any::<u32>(), s1 in any::<u32>(), s2 in any::<u32>(),
        salts in salts(), marks in any::<[u32; 5]>(), backfill in any::<u32>(),
    ) {
        let index = WalIndex {
            header: WalIndexHeader {
                change,
                word_order: if big { WordOrder::Big } else { WordOrder::Little },
                page_size: Some(size),
                mx_frame: mx,
                n_page,
                frame_checksum: WalChecksum { s1, s2 },
                salt1: salts.salt1,
                salt2: salts.salt2,
            },
            checkpoint: CheckpointInfo {
                n_backfill: backfill,
                read_marks: marks,
                n_backfill_attempted: backfill,
            },
        };
        prop_assert_eq!(WalIndex::parse(&wal_index::encode(&index)), Ok(index));
    }

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        fuzzing::db_header(&bytes);
        fuzzing::wal_index(&bytes);
        fuzzing::wal(&bytes);
    }

    #[test]
    fn mutated_wals_never_panic(
        specs in prop::collection::vec(frame_spec(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        steer in any::<u8>(), cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = write_wal(WordOrder::Little, PageSize::new(512).unwrap(), Salts::default(), &specs, None);
        for (at, xor) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        bytes.insert(0, steer);
        fuzzing::wal(&bytes);
    }
}
