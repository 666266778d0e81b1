//! Embedding Odradek's segment log in your own program: open, append, read back, crash, recover.
//!
//! ```sh
//! cargo run --example embedded_log [DIR]
//! ```
//!
//! Without DIR the log lives in a fresh temporary directory that is removed at the end.

use std::error::Error;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use odradek::log::records::{decode_batches, encode_batch, Compression, NewRecord};
use odradek::log::{Log, LogConfig};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn main() -> Result<(), Box<dyn Error>> {
    let (dir, temporary) = match std::env::args().nth(1) {
        Some(d) => (PathBuf::from(d), false),
        None => (
            std::env::temp_dir().join(format!("odradek-embedded-{}", std::process::id())),
            true,
        ),
    };
    // Small segments so the example shows rolling; everything else is Kafka's defaults.
    let config = LogConfig {
        segment_bytes: 8 * 1024,
        ..LogConfig::default()
    };

    // 1. Open (creating the directory) and append 100 batches of 10 records.
    let mut log = Log::open(&dir, config.clone(), now_ms())?;
    let leader_epoch = 0;
    for batch in 0..100 {
        let records: Vec<NewRecord> = (0..10)
            .map(|i| {
                NewRecord::keyed(
                    format!("user-{}", i % 3),
                    format!("event {batch}.{i}"),
                    now_ms(),
                )
            })
            .collect();
        let compression = if batch % 2 == 0 {
            Compression::None
        } else {
            Compression::Lz4
        };
        log.append_as_leader(
            &encode_batch(&records, compression)?,
            leader_epoch,
            now_ms(),
        )?;
    }
    println!(
        "appended: offsets {}..{} in {} segments ({} bytes) under {}",
        log.log_start_offset(),
        log.log_end_offset(),
        log.segment_count(),
        log.size_in_bytes(),
        dir.display()
    );

    // 2. Read back: whole batches from the one holding offset 995, bounded by the log end.
    let read = log.read(995, 1 << 20, log.log_end_offset())?;
    let records = decode_batches(read.to_bytes()?)?;
    for r in records.iter().filter(|r| r.offset >= 995) {
        let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
        println!("  offset {:>4}: {value}", r.offset);
    }

    // 3. A reader on another thread sees the log while we keep appending.
    let reader = log.reader();
    let counter = std::thread::spawn(move || reader.log_end_offset());
    println!(
        "a reader thread sees log end offset {}",
        counter.join().map_err(|_| "reader thread panicked")?
    );

    // 4. Crash: no clean close, and the last batch torn half-way through its write.
    let end_before = log.log_end_offset();
    let active = dir.join(format!(
        "{:020}.log",
        log.segment_base_offsets().last().copied().unwrap_or(0)
    ));
    drop(log);
    let len = std::fs::metadata(&active)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)?
        .set_len(len - 100)?;
    println!("crash: tore the last 100 bytes off {}", active.display());

    // 5. Reopen: recovery validates every batch after the recovery point and cuts the torn one.
    let mut log = Log::open(&dir, config.clone(), now_ms())?;
    println!(
        "recovered: log end offset {} -> {} (the torn batch of 10 records is gone, nothing else)",
        end_before,
        log.log_end_offset()
    );
    let last = log.read(log.log_end_offset() - 1, 1 << 20, log.log_end_offset())?;
    let tail = decode_batches(last.to_bytes()?)?;
    let value = tail
        .last()
        .and_then(|r| r.value.clone())
        .unwrap_or_default();
    println!("  last record now: {}", String::from_utf8_lossy(&value));

    // 6. Appends continue where the valid log ends; a clean close makes the next open fast.
    let info = log.append_as_leader(
        &encode_batch(
            &[NewRecord::value("after recovery", now_ms())],
            Compression::None,
        )?,
        leader_epoch,
        now_ms(),
    )?;
    println!("appended at offset {} after recovery", info.first_offset);
    log.close()?;
    let log = Log::open(&dir, config, now_ms())?;
    println!("clean reopen: log end offset {}", log.log_end_offset());
    drop(log);

    if temporary {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
