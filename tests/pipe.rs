//! Cross-process tests of byte pipes (`shmkit::pipe`): a gibibyte of
//! random-length messages, short buffers, duplex ping-pong and half-close,
//! end of file after a sender exits or is killed, refused lengths, timeouts,
//! attach errors, and records corrupted by a hostile process.
//!
//! As in `cross_process.rs`, a second process is this test binary
//! re-executed (see `common`): [`child_entry`] does nothing in an ordinary
//! run, and in a child plays the role the parent asked for. Each test uses
//! its own segment names and removes them when it ends.
//!
//! Message contents come from [`Pattern`]: message `seq` of a stream is a
//! function of the stream's seed and `seq`, so a receiver checks every byte
//! of every message, and a message that is torn, stale, duplicated, out of
//! order or of the wrong length fails the test.

#[allow(dead_code)]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::pipe_offset::{self, header, record_size, MSG, PAD};
use common::{bounded, hear, read_u64_at, say, ChildProc, Seg, TIMEOUT};
use shmkit::channel::Departure;
use shmkit::pipe::{Duplex, Receiver, RecvError, SendError, Sender};
use shmkit::{Error, Kind, Role};

/// Bytes in the stream test: 1 GiB, in debug builds too (about 4 s there,
/// under 1 s in release, so no scaling down).
const STREAM_BYTES: u64 = 1 << 30;
/// The stream test's ring: messages of 0 to 512 KiB − 8 bytes.
const STREAM_CAPACITY: usize = 1 << 20;
/// Round trips in the duplex test.
const PING_PONGS: u64 = 20_000;
/// A short wait that must end in a timeout (the pipe stays empty or full).
const SHORT: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------
// Message contents

/// SplitMix64's finaliser: a cheap, well-mixed hash of one word.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The messages of one stream: lengths and bytes as functions of
/// `(seed, seq)`. Both processes build the same `Pattern` from the seed.
///
/// Message `seq` is `len(seq)` bytes cut from a block of pseudo-random
/// bytes at a point that depends on `seq`; when it has room, its first 8
/// bytes are [`Pattern::tag`]: the seed and the sequence number.
struct Pattern {
    seed: u32,
    min: usize,
    max: usize,
    bytes: Vec<u8>,
}

impl Pattern {
    /// Lengths from `min` to `max` (both included).
    fn new(seed: u32, min: usize, max: usize) -> Pattern {
        assert!(min <= max);
        let words = (max + 64 * 1024).div_ceil(8);
        let mut bytes = Vec::with_capacity(words * 8);
        for i in 0..words as u64 {
            bytes.extend_from_slice(&mix(u64::from(seed) << 32 ^ i).to_le_bytes());
        }
        Pattern {
            seed,
            min,
            max,
            bytes,
        }
    }

    /// The length of message `seq`: every 61st message is `min`, the next
    /// one `max`; otherwise a quarter are within 64 bytes of `min`, a quarter
    /// within 4 KiB, and half anywhere in `min..=max`.
    fn len(&self, seq: u64) -> usize {
        let h = mix(u64::from(self.seed).rotate_left(17) ^ seq);
        let span = (self.max - self.min) as u64;
        let x = h >> 8;
        let extra = match (seq % 61, h % 4) {
            (0, _) => 0,
            (1, _) => span,
            (_, 0) => x % (span.min(64) + 1),
            (_, 1) => x % (span.min(4096) + 1),
            _ => x % (span + 1),
        };
        self.min + extra as usize
    }

    /// The first 8 bytes of message `seq` (when it is that long).
    fn tag(&self, seq: u64) -> [u8; 8] {
        (u64::from(self.seed) << 32 | seq).to_le_bytes()
    }

    /// Where in `bytes` message `seq` is cut from.
    fn start(&self, seq: u64) -> usize {
        let room = (self.bytes.len() - self.max) as u64;
        (mix(u64::from(self.seed) ^ seq.wrapping_mul(0x2545_f491_4f6c_dd1d)) % room) as usize
    }

    /// Writes message `seq` into `out`, whose length is the message's.
    fn fill(&self, seq: u64, out: &mut [u8]) {
        let start = self.start(seq);
        out.copy_from_slice(&self.bytes[start..start + out.len()]);
        if out.len() >= 8 {
            out[..8].copy_from_slice(&self.tag(seq));
        }
    }

    /// Message `seq` in a new vector.
    fn message(&self, seq: u64) -> Vec<u8> {
        let mut v = vec![0; self.len(seq)];
        self.fill(seq, &mut v);
        v
    }

    /// Panics unless `got` is message `seq`, length and every byte.
    fn check(&self, seq: u64, got: &[u8]) {
        let len = self.len(seq);
        assert_eq!(got.len(), len, "stream {} message {seq}: length", self.seed);
        let start = self.start(seq);
        let want = &self.bytes[start..start + len];
        let head = len.min(8);
        let tag = self.tag(seq);
        let want_head = if len >= 8 { &tag[..] } else { &want[..head] };
        if got[..head] != *want_head || got[head..] != want[head..] {
            let at = (0..len)
                .find(|&i| {
                    let w = if i < head { want_head[i] } else { want[i] };
                    got[i] != w
                })
                .unwrap();
            panic!(
                "stream {} message {seq} ({len} bytes) differs from byte {at} on: \
                 got {:02x?}",
                self.seed,
                &got[at..(at + 16).min(len)]
            );
        }
    }
}

/// The `(seed, seq)` in the first 8 bytes of a message of at least 8 bytes.
fn tag_of(msg: &[u8]) -> (u32, u64) {
    let t = u64::from_le_bytes(msg[..8].try_into().unwrap());
    ((t >> 32) as u32, t & 0xffff_ffff)
}

/// Sends message `seq` of `p` with the API `seq` selects: mostly
/// `send_bytes` from `buf`, every fifth message through a `reserve` grant
/// (sometimes larger than the message, committing only the message).
fn send_seq(tx: &mut Sender, p: &Pattern, seq: u64, buf: &mut [u8]) {
    let len = p.len(seq);
    if seq % 5 == 1 {
        let room = (len + (seq % 3) as usize * 100).min(tx.max_message_len());
        let mut grant = tx.reserve(room).unwrap();
        assert_eq!(grant.len(), room);
        if seq % 2 == 0 {
            grant.write(&p.message(seq));
        } else {
            // SAFETY: every process of this test follows the pipe protocol.
            p.fill(seq, &mut unsafe { grant.as_mut_bytes() }[..len]);
        }
        grant.commit(len).unwrap();
    } else {
        p.fill(seq, &mut buf[..len]);
        tx.send_bytes(&buf[..len]).unwrap();
    }
}

