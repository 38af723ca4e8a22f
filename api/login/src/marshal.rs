//! D-Bus messages as the specification lays them out, for the types the Login contract uses:
//! strings, unsigned integers, signatures, arrays and structs. Written for both ends of mfad's
//! login socket, so that neither needs a bus library.
//!
//! A message is a fixed header (byte order, type, flags, version, body length, serial), an
//! array of header fields (code, variant), padding to 8, and the body; every value is aligned
//! to its size from the start of the message. Messages are written little-endian; both byte
//! orders are read. Reading checks everything the specification requires of what is read
//! (lengths, alignment, zero padding, NUL-terminated UTF-8 without NUL inside, the header
//! fields' types) and returns [`Malformed`] for anything else, never panics: the daemon reads
//! what any local user sends.

use zeroize::Zeroizing;

/// Message types.
pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;

/// The caller expects no reply.
pub const NO_REPLY_EXPECTED: u8 = 0x1;

/// Header field codes.
const PATH: u8 = 1;
const INTERFACE: u8 = 2;
const MEMBER: u8 = 3;
const ERROR_NAME: u8 = 4;
const REPLY_SERIAL: u8 = 5;
const SIGNATURE: u8 = 8;
const UNIX_FDS: u8 = 9;

/// Longest string read or written: the specification's limit on a message (the login socket's
/// own limit is far lower and applies first).
const MAX_STRING_LEN: usize = 1 << 27;
/// Deepest nesting of containers in a value that is skipped (an unknown header field's).
const MAX_DEPTH: usize = 32;

/// Why bytes are not a message this contract reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a malformed message: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

fn malformed<T>(text: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(text.into()))
}

/// Why a value cannot be written: D-Bus strings hold no NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwritable(pub String);

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unwritable {}

/// Writes values at the alignment of their type, little-endian. The bytes are wiped when
/// dropped (a call may carry a code); the buffer is sized by the caller so that it does not
/// move while it grows, and if it must, the old one is wiped before it is freed.
pub struct Writer {
    bytes: Zeroizing<Vec<u8>>,
    problem: Option<Unwritable>,
}

impl Writer {
    fn with_capacity(capacity: usize) -> Writer {
        Writer {
            bytes: Zeroizing::new(Vec::with_capacity(capacity)),
            problem: None,
        }
    }

    /// Makes room for `more` bytes: a buffer too small moves into a larger one, and the old one
    /// is wiped as it is dropped (growing in place would leave it unwiped in freed memory).
    fn room(&mut self, more: usize) {
        let needed = self.bytes.len().saturating_add(more);
        if needed > self.bytes.capacity() {
            let mut grown = Vec::with_capacity(needed.max(2 * self.bytes.capacity()));
            grown.extend_from_slice(&self.bytes);
            self.bytes = Zeroizing::new(grown);
        }
    }

    fn pad(&mut self, align: usize) {
        let len = self.bytes.len().next_multiple_of(align);
        self.room(len - self.bytes.len());
        self.bytes.resize(len, 0);
    }

    pub fn byte(&mut self, value: u8) {
        self.room(1);
        self.bytes.push(value);
    }

