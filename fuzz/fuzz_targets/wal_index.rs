#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| walcast_format::fuzzing::wal_index(data));
