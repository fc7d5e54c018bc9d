//! Unit tests (heap-backed; also run under Miri) and loom models of the
//! MPMC queue protocol in [`super`].
//!
//! Loom: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release
//! --lib loom`.

use super::*;

/// How far a send or a receive gets before its process "dies" (the real
/// `push_one` / `pop_one`, stopped where a kill would stop them).
type Stop = Death;

/// A send of `v` by `me` that dies at `stop`. Returns the position it went
/// for.
fn send_until(q: &Queue<'_>, me: EntryIndex, stop: Stop, v: u64) -> u64 {
    let p = q.ctl.tail.load(Ordering::Relaxed);
    assert_eq!(q.word(p).load(Ordering::Acquire), enc(p, EMPTY));
    assert_eq!(q.dying(stop).try_push(me, &v), Attempt::NotNow);
    p
}

/// A receive by `me` that dies at `stop`. Returns the position it went for.
fn recv_until(q: &Queue<'_>, me: EntryIndex, stop: Stop) -> u64 {
    let p = q.ctl.head.load(Ordering::Relaxed);
    assert_eq!(q.word(p).load(Ordering::Acquire), enc(p, FULL));
    assert_eq!(q.dying(stop).try_pop::<u64>(me), Attempt::NotNow);
    p
}

#[cfg(not(loom))]
mod tests {
    use super::super::heap::HeapQueue;
    use super::*;
    use crate::testing::Stop as Partner;

    fn peer(q: &Queue<'_>, id: u64) -> EntryIndex {
        q.ctl.peers.claim(id).unwrap()
    }

    fn totals(q: &Queue<'_>) -> (u64, u64, u64) {
        q.ctl.peers.totals()
    }

    fn stat(s: &AtomicU64) -> u64 {
        s.load(Ordering::Relaxed)
    }

    #[test]
    fn a_lookahead_changes_no_result_and_refreshes_its_tail() {
        // 64 u64 slots: the lookahead prefetches 16 positions ahead.
        let h = HeapQueue::new::<u64>(64);
        let look = Lookahead::default();
        let q = h.queue().with_lookahead(&look);
        assert_eq!(q.shape.prefetch, 16);
        let (p, c) = (peer(&q, 1), peer(&q, 2));
        let mut next = 0u64;
        // 320 positions under Miri: past the first refresh at 256, the
        // same paths as the 1280 of the normal run.
        let rounds = if cfg!(miri) { 8 } else { LOOKAHEAD_REFRESH / 8 };
        for round in 0..rounds {
            for v in round * 40..round * 40 + 40 {
                assert_eq!(q.try_push(p, &v), Attempt::Done(()));
            }
            for _ in 0..40 {
                assert_eq!(q.try_pop::<u64>(c), Attempt::Done(next));
                next += 1;
            }
            assert_eq!(q.try_pop::<u64>(c), Attempt::NotNow);
            // Read at the first claim, and again every LOOKAHEAD_REFRESH.
            let read_at = (next - 1) / LOOKAHEAD_REFRESH * LOOKAHEAD_REFRESH;
            assert_eq!(look.refresh_at.get(), read_at + LOOKAHEAD_REFRESH);
            assert_eq!(look.seen.get(), read_at / 40 * 40 + 40);
        }
        // Too small a queue for a prefetch 16 ahead: none.
        assert_eq!(Shape::new(63, stride_words(8)).prefetch, 0);
        assert_eq!(Shape::new(8, stride_words(4096)).prefetch, 1);
    }

    #[test]
    fn a_receiver_prefetches_whole_lines_of_large_slots_only() {
        // Under 1 KiB slots: the slot word alone; from 1 KiB, the slot up to
        // its first 4 KiB. The same for items (at compile time) and for byte
        // messages (from the shape).
        fn both<T>() -> (usize, usize) {
            let shape = Shape::new(64, stride_words(core::mem::size_of::<T>()));
            (
                Typed::<T>::STRIDE.read_ahead_words(&shape),
                Runtime.read_ahead_words(&shape),
            )
        }
        assert_eq!(both::<u64>(), (1, 1));
        assert_eq!(both::<[u8; 1008]>(), (1, 1));
        assert_eq!(both::<[u8; 1016]>(), (128, 128));
        assert_eq!(both::<[u8; 4096]>(), (512, 512));
        assert_eq!(both::<[u8; 65536]>(), (512, 512));
    }

