//! Unit tests of byte messages, on heap-backed queues ([`bytes_channel`]):
//! no system calls, so they run under Miri too.

use super::*;
use crate::sync::atomic::Ordering;

/// A message of `len` bytes that says which it is.
fn message(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed * 31 + i * 7) as u8).collect()
}

/// Sets the length word of the message at position `pos` of `h`'s queue,
/// as a hostile peer could.
fn scribble_length<D: Direction>(h: &Bytes<D>, pos: u64, len: u64) {
    h.handle.end.queue().payload(pos)[0].store(len, Ordering::Relaxed);
}

#[test]
fn messages_of_every_length_up_to_the_maximum_arrive_whole() {
    let max = 40;
    let (mut tx, mut rx) = bytes_channel(4, max);
    assert_eq!((tx.max_message_size(), rx.capacity()), (max, 4));
    for len in [0, 1, 7, 8, 9, 16, 33, max] {
        let msg = message(len, len);
        tx.send(&msg).unwrap();
        assert_eq!(rx.recv().unwrap(), msg, "a {len}-byte message");
        // And into a buffer of exactly its length.
        tx.send(&msg).unwrap();
        let mut buf = vec![0xee; len];
        assert_eq!(rx.try_recv_into(&mut buf), Ok(len));
        assert_eq!(buf, msg);
    }
    assert_eq!(rx.try_recv(), Err(BytesRecvError::Empty));
}

#[test]
fn a_message_over_the_maximum_is_refused_at_once_naming_both_sizes() {
    let (mut tx, rx) = bytes_channel(4, 16);
    for send in [
        BytesSender::try_send as fn(&mut BytesSender, &[u8]) -> _,
        BytesSender::send,
    ] {
        let err = send(&mut tx, &[7; 17]).unwrap_err();
        assert_eq!(err, BytesSendError::TooLarge { len: 17, max: 16 });
        let text = err.to_string();
        assert!(
            text.contains("17 bytes") && text.contains("16 bytes"),
            "{text}"
        );
    }
    assert_eq!(
        tx.send_timeout(&[0; 1000], Duration::from_secs(3600)),
        Err(BytesSendError::TooLarge { len: 1000, max: 16 })
    );
    assert_eq!((rx.len(), tx.stats().sent), (0, 0), "nothing was sent");
}

#[test]
fn a_too_short_buffer_leaves_the_message_queued_and_says_its_length() {
    let (mut tx, mut rx) = bytes_channel(4, 64);
    let msg = message(1, 27);
    tx.send(&msg).unwrap();
    tx.send(b"next").unwrap();
    let mut short = [0u8; 8];
    assert_eq!(
        rx.try_recv_into(&mut short),
        Err(BytesRecvError::BufferTooShort { needed: 27 })
    );
    assert_eq!(
        rx.recv_into(&mut short),
        Err(BytesRecvError::BufferTooShort { needed: 27 })
    );
    assert_eq!(short, [0; 8], "nothing was copied");
    assert_eq!((rx.len(), rx.stats().received), (2, 0));
    assert!(rx.task_done().is_err(), "a refused message is not received");
    let mut buf = [0u8; 64];
    assert_eq!(rx.recv_into(&mut buf), Ok(27));
    assert_eq!(&buf[..27], &msg[..]);
    assert_eq!(rx.recv().unwrap(), b"next");
    assert_eq!(rx.stats().received, 2);
}

#[test]
fn recv_makes_room_for_messages_longer_than_its_first_guess() {
    let (mut tx, mut rx) = bytes_channel(4, 1000);
    let long = message(2, 900);
    tx.send(&long).unwrap();
    tx.send(b"short").unwrap();
    assert_eq!(rx.recv().unwrap(), long);
    assert_eq!(rx.recv().unwrap(), b"short");
    assert_eq!(rx.stats().received, 2);
}

#[test]
fn a_hostile_length_word_is_reported_and_the_queue_flows_on() {
    let (mut tx, mut rx) = bytes_channel(4, 32);
    for (pos, bad) in [(0, 33), (2, u64::MAX), (4, 1 << 40)] {
        tx.send(b"honest but overwritten").unwrap();
        tx.send(b"after").unwrap();
        scribble_length(&tx, pos, bad);
        // Whatever the buffer: nothing is copied, the message is taken off.
        let mut buf = [0u8; 8];
        assert_eq!(
            rx.try_recv_into(&mut buf),
            Err(BytesRecvError::Corrupted { len: bad, max: 32 })
        );
        assert_eq!(buf, [0; 8]);
        assert_eq!(rx.recv().unwrap(), b"after", "the queue flows on");
    }
    // A corrupted message counts as received, so it can be marked done.
    assert_eq!(rx.stats().received, 6);
    for _ in 0..6 {
        rx.task_done().unwrap();
    }
    assert_eq!(tx.join_timeout(Duration::ZERO), Ok(()));
}

#[test]
fn a_length_word_within_the_maximum_but_over_the_buffer_is_too_short_not_corrupt() {
    let (mut tx, mut rx) = bytes_channel(2, 32);
    tx.send(b"abc").unwrap();
    scribble_length(&tx, 0, 32);
    let mut buf = [0u8; 8];
    assert_eq!(
        rx.try_recv_into(&mut buf),
        Err(BytesRecvError::BufferTooShort { needed: 32 })
    );
    // The sender zero-padded the slot: the bytes past the message are 0.
    let got = rx.recv().unwrap();
    assert_eq!(got.len(), 32);
    assert_eq!(&got[..3], b"abc");
}

