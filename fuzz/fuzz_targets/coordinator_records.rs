#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| odradek_fuzz::coordinator_records(data));