    #[test]
    fn a_senders_lookahead_reads_head_and_changes_no_result() {
        // 512-byte items: 520-byte slots, written 4096 / 520 = 7 ahead where
        // the processor can prefetch for writing; never for slots under a
        // line, or in queues under four times the distance.
        let can = crate::sync::can_prefetch_write();
        assert_eq!(
            Shape::new(28, stride_words(512)).write_ahead,
            if can { 7 } else { 0 }
        );
        assert_eq!(Shape::new(27, stride_words(512)).write_ahead, 0);
        assert_eq!(Shape::new(4096, stride_words(8)).write_ahead, 0);
        assert_eq!(
            Shape::new(64, stride_words(8192)).write_ahead,
            if can { 1 } else { 0 }
        );

        // The rule, as on a processor that can: only where it can, or where
        // `prefetch_write` is nothing (Miri), as `prefetch_write` requires.
        if !(can || cfg!(miri)) {
            return;
        }
        let h = HeapQueue::new::<[u64; 64]>(32);
        let mut q = h.queue();
        q.shape.write_ahead = 7;
        let look = Lookahead::default();
        let tx = q.with_lookahead(&look);
        let (p, c) = (peer(&q, 1), peer(&q, 2));
        let item = |v: u64| [v; 64];
        // `head` is read at the first claim, and again every
        // LOOKAHEAD_REFRESH claims: with the queue full, a lap behind. In
        // the first lap, the slots 7 ahead of positions 0..24 (and the slots
        // after them) never held an item: those 24 are prefetched.
        for v in 0..32 {
            assert_eq!(tx.try_push(p, &item(v)), Attempt::Done(()));
        }
        assert_eq!(tx.try_push(p, &item(99)), Attempt::NotNow);
        assert_eq!(
            (look.seen.get(), look.refresh_at.get()),
            (0, LOOKAHEAD_REFRESH)
        );
        assert_eq!(look.prefetched.get(), 24);
        let mut next = 0;
        for v in 32..=LOOKAHEAD_REFRESH {
            assert_eq!(q.try_pop::<[u64; 64]>(c), Attempt::Done(item(next)));
            next += 1;
            assert_eq!(tx.try_push(p, &item(v)), Attempt::Done(()));
        }
        // Full all along: the `head` read at the start allows nothing more.
        let full_at = LOOKAHEAD_REFRESH - 31;
        assert_eq!(
            (look.seen.get(), look.refresh_at.get()),
            (full_at, 2 * LOOKAHEAD_REFRESH)
        );
        assert_eq!(look.prefetched.get(), 24);
        // Drained, then one in, one out: the next read finds `head` caught up.
        while let Attempt::Done(got) = q.try_pop::<[u64; 64]>(c) {
            assert_eq!(got, item(next));
            next += 1;
        }
        for v in LOOKAHEAD_REFRESH + 1..=2 * LOOKAHEAD_REFRESH {
            assert_eq!(tx.try_push(p, &item(v)), Attempt::Done(()));
            assert_eq!(q.try_pop::<[u64; 64]>(c), Attempt::Done(item(v)));
        }
        // Until then the stale `head` (a lap behind) allowed nothing; now
        // every claim prefetches, the receiver right behind.
        assert_eq!(look.seen.get(), 2 * LOOKAHEAD_REFRESH);
        assert_eq!(look.prefetched.get(), 24);
        for v in 2 * LOOKAHEAD_REFRESH + 1..=2 * LOOKAHEAD_REFRESH + 10 {
            assert_eq!(tx.try_push(p, &item(v)), Attempt::Done(()));
            assert_eq!(q.try_pop::<[u64; 64]>(c), Attempt::Done(item(v)));
        }
        assert_eq!(look.prefetched.get(), 34);
    }

    #[test]
    fn fifo_full_empty_and_wrap_with_odd_capacity() {
        let h = HeapQueue::new::<u64>(3);
        let q = h.queue();
        let (p, c) = (peer(&q, 1), peer(&q, 2));
        for round in 0..5u64 {
            assert_eq!(q.try_pop::<u64>(c), Attempt::NotNow);
            assert!(!q.has_item());
            for i in 0..3 {
                assert_eq!(q.try_push(p, &(round * 10 + i)), Attempt::Done(()));
            }
            assert_eq!(q.try_push(p, &99u64), Attempt::NotNow);
            assert!(q.looks_full() && q.has_item());
            assert_eq!(q.len(), 3);
            for i in 0..3 {
                assert_eq!(q.try_pop::<u64>(c), Attempt::Done(round * 10 + i));
            }
        }
        assert_eq!(totals(&q), (15, 15, 0));
        // The last claim's ticket stays (its slot says it was carried out);
        // the full queue's refusals announced nothing.
        let e = q.ctl.peers.entry(p);
        assert_eq!(Ticket(stat(&e.claim_send)), Ticket::new(14, 14));
    }

    #[test]
    fn slices_and_capacity_one() {
        let h = HeapQueue::new::<[u8; 3]>(1);
        let q = h.queue();
        let (p, c) = (peer(&q, 1), peer(&q, 2));
        assert_eq!(q.push_slice(p, &[[1u8, 2, 3], [4, 5, 6]]), Attempt::Done(1));
        let mut out = [[0u8; 3]; 2];
        assert_eq!(q.pop_slice(c, &mut out), Attempt::Done(1));
        assert_eq!(out[0], [1, 2, 3]);
        assert_eq!(q.pop_slice::<[u8; 3]>(c, &mut out), Attempt::NotNow);
        assert_eq!(q.push_slice(p, &[[7u8, 8, 9]]), Attempt::Done(1));
        assert!(q.has_item());
        assert_eq!(q.push_slice::<[u8; 3]>(p, &[]), Attempt::NotNow);
    }

