//! `hex`: an example serializer between hexadecimal text and the bytes
//! stored in a topic: `fjord produce --serializer hex.wasm` stores `48 69`
//! as the two bytes `Hi`, and `fjord consume --serializer hex.wasm` shows
//! any value, binary or not, as `4869`.
//!
//! No config. What it shows: a serializer's two directions, and errors that
//! tell the user what is wrong with their input. Whitespace between digits
//! is ignored on input, so dumps such as `de ad be ef` can be pasted as
//! they are.

use fjord_sdk::{Config, Error, Plugin, PluginInfo, Serializer};

/// The serializer.
#[derive(Debug)]
pub struct Hex;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Plugin for Hex {
    fn info() -> PluginInfo {
        PluginInfo::new("hex", env!("CARGO_PKG_VERSION"))
            .description("hexadecimal text to stored bytes and back")
    }

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(Hex)
    }
}

#[fjord_sdk::serializer]
impl Serializer for Hex {
    fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(input.len() / 2);
        let mut high: Option<u8> = None;
        for (i, &c) in input.iter().enumerate() {
            if c.is_ascii_whitespace() {
                continue;
            }
            let d = digit(c).ok_or_else(|| {
                Error::msg(format!(
                    "byte {i}: `{}` is not a hexadecimal digit",
                    c.escape_ascii()
                ))
            })?;
            match high.take() {
                None => high = Some(d),
                Some(h) => out.push(h << 4 | d),
            }
        }
        if high.is_some() {
            return Err(Error::msg("odd number of hexadecimal digits"));
        }
        Ok(out)
    }

    fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(bytes
            .iter()
            .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    #[test]
    fn round_trips() {
        let mut h = Harness::<Hex>::new(&[]).unwrap();
        assert_eq!(h.serialize(b"4869").unwrap(), b"Hi");
        assert_eq!(
            h.serialize(b"DE ad\nBE ef\n").unwrap(),
            [0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(h.deserialize(&[0x00, 0x7f, 0xff]).unwrap(), b"007fff");
        assert_eq!(h.serialize(b"").unwrap(), b"");
        let all: Vec<u8> = (0..=255).collect();
        let text = h.deserialize(&all).unwrap();
        assert_eq!(h.serialize(&text).unwrap(), all);
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let mut h = Harness::<Hex>::new(&[]).unwrap();
        let err = h.serialize(b"12zz").unwrap_err();
        assert_eq!(err.message(), "byte 2: `z` is not a hexadecimal digit");
        let err = h.serialize(b"abc").unwrap_err();
        assert_eq!(err.message(), "odd number of hexadecimal digits");
    }
}
