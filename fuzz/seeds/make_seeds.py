#!/usr/bin/env python3
"""Writes the committed seed inputs of the fuzz targets: seeds/open_segment/
and seeds/pipe_decode/ (the second half of this file).

Run: python3 fuzz/seeds/make_seeds.py. The open_segment input format is
described at the top of fuzz_targets/open_segment.rs. The "seeded" inputs
only name a capacity and patches, so they survive layout changes; the raw_*
inputs contain a whole segment file and encode the current layout
(CONTROL_LEN and the group geometry below): when the spsc layout changes,
update them and re-run this script, or the raw seeds stop getting past
validation (the fuzzer still runs, less deeply).
"""
import struct, os
def fnv(b):
    h=0xcbf29ce484222325
    for x in b:
        h^=x; h=(h*0x100000001b3)&0xffffffffffffffff
    return h
CONTROL_LEN = 512  # size_of::<spsc::ring::Control>()

def segment(tn, size, align, cap):
    # spsc::ring::Geometry: one stamp per group, a group per 64-byte line.
    words = (size+7)//8
    if words == 0: per, group_words = 1, 1
    elif words < 8: per, group_words = 7//words, 8
    else: per, group_words = 1, 1 + words
    data = 512 + CONTROL_LEN
    total = data + ((cap+per-1)//per)*group_words*8
    ident = struct.pack('<QIIIIQQQQQIIQ', int.from_bytes(b'shmkit\0\0','little'), 1, 1, size, align,
                        fnv(tn), cap, total, 512, data, 1, 0, 0) + tn.ljust(40, b'\0')
    assert len(ident)==120
    ident += struct.pack('<Q', fnv(ident))
    f = bytearray(total); f[:128]=ident; f[128:132]=struct.pack('<I',1)
    return bytes(f)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'open_segment') + '/'
# op byte: bits0-2 op, bit3 sender, bits4-7 param
S=lambda op,p=0: op|8|(p<<4)
R=lambda op,p=0: op|(p<<4)
pair_ops = bytes([S(0),S(0),S(1,5),S(6),R(4),R(0),R(1,3),S(2),S(3),R(2),R(3),S(7),R(7),S(0),R(5),R(6),S(4),S(5),R(1,15),R(0)])
def seeded(flags, cap_sel, ops, patches=b''):
    return bytes([flags, cap_sel, len(ops)]) + ops + patches
open(out+'pair_u64_cap4','wb').write(seeded(4|8|1, 3, pair_ops))
open(out+'pair_odd_cap3','wb').write(seeded(4|8|2, 2, pair_ops))
open(out+'pair_u64_cap1','wb').write(seeded(4|8, 0, pair_ops))
# hostile control words: tail = head + 1000 (role: sender), then an empty slice send
open(out+'sender_tail_ahead','wb').write(seeded(4|1, 3, bytes([S(1,0),S(0),S(1,3),S(6),S(4)]),
     bytes([2, 0]) + struct.pack('<Q', 1000) + bytes([3, 1]) + struct.pack('<Q', 0)))
# stale stamps that look published, receiver
open(out+'receiver_stamps','wb').write(seeded(4, 3, bytes([R(0),R(1,4),R(4),R(5),R(6),R(7),R(0)]),
     bytes([4, 0, 1]) + struct.pack('<Q', 0) + bytes([4, 1, 1]) + struct.pack('<Q', 1)))
# raw: a valid file as it is
ops1 = bytes([0,1,4,5,6,0x12,7])
open(out+'raw_u64_cap4','wb').write(bytes([0, 0, len(ops1)]) + ops1 + segment(b'u64', 8, 8, 4))
open(out+'raw_odd_cap2_sender','wb').write(bytes([3, 0, len(ops1)]) + ops1 + segment(b'[u8; 13]', 13, 1, 2))

# ---------------------------------------------------------------------------
# pipe_decode: the input format is described at the top of
# fuzz_targets/pipe_decode.rs. These name a capacity, honest traffic, control
# words and patches, so they survive layout changes, except `raw_*`, whose
# ring bytes encode the record format (header: bits 0..32 length, 32..36
# kind, 36..64 bits 3..31 of the position).
pipe = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pipe_decode') + '/'
os.makedirs(pipe, exist_ok=True)
CAPS = [64, 72, 80, 128, 136, 256, 1024, 4096]
HOLD, RAW = 8, 16
KEEP = (0, 0)
def rec_header(pos, kind, ln):
    return ln | kind << 32 | ((pos >> 3) & ((1 << 28) - 1)) << 36