    pub fn u32(&mut self, value: u32) {
        self.pad(4);
        self.room(4);
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn text(&mut self, text: &str) -> bool {
        if text.contains('\0') || text.len() > MAX_STRING_LEN {
            self.problem
                .get_or_insert_with(|| Unwritable("a string holds a NUL or is too long".into()));
            return false;
        }
        true
    }

    /// A string (also an object path): its length, its bytes, a NUL.
    pub fn str(&mut self, text: &str) {
        let text = if self.text(text) { text } else { "" };
        self.u32(text.len() as u32);
        self.room(text.len() + 1);
        self.bytes.extend_from_slice(text.as_bytes());
        self.bytes.push(0);
    }

    /// A signature: its length in one byte, its bytes, a NUL.
    pub fn signature(&mut self, signature: &str) {
        let signature = if signature.len() < 256 && self.text(signature) {
            signature
        } else {
            ""
        };
        self.room(signature.len() + 2);
        self.bytes.push(signature.len() as u8);
        self.bytes.extend_from_slice(signature.as_bytes());
        self.bytes.push(0);
    }

    /// The start of a struct (or dict entry): aligned to 8.
    pub fn open_struct(&mut self) {
        self.pad(8);
    }

    /// An array whose elements, aligned to `element_align`, `elements` writes.
    pub fn array(&mut self, element_align: usize, elements: impl FnOnce(&mut Writer)) {
        self.u32(0);
        let at = self.bytes.len() - 4;
        self.pad(element_align);
        let start = self.bytes.len();
        elements(self);
        let len = (self.bytes.len() - start) as u32;
        self.bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    fn field(&mut self, code: u8, signature: &str, value: impl FnOnce(&mut Writer)) {
        self.open_struct();
        self.byte(code);
        self.signature(signature);
        value(self);
    }
}

/// What a message's header says, for writing one.
pub struct Head<'a> {
    pub kind: u8,
    pub flags: u8,
    pub serial: u32,
    /// For a method call: the object, interface and member called.
    pub call: Option<(&'a str, &'a str, &'a str)>,
    /// For an error: its name.
    pub error_name: Option<&'a str>,
    /// For a reply or an error: the serial of the call it answers.
    pub reply_serial: Option<u32>,
    /// The body's signature.
    pub signature: &'a str,
}

/// A whole message: `head`, then the body `body` writes. `capacity` is the size expected, so
/// that the buffer is allocated once.
pub fn write_message(
    head: &Head<'_>,
    capacity: usize,
    body: impl FnOnce(&mut Writer),
) -> Result<Zeroizing<Vec<u8>>, Unwritable> {
    let mut writer = Writer::with_capacity(capacity.max(128));
    writer
        .bytes
        .extend_from_slice(&[b'l', head.kind, head.flags, 1]);
    writer.u32(0);
    writer.u32(head.serial);
    writer.array(8, |fields| {
        if let Some((path, interface, member)) = head.call {
            fields.field(PATH, "o", |w| w.str(path));
            fields.field(INTERFACE, "s", |w| w.str(interface));
            fields.field(MEMBER, "s", |w| w.str(member));
        }
        if let Some(name) = head.error_name {
            fields.field(ERROR_NAME, "s", |w| w.str(name));
        }
        if let Some(serial) = head.reply_serial {
            fields.field(REPLY_SERIAL, "u", |w| w.u32(serial));
        }
        if !head.signature.is_empty() {
            fields.field(SIGNATURE, "g", |w| w.signature(head.signature));
        }
    });
    writer.pad(8);
    let start = writer.bytes.len();
    body(&mut writer);
    let len = (writer.bytes.len() - start) as u32;
    writer.bytes[4..8].copy_from_slice(&len.to_le_bytes());
    match writer.problem {
        Some(problem) => Err(problem),
        None => Ok(writer.bytes),
    }
}

/// Reads values at the alignment of their type from a message's bytes (alignment counts from
/// the message's start, as the specification says).
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn pad(&mut self, align: usize) -> Result<(), Malformed> {
        let next = self.at.next_multiple_of(align);
        let Some(padding) = self.bytes.get(self.at..next) else {
            return malformed("it ends inside padding");
        };
        if padding.iter().any(|byte| *byte != 0) {
            return malformed("padding that is not zero");
        }
        self.at = next;
        Ok(())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return malformed("a value runs past its end");
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    pub fn byte(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn word<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        self.pad(N)?;
        let mut word = [0u8; N];
        word.copy_from_slice(self.take(N)?);
        if self.big_endian {
            word.reverse();
        }
        Ok(word)
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.word::<4>()?))
    }