    #[test]
    fn tickets_recover_positions_and_counts() {
        for p in [0u64, 5, (1 << 31) - 1, 1 << 31, (1 << 40) + 7, u64::MAX - 3] {
            let t = Ticket::new(p, 41);
            assert!(t.is_some() && t.is_for(p) && !t.is_for(p + 1));
            for ahead in [0u64, 1, 200, (1 << 31) - 1] {
                assert_eq!(t.position(p.wrapping_add(ahead)), p, "p={p} ahead={ahead}");
            }
            assert!(t.counted(42) && !t.counted(41) && !t.counted(43));
            assert!(t.counted((5 << 32) + 42), "low bits decide");
        }
        assert!(!Ticket(0).is_some());
    }

    #[test]
    fn dist_is_signed_modulo_2_62() {
        let w = |p: u64| enc(p, EMPTY);
        assert_eq!(dist(w(5), 5), 0);
        assert_eq!(dist(w(8), 5), 3);
        assert_eq!(dist(w(2), 5), -3);
        assert_eq!(dist(w(1), POS_MASK), 2);
        assert_eq!(dist(w(POS_MASK), 1), -2);
    }

    /// Full and empty are told from a claim in flight: a receive that finds
    /// the next item claimed and not yet published, or a send that finds
    /// the next slot claimed and not yet freed, reports the claim; who holds
    /// it is a live entry, dead ones, nobody (garbage), or finished.
    #[test]
    fn claims_in_flight_are_not_empty_or_full() {
        let h = HeapQueue::new::<u64>(2);
        let q = h.queue().telling_claims();
        let (p, c, slow) = (peer(&q, 1), peer(&q, 2), peer(&q, 3));
        assert_eq!(q.try_pop::<u64>(c), Attempt::NotNow, "empty");
        // A send claimed position 0 and is writing it; one more follows.
        assert_eq!(send_until(&q, slow, Stop::Copied, 5), 0);
        assert_eq!(q.try_push(p, &6u64), Attempt::Done(()));
        let writing = InFlight {
            side: Side::Send,
            pos: 0,
        };
        assert_eq!(q.try_pop::<u64>(c), Attempt::InFlight(writing));
        assert_eq!(
            h.queue().try_pop::<u64>(c),
            Attempt::NotNow,
            "an attempt that is not asked to tell does not"
        );
        assert_eq!(q.holder(writing, |_| false), Holder::Live);
        assert_eq!(q.holder(writing, |id| id == 3), Holder::Dead);
        q.word(0).store(enc(0, FULL), Ordering::Release); // published
        assert_eq!(q.holder(writing, |_| false), Holder::Finished);
        assert_eq!(q.try_push(p, &7u64), Attempt::NotNow, "full");
        // A receive claimed position 0 and is reading it: not full either.
        assert_eq!(recv_until(&q, slow, Stop::Copied), 0);
        let reading = InFlight {
            side: Side::Recv,
            pos: 0,
        };
        assert_eq!(q.try_push(p, &7u64), Attempt::InFlight(reading));
        assert_eq!(h.queue().try_push(p, &7u64), Attempt::NotNow);
        assert_eq!(q.holder(reading, |_| false), Holder::Live);
        // Its ticket gone (garbage: an honest one stays until the slot is
        // free), nobody holds the claim.
        q.ctl
            .peers
            .entry(slow)
            .claim_recv
            .store(0, Ordering::Relaxed);
        assert_eq!(q.holder(reading, |_| false), Holder::Nobody);
        q.word(0).store(enc(2, EMPTY), Ordering::Release); // freed
        assert_eq!(q.holder(reading, |_| false), Holder::Finished);
        assert_eq!(q.try_pop::<u64>(c), Attempt::Done(6));
        assert_eq!(q.try_push(p, &7u64), Attempt::Done(()));
        assert_eq!(q.try_push(p, &8u64), Attempt::Done(()));
    }