/// Receives message `seq` of `p` and checks it: through a `read` grant for
/// every seventh message, otherwise `recv_bytes_into` with the reused `buf`.
fn recv_seq(rx: &mut Receiver, p: &Pattern, seq: u64, buf: &mut [u8]) {
    if seq % 7 == 3 {
        let grant = rx.read().unwrap();
        if seq % 2 == 0 {
            p.check(seq, &grant.to_vec());
        } else {
            // SAFETY: every process of this test follows the pipe protocol.
            p.check(seq, unsafe { grant.as_bytes() });
        }
        grant.release();
    } else {
        let n = rx.recv_bytes_into(buf).unwrap();
        p.check(seq, &buf[..n]);
    }
}

/// The receiver's position, read from the segment file.
fn head_pos(name: &str) -> u64 {
    read_u64_at(name, pipe_offset::control(0) + pipe_offset::HEAD_POS)
}

// ---------------------------------------------------------------------------
// Child processes

/// Runs a child's role when this binary was started as a child; a no-op test
/// otherwise.
#[test]
fn child_entry() {
    let Some((mode, name, arg)) = common::child_request() else {
        return;
    };
    let name = name.as_str();
    let args: Vec<&str> = arg.split_whitespace().collect();
    let num = |i: usize| -> u64 { args[i].parse().unwrap() };
    match mode.as_str() {
        "stream_send" => child_stream_send(name, num(0) as u32, num(1)),
        "send_count" => {
            let p = Pattern::new(num(2) as u32, num(3) as usize, num(4) as usize);
            child_send_count(name, args[0], num(1), &p);
        }
        "send_forever" => child_send_forever(name, num(0) as u32),
        "hold_sender" => child_hold_sender(name),
        "hold_receiver" => child_hold_receiver(name),
        "duplex_echo" => child_duplex_echo(name, num(0) as u32),
        "duplex_hold" => child_duplex_hold(name),
        "claim" => child_claim(name, args[0]),
        "too_large" => child_too_large(name),
        #[cfg(feature = "serde")]
        "serde_send" => serde_tests::child_serde_send(name),
        other => panic!("unknown child mode {other:?}"),
    }
    // Handles were dropped inside the role functions: exit runs no destructors.
    std::process::exit(0);
}

/// One line describing an attach result, for the parent to parse.
fn outcome<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(Error::RoleTaken { role, pid, .. }) => format!("taken {role} {pid}"),
        Err(e) => format!("error {e:?}"),
    }
}

/// Sends the messages of stream `seed` until `total` bytes have gone, then
/// reports `SENT <messages> <bytes>` and closes.
fn child_stream_send(name: &str, seed: u32, total: u64) {
    let mut tx = Sender::open(name).unwrap();
    let p = Pattern::new(seed, 0, tx.max_message_len());
    let mut buf = vec![0; tx.max_message_len()];
    let (mut seq, mut bytes) = (0, 0);
    while bytes < total {
        send_seq(&mut tx, &p, seq, &mut buf);
        bytes += p.len(seq) as u64;
        seq += 1;
    }
    say("SENT", format!("{seq} {bytes}"));
    tx.close();
}

/// Attaches as the sender, reports `ATTACHED`, sends messages `0..n` of
/// `p`, then leaves as `how` says: `close` closes the sender, `exit` ends
/// the process with the sender still attached (no destructor runs: the role
/// word still names this process).
fn child_send_count(name: &str, how: &str, n: u64, p: &Pattern) {
    let mut tx = Sender::open(name).unwrap();
    say("ATTACHED", "");
    let mut buf = vec![0; p.max];
    for seq in 0..n {
        send_seq(&mut tx, p, seq, &mut buf);
    }
    say("SENT", n);
    match how {
        "close" => tx.close(),
        "exit" => std::process::exit(0),
        other => panic!("unknown way to leave {other:?}"),
    }
}

/// Attaches as the sender (taking the role over from a dead holder), reports
/// `ATTACHED`, and sends stream `seed` (lengths from 8) until killed.
fn child_send_forever(name: &str, seed: u32) {
    let mut tx = Sender::open(name).unwrap();
    say("ATTACHED", "");
    let p = Pattern::new(seed, 8, tx.max_message_len());
    let mut buf = vec![0; tx.max_message_len()];
    for seq in 0.. {
        send_seq(&mut tx, &p, seq, &mut buf);
    }
}

/// Attaches as the sender, reports `ATTACHED`, then obeys the parent:
/// `send <seq> <len>` sends message `seq` of a stream of fixed-length
/// messages and reports `SENT`; `poke <offset> <value>` writes a word into
/// the segment file (as a hostile peer would) and reports `POKED`; `reopen`
/// drops the sender and attaches again, reporting `REOPENED`; end of input
/// ends the child.
fn child_hold_sender(name: &str) {
    let mut tx = Sender::open(name).unwrap();
    say("ATTACHED", "");
    loop {
        let line = hear();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            [] => return,
            ["send", seq, len] => {
                let (seq, len) = (seq.parse().unwrap(), len.parse().unwrap());
                tx.send_bytes_timeout(&fixed(seq, len), TIMEOUT).unwrap();
                say("SENT", seq);
            }
            ["poke", at, v] => {
                common::write_u64_at(name, at.parse().unwrap(), v.parse().unwrap());
                say("POKED", "");
            }
            ["reopen"] => {
                drop(tx);
                tx = Sender::open(name).unwrap();
                say("REOPENED", "");
            }
            _ => panic!("unknown command {line:?}"),
        }
    }
}

/// Message `seq` of a stream of `len`-byte messages.
fn fixed(seq: u64, len: usize) -> Vec<u8> {
    Pattern::new(seq as u32, len, len).message(seq)
}

/// Attaches as the receiver, reports `ATTACHED`, then obeys the parent:
/// `take` receives one message and reports `GOT <len>`; end of input ends
/// the child.
fn child_hold_receiver(name: &str) {
    let mut rx = Receiver::open(name).unwrap();
    say("ATTACHED", "");
    loop {
        match hear().as_str() {
            "" => return,
            "take" => say("GOT", rx.recv_bytes_timeout(TIMEOUT).unwrap().len()),
            line => panic!("unknown command {line:?}"),
        }
    }
}

