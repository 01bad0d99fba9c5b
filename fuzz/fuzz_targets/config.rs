#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| walcast_config::fuzzing::config(data));
