//! Bytes written as text, as OTLP/JSON and the query API write them: standard padded base64
//! (RFC 4648 §4) and lowercase hex, and hex ids read back in either case.

/// Standard padded base64 of `bytes`.
#[must_use]
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (i, &byte)| group | u32::from(byte) << (16 - 8 * i));
        for sextet in 0..4 {
            if sextet <= chunk.len() {
                text.push(char::from(ALPHABET[(group >> (18 - 6 * sextet)) as usize & 0x3f]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// Lowercase hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Fills `bytes` from `text`, exactly twice as many hex digits of either case; `false` (and
/// `bytes` partly written) for any other length or a non-hex digit.
#[must_use]
pub fn decode_hex(text: &str, bytes: &mut [u8]) -> bool {
    let digits = text.as_bytes();
    digits.len() == bytes.len() * 2
        && bytes.iter_mut().zip(digits.chunks_exact(2)).all(|(byte, pair)| {
            match (hex_digit(pair[0]), hex_digit(pair[1])) {
                (Some(high), Some(low)) => {
                    *byte = high << 4 | low;
                    true
                }
                _ => false,
            }
        })
}

const fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_every_remainder() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe, 0xfd, 0x00]), "//79AA==");
    }

    #[test]
    fn hex_reads_either_case_and_writes_lowercase() {
        let mut bytes = [0u8; 4];
        assert!(decode_hex("01aBcDeF", &mut bytes));
        assert_eq!(hex(&bytes), "01abcdef");
        assert!(!decode_hex("01abcde", &mut bytes));
        assert!(!decode_hex("01abcdef00", &mut bytes));
        assert!(!decode_hex("01abcdeg", &mut bytes));
    }
}