/// One end of a duplex pipe: reports `ATTACHED <end>`, answers request `i`
/// (stream `seed`) with reply `i` (stream `seed + 1`) until the requests
/// stop at `PING_PONGS`, then half-closes: drops its sender, reports
/// `HALF_CLOSED`, receives one more message and reports `GOT <text>`, and
/// reports `EOF` once the other end has closed too.
fn child_duplex_echo(name: &str, seed: u32) {
    let d = Duplex::open_or_create(name, 4096).unwrap();
    say("ATTACHED", d.end());
    let (mut tx, mut rx) = d.into_split();
    assert!(tx.wait_for_peer(TIMEOUT) && rx.wait_for_peer(TIMEOUT));
    let max = tx.max_message_len();
    let (requests, replies) = (Pattern::new(seed, 0, max), Pattern::new(seed + 1, 0, max));
    let mut buf = vec![0; max];
    for i in 0..PING_PONGS {
        // Alternate the receiving calls: a new vector, or the reused buffer.
        if i % 2 == 0 {
            requests.check(i, &rx.recv_bytes().unwrap());
        } else {
            let n = rx.recv_bytes_into(&mut buf).unwrap();
            requests.check(i, &buf[..n]);
        }
        send_seq(&mut tx, &replies, i, &mut buf);
    }
    tx.close();
    say("HALF_CLOSED", "");
    let last = rx.recv_bytes_timeout(TIMEOUT).unwrap();
    say("GOT", String::from_utf8(last).unwrap());
    assert_eq!(rx.recv_bytes_timeout(TIMEOUT), Err(RecvError::Disconnected));
    say("EOF", "");
}

/// Holds one end of a duplex pipe until killed or until end of input;
/// reports `ATTACHED <end>`.
fn child_duplex_hold(name: &str) {
    let d = Duplex::open_or_create(name, 4096).unwrap();
    say("ATTACHED", d.end());
    hear();
}

/// Tries to attach as `what` (`sender`, `receiver`, `duplex`) and reports
/// `OUTCOME`.
fn child_claim(name: &str, what: &str) {
    let line = match what {
        "sender" => outcome(&Sender::open(name)),
        "receiver" => outcome(&Receiver::open(name)),
        "duplex" => outcome(&Duplex::open(name)),
        other => panic!("unknown role {other:?}"),
    };
    say("OUTCOME", line);
}

/// With the ring full and a live receiver that takes nothing, every call
/// with a message over the maximum fails at once with `TooLarge` (a call
/// that waited for room first would hang here). Then, on `go` from the
/// parent (which has drained the ring), sends two messages of exactly the
/// maximum length: one copied, one through a grant.
fn child_too_large(name: &str) {
    let mut tx = Sender::open(name).unwrap();
    let max = tx.max_message_len();
    let mut filled = 0;
    while tx.try_send_bytes(&[9; 64]).is_ok() {
        filled += 1;
    }
    assert_eq!(tx.try_send_bytes(&[9; 64]), Err(SendError::Full));
    let too_large = |len| SendError::TooLarge { len, max };
    let big = vec![7u8; max + 1];
    assert_eq!(tx.try_send_bytes(&big), Err(too_large(max + 1)));
    assert_eq!(tx.send_bytes(&big), Err(too_large(max + 1)));
    // `Duration::MAX`: no deadline at all.
    assert_eq!(
        tx.send_bytes_timeout(&big, Duration::MAX),
        Err(too_large(max + 1))
    );
    assert_eq!(tx.reserve(max + 1).unwrap_err(), too_large(max + 1));
    assert_eq!(tx.try_reserve(max + 8).unwrap_err(), too_large(max + 8));
    assert_eq!(
        tx.reserve_timeout(usize::MAX, Duration::MAX).unwrap_err(),
        too_large(usize::MAX)
    );
    // The maximum itself is not too large: only too large for now.
    assert_eq!(tx.try_send_bytes(&big[..max]), Err(SendError::Full));
    assert_eq!(tx.try_reserve(max).unwrap_err(), SendError::Full);
    say("REFUSED", format!("{max} {filled}"));
    assert_eq!(hear(), "go");
    let p = Pattern::new(77, max, max);
    tx.send_bytes(&p.message(0)).unwrap();
    let mut grant = tx.reserve(max).unwrap();
    grant.write(&p.message(1));
    grant.commit_all();
    say("SENT", "");
    hear();
}

// ---------------------------------------------------------------------------
// Streams

/// A gibibyte (release builds) of messages of random lengths from 0 bytes to
/// the maximum arrives from another process in order, every length and byte
/// intact, through copies and grants on both sides; then end of file.
#[test]
fn a_gibibyte_of_random_length_messages_arrives_intact() {
    let seg = Seg::new("stream");
    let mut rx = Receiver::create(&seg.name, STREAM_CAPACITY).unwrap();
    let max = rx.max_message_len();
    assert_eq!(max, STREAM_CAPACITY / 2 - 8);
    let seed = 0x5eed;
    let mut child = ChildProc::spawn("stream_send", &seg.name, format!("{seed} {STREAM_BYTES}"));
    assert!(rx.wait_for_peer(TIMEOUT), "the sender never attached");
    let p = Pattern::new(seed, 0, max);
    let mut buf = vec![0; max];
    let (mut seq, mut bytes) = (0u64, 0u64);
    let (mut empty, mut longest) = (0, 0);
    while bytes < STREAM_BYTES {
        recv_seq(&mut rx, &p, seq, &mut buf);
        let len = p.len(seq);
        empty += usize::from(len == 0);
        longest += usize::from(len == max);
        bytes += len as u64;
        seq += 1;
    }
    assert_eq!(rx.recv_bytes_into(&mut buf), Err(RecvError::Disconnected));
    assert_eq!(child.expect("SENT"), format!("{seq} {bytes}"));
    child.wait_success();
    // The stream covered both ends of the length range, and many laps.
    assert!(
        empty > 10 && longest > 10,
        "{empty} empty, {longest} longest"
    );
    assert!(bytes > 100 * STREAM_CAPACITY as u64);
    assert_eq!(head_pos(&seg.name) % 8, 0);
    assert!(head_pos(&seg.name) >= bytes + 8 * seq);
}

