//! The record compression codecs of a batch (attribute bits 0–2), for the
//! parts of the log that open batches up: the validator of produced
//! batches and every reader of records decompress through here, and the
//! cleaner also compresses the survivors with the batch's codec.
//!
//! Decompression is bounded: each codec runs as a stream (zstd's and
//! flate2's readers through `Read::take`, liblz4 handed no more room than
//! the cap leaves, snappy blocks checked by their stated length before
//! they are allocated), so a small batch that inflates to gigabytes costs
//! at most the cap (`message.max.decompressed.bytes`) and is refused.
//!
//! LZ4 is the codec compacted topics meet most (librdkafka's and the Java
//! client's common choice), and the cleaner opens every batch twice (once
//! for the key map, once to rewrite it), so per-batch cost decides its
//! speed: a [`Decompressor`] keeps one liblz4 frame context for all the
//! batches of a pass and decompresses into a reused buffer, where a fresh
//! decoder per batch would allocate and zero its buffers each time (more
//! than half the time of a pass over small batches). Reading accepts any
//! LZ4 frame a client may send (checksums, content size, linked blocks,
//! concatenated frames); its checksums are not verified, the batch CRC-32C
//! covering the same bytes. The cleaner writes LZ4 at its fast level with
//! independent 64 KiB blocks and no content checksum — the frames the
//! Java client and librdkafka write themselves (the batch CRC-32C covers
//! the bytes). Compressing gzip, snappy and zstd uses the `kafka-protocol`
//! crate's codecs; it decompresses whole, so reading does not.

use std::ffi::CStr;
use std::io::{Read, Write};

use bytes::{BufMut, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Snappy, Zstd};
use lz4_sys::{
    LZ4F_VERSION, LZ4F_createDecompressionContext, LZ4F_decompress, LZ4F_freeDecompressionContext,
    LZ4F_getErrorName, LZ4F_isError, LZ4F_resetDecompressionContext, LZ4FDecompressOptions,
    LZ4FDecompressionContext,
};

use crate::LogError;

/// Codec ids of the batch attributes.
pub(crate) const NONE: i16 = 0;
const GZIP: i16 = 1;
const SNAPPY: i16 = 2;
const LZ4: i16 = 3;
const ZSTD: i16 = 4;

fn corrupt(e: impl std::fmt::Display) -> LogError {
    LogError::corrupt(format!("records do not (de)compress: {e}"))
}

/// Records that do not decompress. The batch CRC matched (it is checked
/// first), so the sender wrote them like that: not retriable.
fn undecompressable(e: impl std::fmt::Display) -> LogError {
    LogError::invalid(format!("the records do not decompress: {e}"))
}

fn unknown(codec: i16) -> LogError {
    LogError::invalid(format!("unknown compression codec {codec}"))
}

fn over_cap(cap: usize) -> LogError {
    LogError::invalid(format!(
        "the records decompress to more than {cap} bytes (message.max.decompressed.bytes)"
    ))
}

/// Decompresses the records sections of batch after batch, reusing its
/// buffer and its LZ4 context.
///
/// Every codec runs as a stream into a buffer that may not grow past the
/// cap it is given, whatever the batch claims: a batch of zeros that
/// inflates to gigabytes costs `cap` bytes of memory and is refused.
#[derive(Debug, Default)]
pub(crate) struct Decompressor {
    lz4: Option<Lz4Frames>,
    out: Vec<u8>,
}

/// A buffer this large after a batch is given back rather than kept for
/// the next one (a thread's decompressor lives as long as the thread).
const KEEP_BUFFER: usize = 4 << 20;

impl Decompressor {
    /// The records of a batch whose records section (the bytes after the
    /// batch header) is `body`, compressed with `codec`: `body` itself when
    /// uncompressed, else this decompressor's buffer, at most `cap` bytes
    /// (more is an error, found after reading `cap + 1` bytes at most).
    pub(crate) fn records<'a>(
        &'a mut self,
        codec: i16,
        body: &'a [u8],
        cap: usize,
    ) -> Result<&'a [u8], LogError> {
        if self.out.capacity() > KEEP_BUFFER {
            self.out = Vec::new();
        }
        self.out.clear();
        match codec {
            NONE => return Ok(body),
            GZIP => read_capped(flate2::read::MultiGzDecoder::new(body), &mut self.out, cap)?,
            SNAPPY => snappy(body, &mut self.out, cap)?,
            LZ4 => {
                let frames = match &mut self.lz4 {
                    Some(frames) => frames,
                    empty => empty.insert(Lz4Frames::new()?),
                };
                frames.decompress(body, &mut self.out, cap)?;
            }
            ZSTD => {
                let decoder =
                    zstd::stream::read::Decoder::with_buffer(body).map_err(undecompressable)?;
                read_capped(decoder, &mut self.out, cap)?
            }
            c => return Err(unknown(c)),
        }
        Ok(&self.out)
    }

    /// The buffer of the last decompression, taken out.
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

