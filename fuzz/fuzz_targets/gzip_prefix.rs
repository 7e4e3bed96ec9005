//! The gzip prefix reader (catalog-ingest `format::gunzip_prefix`).
//!
//! Input: two bytes for the output limit (0 to 65,535), one for where to cut
//! the compressed stream, then the data.
//!
//! Properties: the output never exceeds the limit, on arbitrary bytes or on
//! a real stream, and the reader allocates at most the limit plus a fixed
//! amount for the decoder; on a real stream the output is exactly the first
//! `limit` bytes of the data and `complete` says whether all of it fit; a
//! stream cut anywhere yields a prefix of the data or an error, never other
//! bytes.
#![no_main]

use catalog_ingest::format::gunzip_prefix;
use flate2::{write::GzEncoder, Compression};
use lakeops_fuzz::Counting;
use libfuzzer_sys::fuzz_target;
use std::io::Write;

#[global_allocator]
static ALLOC: Counting = Counting;

/// What the reader may hold besides its output: the inflate state and
/// window (miniz_oxide: about 43 KiB) and the 16 KiB read buffer lives on
/// the stack. Generous, but fixed: independent of the input size.
const DECODER_BYTES: usize = 128 * 1024;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn bounded(input: &[u8], limit: usize) -> Result<(Vec<u8>, bool), String> {
    let (out, peak) = Counting::peak_of(|| gunzip_prefix(input, limit));
    if let Ok((bytes, _)) = &out {
        assert!(bytes.len() <= limit, "{} bytes out, limit {limit}", bytes.len());
    }
    // The output's allocation is part of the peak.
    assert!(
        peak <= limit.min(1 << 20) + DECODER_BYTES + limit,
        "peak {peak} bytes for a limit of {limit}"
    );
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let limit = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let cut_at = data[2];
    let data = &data[3..];

    // Arbitrary bytes (often a gzip header followed by noise).
    let _ = bounded(data, limit);

    // A real stream of the data.
    let stream = gzip(data);
    let (out, complete) = bounded(&stream, limit).expect("a valid gzip stream");
    assert_eq!(out, &data[..data.len().min(limit)]);
    assert_eq!(complete, data.len() < limit, "complete flag");

    // The same stream cut short, as a ranged GET of the head returns it.
    let cut = stream.len() * usize::from(cut_at) / 256;
    if let Ok((out, complete)) = bounded(&stream[..cut], limit) {
        assert!(data.starts_with(&out), "a cut stream gave bytes not in the data");
        assert!(!complete || out.len() == data.len());
    }
});
