//! The record compression codecs of a batch (attribute bits 0–2), for the
//! parts of the log that open batches up: the cleaner decompresses a batch's
//! records, filters them and compresses the survivors with the same codec.
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
//! the bytes). gzip, snappy and zstd use the `kafka-protocol` crate's codecs.

use std::ffi::CStr;
use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
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

fn unknown(codec: i16) -> LogError {
    LogError::corrupt(format!("unknown compression codec {codec}"))
}

/// Decompresses the records sections of batch after batch, reusing its
/// buffer and its LZ4 context.
#[derive(Debug, Default)]
pub(crate) struct Decompressor {
    lz4: Option<Lz4Frames>,
    out: Vec<u8>,
}

impl Decompressor {
    /// The records of a batch whose records section (the bytes after the
    /// batch header) is `body`, compressed with `codec`: `body` itself when
    /// uncompressed, else this decompressor's buffer.
    pub(crate) fn records<'a>(
        &'a mut self,
        codec: i16,
        body: &'a [u8],
    ) -> Result<&'a [u8], LogError> {
        fn run<D: kafka_protocol::compression::Decompressor<Bytes, Buf = Bytes>>(
            body: &[u8],
            out: &mut Vec<u8>,
        ) -> Result<(), LogError> {
            let mut body = Bytes::copy_from_slice(body);
            D::decompress(&mut body, |buf| {
                out.clear();
                out.extend_from_slice(buf);
                Ok(())
            })
            .map_err(corrupt)
        }
        match codec {
            NONE => return Ok(body),
            GZIP => run::<Gzip>(body, &mut self.out)?,
            SNAPPY => run::<Snappy>(body, &mut self.out)?,
            LZ4 => {
                let frames = match &mut self.lz4 {
                    Some(frames) => frames,
                    empty => empty.insert(Lz4Frames::new()?),
                };
                frames.decompress(body, &mut self.out)?;
            }
            ZSTD => run::<Zstd>(body, &mut self.out)?,
            c => return Err(unknown(c)),
        }
        Ok(&self.out)
    }
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
            return Err(corrupt(format!("lz4: {}", name.to_string_lossy())));
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

    /// Decompresses the frames of `src` into `out` (cleared first).
    fn decompress(&mut self, mut src: &[u8], out: &mut Vec<u8>) -> Result<(), LogError> {
        out.clear();
        let result = (|| loop {
            if out.capacity() - out.len() < LZ4_OUT_ROOM {
                out.reserve(out.capacity().max(LZ4_OUT_ROOM));
            }
            let mut written = out.capacity() - out.len();
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
                return Ok(());
            }
            if src.is_empty() && written == 0 {
                return Err(corrupt("lz4: the frame is cut short"));
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
    use kafka_protocol::compression::{Decompressor as _, Lz4 as ClientLz4};

    fn decompress(codec: i16, body: &[u8]) -> Result<Vec<u8>, LogError> {
        Decompressor::default()
            .records(codec, body)
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
                    assert_eq!(d.records(codec, &packed).unwrap(), raw, "codec {codec}");
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
            assert!(d.records(LZ4, &packed[..cut]).is_err(), "cut at {cut}");
            assert_eq!(d.records(LZ4, &packed).unwrap(), raw);
        }
        for at in (0..packed.len()).step_by(3) {
            let mut flipped = packed.clone();
            flipped[at] ^= 0x5a;
            let _ = d.records(LZ4, &flipped);
            assert_eq!(d.records(LZ4, &packed).unwrap(), raw);
        }
        let mut twice = packed.clone();
        twice.extend_from_slice(&packed);
        assert_eq!(
            d.records(LZ4, &twice).unwrap(),
            [&raw[..], &raw[..]].concat()
        );
        assert!(decompress(9, b"abc").is_err());
    }
}
