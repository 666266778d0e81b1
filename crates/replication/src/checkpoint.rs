//! `replication-offset-checkpoint`: the high watermark of every partition in a log directory,
//! in Kafka's text format (version `0`, the entry count, then `topic partition offset` lines).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The file's name in a log directory.
pub const HIGH_WATERMARK_CHECKPOINT: &str = "replication-offset-checkpoint";

/// Reads a checkpoint; a missing file is empty. A malformed one is an error naming the line.
pub fn read_checkpoint(path: &Path) -> std::io::Result<BTreeMap<(String, i32), i64>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let bad = |line: usize, why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} line {}: {why}", path.display(), line + 1),
        )
    };
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return Err(bad(0, "version must be 0"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad(1, "not an entry count"))?;
    let mut entries = BTreeMap::new();
    for (i, line) in lines.enumerate().take(count) {
        let mut f = line.split_whitespace();
        let (Some(topic), Some(partition), Some(offset), None) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad(i + 2, "expected `topic partition offset`"));
        };
        let partition = partition.parse().map_err(|_| bad(i + 2, "bad partition"))?;
        let offset = offset.parse().map_err(|_| bad(i + 2, "bad offset"))?;
        entries.insert((topic.to_string(), partition), offset);
    }
    if entries.len() != count {
        return Err(bad(count + 1, "fewer entries than the count says"));
    }
    Ok(entries)
}

/// Writes a checkpoint atomically: a temporary file, fsynced, renamed over the old one.
pub fn write_checkpoint(
    path: &Path,
    entries: &BTreeMap<(String, i32), i64>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        let mut text = format!("0\n{}\n", entries.len());
        for ((topic, partition), offset) in entries {
            text.push_str(&format!("{topic} {partition} {offset}\n"));
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_malformed_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(HIGH_WATERMARK_CHECKPOINT);
        assert!(read_checkpoint(&path).expect("missing is empty").is_empty());
        let entries: BTreeMap<(String, i32), i64> = [
            (("orders".to_string(), 0), 42),
            (("__consumer_offsets".to_string(), 7), 0),
        ]
        .into();
        write_checkpoint(&path, &entries).expect("write");
        assert_eq!(read_checkpoint(&path).expect("read"), entries);
        for bad in [
            "1\n0\n",
            "0\n2\norders 0 1\n",
            "0\n1\norders x 1\n",
            "0\n1\norders 0\n",
        ] {
            std::fs::write(&path, bad).expect("write");
            assert!(read_checkpoint(&path).is_err(), "{bad:?}");
        }
    }
}