/// A buffer that is too short leaves the message in the pipe: each form of
/// `recv_bytes_into` reports the length needed, and a retry (a buffer of
/// exactly that length, or a read grant) receives the same message, also for
/// messages the sender had to put after a padding record at the end of the
/// ring (checked through the receiver's position in the segment).
#[test]
fn a_short_buffer_then_a_retry_receives_the_same_message() {
    let seg = Seg::new("short");
    let capacity = 256;
    let mut rx = Receiver::create(&seg.name, capacity).unwrap();
    let max = rx.max_message_len();
    let seed = 3;
    let n = 300;
    let arg = format!("close {n} {seed} 0 {max}");
    let mut child = ChildProc::spawn("send_count", &seg.name, arg);
    child.expect("ATTACHED");
    let p = Pattern::new(seed, 0, max);
    let mut padded = 0;
    for seq in 0..n {
        let len = p.len(seq);
        assert_eq!(rx.poll(TIMEOUT), Ok(true), "message {seq}");
        let before = head_pos(&seg.name);
        if len == 0 {
            assert_eq!(rx.recv_bytes_into(&mut []), Ok(0));
        } else {
            let mut short = vec![0; (seq as usize * 7) % len];
            let too_short = Err(RecvError::BufferTooShort { needed: len });
            let got = match seq % 3 {
                0 => rx.recv_bytes_into(&mut short),
                1 => rx.try_recv_bytes_into(&mut short),
                _ => rx.recv_bytes_into_timeout(&mut short, TIMEOUT),
            };
            assert_eq!(got, too_short, "message {seq}");
            // Still there, and asking again says the same.
            assert!(!rx.is_empty());
            assert_eq!(rx.try_recv_bytes_into(&mut short), too_short);
            assert_eq!(head_pos(&seg.name), before, "nothing consumed");
            if seq % 2 == 0 {
                let mut exact = vec![0; len];
                assert_eq!(rx.recv_bytes_into(&mut exact), Ok(len));
                p.check(seq, &exact);
            } else {
                let grant = rx.read().unwrap();
                p.check(seq, &grant.to_vec());
            }
        }
        // The receiver moved past exactly this record, and the padding in
        // front of it if the sender put it at the start of the ring.
        let moved = head_pos(&seg.name) - before;
        let size = record_size(len as u64);
        if moved != size {
            let to_end = capacity as u64 - before % capacity as u64;
            assert_eq!(moved, to_end + size, "message {seq}");
            padded += usize::from(len > 0);
        }
    }
    assert!(padded >= 10, "only {padded} messages followed padding");
    assert_eq!(rx.recv_bytes_timeout(TIMEOUT), Err(RecvError::Disconnected));
    child.wait_success();
}

// ---------------------------------------------------------------------------
// Duplex

/// Two processes attach to one duplex pipe with `open_or_create`, in either
/// order, get different ends, and play many rounds of ping-pong with
/// messages of random lengths, both checking every byte. While both ends are
/// live a third attach is refused (from another process, and from this
/// one). Then the child half-closes: this end's receiver sees end of file
/// while this end can still send to the child; finally the child sees end
/// of file too.
#[test]
fn duplex_ping_pong_in_either_start_order_then_half_close() {
    for child_first in [false, true] {
        let seg = Seg::new(&format!("pp{}", u8::from(child_first)));
        let seed = 40 + u32::from(child_first) * 2;
        let (mut d, mut child, child_end) = if child_first {
            let mut child = ChildProc::spawn("duplex_echo", &seg.name, seed);
            let end: usize = child.expect("ATTACHED").parse().unwrap();
            (Duplex::open_or_create(&seg.name, 4096).unwrap(), child, end)
        } else {
            let d = Duplex::open_or_create(&seg.name, 4096).unwrap();
            let mut child = ChildProc::spawn("duplex_echo", &seg.name, seed);
            let end = child.expect("ATTACHED").parse().unwrap();
            (d, child, end)
        };
        // The first to attach takes end 0.
        assert_eq!(child_end, usize::from(!child_first));
        assert_eq!(d.end(), usize::from(child_first));
        assert_eq!(d.capacity(), 4096);
        assert!(d.tx.wait_for_peer(TIMEOUT) && d.rx.wait_for_peer(TIMEOUT));

        // A third party: both ends are taken, by live processes.
        let pids = [std::process::id(), child.pid()];
        let mut third = ChildProc::spawn("claim", &seg.name, "duplex");
        let line = third.expect("OUTCOME");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[..2], ["taken", "sender"], "{line}");
        assert!(pids.contains(&words[2].parse().unwrap()), "{line}");
        third.wait_success();
        match Duplex::open(&seg.name) {
            Err(Error::RoleTaken { role, pid, .. }) => {
                assert_eq!(role, Role::Sender);
                assert!(pids.contains(&pid));
            }
            other => panic!("a third end attached: {other:?}"),
        }

        let max = d.tx.max_message_len();
        let (requests, replies) = (Pattern::new(seed, 0, max), Pattern::new(seed + 1, 0, max));
        let mut buf = vec![0; max];
        for i in 0..PING_PONGS {
            send_seq(&mut d.tx, &requests, i, &mut buf);
            recv_seq(&mut d.rx, &replies, i, &mut buf);
        }

        child.expect("HALF_CLOSED");
        assert_eq!(
            d.rx.recv_bytes_timeout(TIMEOUT),
            Err(RecvError::Disconnected)
        );
        assert!(!d.rx.is_connected());
        assert!(d.tx.is_connected(), "the other direction is still open");
        d.tx.send_bytes(b"after the half-close").unwrap();
        assert_eq!(child.expect("GOT"), "after the half-close");
        drop(d);
        child.expect("EOF");
        child.wait_success();
    }
}

