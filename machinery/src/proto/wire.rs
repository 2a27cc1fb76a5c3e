//! The protobuf wire format: varints, keys and length-delimited fields.

use super::ProtoError;

pub(super) const VARINT: u8 = 0;
pub(super) const FIXED64: u8 = 1;
pub(super) const LEN: u8 = 2;
pub(super) const FIXED32: u8 = 5;

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn put_key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wire));
}

pub(super) fn put_bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(out, tag, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Writes a length-delimited field whose body `body` appends to `out`; the length is
/// patched in afterwards so nested messages are built in one buffer.
pub(super) fn put_nested<E>(
    out: &mut Vec<u8>,
    tag: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    put_key(out, tag, LEN);
    // Reserve one length byte, the common case; shift the body if it needs more.
    let at = out.len();
    out.push(0);
    body(out)?;
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len as u64);
        out.splice(at..at + 1, prefix);
    }
    Ok(())
}

/// Int32 values are sign-extended to 64 bits on the wire, as protobuf requires.
pub(super) fn int32_bits(v: i32) -> u64 {
    i64::from(v) as u64
}

/// A cursor over one message's bytes.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// One field's value as read from the wire.
pub(super) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    /// No Kubernetes field is fixed32; such values are skipped.
    Fixed32,
    Bytes(&'a [u8]),
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(ProtoError::Malformed("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(ProtoError::Malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(ProtoError::Malformed(
                "field runs past the end of its message",
            ))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field's tag and value, or None at the end of the message.
    pub fn field(&mut self) -> Result<Option<(u32, Value<'a>)>, ProtoError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag =
            u32::try_from(key >> 3).map_err(|_| ProtoError::Malformed("field tag too large"))?;
        if tag == 0 {
            return Err(ProtoError::Malformed("field tag 0"));
        }
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.varint()?),
            FIXED64 => {
                let b = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes(b.try_into().expect("8 bytes")))
            }
            LEN => {
                let n = usize::try_from(self.varint()?)
                    .map_err(|_| ProtoError::Malformed("length too large"))?;
                Value::Bytes(self.take(n)?)
            }
            FIXED32 => {
                self.take(4)?;
                Value::Fixed32
            }
            _ => return Err(ProtoError::Malformed("unsupported wire type (groups)")),
        };
        Ok(Some((tag, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(Reader::new(&out).varint().ok(), Some(v));
        }
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        put_varint(&mut out, int32_bits(-1));
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn nested_lengths_grow() {
        for n in [0usize, 1, 127, 128, 20_000] {
            let mut out = vec![0xff];
            put_nested::<()>(&mut out, 3, |o| {
                o.extend(std::iter::repeat_n(7u8, n));
                Ok(())
            })
            .ok();
            let mut r = Reader::new(&out[1..]);
            match r.field() {
                Ok(Some((3, Value::Bytes(b)))) => assert_eq!(b.len(), n),
                _ => panic!("bad nested field for {n}"),
            }
            assert!(matches!(r.field(), Ok(None)));
        }
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert!(Reader::new(&[0x0a, 0x05, 1]).field().is_err());
        assert!(Reader::new(&[0x80]).field().is_err());
        assert!(Reader::new(&[0x0b]).field().is_err());
    }
}