    /// A producer that died after winning a position wedges receivers at it
    /// until a reap; after the reap the queue flows, the position is skipped,
    /// and the lost item is uncounted.
    #[test]
    fn dead_writer_is_repaired() {
        let h = HeapQueue::new::<u64>(4);
        let q = h.queue().telling_claims();
        let (live, c, dead) = (peer(&q, 1), peer(&q, 2), peer(&q, 3));
        assert_eq!(q.try_push(live, &1u64), Attempt::Done(()));
        assert_eq!(send_until(&q, dead, Stop::Copied, 2), 1);
        assert_eq!(q.try_push(live, &3u64), Attempt::Done(()));
        assert_eq!(q.try_pop::<u64>(c), Attempt::Done(1));
        let stuck = InFlight {
            side: Side::Send,
            pos: 1,
        };
        assert_eq!(
            q.try_pop::<u64>(c),
            Attempt::InFlight(stuck),
            "wedged at the dead slot"
        );
        assert_eq!(q.holder(stuck, |_| false), Holder::Live);
        assert_eq!(q.holder(stuck, |id| id == 3), Holder::Dead);
        assert_eq!(totals(&q).0, 3, "the dead producer counted its item");
        assert_eq!(q.reap(1, |id| id == 3).0, 1);
        assert_eq!(q.reap(1, |id| id == 3).0, 0, "freed once");
        assert_eq!(totals(&q).0, 2, "the lost item is uncounted, once");
        assert!(q.has_item(), "looks past the skipped position");
        assert_eq!(q.try_pop::<u64>(c), Attempt::Done(3));
        assert_eq!(stat(&h.ctl.cleanup.recovered), 1);
        // The repaired slot is reused on the next lap.
        for i in 10..14u64 {
            assert_eq!(q.try_push(live, &i), Attempt::Done(()));
        }
        for i in 10..14u64 {
            assert_eq!(q.try_pop::<u64>(c), Attempt::Done(i));
        }
    }

    /// A consumer that died after winning a position leaves its slot full, so
    /// the queue looks full a lap later, until a reap.
    #[test]
    fn dead_reader_is_repaired() {
        let h = HeapQueue::new::<u64>(2);
        let q = h.queue().telling_claims();
        let (p, c, dead) = (peer(&q, 1), peer(&q, 2), peer(&q, 3));
        assert_eq!(q.try_push(p, &1u64), Attempt::Done(()));
        assert_eq!(q.try_push(p, &2u64), Attempt::Done(()));
        recv_until(&q, dead, Stop::Won);
        assert_eq!(q.try_pop::<u64>(c), Attempt::Done(2));
        let stuck = InFlight {
            side: Side::Recv,
            pos: 0,
        };
        assert_eq!(
            q.try_push(p, &3u64),
            Attempt::InFlight(stuck),
            "slot 0 still held"
        );
        assert_eq!(q.holder(stuck, |id| id == 3), Holder::Dead);
        assert_eq!(q.reap(1, |id| id == 3).0, 1);
        assert_eq!(q.holder(stuck, |id| id == 3), Holder::Finished);
        assert_eq!(q.try_push(p, &3u64), Attempt::Done(()));
        assert_eq!(q.try_pop::<u64>(c), Attempt::Done(3));
        assert_eq!(stat(&h.ctl.cleanup.recovered), 1);
        assert_eq!(stat(&h.ctl.cleanup.abandoned), 1);
    }

    /// A dead entry that announced the position a live one then won: the
    /// repair waits while the live entry announces it, and the dead entry is
    /// freed once the live one has finished.
    #[test]
    fn a_live_claimer_defers_the_repair() {
        let h = HeapQueue::new::<u64>(2);
        let q = h.queue();
        let (dead, live, c) = (peer(&q, 3), peer(&q, 1), peer(&q, 2));
        // Both announce position 0; the live one wins it and is slow.
        let e = q.ctl.peers.entry(dead);
        Claim::begin(&e.claim_send, &e.sent).announce(0);
        send_until(&q, live, Stop::Copied, 5);
        assert_eq!(q.reap(1, |id| id == 3).0, 0, "deferred");
        assert_eq!(q.ctl.peers.entry(dead).id.load(Ordering::Relaxed), 3);
        assert_eq!(
            q.ctl
                .peers
                .count_attached(super::super::super::peers::ROLE_SENDER),
            0
        );
        // The live producer finishes.
        q.word(0).store(enc(0, FULL), Ordering::Release);
        assert_eq!(q.reap(1, |id| id == 3).0, 1);
        assert_eq!(q.try_pop::<u64>(c), Attempt::Done(5));
        assert_eq!(stat(&h.ctl.cleanup.recovered), 0);
        assert_eq!(totals(&q), (1, 1, 0));
    }