/// Roles: a second receiver or sender of a one-way pipe is refused while a
/// live process holds the role (naming that process), and so is a third
/// end of a duplex pipe; once the holder is killed, its end is taken over.
#[test]
fn roles_are_exclusive_until_their_holder_dies() {
    let seg = Seg::new("roles");
    let rx = Receiver::create(&seg.name, 4096).unwrap();
    let mut child = ChildProc::spawn("claim", &seg.name, "receiver");
    assert_eq!(
        child.expect("OUTCOME"),
        format!("taken receiver {}", std::process::id())
    );
    child.wait_success();
    let mut holder = ChildProc::spawn("hold_sender", &seg.name, "");
    holder.expect("ATTACHED");
    match Sender::open(&seg.name) {
        Err(Error::RoleTaken { role, pid, .. }) => {
            assert_eq!((role, pid), (Role::Sender, holder.pid()));
        }
        other => panic!("a second sender attached: {other:?}"),
    }
    holder.kill();
    let tx = Sender::open(&seg.name).expect("the dead sender's role is taken over");
    assert!(tx.is_connected() && rx.is_connected());
    drop((tx, rx));

    let seg = Seg::new("droles");
    let mut holder = ChildProc::spawn("duplex_hold", &seg.name, "");
    let holder_end: usize = holder.expect("ATTACHED").parse().unwrap();
    assert_eq!(holder_end, 0);
    let mut mine = Duplex::open(&seg.name).unwrap();
    assert_eq!(mine.end(), 1);
    match Duplex::open(&seg.name) {
        Err(Error::RoleTaken { pid, .. }) => {
            assert!([std::process::id(), holder.pid()].contains(&pid));
        }
        other => panic!("a third end attached: {other:?}"),
    }
    holder.kill();
    let mut theirs = Duplex::open(&seg.name).expect("the dead end is taken over");
    assert_eq!(theirs.end(), holder_end);
    mine.tx.send_bytes(b"to end 0").unwrap();
    theirs.tx.send_bytes(b"to end 1").unwrap();
    assert_eq!(theirs.rx.recv_bytes().unwrap(), b"to end 0");
    assert_eq!(mine.rx.recv_bytes().unwrap(), b"to end 1");
}

// ---------------------------------------------------------------------------
// End of file

/// A sender that sends N messages and leaves (closing its sender, or ending
/// the process with it still attached): the receiver gets all N, then end of
/// file, whether it reads while the sender runs (N far more than the ring
/// holds) or only after the sender has gone.
#[test]
fn eof_after_the_sender_exits() {
    for how in ["close", "exit"] {
        for after_exit in [false, true] {
            let seg = Seg::new(&format!("eof-{how}{}", u8::from(after_exit)));
            let mut rx = Receiver::create(&seg.name, 4096).unwrap();
            let (n, max) = if after_exit { (20, 100) } else { (3000, 2040) };
            let seed = 9;
            let arg = format!("{how} {n} {seed} 0 {max}");
            let mut child = Some(ChildProc::spawn("send_count", &seg.name, arg));
            child.as_mut().unwrap().expect("ATTACHED");
            if after_exit {
                // Everything is queued and the sender is gone before the
                // receiver looks.
                let mut c = child.take().unwrap();
                assert_eq!(c.expect("SENT"), n.to_string());
                c.wait_success();
                assert_eq!(rx.len(), n as usize);
            }
            let p = Pattern::new(seed, 0, max);
            let mut buf = vec![0; max];
            for seq in 0..n {
                recv_seq(&mut rx, &p, seq, &mut buf);
            }
            assert_eq!(
                rx.recv_bytes_timeout(TIMEOUT),
                Err(RecvError::Disconnected),
                "{how}"
            );
            // End of file stays.
            assert_eq!(rx.try_recv_bytes(), Err(RecvError::Disconnected));
            assert_eq!(rx.poll(TIMEOUT), Err(RecvError::Disconnected));
            assert!(!rx.is_connected());
            // A sender that closed ended its stream; one whose process ended
            // with it still attached did not say so.
            let departed = if how == "close" {
                Departure::Closed
            } else {
                Departure::Died
            };
            assert_eq!(rx.peer_departure(), Some(departed), "{how}");
            if let Some(c) = child {
                c.wait_success();
            }
        }
    }
}

/// A sender killed mid-stream: the receiver gets an intact prefix of its
/// messages (never a torn one), then end of file once the liveness check
/// notices the death, and a new sender takes the role over and goes on after
/// whatever the dead one published. Several senders are killed while the
/// receiver reads as fast as it can, so that the kill lands at different
/// points of a send; one more is killed with the ring full and its successor
/// attaches before the receiver reads on (so it starts after the dead one's
/// queued messages). The last sender leaves normally.
///
/// Every message here is at least 8 bytes and starts with its stream's seed
/// and its sequence number, so the receiver tells the generations apart.
#[test]
fn a_sender_killed_mid_stream_leaves_an_intact_prefix() {
    const KILLED_WHILE_READING: u32 = 5;
    const BEFORE_KILL: u64 = 300;
    let seg = Seg::new("kill");
    let mut rx = Receiver::create(&seg.name, 64 * 1024).unwrap();
    let max = rx.max_message_len();
    let mut buf = vec![0; max];
    let seed = |generation: u32| 1000 + generation;
    // The stream being received: (seed, next sequence number).
    let mut stream = (seed(0), 0u64);
    let mut take = |rx: &mut Receiver, stream: &mut (u32, u64)| -> Result<(), RecvError> {
        let n = rx.recv_bytes_into_timeout(&mut buf, TIMEOUT)?;
        assert!(n >= 8, "a message of {n} bytes after {stream:?}");
        let (s, seq) = tag_of(&buf[..n]);
        if s != stream.0 {
            // The next generation, from its start.
            assert_eq!((s, seq), (stream.0 + 1, 0), "after {stream:?}");
            *stream = (s, 0);
        }
        assert_eq!(seq, stream.1, "stream {s}");
        Pattern::new(s, 8, max).check(seq, &buf[..n]);
        stream.1 += 1;
        Ok(())
    };

    for generation in 0..KILLED_WHILE_READING {
        let mut child = ChildProc::spawn("send_forever", &seg.name, seed(generation));
        child.expect("ATTACHED");
        let received = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&received);
        let killer = std::thread::spawn(move || {
            common::wait_for("messages before the kill", || {
                seen.load(Ordering::Relaxed) >= BEFORE_KILL
            });
            child.kill();
        });
        loop {
            match take(&mut rx, &mut stream) {
                Ok(()) => received.fetch_add(1, Ordering::Relaxed),
                Err(RecvError::Disconnected) => break,
                Err(e) => panic!("{e:?} after {stream:?}"),
            };
        }
        killer.join().unwrap();
        assert_eq!(
            stream.0,
            seed(generation),
            "generation {generation} sent nothing"
        );
        assert!(stream.1 >= BEFORE_KILL);
        assert!(!rx.is_connected());
        assert_eq!(rx.peer_departure(), Some(Departure::Died));
    }

    // Killed with the ring full (the receiver stopped reading); its
    // successor attaches before the receiver reads on, so the receiver
    // never finds the ring both empty and without a sender.
    let generation = KILLED_WHILE_READING;
    let mut child = ChildProc::spawn("send_forever", &seg.name, seed(generation));
    child.expect("ATTACHED");
    for _ in 0..BEFORE_KILL {
        take(&mut rx, &mut stream).unwrap();
    }
    // Asleep on the full ring.
    let waiters = pipe_offset::control(0) + pipe_offset::NOT_FULL_WAITERS;
    common::wait_until_parked(&seg.name, waiters);
    child.kill();
    let n = 200;
    let arg = format!("close {n} {} 8 {max}", seed(generation + 1));
    let mut child = ChildProc::spawn("send_count", &seg.name, arg);
    child.expect("ATTACHED");
    assert!(!rx.is_empty());
    loop {
        match take(&mut rx, &mut stream) {
            Ok(()) => {}
            Err(RecvError::Disconnected) => break,
            Err(e) => panic!("{e:?} after {stream:?}"),
        }
    }
    assert_eq!(stream, (seed(generation + 1), n));
    assert_eq!(rx.peer_departure(), Some(Departure::Closed));
    child.wait_success();
}

