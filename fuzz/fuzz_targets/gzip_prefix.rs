//! The gzip prefix reader (catalog-ingest `format::gunzip_prefix`).
//!
//! Input: two bytes for the output limit (0 to 65,535), one for where to cut
//! the compressed stream (its low bit: deflated or stored blocks), then the
//! data.
//!
//! Properties: the output never exceeds the limit, on arbitrary bytes or on
//! a real stream, and the reader allocates at most twice the limit, plus the
//! input, plus a fixed amount for the decoder; on a real stream the output is exactly the first
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

/// What the reader may hold besides its output: the decoder's buffers and
/// inflate state (measured: about 133 KiB with flate2 over miniz_oxide).
/// Fixed: independent of the limit and of the data.
const DECODER_BYTES: usize = 192 * 1024;

/// A gzip stream of `data`: deflated, or (cheaper, so the fuzzer runs more
/// often) in stored blocks, which the reader must handle all the same.
fn gzip(data: &[u8], deflate: bool) -> Vec<u8> {
    if deflate {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).unwrap();
        return encoder.finish().unwrap();
    }
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut blocks = data.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = u8::from(blocks.peek().is_none());
        let len = block.len() as u16;
        out.push(last);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn bounded(input: &[u8], limit: usize) -> Result<(Vec<u8>, bool), String> {
    let (out, peak) = Counting::peak_of(|| gunzip_prefix(input, limit));
    if let Ok((bytes, _)) = &out {
        assert!(
            bytes.len() <= limit,
            "{} bytes out, limit {limit}",
            bytes.len()
        );
    }
    // The output may grow to twice the limit before it is cut; a gzip
    // header's name and comment are held whole, and are part of the input.
    let cap = 2 * limit + input.len() + DECODER_BYTES;
    assert!(
        peak <= cap,
        "peak {peak} bytes for a limit of {limit} and {} input bytes",
        input.len()
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
    let stream = gzip(data, cut_at & 1 == 1);
    let (out, complete) = bounded(&stream, limit).expect("a valid gzip stream");
    assert_eq!(out, &data[..data.len().min(limit)]);
    assert_eq!(complete, data.len() < limit, "complete flag");

    // The same stream cut short, as a ranged GET of the head returns it.
    let cut = stream.len() * usize::from(cut_at) / 256;
    if let Ok((out, complete)) = bounded(&stream[..cut], limit) {
        assert!(
            data.starts_with(&out),
            "a cut stream gave bytes not in the data"
        );
        assert!(!complete || out.len() == data.len());
    }
});