    fn chars(&mut self, len: usize) -> Result<&'a str, Malformed> {
        let bytes = self.take(len)?;
        if self.byte()? != 0 {
            return malformed("a string without its NUL");
        }
        match std::str::from_utf8(bytes) {
            Ok(text) if !text.contains('\0') => Ok(text),
            Ok(_) => malformed("a string with a NUL inside"),
            Err(_) => malformed("a string that is not UTF-8"),
        }
    }

    /// A string (or object path).
    pub fn str(&mut self) -> Result<&'a str, Malformed> {
        let len = self.u32()? as usize;
        if len > MAX_STRING_LEN {
            return malformed("a string longer than a message");
        }
        self.chars(len)
    }

    /// A signature.
    pub fn signature(&mut self) -> Result<&'a str, Malformed> {
        let len = usize::from(self.byte()?);
        let signature = self.chars(len)?;
        // Type codes are ASCII, and signatures are taken apart byte by byte (see `skip`).
        if !signature.is_ascii() {
            return malformed("a signature that is not ASCII");
        }
        Ok(signature)
    }

    pub fn open_struct(&mut self) -> Result<(), Malformed> {
        self.pad(8)
    }

    /// An array of elements aligned to `element_align`: where it ends. Read elements while
    /// [`Reader::before`] the end.
    pub fn array(&mut self, element_align: usize) -> Result<usize, Malformed> {
        let len = self.u32()? as usize;
        self.pad(element_align)?;
        match self.at.checked_add(len) {
            Some(end) if end <= self.bytes.len() => Ok(end),
            _ => malformed("an array runs past its end"),
        }
    }

    /// Whether the reader is before `end`; past it is malformed (an element overran its array).
    pub fn before(&self, end: usize) -> Result<bool, Malformed> {
        match self.at.cmp(&end) {
            std::cmp::Ordering::Less => Ok(true),
            std::cmp::Ordering::Equal => Ok(false),
            std::cmp::Ordering::Greater => malformed("an element runs past its array"),
        }
    }

    /// Checks that nothing is left.
    pub fn end(&self) -> Result<(), Malformed> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            malformed("bytes left after the body")
        }
    }

    /// Skips one complete value of the single complete type at the start of `signature` and
    /// returns the rest of the signature.
    fn skip<'s>(&mut self, signature: &'s str, depth: usize) -> Result<&'s str, Malformed> {
        if depth > MAX_DEPTH {
            return malformed("values nested too deep");
        }
        let Some(code) = signature.bytes().next() else {
            return malformed("an empty signature where a value was expected");
        };
        let rest = &signature[1..];
        match code {
            b'y' => self.byte().map(drop)?,
            b'n' | b'q' => self.word::<2>().map(drop)?,
            b'b' | b'i' | b'u' | b'h' => self.word::<4>().map(drop)?,
            b'x' | b't' | b'd' => self.word::<8>().map(drop)?,
            b's' | b'o' => self.str().map(drop)?,
            b'g' => self.signature().map(drop)?,
            b'v' => {
                let inner = self.signature()?;
                if !self.skip(inner, depth + 1)?.is_empty() {
                    return malformed("a variant of more than one type");
                }
            }
            b'a' => {
                let element = complete_type(rest)?;
                let end = self.array(alignment(element)?)?;
                while self.before(end)? {
                    self.skip(element, depth + 1)?;
                }
                return Ok(&rest[element.len()..]);
            }
            b'(' | b'{' => {
                let close = if code == b'(' { ')' } else { '}' };
                // An empty struct is no type (the specification says so); an array of them
                // would be read forever without a byte taken.
                if rest.starts_with(close) {
                    return malformed("an empty struct");
                }
                self.open_struct()?;
                let mut inside = rest;
                while !inside.starts_with(close) {
                    inside = self.skip(inside, depth + 1)?;
                }
                return Ok(&inside[1..]);
            }
            _ => return malformed(format!("an unknown type {:?}", char::from(code))),
        }
        Ok(rest)
    }
}

/// The first single complete type of `signature`.
fn complete_type(signature: &str) -> Result<&str, Malformed> {
    let mut depth = 0usize;
    for (at, code) in signature.bytes().enumerate() {
        match code {
            b'a' => continue,
            b'(' | b'{' => depth += 1,
            b')' | b'}' => match depth.checked_sub(1) {
                Some(0) => return Ok(&signature[..=at]),
                Some(left) => depth = left,
                None => break,
            },
            _ if depth == 0 => return Ok(&signature[..=at]),
            _ => {}
        }
        if depth > MAX_DEPTH {
            break;
        }
    }
    malformed(format!("an incomplete type in signature {signature:?}"))
}