    /// Kills at each point of a send or a receive, then a reap: the totals
    /// that `join` compares come out exact, whichever side of the count the
    /// kill landed on.
    #[test]
    fn crash_accounting_is_exact() {
        for writer in [true, false] {
            for stop in [Stop::Announced, Stop::Won, Stop::Counted, Stop::Copied] {
                let h = HeapQueue::new::<u64>(4);
                let q = h.queue();
                let (p, c, dead) = (peer(&q, 1), peer(&q, 2), peer(&q, 3));
                let what = format!("writer={writer} stop={stop:?}");
                if writer {
                    assert_eq!(q.try_push(p, &1u64), Attempt::Done(()));
                    send_until(&q, dead, stop, 9);
                    if stop == Stop::Announced {
                        // It never won: the next send takes the position.
                        assert_eq!(q.try_push(p, &2u64), Attempt::Done(()));
                    }
                    assert_eq!(q.try_push(p, &3u64), Attempt::Done(()));
                } else {
                    for i in 0..3u64 {
                        assert_eq!(q.try_push(p, &i), Attempt::Done(()));
                    }
                    recv_until(&q, dead, stop);
                }
                assert_eq!(q.reap(1, |id| id == 3).0, 1, "{what}");
                assert_eq!(q.reap(1, |id| id == 3).0, 0, "{what}: freed once");
                let mut got = 0;
                while let Attempt::Done(_) = q.try_pop::<u64>(c) {
                    assert!(q.task_done(c));
                    got += 1;
                }
                assert!(!q.task_done(c), "more task_done than items received");
                let (sent, _, done) = totals(&q);
                let lost = u64::from(stop != Stop::Announced);
                assert_eq!(done, sent, "{what}");
                assert_eq!(sent, 3 - u64::from(writer) * lost, "{what}");
                assert_eq!(got + u64::from(!writer) * lost, sent, "{what}");
                assert!(q.all_done(), "{what}");
                assert_eq!(stat(&h.ctl.cleanup.recovered), lost, "{what}");
                let abandoned = u64::from(!writer) * lost;
                assert_eq!(stat(&h.ctl.cleanup.abandoned), abandoned, "{what}");
            }
        }
    }

    /// The reap lock: a live holder makes others skip; a dead holder's lock
    /// is taken over and its work redone.
    #[test]
    fn the_reap_lock_passes_from_a_dead_reaper() {
        let h = HeapQueue::new::<u64>(4);
        let q = h.queue();
        let (p, c, dead) = (peer(&q, 1), peer(&q, 2), peer(&q, 3));
        assert_eq!(q.try_push(p, &1u64), Attempt::Done(()));
        assert_eq!(q.try_push(p, &2u64), Attempt::Done(()));
        recv_until(&q, dead, Stop::Won);
        h.ctl.cleanup.reaper.store(9, Ordering::Relaxed);
        assert_eq!(q.reap(1, |id| id == 3).0, 0, "reaper 9 is alive");
        // Reaper 9 had counted the lost item before it died.
        let e = q.ctl.peers.entry(dead);
        e.received.store(1, Ordering::Relaxed);
        assert_eq!(q.reap(1, |id| id == 3 || id == 9).0, 1);
        assert_eq!(h.ctl.cleanup.reaper.load(Ordering::Relaxed), 0);
        assert_eq!(q.try_pop::<u64>(c), Attempt::Done(2));
        assert!(q.task_done(c));
        assert!(q.all_done());
        assert_eq!(totals(&q), (2, 2, 2), "counted once");
    }

    /// Counters survive a change of occupant; a receiver that leaves with
    /// items not marked done has them counted done (and abandoned).
    #[test]
    fn detach_settles_and_join_sees_it() {
        let h = HeapQueue::new::<u64>(4);
        let q = h.queue();
        let (p, c) = (peer(&q, 1), peer(&q, 2));
        for i in 0..3u64 {
            assert_eq!(q.try_push(p, &i), Attempt::Done(()));
        }
        for _ in 0..2 {
            assert!(matches!(q.try_pop::<u64>(c), Attempt::Done(_)));
        }
        assert!(q.task_done(c));
        assert!(!q.all_done());
        q.detach(c, 2);
        assert_eq!(stat(&h.ctl.cleanup.abandoned), 1);
        assert!(!q.all_done(), "one item still queued");
        let c2 = peer(&q, 5);
        assert_eq!(c2.get(), c.get(), "reuses the entry");
        assert!(
            !q.task_done(c2),
            "a new occupant starts with nothing to mark"
        );
        assert_eq!(q.try_pop::<u64>(c2), Attempt::Done(2));
        assert!(!q.all_done());
        assert!(q.task_done(c2));
        assert!(q.all_done());
        assert_eq!(totals(&q), (3, 3, 3));
    }

    #[test]
    fn hostile_words_cause_no_panic_or_endless_loop() {
        let h = HeapQueue::new::<u64>(3);
        let q = h.queue();
        let (p, c) = (peer(&q, 1), peer(&q, 2));
        for junk in [0, u64::MAX, 0x5555_5555_5555_5555, 1 << 40, 5] {
            for s in &h.slots {
                s.store(junk, Ordering::Relaxed);
            }
            h.ctl.head.store(junk, Ordering::Relaxed);
            h.ctl.tail.store(junk.rotate_left(7), Ordering::Relaxed);
            for (i, e) in h.ctl.peers.entries.iter().enumerate() {
                let words = [&e.sent, &e.received, &e.done, &e.claim_send, &e.claim_recv];
                for w in words {
                    w.store(junk, Ordering::Relaxed);
                }
                if i > 1 {
                    e.id.store(junk, Ordering::Relaxed);
                }
            }
            h.ctl.cleanup.reaper.store(junk, Ordering::Relaxed);
            for i in 0..8u64 {
                let _ = q.try_push(p, &i);
                let _ = q.try_pop::<u64>(c);
                let _ = q.task_done(c);
                assert!(q.len() <= 3);
            }
            let _ = (q.all_done(), q.has_item(), q.looks_full());
            let _ = q.reap(1, |id| id != 2);
        }
    }