// ---------------------------------------------------------------------------
// Lengths, timeouts, attach errors

/// Every call with a message over `max_message_len` fails at once with
/// `TooLarge`, even on a full ring (see `child_too_large`), and even with no
/// receiver attached; a message of exactly the maximum goes through.
#[test]
fn a_message_over_the_maximum_is_refused_at_once() {
    let seg = Seg::new("large");
    let mut rx = Receiver::create(&seg.name, 4096).unwrap();
    let max = rx.max_message_len();
    assert_eq!(max, 2040);
    let mut child = ChildProc::spawn("too_large", &seg.name, "");
    let line = child.expect("REFUSED");
    assert_eq!(line, format!("{max} {}", (4096 - 8) / record_size(64)));
    let filled = (4096 - 8) / record_size(64) as usize;
    assert_eq!(rx.len(), filled);
    for _ in 0..filled {
        assert_eq!(rx.recv_bytes_timeout(TIMEOUT).unwrap(), [9; 64]);
    }
    // Two messages of the maximum length: the second fits only once the
    // first has been taken.
    child.tell("go");
    let p = Pattern::new(77, max, max);
    p.check(0, &rx.recv_bytes_timeout(TIMEOUT).unwrap());
    p.check(1, &rx.read_timeout(TIMEOUT).unwrap().to_vec());
    child.expect("SENT");
    child.wait_success();

    // No receiver: the length is checked first.
    let seg = Seg::new("large-alone");
    let mut tx = Sender::create(&seg.name, 100).unwrap();
    assert_eq!((tx.capacity(), tx.max_message_len()), (104, 40));
    let too_large = Err(SendError::TooLarge { len: 41, max: 40 });
    assert_eq!(tx.try_send_bytes(&[0; 41]), too_large);
    assert_eq!(tx.send_bytes(&[0; 41]), too_large);
    assert_eq!(tx.send_bytes_timeout(&[0; 41], TIMEOUT), too_large);
    // No receiver has come yet: a mailbox takes what fits, then is full.
    assert_eq!(tx.try_send_bytes(&[0; 40]), Ok(()));
    assert_eq!(tx.send_bytes(&[0; 40]), Ok(()));
    assert_eq!(tx.try_send_bytes(&[0; 40]), Err(SendError::Full));
}

/// `_timeout` forms and `poll` time out on an empty pipe with a live sender,
/// and `send_bytes_timeout` on a full pipe with a live receiver; `poll` and
/// blocked sends are woken from the other process; `poll` consumes nothing.
#[test]
fn timeouts_on_an_empty_or_a_full_pipe() {
    let seg = Seg::new("tmo-empty");
    let mut rx = Receiver::create(&seg.name, 4096).unwrap();
    let mut child = ChildProc::spawn("hold_sender", &seg.name, "");
    child.expect("ATTACHED");
    assert!(rx.is_connected());
    let mut buf = [0u8; 128];
    assert_eq!(rx.recv_bytes_timeout(SHORT), Err(RecvError::Timeout));
    assert_eq!(
        rx.recv_bytes_into_timeout(&mut buf, SHORT),
        Err(RecvError::Timeout)
    );
    assert_eq!(rx.read_timeout(SHORT).unwrap_err(), RecvError::Timeout);
    assert_eq!(rx.poll(SHORT), Ok(false));
    assert_eq!(rx.poll(Duration::ZERO), Ok(false));
    assert_eq!(rx.try_recv_bytes(), Err(RecvError::Empty));
    assert_eq!(rx.try_recv_bytes_into(&mut buf), Err(RecvError::Empty));
    assert_eq!(rx.try_read().unwrap_err(), RecvError::Empty);
    assert!(rx.is_empty());
    assert_eq!((rx.len(), rx.queued_bytes()), (0, 0));

    // A poll asleep on the empty pipe is woken by the child's message.
    let call = bounded("poll", move || {
        let r = rx.poll(TIMEOUT);
        (rx, r)
    });
    let waiters = pipe_offset::control(0) + pipe_offset::NOT_EMPTY_WAITERS;
    common::wait_until_parked(&seg.name, waiters);
    child.tell("send 1 100");
    child.expect("SENT");
    let (mut rx, polled) = call.join();
    assert_eq!(polled, Ok(true));
    // Nothing consumed.
    assert_eq!(rx.poll(Duration::ZERO), Ok(true));
    assert_eq!(rx.poll(SHORT), Ok(true));
    assert!(!rx.is_empty());
    assert_eq!((rx.len(), rx.queued_bytes()), (1, 112));
    assert_eq!(rx.recv_bytes_timeout(SHORT), Ok(fixed(1, 100)));
    assert_eq!(rx.poll(SHORT), Ok(false));
    child.wait_success();
    assert_eq!(rx.poll(TIMEOUT), Err(RecvError::Disconnected));

    let seg = Seg::new("tmo-full");
    let mut tx = Sender::create(&seg.name, 4096).unwrap();
    let mut child = ChildProc::spawn("hold_receiver", &seg.name, "");
    child.expect("ATTACHED");
    assert!(tx.is_connected());
    let msg = [5u8; 100];
    let mut sent = 0;
    while tx.try_send_bytes(&msg).is_ok() {
        sent += 1;
    }
    // 112 bytes a record, and room for the next header.
    assert_eq!(sent, (4096 - 8) / 112);
    assert_eq!(tx.len(), sent);
    assert_eq!(tx.try_send_bytes(&msg), Err(SendError::Full));
    assert_eq!(tx.try_reserve(100).unwrap_err(), SendError::Full);
    assert_eq!(tx.send_bytes_timeout(&msg, SHORT), Err(SendError::Timeout));
    assert_eq!(
        tx.reserve_timeout(100, SHORT).unwrap_err(),
        SendError::Timeout
    );
    // A send asleep on the full pipe is woken when the child takes. The
    // next record needs 64 bytes of padding too, so it takes two.
    let call = bounded("send", move || {
        let r = tx.send_bytes_timeout(&msg, TIMEOUT);
        (tx, r)
    });
    let waiters = pipe_offset::control(0) + pipe_offset::NOT_FULL_WAITERS;
    common::wait_until_parked(&seg.name, waiters);
    for _ in 0..2 {
        child.tell("take");
        assert_eq!(child.expect("GOT"), "100");
    }
    let (mut tx, r) = call.join();
    assert_eq!(r, Ok(()));
    assert_eq!(tx.len(), sent - 1);
    // The receiver leaves: a full pipe is then disconnected, not full.
    child.wait_success();
    assert_eq!(
        tx.send_bytes_timeout(&msg, TIMEOUT),
        Err(SendError::Disconnected)
    );
    assert_eq!(tx.try_send_bytes(&msg), Err(SendError::Disconnected));
}

