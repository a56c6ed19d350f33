//! `Content-Encoding: gzip` request bodies, decompressed under a size limit so that a gzip bomb
//! costs at most the limit in memory.

use std::io::{ErrorKind, Read};

use flate2::read::MultiGzDecoder;

/// Buffer size to start with when the input gives no better hint.
const INITIAL_CAPACITY: usize = 8 * 1024;

/// Why a gzip body was refused.
#[derive(Debug, thiserror::Error)]
pub enum GunzipError {
    /// The body decompresses to more than the limit; decompression stopped there.
    #[error("decompressed body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not valid gzip.
    #[error("invalid gzip body: {0}")]
    Corrupt(std::io::Error),
}

/// Bytes decompressed per read: the only buffer besides the output.
const CHUNK: usize = 64 * 1024;

/// Decompresses a gzip body (several concatenated members are allowed, as in the gzip format) into at
/// most `max_decompressed` bytes. Never allocates more than `max_decompressed + 1` bytes of output,
/// plus one read buffer of [`CHUNK`] bytes. Linear in the output: each decompressed byte is written
/// once into the chunk and copied once into the output (zero-filling the output's spare capacity
/// before every read, as this did before, was quadratic: 14 s of CPU for a 21 MiB body in a debug
/// build, seconds in release).
pub fn gunzip(body: &[u8], max_decompressed: usize) -> Result<Vec<u8>, GunzipError> {
    let bound = max_decompressed.saturating_add(1);
    let mut decoder = MultiGzDecoder::new(body);
    let mut output = Vec::with_capacity(body.len().saturating_mul(4).max(INITIAL_CAPACITY).min(bound));
    let mut chunk = vec![0; CHUNK];
    loop {
        let read = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(output),
            Ok(read) => read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(GunzipError::Corrupt(error)),
        };
        let filled = output.len() + read;
        if filled > max_decompressed {
            return Err(GunzipError::TooLarge { limit: max_decompressed });
        }
        if filled > output.capacity() {
            let grown = output.capacity().saturating_mul(2).max(filled).min(bound);
            output.reserve_exact(grown - output.len());
        }
        output.extend_from_slice(&chunk[..read]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_bodies_round_trip() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|n| n.to_le_bytes()).collect();
        assert_eq!(gunzip(&gzip(&data), data.len()).unwrap(), data);
        assert_eq!(gunzip(&gzip(b""), 0).unwrap(), b"");
    }

    #[test]
    fn concatenated_gzip_members_are_one_body() {
        let mut body = gzip(b"hello ");
        body.extend(gzip(b"world"));
        assert_eq!(gunzip(&body, 100).unwrap(), b"hello world");
    }

    #[test]
    fn a_body_one_byte_over_the_limit_is_too_large() {
        let body = gzip(&[7; 1000]);
        assert_eq!(gunzip(&body, 1000).unwrap().len(), 1000);
        assert!(matches!(gunzip(&body, 999), Err(GunzipError::TooLarge { limit: 999 })));
    }

    #[test]
    fn a_gzip_bomb_is_refused_at_the_limit_without_allocating_it() {
        // 100 members of 1 MiB of zeros each: one 100 MiB body, cheap to build.
        let member = gzip(&vec![0; 1024 * 1024]);
        let bomb = member.repeat(100);
        assert!(bomb.len() < 200 * 1024, "the bomb compresses to {} bytes", bomb.len());

        let limit = 4 * 1024 * 1024;
        let error = gunzip(&bomb, limit).unwrap_err();
        assert!(matches!(error, GunzipError::TooLarge { limit: 4_194_304 }), "{error}");
        assert_eq!(error.to_string(), "decompressed body exceeds 4194304 bytes");
        assert_eq!(gunzip(&member.repeat(4), limit).unwrap().len(), limit);
    }

    #[test]
    fn output_capacity_never_exceeds_the_limit_plus_one() {
        let body = gzip(&[1; 50_000]);
        for limit in [0, 1, 100, 8191, 8192, 8193, 49_999, 50_000, 1 << 20] {
            let bound = limit + 1;
            match gunzip(&body, limit) {
                Ok(output) => assert!(output.capacity() <= bound, "limit {limit}"),
                Err(GunzipError::TooLarge { .. }) => assert!(limit < 50_000),
                Err(error) => panic!("limit {limit}: {error}"),
            }
        }
    }

    #[test]
    fn corrupt_and_truncated_gzip_is_corrupt_not_too_large() {
        let body = gzip(b"some telemetry that is long enough to be compressed");
        for bad in [&b"not gzip at all"[..], &body[..body.len() / 2], &body[..body.len() - 1], b"\x1f"] {
            assert!(matches!(gunzip(bad, 1 << 20), Err(GunzipError::Corrupt(_))), "{bad:?}");
        }
        let mut flipped = body.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0xff;
        assert!(matches!(gunzip(&flipped, 1 << 20), Err(GunzipError::Corrupt(_))));
    }
}