    #[test]
    fn many_threads_each_item_exactly_once() {
        const PER: u64 = if cfg!(miri) { 64 } else { 50_000 };
        let h = HeapQueue::new::<u64>(8);
        let seen: Vec<_> = (0..4 * PER).map(|_| AtomicU64::new(0)).collect();
        let stop = Partner::new();
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let (h, stop) = (&h, &stop);
                s.spawn(move || {
                    stop.guard(|| {
                        let q = h.queue();
                        let me = q.ctl.peers.claim(10 + t).unwrap();
                        for i in 0..2 * PER {
                            let v = t * 2 * PER + i;
                            stop.wait(|| (q.try_push(me, &v) == Attempt::Done(())).then_some(()));
                        }
                    })
                });
            }
            for t in 0..2u64 {
                let (h, seen, stop) = (&h, &seen, &stop);
                s.spawn(move || {
                    stop.guard(|| {
                        let q = h.queue();
                        let me = q.ctl.peers.claim(20 + t).unwrap();
                        for _ in 0..2 * PER {
                            let v = stop.wait(|| match q.try_pop::<u64>(me) {
                                Attempt::Done(v) => Some(v),
                                _ => None,
                            });
                            seen[v as usize].fetch_add(1, Ordering::Relaxed);
                            assert!(q.task_done(me));
                        }
                    })
                });
            }
        });
        assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        let q = h.queue();
        assert_eq!(totals(&q), (4 * PER, 4 * PER, 4 * PER));
        assert!(q.all_done());
    }
}

#[cfg(loom)]
mod loom_models {
    use super::super::heap::HeapQueue;
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;
    use loom::thread;

    /// Two producers, one consumer, capacity 2: every item exactly once,
    /// untorn (two-word payload). (With two items per producer, to check
    /// per-producer order too, the spinning threads exceed loom's branch
    /// limit even when it is raised twentyfold.)
    #[test]
    fn loom_two_producers_one_consumer() {
        loom::model(|| {
            let h = Arc::new(HeapQueue::new::<[u64; 2]>(2));
            let producers: Vec<_> = (0..2u64)
                .map(|t| {
                    let h = h.clone();
                    thread::spawn(move || {
                        let q = h.queue();
                        let me = q.ctl.peers.claim(1 + t).unwrap();
                        let v = 10 + t;
                        while q.try_push(me, &[v, !v]) != Attempt::Done(()) {
                            thread::yield_now();
                        }
                    })
                })
                .collect();
            let q = h.queue();
            let me = q.ctl.peers.claim(9).unwrap();
            let mut seen = [false; 2];
            for _ in 0..2 {
                let [v, check] = loop {
                    if let Attempt::Done(v) = q.try_pop::<[u64; 2]>(me) {
                        break v;
                    }
                    thread::yield_now();
                };
                assert_eq!(check, !v, "torn item");
                let t = (v - 10) as usize;
                assert!(!seen[t], "delivered twice");
                seen[t] = true;
            }
            for p in producers {
                p.join().unwrap();
            }
        });
    }

    /// One producer sends two items through a queue of capacity 1 (so the
    /// slot wraps, and the second send waits for the first receive) to one
    /// consumer: in order, untorn.
    #[test]
    fn loom_wraps_in_order() {
        loom::model(|| {
            let h = Arc::new(HeapQueue::new::<[u64; 2]>(1));
            let h2 = h.clone();
            let producer = thread::spawn(move || {
                let q = h2.queue();
                let me = q.ctl.peers.claim(1).unwrap();
                for v in 1..=2u64 {
                    while q.try_push(me, &[v, !v]) != Attempt::Done(()) {
                        thread::yield_now();
                    }
                }
            });
            let q = h.queue();
            let me = q.ctl.peers.claim(2).unwrap();
            for want in 1..=2u64 {
                let [v, check] = loop {
                    if let Attempt::Done(v) = q.try_pop::<[u64; 2]>(me) {
                        break v;
                    }
                    thread::yield_now();
                };
                assert_eq!((v, check), (want, !want), "reordered or torn");
            }
            producer.join().unwrap();
        });
    }

