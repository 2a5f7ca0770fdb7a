//! The chunk: the payload of every sync publish, and the reassembly of frames from chunks.
//!
//! A frame (the signed preamble, then one sync message each) may be larger than the
//! broker's maximum packet, so it travels as numbered chunks. Every chunk names the session
//! it belongs to by the two ends' nonces, so chunks of an older session (a QoS 1 resend
//! after a reconnection) are recognised and dropped. Layout, integers big-endian:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | magic `CLMQ` |
//! | 1 | version, `1` |
//! | 1 | kind: 1 open, 2 frame, 3 ping, 4 close |
//! | 8 | the sender's session nonce |
//! | 8 | the receiver's session nonce; `0` in an open |
//! | 4 | frame number within the sender's side of the session, from 0 |
//! | 2 | chunk index within the frame, from 0 |
//! | 2 | chunk count of the frame, at least 1 |
//! | n | the chunk's bytes (frame kind), or a reason in UTF-8 (close) |

use crdt_model::wire::MAX_MESSAGE_BYTES;

use super::auth::SEAL_OVERHEAD;

/// The largest frame reassembled: a sync message of the largest size, sealed.
pub const MAX_FRAME_BYTES: usize = MAX_MESSAGE_BYTES + SEAL_OVERHEAD;

const MAGIC: &[u8; 4] = b"CLMQ";
const VERSION: u8 = 1;
/// Bytes before a chunk's payload.
pub const HEADER_BYTES: usize = 30;

/// What a chunk is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Asks the receiver for a new session; carries nothing.
    Open,
    /// Part of a frame.
    Frame,
    /// Keeps an idle session alive.
    Ping,
    /// Ends the session; carries the reason.
    Close,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Open => 1,
            Kind::Frame => 2,
            Kind::Ping => 3,
            Kind::Close => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Kind::Open,
            2 => Kind::Frame,
            3 => Kind::Ping,
            4 => Kind::Close,
            _ => return None,
        })
    }
}

/// A decoded chunk, borrowing its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub kind: Kind,
    pub sender: u64,
    pub receiver: u64,
    pub frame: u32,
    pub index: u16,
    pub count: u16,
    pub payload: &'a [u8],
}

/// Why a chunk or a chunk sequence was refused. The session it belongs to ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    #[error("chunk of {len} bytes is shorter than its {HEADER_BYTES}-byte header")]
    Short { len: usize },
    #[error("not a culao chunk (bad magic)")]
    Magic,
    #[error("chunk version {0} is unknown (this build reads {VERSION})")]
    Version(u8),
    #[error("chunk kind {0} is unknown")]
    UnknownKind(u8),
    #[error("chunk {index} of a frame of {count} chunks")]
    BadIndex { index: u16, count: u16 },
    #[error(
        "expected frame {expected_frame} chunk {expected_chunk}, got frame {frame} chunk {chunk}"
    )]
    Gap {
        expected_frame: u32,
        expected_chunk: u16,
        frame: u32,
        chunk: u16,
    },
    #[error("frame {frame} changed its chunk count from {was} to {now}")]
    CountChanged { frame: u32, was: u16, now: u16 },
    #[error("frame {frame} exceeds {MAX_FRAME_BYTES} bytes")]
    TooLarge { frame: u32 },
}

impl<'a> Chunk<'a> {
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ChunkError> {
        if bytes.len() < HEADER_BYTES {
            return Err(ChunkError::Short { len: bytes.len() });
        }
        if &bytes[..4] != MAGIC {
            return Err(ChunkError::Magic);
        }
        if bytes[4] != VERSION {
            return Err(ChunkError::Version(bytes[4]));
        }
        let kind = Kind::from_code(bytes[5]).ok_or(ChunkError::UnknownKind(bytes[5]))?;

        let u64_at = |at: usize| u64::from_be_bytes(array(&bytes[at..at + 8]));
        let u16_at = |at: usize| u16::from_be_bytes(array(&bytes[at..at + 2]));
        let chunk = Chunk {
            kind,
            sender: u64_at(6),
            receiver: u64_at(14),
            frame: u32::from_be_bytes(array(&bytes[22..26])),
            index: u16_at(26),
            count: u16_at(28),
            payload: &bytes[HEADER_BYTES..],
        };
        if chunk.count == 0 || chunk.index >= chunk.count {
            return Err(ChunkError::BadIndex {
                index: chunk.index,
                count: chunk.count,
            });
        }
        Ok(chunk)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.payload.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.kind.code());
        out.extend_from_slice(&self.sender.to_be_bytes());
        out.extend_from_slice(&self.receiver.to_be_bytes());
        out.extend_from_slice(&self.frame.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(self.payload);
        out
    }

