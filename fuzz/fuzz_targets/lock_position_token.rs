#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| walcast_lock::fuzzing::position_token(data));