    /// One producer, two consumers racing for its two items: each item goes
    /// to exactly one of them (or stays queued, once), untorn.
    #[test]
    fn loom_one_producer_two_consumers() {
        loom::model(|| {
            let h = Arc::new(HeapQueue::new::<[u64; 2]>(2));
            let consumers: Vec<_> = (0..2u64)
                .map(|t| {
                    let h = h.clone();
                    thread::spawn(move || {
                        let q = h.queue();
                        let me = q.ctl.peers.claim(1 + t).unwrap();
                        // One attempt each (two each take over a minute).
                        match q.try_pop::<[u64; 2]>(me) {
                            Attempt::Done([v, check]) => {
                                assert_eq!(check, !v, "torn item");
                                Some(v)
                            }
                            Attempt::NotNow | Attempt::InFlight(_) => None,
                        }
                    })
                })
                .collect();
            let q = h.queue();
            let me = q.ctl.peers.claim(9).unwrap();
            for v in 1..=2u64 {
                assert_eq!(q.try_push(me, &[v, !v]), Attempt::Done(()));
            }
            let mut all = Vec::new();
            for c in consumers {
                all.extend(c.join().unwrap());
            }
            // What the consumers left is still there, once.
            while let Attempt::Done([v, _]) = q.try_pop::<[u64; 2]>(me) {
                all.push(v);
            }
            all.sort_unstable();
            assert_eq!(all, [1, 2]);
        });
    }

    /// A producer that stops forever at each step of a send (announced, won
    /// the position, counted it, wrote the payload) while another producer
    /// and a consumer carry on; then a survivor reaps it. The live producer's
    /// items all arrive in order, the dead one's never, the queue is not
    /// wedged, and the totals `join` compares are exact.
    ///
    /// The live producer tries each of its two items at most twice (a
    /// blocking send would retry forever; two tries already cover "the
    /// position was free" and "the dead one took it").
    #[test]
    fn loom_producer_stopping_at_each_step_is_repaired() {
        for stop in [Stop::Announced, Stop::Won, Stop::Counted, Stop::Copied] {
            loom::model(move || {
                let h = Arc::new(HeapQueue::new::<u64>(2));
                let h2 = h.clone();
                let dead = h.queue().ctl.peers.claim(1).unwrap();
                let stopped = thread::spawn(move || {
                    // A send that stops at `stop`, as a killed process's.
                    let _ = h2.queue().dying(stop).try_push(dead, &77u64);
                });
                let h3 = h.clone();
                let live = thread::spawn(move || {
                    let q = h3.queue();
                    let me = q.ctl.peers.claim(2).unwrap();
                    let mut sent = 0u64;
                    for i in 1..=2u64 {
                        for _ in 0..2 {
                            if q.try_push(me, &i) == Attempt::Done(()) {
                                sent = i;
                                break;
                            }
                            thread::yield_now();
                        }
                        if sent != i {
                            break;
                        }
                    }
                    sent
                });
                stopped.join().unwrap();
                let sent = live.join().unwrap();
                // A survivor finds the dead producer and repairs its slot.
                let q = h.queue();
                assert_eq!(q.reap(9, |id| id == 1).0, 1);
                let me = q.ctl.peers.claim(3).unwrap();
                let mut got = Vec::new();
                while let Attempt::Done(v) = q.try_pop::<u64>(me) {
                    assert!(q.task_done(me));
                    got.push(v);
                }
                assert_eq!(got, (1..=sent).collect::<Vec<_>>());
                assert!(q.all_done(), "the dead producer's item is not counted");
                // Not wedged: the queue takes and gives a full lap.
                let live = q.ctl.peers.claim(4).unwrap();
                for v in [5u64, 6] {
                    assert_eq!(q.try_push(live, &v), Attempt::Done(()));
                }
                for v in [5u64, 6] {
                    assert_eq!(q.try_pop::<u64>(me), Attempt::Done(v));
                }
            });
        }
    }

