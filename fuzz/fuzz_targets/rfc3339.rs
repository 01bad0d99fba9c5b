#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| walcast_replica::fuzzing::rfc3339(data));
