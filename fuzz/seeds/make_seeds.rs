//! Writes the committed seed inputs of the fuzz targets: `seeds/open_segment/`,
//! `seeds/pipe_decode/` and `seeds/map_segment/`.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//! ```
//!
//! The output depends on nothing but this file, `shmkit::layout` and the
//! element layout descriptions of `shmkit::element` (no pids, clocks or
//! randomness), so running it again reproduces the committed
//! files byte for byte; after a layout change it rewrites the seeds that
//! encode the layout. The input formats are described at the top of each
//! target (`fuzz_targets/open_segment.rs`, `fuzz_targets/pipe_decode.rs`).
//! Numbers in an input are little-endian; bytes that become segment memory
//! (raw segment files, raw ring bytes) are native-endian, as in a segment.

use std::fs;
use std::mem::{align_of, size_of};
use std::path::Path;

use shmkit::element::{Description, Element};
use shmkit::layout::{self, header, pipe};
use shmkit::Kind;

fn main() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (dir, files) in [
        ("open_segment", open_segment()),
        ("pipe_decode", pipe_decode()),
        ("map_segment", map_segment()),
    ] {
        let dir = seeds.join(dir);
        fs::create_dir_all(&dir).expect("create the seed directory");
        for (name, bytes) in files {
            fs::write(dir.join(name), bytes).expect("write a seed");
        }
    }
}

/// A little-endian `u16` of an input.
fn h(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}