    /// A consumer that stops forever at each step of a receive (announced,
    /// won the position, counted it, read the payload) while another consumer
    /// carries on; then a survivor reaps it. Every item is delivered at most
    /// once, the only one lost is the one the dead consumer won, the queue is
    /// not wedged, and `join`'s totals come out even.
    #[test]
    fn loom_consumer_stopping_at_each_step_is_repaired() {
        for stop in [Stop::Announced, Stop::Won, Stop::Counted, Stop::Copied] {
            loom::model(move || {
                let h = Arc::new(HeapQueue::new::<u64>(2));
                let q = h.queue();
                let producer = q.ctl.peers.claim(3).unwrap();
                for v in 1..=2u64 {
                    assert_eq!(q.try_push(producer, &v), Attempt::Done(()));
                }
                let dead = q.ctl.peers.claim(1).unwrap();
                let h2 = h.clone();
                let stopped = thread::spawn(move || {
                    // A receive that stops at `stop`, as a killed process's.
                    let _ = h2.queue().dying(stop).try_pop::<u64>(dead);
                });
                let h3 = h.clone();
                let live = thread::spawn(move || {
                    let q = h3.queue();
                    let me = q.ctl.peers.claim(2).unwrap();
                    let mut got = Vec::new();
                    for _ in 0..2 {
                        if let Attempt::Done(v) = q.try_pop::<u64>(me) {
                            assert!(q.task_done(me));
                            got.push(v);
                        }
                    }
                    got
                });
                stopped.join().unwrap();
                let mut got = live.join().unwrap();
                assert_eq!(q.reap(9, |id| id == 1).0, 1);
                let me = q.ctl.peers.claim(4).unwrap();
                while let Attempt::Done(v) = q.try_pop::<u64>(me) {
                    assert!(q.task_done(me));
                    got.push(v);
                }
                got.sort_unstable();
                got.dedup();
                let lost = q.ctl.cleanup.recovered.load(Ordering::Relaxed);
                assert_eq!(got.len() as u64 + lost, 2, "lost or duplicated: {got:?}");
                assert!(lost <= 1);
                assert!(q.all_done(), "the lost item counts as done");
                // Not wedged: a full lap goes through.
                for v in [5u64, 6] {
                    assert_eq!(q.try_push(producer, &v), Attempt::Done(()));
                }
                for v in [5u64, 6] {
                    assert_eq!(q.try_pop::<u64>(me), Attempt::Done(v));
                }
            });
        }
    }

    /// A reap running beside a live producer that is claiming the very
    /// position a dead producer announced (and never won): the reaper must
    /// leave that slot alone. The item arrives once, nothing is counted as
    /// recovered, and the dead entry is freed once the live claim is done.
    #[test]
    fn loom_reap_beside_a_live_claimer() {
        loom::model(|| {
            let h = Arc::new(HeapQueue::new::<u64>(2));
            let q = h.queue();
            // The dead producer announced position 0 and died.
            let dead = q.ctl.peers.claim(1).unwrap();
            let e = q.ctl.peers.entry(dead);
            Claim::begin(&e.claim_send, &e.sent).announce(0);
            let h2 = h.clone();
            let live = thread::spawn(move || {
                let q = h2.queue();
                let me = q.ctl.peers.claim(2).unwrap();
                assert_eq!(q.try_push(me, &7u64), Attempt::Done(()));
            });
            let h3 = h.clone();
            let reaper = thread::spawn(move || h3.queue().reap(9, |id| id == 1).0);
            live.join().unwrap();
            let reaped = reaper.join().unwrap();
            let me = q.ctl.peers.claim(3).unwrap();
            assert_eq!(q.try_pop::<u64>(me), Attempt::Done(7));
            assert_eq!(q.try_pop::<u64>(me), Attempt::NotNow);
            assert_eq!(q.ctl.cleanup.recovered.load(Ordering::Relaxed), 0);
            assert_eq!(reaped + q.reap(9, |id| id == 1).0, 1, "freed once");
            assert_eq!(q.ctl.peers.totals(), (1, 1, 0));
        });
    }

    /// `join`'s check: item `x` is sent before the check (by the checking
    /// thread), item `y` concurrently by another thread, and two receivers
    /// take one item each and mark it done. Whenever `all_done` says yes,
    /// `x` has been marked done. This needs the check to read `done` with
    /// Acquire before it reads `sent`: otherwise it could count `y` done but
    /// not sent, and take that for `x`. (Loom does not catch that ordering
    /// mistake here: the SeqCst fences of the notifications on both sides
    /// order everything in its model. The model checks the counting logic.)
    /// Four threads: about 160 000 iterations, 25 s.
    #[test]
    fn loom_all_done_never_early() {
        loom::model(|| {
            let h = Arc::new(HeapQueue::new::<u64>(2));
            let q = h.queue();
            let me = q.ctl.peers.claim(1).unwrap();
            const X: u64 = 7;
            assert_eq!(q.try_push(me, &X), Attempt::Done(()));
            let x_done = Arc::new(AtomicBool::new(false));
            let receivers: Vec<_> = (0..2u64)
                .map(|t| {
                    let (h, x_done) = (h.clone(), x_done.clone());
                    thread::spawn(move || {
                        let q = h.queue();
                        let me = q.ctl.peers.claim(2 + t).unwrap();
                        if let Attempt::Done(v) = q.try_pop::<u64>(me) {
                            if v == X {
                                x_done.store(true, Ordering::Relaxed);
                            }
                            assert!(q.task_done(me));
                        }
                    })
                })
                .collect();
            let h2 = h.clone();
            let sender = thread::spawn(move || {
                let q = h2.queue();
                let me = q.ctl.peers.claim(9).unwrap();
                let _ = q.try_push(me, &8u64);
            });
            if q.all_done() {
                assert!(
                    x_done.load(Ordering::Relaxed),
                    "join saw a false 'all done'"
                );
            }
            for r in receivers {
                r.join().unwrap();
            }
            sender.join().unwrap();
        });
    }
}
