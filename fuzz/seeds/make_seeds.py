#!/usr/bin/env python3
"""Writes the committed seed inputs of the open_segment fuzz target.

Run: python3 fuzz/seeds/make_seeds.py. The input format is described at the
top of fuzz_targets/open_segment.rs. The "seeded" inputs only name a capacity
and patches, so they survive layout changes; the raw_* inputs contain a whole
segment file and encode the current layout (CONTROL_LEN and the group
geometry below): when the spsc layout changes, update them and re-run this
script, or the
raw seeds stop getting past validation (the fuzzer still runs, less deeply).
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