/// The alignment of the values of the type that starts `signature`.
fn alignment(signature: &str) -> Result<usize, Malformed> {
    Ok(match signature.bytes().next() {
        Some(b'y' | b'g' | b'v') => 1,
        Some(b'n' | b'q') => 2,
        Some(b'b' | b'i' | b'u' | b'h' | b's' | b'o' | b'a') => 4,
        Some(b'x' | b't' | b'd' | b'(' | b'{') => 8,
        _ => return malformed(format!("an unknown type in signature {signature:?}")),
    })
}

/// A message read from bytes: its header, and a reader at its body.
pub struct Message<'a> {
    pub kind: u8,
    pub flags: u8,
    pub serial: u32,
    pub path: Option<&'a str>,
    pub interface: Option<&'a str>,
    pub member: Option<&'a str>,
    pub error_name: Option<&'a str>,
    pub reply_serial: Option<u32>,
    /// The body's signature; empty when the header gives none.
    pub signature: &'a str,
    body: usize,
    bytes: &'a [u8],
    big_endian: bool,
}

impl<'a> Message<'a> {
    /// Whether the sender waits for a reply.
    pub fn expects_reply(&self) -> bool {
        self.flags & NO_REPLY_EXPECTED == 0
    }

    /// A reader at the start of the body.
    pub fn body(&self) -> Reader<'a> {
        Reader {
            bytes: self.bytes,
            at: self.body,
            big_endian: self.big_endian,
        }
    }
}

