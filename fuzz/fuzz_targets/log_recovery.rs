#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| odradek_fuzz::log_recovery(data));
