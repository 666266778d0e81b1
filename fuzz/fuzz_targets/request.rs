#![no_main]
// The broker's allocator: the kafka-protocol decoders reserve what a request claims, and this
// grants such reservations without committing memory, so libFuzzer's RSS limit measures what
// decoding really uses (see odradek_frontend::alloc).
#[global_allocator]
static ALLOC: odradek_frontend::alloc::NodeAllocator = odradek_frontend::alloc::NodeAllocator;

libfuzzer_sys::fuzz_target!(|data: &[u8]| odradek_fuzz::request(data));