/// Reads a decompressing stream to its end into `out`, refusing more than
/// `cap` bytes: the stream is read a chunk at a time and stopped as soon
/// as it passes the cap, and `out` grows by doubling but never past the
/// cap, so memory stays bounded whatever the stream would inflate to.
fn read_capped(mut stream: impl Read, out: &mut Vec<u8>, cap: usize) -> Result<(), LogError> {
    let mut chunk = [0u8; 32 << 10];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(undecompressable(e)),
        };
        let left = cap - out.len();
        if n > left {
            return Err(over_cap(cap));
        }
        if out.capacity() - out.len() < n {
            out.reserve_exact(out.capacity().max(LZ4_OUT_ROOM).min(left).max(n));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// The header the Java client (xerial snappy-java) writes before its
/// blocks; without it the section is one raw snappy block (librdkafka can
/// write either).
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// Snappy as Kafka frames it: xerial blocks (a 4-byte length, then a raw
/// snappy block) or one raw block. Each block states its decompressed
/// length up front, checked against what is left of the cap before
/// anything is allocated for it.
fn snappy(body: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), LogError> {
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |raw: &[u8], out: &mut Vec<u8>| -> Result<(), LogError> {
        let len = snap::raw::decompress_len(raw).map_err(undecompressable)?;
        if len > cap - out.len() {
            return Err(over_cap(cap));
        }
        let start = out.len();
        out.resize(start + len, 0);
        let written = decoder
            .decompress(raw, &mut out[start..])
            .map_err(undecompressable)?;
        out.truncate(start + written);
        Ok(())
    };
    if !body.starts_with(XERIAL_MAGIC) || body.len() < XERIAL_HEADER_LEN {
        return block(body, out);
    }
    let mut rest = &body[XERIAL_HEADER_LEN..];
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(undecompressable("snappy: a block length is cut short"));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(undecompressable("snappy: a block is cut short"));
        }
        block(&tail[..len], out)?;
        rest = &tail[len..];
    }
    Ok(())
}

/// A liblz4 frame decompression context.
#[derive(Debug)]
struct Lz4Frames {
    ctx: LZ4FDecompressionContext,
}

/// Room kept free in the output: one whole block of the most common size,
/// so liblz4 decompresses straight into it instead of through its own buffer.
const LZ4_OUT_ROOM: usize = 64 << 10;

fn lz4_check(code: usize) -> Result<usize, LogError> {
    // SAFETY: plain functions of an error code; the name is a static string.
    unsafe {
        if LZ4F_isError(code) != 0 {
            let name = CStr::from_ptr(LZ4F_getErrorName(code));
            return Err(undecompressable(format!("lz4: {}", name.to_string_lossy())));
        }
    }
    Ok(code)
}

impl Lz4Frames {
    fn new() -> Result<Self, LogError> {
        let mut ctx = LZ4FDecompressionContext(std::ptr::null_mut());
        // SAFETY: `ctx` is the out-parameter the function fills in.
        lz4_check(unsafe { LZ4F_createDecompressionContext(&mut ctx, LZ4F_VERSION) })?;
        Ok(Lz4Frames { ctx })
    }

    /// Decompresses the frames of `src` into `out` (cleared first), at
    /// most `cap` bytes: liblz4 is handed no more room than is left of it
    /// (plus one byte, to tell "exactly `cap`" from "more").
    fn decompress(
        &mut self,
        mut src: &[u8],
        out: &mut Vec<u8>,
        cap: usize,
    ) -> Result<(), LogError> {
        out.clear();
        let result = (|| loop {
            if out.len() > cap {
                return Err(over_cap(cap));
            }
            if out.capacity() - out.len() < LZ4_OUT_ROOM {
                out.reserve(out.capacity().max(LZ4_OUT_ROOM));
            }
            let room = (out.capacity() - out.len()).min(cap + 1 - out.len());
            let mut written = room;
            let mut read = src.len();
            let options = LZ4FDecompressOptions {
                stable_dst: 0,
                // `skipChecksums` (liblz4 ≥ 1.9.3): content and block
                // checksums are not computed. The batch CRC-32C, checked on
                // the same pass, already covers these bytes; hashing every
                // decompressed byte again took a third of a pass.
                reserved: [1, 0, 0],
            };
            // SAFETY: the destination is the vector's spare capacity
            // (`written` bytes, writable, possibly uninitialised: liblz4
            // only writes there), the source is `read` bytes of `src`;
            // liblz4 reports how much of each it used, within those sizes.
            let hint = lz4_check(unsafe {
                LZ4F_decompress(
                    self.ctx,
                    out.as_mut_ptr().add(out.len()),
                    &mut written,
                    src.as_ptr(),
                    &mut read,
                    &options,
                )
            })?;
            // SAFETY: liblz4 initialised `written` bytes after the length.
            unsafe { out.set_len(out.len() + written) };
            src = &src[read..];
            if hint == 0 && src.is_empty() {
                return if out.len() > cap {
                    Err(over_cap(cap))
                } else {
                    Ok(())
                };
            }
            if src.is_empty() && written == 0 {
                return Err(undecompressable("lz4: the frame is cut short"));
            }
        })();
        if result.is_err() {
            // Ready for the next batch's frame whatever state this one left.
            // SAFETY: `ctx` is a live context.
            unsafe { LZ4F_resetDecompressionContext(self.ctx) };
        }
        result
    }
}