/// The kind of a segment is checked before anything else: a duplex pipe is
/// not a one-way pipe, nor the other way round, and an spsc queue is neither.
#[test]
fn the_wrong_kind_of_segment_is_refused() {
    fn kinds(r: Result<(), Error>) -> (Kind, Kind) {
        match r {
            Err(Error::WrongKind {
                expected, found, ..
            }) => (expected, found),
            other => panic!("expected WrongKind, got {other:?}"),
        }
    }
    let one_way = Seg::new("wk-pipe");
    let duplex = Seg::new("wk-duplex");
    let queue = Seg::new("wk-spsc");
    let _tx = Sender::create(&one_way.name, 4096).unwrap();
    let _end = Duplex::create(&duplex.name, 4096).unwrap();
    let _q = shmkit::spsc::Sender::<u64>::create(&queue.name, 16).unwrap();

    let d = &duplex.name;
    assert_eq!(
        kinds(Receiver::open(d).map(drop)),
        (Kind::Pipe, Kind::Duplex)
    );
    assert_eq!(kinds(Sender::open(d).map(drop)), (Kind::Pipe, Kind::Duplex));
    let r = Receiver::open_or_create(d, 4096).map(drop);
    assert_eq!(kinds(r), (Kind::Pipe, Kind::Duplex));
    let p = &one_way.name;
    assert_eq!(kinds(Duplex::open(p).map(drop)), (Kind::Duplex, Kind::Pipe));
    let r = Duplex::open_or_create(p, 4096).map(drop);
    assert_eq!(kinds(r), (Kind::Duplex, Kind::Pipe));
    let r = shmkit::spsc::Receiver::<u64>::open(p).map(drop);
    assert_eq!(kinds(r), (Kind::Spsc, Kind::Pipe));
    let q = &queue.name;
    assert_eq!(kinds(Receiver::open(q).map(drop)), (Kind::Pipe, Kind::Spsc));
    assert_eq!(kinds(Sender::open(q).map(drop)), (Kind::Pipe, Kind::Spsc));
    assert_eq!(kinds(Duplex::open(q).map(drop)), (Kind::Duplex, Kind::Spsc));
}

// ---------------------------------------------------------------------------
// Corruption

/// A hostile process rewrites the header of the record at the receiver's
/// position: every receiving call reports `Corrupted` at that position with
/// the reason, consumes nothing and panics nowhere; the pipe stays at that
/// record, and delivers it once the header is repaired.
#[test]
fn a_corrupted_record_is_reported_not_followed() {
    // A 64-byte ring: messages of up to 24 bytes. The receiver is at
    // position 40 when the hostile write happens, and an honest 8-byte
    // message is there.
    let capacity = 64;
    let data = pipe_offset::data(1, capacity, 0);
    let at = 40;
    let honest = header(at, MSG, 8);
    /// Words to write at data offsets, where the receiver stops, and a word
    /// of the reason it gives.
    type Case<'a> = (&'a [(u64, u64)], u64, &'a str);
    let cases: &[Case<'_>] = &[
        (&[(at, header(at + 8, MSG, 8))], at, "stamp"),
        (&[(at, header(at + 64, MSG, 8))], at, "stamp"),
        (&[(at, u64::MAX)], at, "stamp"),
        (&[(at, header(at, MSG, 32))], at, "maximum"),
        (&[(at, header(at, MSG, u32::MAX.into()))], at, "maximum"),
        (&[(at, header(at, MSG, 24))], at, "past the end"),
        (&[(at, header(at, PAD, 8))], at, "padding"),
        (&[(at, header(at, 0, 8))], at, "kind"),
        (&[(at, header(at, 15, 8))], at, "kind"),
        // Valid padding, then at offset 0 the header of the first message,
        // a lap old: its stamp gives it away.
        (&[(at, header(at, PAD, 16))], 64, "stamp"),
        // Valid padding, then padding again at offset 0.
        (
            &[(at, header(at, PAD, 16)), (0, header(64, PAD, 56))],
            64,
            "padding",
        ),
    ];
    for (i, &(pokes, stuck_at, why)) in cases.iter().enumerate() {
        let seg = Seg::new(&format!("bad{i}"));
        let mut rx = Receiver::create(&seg.name, capacity).unwrap();
        let field = read_u64_at(&seg.name, pipe_offset::DATA_OFFSET_FIELD);
        assert_eq!(field, data as u64, "the test's copy of the layout is stale");
        let mut child = ChildProc::spawn("hold_sender", &seg.name, "");
        child.expect("ATTACHED");
        // 32 + 8 bytes of records take both sides to position 40.
        for (seq, len) in [(0, 24), (1, 0)] {
            child.tell(&format!("send {seq} {len}"));
            child.expect("SENT");
            assert_eq!(rx.recv_bytes_timeout(TIMEOUT), Ok(fixed(seq, len)));
        }
        child.tell("send 2 8");
        child.expect("SENT");
        assert_eq!(head_pos(&seg.name), at);
        assert_eq!(read_u64_at(&seg.name, data + at as usize), honest);
        for &(off, v) in pokes {
            child.tell(&format!("poke {} {v}", data + off as usize));
            child.expect("POKED");
        }
        let err = rx.recv_bytes_timeout(TIMEOUT).unwrap_err();
        match &err {
            RecvError::Corrupted { position, reason } => {
                assert_eq!(*position, stuck_at, "case {i}: {reason}");
                assert!(reason.contains(why), "case {i}: {reason}");
            }
            other => panic!("case {i}: {other:?}"),
        }
        // Stuck there, whichever call asks.
        let mut buf = [0u8; 64];
        assert_eq!(rx.try_recv_bytes(), Err(err.clone()));
        assert_eq!(rx.recv_bytes(), Err(err.clone()));
        assert_eq!(rx.try_recv_bytes_into(&mut buf), Err(err.clone()));
        assert_eq!(rx.recv_bytes_into(&mut buf), Err(err.clone()));
        assert_eq!(rx.try_read().unwrap_err(), err);
        assert_eq!(rx.read().unwrap_err(), err);
        assert_eq!(rx.poll(Duration::ZERO), Err(err.clone()));
        assert!(rx.is_empty());
        assert_eq!(head_pos(&seg.name), at, "case {i}: consumed");
        if stuck_at == at {
            // Nothing was read through the bad header: repaired, the
            // record is delivered.
            child.tell(&format!("poke {} {honest}", data + at as usize));
            child.expect("POKED");
            assert_eq!(rx.recv_bytes_timeout(TIMEOUT), Ok(fixed(2, 8)));
        }
        child.wait_success();
    }
}

