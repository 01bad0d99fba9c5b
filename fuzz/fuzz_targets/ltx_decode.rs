//! LTX decoder on arbitrary bytes; the harness fixes up the file checksum so mutated
//! input reaches the code after it (see walcast_ltx::fuzzing::decode).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| walcast_ltx::fuzzing::decode(data));