/// A little-endian `u32` of an input.
fn w(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// A little-endian `u64` of an input.
fn q(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

/// Writes `v` at `at` of segment memory.
fn put(mem: &mut [u8], at: usize, v: &[u8]) {
    mem[at..at + v.len()].copy_from_slice(v);
}

// ---------------------------------------------------------------------------
// open_segment

/// An operation byte on the sender (pair mode): bits 0-2 the operation, bit
/// 3 set, bits 4-7 the parameter.
fn s(op: u8, param: u8) -> u8 {
    op | 8 | param << 4
}

/// An operation byte on the receiver.
fn r(op: u8, param: u8) -> u8 {
    op | param << 4
}

/// Flag bits of an open_segment input.
const SENDER: u8 = 1;
const ODD: u8 = 2;
const SEEDED: u8 = 4;
const PAIR: u8 = 8;

/// A seeded input: a capacity selector, operations, then patches.
fn seeded(flags: u8, cap_sel: u8, ops: &[u8], patches: &[u8]) -> Vec<u8> {
    [&[flags, cap_sel, ops.len() as u8], ops, patches].concat()
}

/// A valid, unattached spsc segment file of `T` items, as a process with pid
/// 1 and uid 0 would create it at time 0 (naming the type `type_name`).
fn segment<T: Element>(type_name: &str, capacity: u64) -> Vec<u8> {
    let (size, align) = (size_of::<T>() as u32, align_of::<T>() as u32);
    let at = layout::sizes(Kind::Spsc, capacity, size).expect("a possible spsc queue");
    let mut f = vec![0u8; at.total_len as usize];
    put(&mut f, header::MAGIC, &layout::MAGIC.to_ne_bytes());
    put(
        &mut f,
        header::VERSION,
        &layout::LAYOUT_VERSION.to_ne_bytes(),
    );
    put(&mut f, header::KIND, &Kind::Spsc.code().to_ne_bytes());
    put(&mut f, header::ELEM_SIZE, &size.to_ne_bytes());
    put(&mut f, header::ELEM_ALIGN, &align.to_ne_bytes());
    let description = Description::of::<T>().expect("a described element type");
    let text = description.as_str();
    let fingerprint = header::fingerprint(text);
    put(&mut f, header::FINGERPRINT, &fingerprint.to_ne_bytes());
    put(&mut f, header::CAPACITY, &capacity.to_ne_bytes());
    put(&mut f, header::TOTAL_LEN, &at.total_len.to_ne_bytes());
    put(
        &mut f,
        header::CONTROL_OFFSET,
        &at.control_offset.to_ne_bytes(),
    );
    put(&mut f, header::DATA_OFFSET, &at.data_offset.to_ne_bytes());
    put(&mut f, header::CREATOR_PID, &1u32.to_ne_bytes());
    put(
        &mut f,
        header::ELEM_LAYOUT_LEN,
        &(text.len() as u32).to_ne_bytes(),
    );
    put(&mut f, header::ELEM_LAYOUT_HASH, &fingerprint.to_ne_bytes());
    assert!(type_name.len() <= header::TYPE_NAME_LEN);
    put(&mut f, header::TYPE_NAME, type_name.as_bytes());
    assert!(text.len() <= header::ELEM_LAYOUT_ROOM);
    put(&mut f, header::ELEM_LAYOUT, text.as_bytes());
    let checksum = header::checksum(&f);
    put(&mut f, header::CHECKSUM, &checksum.to_ne_bytes());
    put(&mut f, header::STATE, &layout::STATE_READY.to_ne_bytes());
    f
}

fn open_segment() -> Vec<(&'static str, Vec<u8>)> {
    let pair_ops = [
        s(0, 0),
        s(0, 0),
        s(1, 5),
        s(6, 0),
        r(4, 0),
        r(0, 0),
        r(1, 3),
        s(2, 0),
        s(3, 0),
        r(2, 0),
        r(3, 0),
        s(7, 0),
        r(7, 0),
        s(0, 0),
        r(5, 0),
        r(6, 0),
        s(4, 0),
        s(5, 0),
        r(1, 15),
        r(0, 0),
    ];
    // Raw inputs: a valid file as it is.
    let ops1 = [0, 1, 4, 5, 6, 0x12, 7];
    let raw = |flags: u8, file: Vec<u8>| [&[flags, 0, ops1.len() as u8], &ops1[..], &file].concat();
    vec![
        (
            "pair_u64_cap4",
            seeded(SEEDED | PAIR | SENDER, 3, &pair_ops, &[]),
        ),
        (
            "pair_odd_cap3",
            seeded(SEEDED | PAIR | ODD, 2, &pair_ops, &[]),
        ),
        ("pair_u64_cap1", seeded(SEEDED | PAIR, 0, &pair_ops, &[])),
        // Hostile control words: tail = 1000 (raw), head = 0 (near 0), then
        // an empty slice send.
        (
            "sender_tail_ahead",
            seeded(
                SEEDED | SENDER,
                3,
                &[s(1, 0), s(0, 0), s(1, 3), s(6, 0), s(4, 0)],
                &[&[2, 0][..], &q(1000), &[3, 1], &q(0)].concat(),
            ),
        ),
        // Stale stamps that look published, receiver: group 0's stamp near
        // 0, group 1's near 0 plus one.
        (
            "receiver_stamps",
            seeded(
                SEEDED,
                3,
                &[
                    r(0, 0),
                    r(1, 4),
                    r(4, 0),
                    r(5, 0),
                    r(6, 0),
                    r(7, 0),
                    r(0, 0),
                ],
                &[&[4, 0, 1][..], &q(0), &[4, 1, 1], &q(1)].concat(),
            ),
        ),
        // A file one page longer, and one page shorter, than its header
        // says (patch kind 8), the checksum kept.
        (
            "pair_one_page_more",
            seeded(SEEDED | PAIR | SENDER, 9, &pair_ops, &[8, 0]),
        ),
        (
            "receiver_one_page_less",
            seeded(SEEDED, 9, &[r(0, 0), r(4, 0), r(7, 0)], &[8, 0x80]),
        ),
        ("raw_u64_cap4", raw(0, segment::<u64>("u64", 4))),
        (
            "raw_odd_cap2_sender",
            raw(SENDER | ODD, segment::<[u8; 13]>("[u8; 13]", 2)),
        ),
    ]
}

// ---------------------------------------------------------------------------
// pipe_decode

/// Ring capacities an input can choose (`CAPACITIES` of the target).
const CAPS: [usize; 8] = [64, 72, 80, 128, 136, 256, 1024, 4096];
/// Flag bits of a pipe_decode input.
const HOLD: u8 = 8;
const RAW: u8 = 16;
/// A control word selector that keeps the word.
const KEEP: (u8, u64) = (0, 0);

/// The capacity selector of `cap`.
fn cap_sel(cap: usize) -> u8 {
    CAPS.iter()
        .position(|&c| c == cap)
        .expect("a listed capacity") as u8
}

/// Honest traffic: send an `n`-byte message, or receive one.
fn send(n: u16) -> u16 {
    n
}
fn recv() -> u16 {
    0x8000
}

/// An operation byte: bits 0-3 the operation, bits 4-7 the parameter.
/// Receiving: 0 try_recv_bytes, 1 into a param-byte buffer, 2 into a max
/// buffer, 3 read grant, 4 poll, 5 counters, 6 recv_bytes_timeout, 7
/// reattach; sending (+8): 0 small, 1 small via a grant, 2 near max, 3 near
/// max via a grant, 4/5 over max, 6 empty, 7 reattach.
fn op(o: u8, param: u8) -> u8 {
    o | param << 4
}

fn pipe_input(
    flags: u8,
    traffic: &[u16],
    controls: [(u8, u64); 4],
    ops: &[u8],
    rest: &[u8],
) -> Vec<u8> {
    let mut b = vec![flags, traffic.len() as u8];
    for &t in traffic {
        b.extend(h(t));
    }
    for (sel, v) in controls {
        b.push(sel);
        b.extend(q(v));
    }
    b.push(ops.len() as u8);
    b.extend(ops);
    b.extend(rest);
    b
}

/// A plausible-header patch (kind 0): the word's offset, laps from head's,
/// a kind, a length selector, a small number, and what the selector reads.
fn hdr(off_word: u16, laps: i8, kind: u8, sel: u8, small: u8) -> Vec<u8> {
    [&[0][..], &h(off_word), &[laps as u8, kind, sel, small]].concat()
}

/// Raw ring bytes from position 0 of a `cap`-byte ring: at offset 0 a
/// second lap's message, then a zero header; at position 40 a message, and
/// padding from there to the end, which leads to offset 0.
fn raw_ring(cap: usize) -> Vec<u8> {
    let mut ring = vec![0u8; cap];
    let lap2 = b"second lap msg!!";
    let first = pipe::record_header(cap as u64, pipe::MSG, lap2.len() as u64);
    put(&mut ring, 0, &first.to_ne_bytes());
    put(&mut ring, 8, lap2);
    // The word after it stays zero: nothing published there yet.
    let at = 40;
    put(
        &mut ring,
        at,
        &pipe::record_header(at as u64, pipe::MSG, 3).to_ne_bytes(),
    );
    put(&mut ring, at + 8, b"abc");
    let pad = at + pipe::record_size(3) as usize;
    let pad_len = (cap - pad - 8) as u64;
    put(
        &mut ring,
        pad,
        &pipe::record_header(pad as u64, pipe::PAD, pad_len).to_ne_bytes(),
    );
    ring
}

fn pipe_decode() -> Vec<(&'static str, Vec<u8>)> {
    let all_ops = [
        op(8, 3),
        op(9, 5),
        op(10, 0),
        op(11, 2),
        op(12, 0),
        op(13, 0),
        op(14, 0),
        op(5, 0),
        op(0, 0),
        op(1, 2),
        op(1, 15),
        op(2, 0),
        op(3, 0),
        op(3, 3),
        op(4, 0),
        op(6, 0),
        op(15, 0),
        op(8, 1),
        op(7, 0),
        op(2, 0),
        op(5, 0),
    ];
    let keep = [KEEP; 4];
    let wrap = [
        send(24),
        recv(),
        send(0),
        recv(),
        send(8),
        send(16),
        recv(),
        send(24),
        recv(),
    ];
    // Plausible headers: padding exactly to the end, a message of the
    // maximum, one running past the end, a stale lap, an unknown kind; then
    // a zero word and raw bytes; then the events' words.
    let patches = [
        hdr(5, 0, 1, 3, 0),
        hdr(0, 1, 0, 1, 0),
        hdr(2, 0, 0, 2, 8),
        hdr(3, -1, 0, 0, 4),
        hdr(4, 0, 9, 0, 1),
        [&[2][..], &h(6), &[3], &h(20), &[4], b"\xde\xad\xbe\xef"].concat(),
        [&[4, 1][..], &w(3), &[4, 3], &w(0xffff_ffff)].concat(),
    ]
    .concat();
    let input =
        |flags, traffic: &[u16], controls| pipe_input(flags, traffic, controls, &all_ops, &[]);
    vec![
        // Honest (model-checked): traffic that wraps with padding, then
        // every call.
        ("honest_cap64", input(cap_sel(64) | HOLD, &wrap, keep)),
        (
            "honest_cap136",
            input(
                cap_sel(136) | HOLD,
                &[send(60), send(7), recv(), send(60), send(1)],
                keep,
            ),
        ),
        (
            "honest_no_sender",
            input(cap_sel(256), &[send(100), send(0), send(120)], keep),
        ),
        (
            "honest_cap4096",
            input(
                cap_sel(4096) | HOLD,
                &[
                    send(2040),
                    send(1),
                    send(900),
                    send(2040),
                    recv(),
                    recv(),
                    send(2040),
                ],
                keep,
            ),
        ),
        // Hostile positions: head far ahead, tail misaligned; head near
        // 2^63; head misaligned (receiver and sender attach fail as
        // Corrupted).
        (
            "head_ahead",
            input(cap_sel(80) | HOLD, &wrap, [(3, 5), (1, 12345), KEEP, KEEP]),
        ),
        (
            "head_2_63",
            input(
                cap_sel(128) | HOLD,
                &wrap,
                [(6, 0), (4, 8), (1, u64::MAX), (1, 7)],
            ),
        ),
        (
            "head_misaligned",
            input(cap_sel(64), &wrap, [(1, 41), KEEP, KEEP, KEEP]),
        ),
        (
            "headers_cap64",
            pipe_input(cap_sel(64) | HOLD, &wrap, keep, &all_ops, &patches),
        ),
        (
            "headers_cap256",
            pipe_input(
                cap_sel(256),
                &[send(100), recv(), send(50)],
                keep,
                &all_ops,
                &patches,
            ),
        ),
        (
            "raw_cap128",
            pipe_input(
                cap_sel(128) | HOLD | RAW,
                &[],
                [(1, 40), (1, 40), (1, 0), (1, 2)],
                &all_ops,
                &raw_ring(128),
            ),
        ),
        (
            "raw_cap128_no_sender",
            pipe_input(
                cap_sel(128) | RAW,
                &[],
                [(1, 40), (1, 1 << 40), KEEP, KEEP],
                &all_ops,
                &raw_ring(128),
            ),
        ),
    ]
}

// ---------------------------------------------------------------------------
// map_segment

/// A map_segment input: flags, capacity selector, entries, operations (two
/// bytes each), then patches (a word index into the control block and data
/// region, then the word).
fn map_input(flags: u8, cap_sel: u8, fill: u8, ops: &[[u8; 2]], patches: &[(u16, u64)]) -> Vec<u8> {
    let mut v = vec![flags, cap_sel, fill, ops.len() as u8];
    v.extend(ops.iter().flatten());
    for &(at, word) in patches {
        v.extend(h(at));
        v.extend(word.to_ne_bytes());
    }
    v
}

fn map_segment() -> Vec<(&'static str, Vec<u8>)> {
    use layout::map as m;
    let word = |off: usize| (off / 8) as u16;
    // Operations touching keys 0..8: get, insert, remove, update, insert if
    // absent, iterate, contains, clear.
    let ops: Vec<[u8; 2]> = (0..16u8).map(|i| [i % 8, i % 9]).collect();
    // The first slot's meta and record header of a map of capacity 3
    // (8 slots) of u64 keys and values, in words from the control block.
    let slots = m::CONTROL_LEN;
    vec![
        // Honest: a typed map of capacity 3, 2 entries.
        ("typed_honest", map_input(0, 2, 2, &ops, &[])),
        // A forged seed, counts and a stripe lock word naming nobody.
        (
            "typed_forged_control",
            map_input(
                2,
                2,
                3,
                &ops,
                &[
                    (word(m::SEED), 0xdead_beef),
                    (word(m::COUNTS), u64::MAX),
                    (word(m::LOCKS + m::LOCK_OWNER), 0x4000_0001),
                ],
            ),
        ),
        // Slot garbage: a claim naming no stripe and the largest hint, a
        // seq, a record header with lengths over the maxima.
        (
            "bytes_forged_slots",
            map_input(
                1,
                3,
                5,
                &ops,
                &[
                    (word(slots), 0xffff_ffff_ffff_ffff),
                    (word(slots + 8), 7),
                    (word(slots + 16), 0xffff_ffff_ffff_ff01),
                    (word(m::MAX_VALUE), 1 << 40),
                ],
            ),
        ),
    ]
}