    /// A chunk that carries no frame (open, ping, close).
    pub fn control(kind: Kind, sender: u64, receiver: u64, payload: &'a [u8]) -> Self {
        Chunk {
            kind,
            sender,
            receiver,
            frame: 0,
            index: 0,
            count: 1,
            payload,
        }
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

/// Splits `frame` into encoded chunks whose payloads hold at most `max_payload` bytes, or
/// more if that many chunks would overflow the 16-bit count (only for a frame of 4 MiB cut
/// into chunks under 65 bytes, which no valid configuration asks for).
pub fn split(
    frame: &[u8],
    number: u32,
    sender: u64,
    receiver: u64,
    max_payload: usize,
) -> Vec<Vec<u8>> {
    let size = max_payload
        .max(1)
        .max(frame.len().div_ceil(usize::from(u16::MAX)));
    let pieces: Vec<&[u8]> = if frame.is_empty() {
        vec![frame]
    } else {
        frame.chunks(size).collect()
    };
    let count = pieces.len() as u16;
    pieces
        .iter()
        .enumerate()
        .map(|(index, payload)| {
            Chunk {
                kind: Kind::Frame,
                sender,
                receiver,
                frame: number,
                index: index as u16,
                count,
                payload,
            }
            .encode()
        })
        .collect()
}

/// Rebuilds one side's frames from its chunks, in order. Holds at most one frame, itself at
/// most `MAX_FRAME_BYTES`: a peer cannot make the box buffer more.
#[derive(Debug, Default)]
pub struct Reassembler {
    next_frame: u32,
    next_chunk: u16,
    count: u16,
    buffer: Vec<u8>,
}

impl Reassembler {
    /// Takes the next chunk of a frame; returns the frame once its last chunk arrived.
    /// A chunk seen before (a QoS 1 duplicate) is ignored; a gap is an error, because the
    /// broker delivers one publisher's messages on a topic in order.
    pub fn push(&mut self, chunk: &Chunk<'_>) -> Result<Option<Vec<u8>>, ChunkError> {
        if (chunk.frame, chunk.index) < (self.next_frame, self.next_chunk) {
            return Ok(None);
        }
        if (chunk.frame, chunk.index) != (self.next_frame, self.next_chunk) {
            return Err(ChunkError::Gap {
                expected_frame: self.next_frame,
                expected_chunk: self.next_chunk,
                frame: chunk.frame,
                chunk: chunk.index,
            });
        }

        if chunk.index == 0 {
            self.count = chunk.count;
            self.buffer.clear();
        } else if chunk.count != self.count {
            return Err(ChunkError::CountChanged {
                frame: chunk.frame,
                was: self.count,
                now: chunk.count,
            });
        }
        if self.buffer.len() + chunk.payload.len() > MAX_FRAME_BYTES {
            return Err(ChunkError::TooLarge { frame: chunk.frame });
        }
        self.buffer.extend_from_slice(chunk.payload);

        if chunk.index + 1 < chunk.count {
            self.next_chunk += 1;
            return Ok(None);
        }
        self.next_frame = self.next_frame.wrapping_add(1);
        self.next_chunk = 0;
        Ok(Some(std::mem::take(&mut self.buffer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_through(frames: &[Vec<u8>], max_payload: usize) -> Vec<Vec<u8>> {
        let mut reassembler = Reassembler::default();
        let mut out = Vec::new();
        for (number, frame) in frames.iter().enumerate() {
            for bytes in split(frame, number as u32, 7, 9, max_payload) {
                let chunk = Chunk::decode(&bytes).unwrap();
                assert!(chunk.payload.len() <= max_payload);
                if let Some(frame) = reassembler.push(&chunk).unwrap() {
                    out.push(frame);
                }
            }
        }
        out
    }

    #[test]
    fn frames_of_every_size_come_back_whole() {
        let frames: Vec<Vec<u8>> = [0usize, 1, 99, 100, 101, 1000, 65_536]
            .iter()
            .map(|len| (0..*len).map(|i| (i % 251) as u8).collect())
            .collect();
        assert_eq!(frames_through(&frames, 100), frames);
    }

    #[test]
    fn duplicates_are_ignored_and_gaps_refused() {
        let frame = vec![5u8; 250];
        let chunks = split(&frame, 0, 1, 2, 100);
        let mut reassembler = Reassembler::default();
        reassembler
            .push(&Chunk::decode(&chunks[0]).unwrap())
            .unwrap();
        assert_eq!(
            reassembler.push(&Chunk::decode(&chunks[0]).unwrap()),
            Ok(None)
        );
        assert!(matches!(
            reassembler.push(&Chunk::decode(&chunks[2]).unwrap()),
            Err(ChunkError::Gap {
                expected_chunk: 1,
                chunk: 2,
                ..
            })
        ));
    }

    #[test]
    fn a_frame_beyond_the_message_limit_is_refused() {
        let mut reassembler = Reassembler::default();
        let big = vec![0u8; 1 << 20];
        let result = (0..5u16).try_for_each(|index| {
            let chunk = Chunk {
                kind: Kind::Frame,
                sender: 1,
                receiver: 2,
                frame: 0,
                index,
                count: 6,
                payload: &big,
            };
            reassembler.push(&chunk).map(|_| ())
        });
        assert_eq!(result, Err(ChunkError::TooLarge { frame: 0 }));
    }

    #[test]
    fn malformed_chunks_are_refused_with_what_was_wrong() {
        let good = Chunk::control(Kind::Ping, 1, 2, b"").encode();
        assert_eq!(
            Chunk::decode(&good[..10]),
            Err(ChunkError::Short { len: 10 })
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Chunk::decode(&bad), Err(ChunkError::Magic));
        let mut bad = good.clone();
        bad[4] = 9;
        assert_eq!(Chunk::decode(&bad), Err(ChunkError::Version(9)));
        let mut bad = good.clone();
        bad[5] = 77;
        assert_eq!(Chunk::decode(&bad), Err(ChunkError::UnknownKind(77)));
        let mut bad = good.clone();
        bad[29] = 0;
        assert_eq!(
            Chunk::decode(&bad),
            Err(ChunkError::BadIndex { index: 0, count: 0 })
        );
        let mut changed = Reassembler::default();
        let first = split(&[1u8; 20], 0, 1, 2, 10);
        changed.push(&Chunk::decode(&first[0]).unwrap()).unwrap();
        let mut second = Chunk::decode(&first[1]).unwrap();
        second.count = 3;
        assert!(matches!(
            changed.push(&second),
            Err(ChunkError::CountChanged { was: 2, now: 3, .. })
        ));
    }
}