def send(n): return n
def recv(): return 0x8000
# op byte: bits 0-3 operation, bits 4-7 parameter. Receiving: 0 try_recv_bytes,
# 1 into a param-byte buffer, 2 into a max buffer, 3 read grant, 4 poll,
# 5 counters, 6 recv_bytes_timeout, 7 reattach; sending (+8): 0 small,
# 1 small via a grant, 2 near max, 3 near max via a grant, 4/5 over max,
# 6 empty, 7 reattach.
def op(o, p=0): return o | p << 4
all_ops = bytes([op(8, 3), op(9, 5), op(10), op(11, 2), op(12), op(13), op(14), op(5),
                 op(0), op(1, 2), op(1, 15), op(2), op(3), op(3, 3), op(4), op(6), op(15),
                 op(8, 1), op(7), op(2), op(5)])
def pipe_input(flags, traffic=(), controls=(KEEP,) * 4, ops=all_ops, rest=b''):
    b = bytes([flags, len(traffic)]) + b''.join(struct.pack('<H', t) for t in traffic)
    for sel, v in controls:
        b += bytes([sel]) + struct.pack('<Q', v)
    return b + bytes([len(ops)]) + ops + rest
def cap_sel(cap): return CAPS.index(cap)
wrap = (send(24), recv(), send(0), recv(), send(8), send(16), recv(), send(24), recv())
# Honest (model-checked): traffic that wraps with padding, then every call.
open(pipe+'honest_cap64','wb').write(pipe_input(cap_sel(64) | HOLD, wrap))
open(pipe+'honest_cap136','wb').write(pipe_input(cap_sel(136) | HOLD, (send(60), send(7), recv(), send(60), send(1))))
open(pipe+'honest_no_sender','wb').write(pipe_input(cap_sel(256), (send(100), send(0), send(120))))
open(pipe+'honest_cap4096','wb').write(pipe_input(cap_sel(4096) | HOLD, tuple(send(n) for n in (2040, 1, 900, 2040)) + (recv(), recv(), send(2040))))
# Hostile positions: head far ahead, tail misaligned; head near 2^63; head
# misaligned (receiver and sender attach fail as Corrupted).
open(pipe+'head_ahead','wb').write(pipe_input(cap_sel(80) | HOLD, wrap, ((3, 5), (1, 12345), KEEP, KEEP)))
open(pipe+'head_2_63','wb').write(pipe_input(cap_sel(128) | HOLD, wrap, ((6, 0), (4, 8), (1, 2**64 - 1), (1, 7))))
open(pipe+'head_misaligned','wb').write(pipe_input(cap_sel(64), wrap, ((1, 41), KEEP, KEEP, KEEP)))
# Plausible headers (patch kind 0: offset u16, laps i8, kind, length selector,
# small, [u32]): padding exactly to the end, a message of the maximum, one
# running past the end, a stale lap, an unknown kind; then a zero word and raw
# bytes; then the events' words.
hdr = lambda off_word, laps, kind, sel, small, extra=b'': bytes([0]) + struct.pack('<H', off_word) + bytes([laps & 0xff, kind, sel, small]) + extra
patches = (hdr(5, 0, 1, 3, 0) + hdr(0, 1, 0, 1, 0) + hdr(2, 0, 0, 2, 8) + hdr(3, 0xff, 0, 0, 4)
           + hdr(4, 0, 9, 0, 1) + bytes([2]) + struct.pack('<H', 6) + bytes([3]) + struct.pack('<H', 20)
           + bytes([4]) + b'\xde\xad\xbe\xef' + bytes([4, 1]) + struct.pack('<I', 3) + bytes([4, 3]) + struct.pack('<I', 0xffffffff))
open(pipe+'headers_cap64','wb').write(pipe_input(cap_sel(64) | HOLD, wrap, rest=patches))
open(pipe+'headers_cap256','wb').write(pipe_input(cap_sel(256), (send(100), recv(), send(50)), rest=patches))
# Raw ring bytes from position 0: a message, padding to the end of a 128-byte
# ring, and a second lap's message at offset 0 that the padding leads to.
def raw_ring(cap):
    r = bytearray(cap)
    r[0:8] = struct.pack('<Q', rec_header(cap, 1, 16)); r[8:24] = b'second lap msg!!'
    r[24:32] = b'\0' * 8
    r[40:48] = struct.pack('<Q', rec_header(40, 1, 3)); r[48:51] = b'abc'
    r[56:64] = struct.pack('<Q', rec_header(56, 2, cap - 56 - 8))
    return bytes(r)
open(pipe+'raw_cap128','wb').write(pipe_input(cap_sel(128) | HOLD | RAW, (), ((1, 40), (1, 40), (1, 0), (1, 2)), rest=raw_ring(128)))
open(pipe+'raw_cap128_no_sender','wb').write(pipe_input(cap_sel(128) | RAW, (), ((1, 40), (1, 1 << 40), KEEP, KEEP), rest=raw_ring(128)))