#[test]
fn full_empty_and_the_lifecycle_rule() {
    let (mut tx, mut rx) = bytes_channel(2, 8);
    assert_eq!(rx.try_recv(), Err(BytesRecvError::Empty));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(1)),
        Err(BytesRecvError::Timeout)
    );
    tx.try_send(b"1").unwrap();
    tx.try_send(b"22").unwrap();
    assert!(tx.is_full());
    assert_eq!(tx.try_send(b"3"), Err(BytesSendError::Full));
    assert_eq!(
        tx.send_timeout(b"3", Duration::from_millis(1)),
        Err(BytesSendError::Timeout)
    );
    assert_eq!(tx.len(), 2);
    assert!(!rx.is_empty());
    drop(tx);
    // The sender came and went: what it sent is still there, then the end.
    assert_eq!(rx.try_recv().unwrap(), b"1");
    assert_eq!(rx.recv().unwrap(), b"22");
    assert!(rx.is_empty());
    assert_eq!(rx.try_recv(), Err(BytesRecvError::Disconnected));
    assert_eq!(rx.recv(), Err(BytesRecvError::Disconnected));
    let mut buf = [0; 8];
    assert_eq!(rx.recv_into(&mut buf), Err(BytesRecvError::Disconnected));
}

#[test]
fn a_sender_whose_receivers_left_is_disconnected_when_full() {
    let (mut tx, rx) = bytes_channel(1, 8);
    drop(rx);
    tx.send(b"kept").unwrap(); // a mailbox: room is room
    assert_eq!(tx.try_send(b"more"), Err(BytesSendError::Disconnected));
    assert_eq!(tx.send(b"more"), Err(BytesSendError::Disconnected));
}

#[test]
fn task_done_and_join_count_messages() {
    let (mut tx, mut rx) = bytes_channel(8, 8);
    for i in 0..3u8 {
        tx.send(&[i; 3]).unwrap();
    }
    assert_eq!(
        tx.join_timeout(Duration::from_millis(1)),
        Err(JoinTimeoutError)
    );
    for _ in 0..3 {
        rx.recv().unwrap();
    }
    rx.task_done().unwrap();
    rx.task_done().unwrap();
    assert_eq!(rx.join_timeout(Duration::ZERO), Err(JoinTimeoutError));
    rx.task_done().unwrap();
    assert_eq!(rx.task_done(), Err(TaskDoneError));
    tx.join();
    let s = tx.stats();
    assert_eq!((s.sent, s.received, s.done), (3, 3, 3));
    assert_eq!((s.senders, s.receivers), (1, 1));
}

#[test]
fn clones_share_the_queue_and_each_message_goes_to_one_receiver() {
    const PER_SENDER: usize = if cfg!(miri) { 20 } else { 2_000 };
    let (tx, rx) = bytes_channel(4, 24);
    let senders: Vec<_> = (0..2)
        .map(|s| {
            let mut tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..PER_SENDER {
                    let id = (s * PER_SENDER + i) as u32;
                    let mut msg = id.to_le_bytes().to_vec();
                    msg.resize(4 + i % 21, s as u8);
                    tx.send(&msg).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            let mut rx = rx.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                while let Ok(msg) = rx.recv() {
                    let id = u32::from_le_bytes(msg[..4].try_into().unwrap()) as usize;
                    let (s, i) = (id / PER_SENDER, id % PER_SENDER);
                    assert_eq!(msg.len(), 4 + i % 21);
                    assert!(msg[4..].iter().all(|&b| b == s as u8));
                    rx.task_done().unwrap();
                    ids.push(id);
                }
                ids
            })
        })
        .collect();
    drop(rx);
    for s in senders {
        s.join().unwrap();
    }
    let mut ids: Vec<usize> = receivers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..2 * PER_SENDER).collect::<Vec<_>>());
}

#[test]
fn debug_names_the_end_and_its_sizes() {
    let (tx, rx) = bytes_channel(3, 5);
    let (t, r) = (format!("{tx:?}"), format!("{rx:?}"));
    assert!(
        t.starts_with("BytesSender") && t.contains("max_message_size: 5"),
        "{t}"
    );
    assert!(
        r.starts_with("BytesReceiver") && r.contains("capacity: 3"),
        "{r}"
    );
}

#[test]
fn slots_hold_a_length_word_and_the_maximum_in_whole_words() {
    assert_eq!(slot_words(1), 3);
    assert_eq!(slot_words(8), 3);
    assert_eq!(slot_words(9), 4);
    assert_eq!(slot_bytes(100), 8 * (2 + 13));
}

#[cfg(feature = "serde")]
#[test]
fn serde_values_travel_as_one_message_each() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Job {
        name: String,
        size: u32,
        tags: Vec<u16>,
    }
    let (mut tx, mut rx) = bytes_channel(4, 64);
    let job = Job {
        name: "resize".into(),
        size: 17,
        tags: vec![1, 2, 3],
    };
    tx.send_value(&job).unwrap();
    tx.try_send_value(&(1u8, "two")).unwrap();
    assert_eq!(rx.recv_value::<Job>().unwrap(), job);
    assert_eq!(
        rx.recv_value_timeout::<(u8, String)>(Duration::from_secs(1)),
        Ok((1, "two".to_owned()))
    );
    // Too large once encoded.
    let big = Job {
        name: "x".repeat(100),
        ..job
    };
    assert!(matches!(
        tx.send_value(&big),
        Err(BytesSendError::TooLarge { max: 64, .. })
    ));
    // Bytes that are not a `Job`: taken off, reported.
    tx.send(&[0xff; 3]).unwrap();
    assert!(matches!(
        rx.try_recv_value::<Job>(),
        Err(BytesRecvError::Decode(_))
    ));
    assert_eq!(rx.try_recv_value::<u8>(), Err(BytesRecvError::Empty));
}