impl Drop for Lz4Frames {
    fn drop(&mut self) {
        // SAFETY: `ctx` was created by `LZ4F_createDecompressionContext` and
        // is freed once, here.
        unsafe { LZ4F_freeDecompressionContext(self.ctx) };
    }
}

/// Compresses a records section with `codec`.
pub(crate) fn compress(codec: i16, raw: Vec<u8>) -> Result<Vec<u8>, LogError> {
    fn run<C: Compressor<Vec<u8>, BufMut = BytesMut>>(raw: &[u8]) -> Result<Vec<u8>, LogError> {
        let mut out = Vec::with_capacity(raw.len() / 2 + 64);
        C::compress(&mut out, |buf| {
            buf.put_slice(raw);
            Ok(())
        })
        .map_err(corrupt)?;
        Ok(out)
    }
    match codec {
        NONE => Ok(raw),
        GZIP => run::<Gzip>(&raw),
        SNAPPY => run::<Snappy>(&raw),
        LZ4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .level(0)
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::with_capacity(raw.len() / 2 + 64))
                .map_err(corrupt)?;
            encoder.write_all(&raw).map_err(corrupt)?;
            let (out, result) = encoder.finish();
            result.map_err(corrupt)?;
            Ok(out)
        }
        ZSTD => run::<Zstd>(&raw),
        c => Err(unknown(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::compression::{Decompressor as _, Lz4 as ClientLz4};

    const CAP: usize = 64 << 20;

    fn decompress(codec: i16, body: &[u8]) -> Result<Vec<u8>, LogError> {
        Decompressor::default()
            .records(codec, body, CAP)
            .map(<[u8]>::to_vec)
    }

    fn records_like(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("{{\"key\":\"k-{}\",\"v\":{i}}}", i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        for codec in [NONE, GZIP, SNAPPY, LZ4, ZSTD] {
            for raw in [Vec::new(), b"x".to_vec(), records_like(50_000)] {
                let packed = compress(codec, raw.clone()).unwrap();
                assert_eq!(decompress(codec, &packed).unwrap(), raw, "codec {codec}");
                // A reused decompressor gives the same, batch after batch.
                let mut d = Decompressor::default();
                for _ in 0..3 {
                    assert_eq!(
                        d.records(codec, &packed, CAP).unwrap(),
                        raw,
                        "codec {codec}"
                    );
                }
            }
        }
    }

    /// Our LZ4 frames read with the liblz4 frame decoder behind the
    /// `kafka-protocol` crate (what clients use), and its frames (content
    /// checksum on) read with ours.
    #[test]
    fn lz4_frames_interoperate_with_liblz4() {
        let raw = records_like(40_000); // several 64 KiB blocks
        let ours = compress(LZ4, raw.clone()).unwrap();
        let mut ours = Bytes::from(ours);
        let read = ClientLz4::decompress(&mut ours, |b: &mut Bytes| Ok(b.clone())).unwrap();
        assert_eq!(read, raw);

        let mut theirs = BytesMut::new();
        ClientLz4::compress(&mut theirs, |b: &mut BytesMut| {
            b.put_slice(&raw);
            Ok(())
        })
        .unwrap();
        assert_eq!(decompress(LZ4, &theirs).unwrap(), raw);
    }

    /// A cut or damaged frame is an error (or, damaged, other bytes),
    /// never a panic, and the same decompressor reads the next good frame.
    #[test]
    fn damaged_frames_are_errors_and_leave_the_context_usable() {
        let raw = records_like(5_000);
        let packed = compress(LZ4, raw.clone()).unwrap();
        let mut d = Decompressor::default();
        for cut in 0..packed.len() {
            assert!(d.records(LZ4, &packed[..cut], CAP).is_err(), "cut at {cut}");
            assert_eq!(d.records(LZ4, &packed, CAP).unwrap(), raw);
        }
        for at in (0..packed.len()).step_by(3) {
            let mut flipped = packed.clone();
            flipped[at] ^= 0x5a;
            let _ = d.records(LZ4, &flipped, CAP);
            assert_eq!(d.records(LZ4, &packed, CAP).unwrap(), raw);
        }
        let mut twice = packed.clone();
        twice.extend_from_slice(&packed);
        assert_eq!(
            d.records(LZ4, &twice, CAP).unwrap(),
            [&raw[..], &raw[..]].concat()
        );
        assert!(decompress(9, b"abc").is_err());
    }
}