/// Reads the message that is exactly `bytes` (as framed by [`crate::wire::message_len`]).
pub fn read_message(bytes: &[u8]) -> Result<Message<'_>, Malformed> {
    let big_endian = match bytes.first() {
        Some(b'l') => false,
        Some(b'B') => true,
        _ => return malformed("not a D-Bus message"),
    };
    let mut reader = Reader {
        bytes,
        at: 0,
        big_endian,
    };
    reader.byte()?;
    let kind = reader.byte()?;
    let flags = reader.byte()?;
    if reader.byte()? != 1 {
        return malformed("not D-Bus protocol version 1");
    }
    let body_len = reader.u32()? as usize;
    let serial = reader.u32()?;
    if serial == 0 {
        return malformed("a serial of 0");
    }
    let mut message = Message {
        kind,
        flags,
        serial,
        path: None,
        interface: None,
        member: None,
        error_name: None,
        reply_serial: None,
        signature: "",
        body: 0,
        bytes,
        big_endian,
    };
    let end = reader.array(8)?;
    let mut unix_fds = 0;
    while reader.before(end)? {
        reader.open_struct()?;
        let code = reader.byte()?;
        let signature = reader.signature()?;
        let expected = match code {
            PATH => "o",
            INTERFACE | MEMBER | ERROR_NAME | 6 | 7 => "s",
            REPLY_SERIAL | UNIX_FDS => "u",
            SIGNATURE => "g",
            // Unknown fields are skipped, as the specification asks.
            _ => {
                if !reader.skip(signature, 0)?.is_empty() {
                    return malformed("a header field of more than one type");
                }
                continue;
            }
        };
        if signature != expected {
            return malformed(format!("header field {code} of type {signature:?}"));
        }
        match code {
            PATH => message.path = Some(reader.str()?),
            INTERFACE => message.interface = Some(reader.str()?),
            MEMBER => message.member = Some(reader.str()?),
            ERROR_NAME => message.error_name = Some(reader.str()?),
            REPLY_SERIAL => message.reply_serial = Some(reader.u32()?),
            UNIX_FDS => unix_fds = reader.u32()?,
            SIGNATURE => message.signature = reader.signature()?,
            _ => {
                reader.str()?;
            }
        }
    }
    reader.pad(8)?;
    if reader.bytes.len() - reader.at != body_len {
        return malformed("its length is not the one its header gives");
    }
    if unix_fds > 0 {
        return malformed("it carries file descriptors");
    }
    let complete = match kind {
        METHOD_CALL => message.path.is_some() && message.member.is_some(),
        METHOD_RETURN => message.reply_serial.is_some(),
        ERROR => message.reply_serial.is_some() && message.error_name.is_some(),
        _ => true,
    };
    if !complete {
        return malformed("a header field its type requires is missing");
    }
    message.body = reader.at;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_types_and_their_alignment() {
        assert_eq!(complete_type("sa{ss}").unwrap(), "s");
        assert_eq!(complete_type("a{ss}x").unwrap(), "a{ss}");
        assert_eq!(complete_type("(a(ss)ss)").unwrap(), "(a(ss)ss)");
        assert!(complete_type("(ss").is_err());
        assert!(complete_type("a").is_err());
        assert!(complete_type(")").is_err());
        assert_eq!(alignment("a{ss}").unwrap(), 4);
        assert_eq!(alignment("(s)").unwrap(), 8);
        assert!(alignment("z").is_err());
    }

    #[test]
    fn nothing_past_the_end_is_read() {
        let head = Head {
            kind: METHOD_CALL,
            flags: 0,
            serial: 7,
            call: Some(("/a", "b.c", "D")),
            error_name: None,
            reply_serial: None,
            signature: "s",
        };
        let bytes = write_message(&head, 0, |w| w.str("hello")).unwrap();
        let message = read_message(&bytes).unwrap();
        assert_eq!(message.member, Some("D"));
        let mut body = message.body();
        assert_eq!(body.str().unwrap(), "hello");
        body.end().unwrap();
        // Every shorter prefix is refused, never read past.
        for len in 0..bytes.len() {
            assert!(read_message(&bytes[..len]).is_err(), "{len}");
        }
        // An unknown header field that is an array of empty structs: refused, not read forever
        // (each element would take no byte of the array's eight).
        let mut hostile = bytes[..12].to_vec();
        hostile[4..8].copy_from_slice(&0u32.to_le_bytes());
        let field = [
            200u8, 3, b'a', b'(', b')', 0, // code, signature "a()"
            0, 0, // padding to the array's length
            8, 0, 0, 0, // the array's length
            0, 0, 0, 0, // padding to its first element
            0, 0, 0, 0, 0, 0, 0, 0, // its eight bytes
        ];
        hostile.extend_from_slice(&(field.len() as u32).to_le_bytes());
        hostile.extend_from_slice(&field);
        let error = read_message(&hostile).err().unwrap();
        assert!(error.0.contains("empty struct"), "{error}");
        // A NUL cannot be written.
        assert!(write_message(&head, 0, |w| w.str("a\0b")).is_err());
    }

    #[test]
    fn a_signature_that_is_not_ascii_is_refused() {
        // A method return with a header field of an unknown code (0) typed by `signature`.
        let with_field = |signature: &[u8]| {
            let mut message = vec![b'l', METHOD_RETURN, 0, 1];
            message.extend_from_slice(&0u32.to_le_bytes()); // body length
            message.extend_from_slice(&2u32.to_le_bytes()); // serial
            // Reply serial 2, then the unknown field: its code, its signature, no value.
            let mut fields = vec![REPLY_SERIAL, 1, b'u', 0];
            fields.extend_from_slice(&2u32.to_le_bytes());
            fields.extend_from_slice(&[0, signature.len() as u8]);
            fields.extend_from_slice(signature);
            fields.push(0);
            message.extend_from_slice(&(fields.len() as u32).to_le_bytes());
            message.extend_from_slice(&fields);
            message.resize(message.len().next_multiple_of(8), 0);
            message
        };
        // One character of two bytes; and an array of one: each refused, not cut inside the
        // character.
        for signature in ["\u{617}", "a\u{23e}"] {
            let error = read_message(&with_field(signature.as_bytes()))
                .err()
                .unwrap();
            assert!(error.0.contains("not ASCII"), "{signature:?}: {error}");
        }
    }
}