/// Hostile positions: a misaligned `head` makes attaching a receiver fail
/// with `Error::Corrupted`; a `tail` that is misaligned or far ahead is
/// ignored by a sender that attaches (it scans from `head`), so messages go
/// on flowing.
#[test]
fn hostile_positions_are_refused_or_ignored() {
    let seg = Seg::new("badpos");
    let ctl = pipe_offset::control(0);
    let rx = Receiver::create(&seg.name, 4096).unwrap();
    let mut child = ChildProc::spawn("hold_sender", &seg.name, "");
    child.expect("ATTACHED");
    child.tell("send 0 24");
    child.expect("SENT");
    drop(rx);
    let poke = |child: &mut ChildProc, at: usize, v: u64| {
        child.tell(&format!("poke {at} {v}"));
        child.expect("POKED");
    };
    poke(&mut child, ctl + pipe_offset::HEAD_POS, 41);
    match Receiver::open(&seg.name) {
        Err(Error::Corrupted { reason, .. }) => assert!(reason.contains("41"), "{reason}"),
        other => panic!("attached at a misaligned head: {other:?}"),
    }
    poke(&mut child, ctl + pipe_offset::HEAD_POS, 0);
    let mut rx = Receiver::open(&seg.name).unwrap();
    assert_eq!(rx.recv_bytes_timeout(TIMEOUT), Ok(fixed(0, 24)));
    for (seq, tail) in [(1, 12_345), (2, 1 << 40), (3, 0)] {
        poke(&mut child, ctl + pipe_offset::TAIL_POS, tail);
        child.tell("reopen");
        child.expect("REOPENED");
        child.tell(&format!("send {seq} 16"));
        child.expect("SENT");
        assert_eq!(
            rx.recv_bytes_timeout(TIMEOUT),
            Ok(fixed(seq, 16)),
            "tail {tail}"
        );
    }
    child.wait_success();
}

// ---------------------------------------------------------------------------
// serde

#[cfg(feature = "serde")]
mod serde_tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Reading {
        id: u64,
        sensor: String,
        samples: Vec<f64>,
        tags: Vec<String>,
        note: Option<String>,
        raw: Vec<u8>,
    }

    /// Value `i`: strings and vectors of lengths that vary with `i`.
    fn reading(i: u64) -> Reading {
        Reading {
            id: i,
            sensor: format!("sensor-{i}-{}", "x".repeat((i % 50) as usize)),
            samples: (0..i % 40).map(|k| k as f64 * 0.5 - i as f64).collect(),
            tags: (0..i % 4).map(|k| format!("tag{k}")).collect(),
            note: (i % 3 == 0).then(|| format!("note {i}")),
            raw: fixed(i, (i % 300) as usize),
        }
    }

    const COUNT: u64 = 500;

    /// Sends `reading(0..COUNT)`, two messages that are not a `Reading` in
    /// postcard (a varint that never ends, and nothing at all), checks that
    /// a value too large for the pipe is refused, sends `reading(COUNT)`,
    /// and closes.
    pub(super) fn child_serde_send(name: &str) {
        let mut tx = Sender::open(name).unwrap();
        say("ATTACHED", "");
        for i in 0..COUNT {
            tx.send(&reading(i)).unwrap();
        }
        tx.send_bytes(&[0xff; 12]).unwrap();
        tx.send_bytes(&[]).unwrap();
        let max = tx.max_message_len();
        let huge = Reading {
            raw: vec![1; max],
            ..reading(1)
        };
        match tx.send(&huge) {
            Err(SendError::TooLarge { len, max: m }) => assert!(m == max && len > max),
            other => panic!("a value over the maximum: {other:?}"),
        }
        tx.send(&reading(COUNT)).unwrap();
        tx.close();
    }

    /// `send(&T)` / `recv::<T>()` of a struct with strings and vectors
    /// between processes; a message that is not valid postcard for `T` is
    /// `RecvError::Decode` and is consumed; a value over the maximum is
    /// `TooLarge` (in the child).
    #[test]
    fn serde_values_between_processes() {
        let seg = Seg::new("serde");
        let mut rx = Receiver::create(&seg.name, 4096).unwrap();
        let mut child = ChildProc::spawn("serde_send", &seg.name, "");
        child.expect("ATTACHED");
        for i in 0..COUNT {
            let got: Reading = match i % 3 {
                0 => rx.recv().unwrap(),
                1 => rx.recv_timeout(TIMEOUT).unwrap(),
                _ => {
                    assert_eq!(rx.poll(TIMEOUT), Ok(true));
                    rx.try_recv().unwrap()
                }
            };
            assert_eq!(got, reading(i));
        }
        for _ in 0..2 {
            match rx.recv::<Reading>() {
                Err(RecvError::Decode(_)) => {}
                other => panic!("not a Reading, decoded as {other:?}"),
            }
        }
        assert_eq!(rx.recv::<Reading>(), Ok(reading(COUNT)));
        assert_eq!(rx.recv::<Reading>(), Err(RecvError::Disconnected));
        child.wait_success();
    }
}
