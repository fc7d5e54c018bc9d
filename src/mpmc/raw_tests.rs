//! Raw handles on heap queues (Miri runs these): items of exactly one
//! element, and the same bytes in the same slots as the typed handles', on
//! one queue.

use super::*;
use crate::channel::mem::Heap;
use crate::channel::roles::Side;
use crate::element::Element;
use crate::mpmc::queue;
use crate::mpmc::{Receiver, Sender};
use crate::testing::Stop;

#[derive(Clone, Copy, Debug, PartialEq, crate::Element)]
#[repr(C)]
struct Reading {
    at_micros: i64,
    value: f64,
    sensor: u16,
    flags: [u8; 6],
}

fn layout<T: Element>() -> Description {
    Description::of::<T>().unwrap()
}

/// A queue of `capacity` `T`s on the heap, with a typed and a raw handle on
/// each side.
fn mixed<T: Element>(capacity: usize) -> (Sender<T>, Receiver<T>, RawSender, RawReceiver) {
    let d = layout::<T>();
    let shape = queue::Shape::new(capacity as u64, stride_words(d.size()));
    let mem = Heap::shared(queue::Control::new(), shape.data_words().unwrap());
    queue::Queue::new(mem.control(), mem.data(), shape).init();
    let live = crate::sync::liveness::DEFAULT_INTERVAL;
    let join = |side| MpmcEnd::join(mem.clone(), side, shape, live).unwrap();
    (
        Sender::from_parts(join(Side::Send), (), Port::in_process()),
        Receiver::from_parts(join(Side::Recv), (), Port::in_process()),
        RawSender::from_parts(join(Side::Send), Port::in_process(), d.clone()),
        RawReceiver::from_parts(join(Side::Recv), Port::in_process(), d),
    )
}

fn reading(i: u16) -> Reading {
    Reading {
        at_micros: -(i as i64) * 1_000_003,
        value: f64::from(i) / 3.0,
        sensor: i,
        flags: [i as u8, 1, 2, 3, 4, 0xff],
    }
}

#[test]
fn typed_and_raw_handles_exchange_the_same_bytes() {
    let (mut tx, mut rx, mut raw_tx, mut raw_rx) = mixed::<Reading>(8);
    assert_eq!(raw_rx.item_size(), 24);
    for i in 0..20 {
        // Typed to raw: the bytes `bytemuck` gives for the value.
        tx.send(reading(i)).unwrap();
        assert_eq!(raw_rx.recv().unwrap(), bytemuck::bytes_of(&reading(i)));
        // Raw to typed.
        raw_tx.send(bytemuck::bytes_of(&reading(i + 100))).unwrap();
        assert_eq!(rx.recv().unwrap(), reading(i + 100));
    }
    // Items sent one way and the other queue in order.
    tx.send(reading(1)).unwrap();
    raw_tx.send(bytemuck::bytes_of(&reading(2))).unwrap();
    let mut buf = [0u8; 24];
    raw_rx.recv_into(&mut buf).unwrap();
    assert_eq!(buf, bytemuck::bytes_of(&reading(1)));
    assert_eq!(rx.try_recv().unwrap(), reading(2));
    let stats = raw_rx.stats();
    assert_eq!((stats.sent, stats.received), (42, 42));
}

#[test]
fn odd_sizes_fill_their_slots_exactly() {
    // 13 bytes: two payload words, the second partly used.
    let (mut tx, mut rx, mut raw_tx, mut raw_rx) = mixed::<[u8; 13]>(3);
    let item: [u8; 13] = core::array::from_fn(|i| i as u8 + 1);
    raw_tx.send(&item).unwrap();
    assert_eq!(rx.recv().unwrap(), item);
    tx.send(item).unwrap();
    assert_eq!(raw_rx.recv().unwrap(), item);
    // A zero-sized element: items of no bytes.
    let (mut tx, mut rx) = raw_channel(2, &layout::<()>());
    tx.send(&[]).unwrap();
    assert_eq!(rx.recv().unwrap(), Vec::<u8>::new());
}

#[test]
fn a_wrong_size_is_refused_at_once_naming_both_sizes() {
    let (mut tx, mut rx) = raw_channel(2, &layout::<u64>());
    assert_eq!(
        tx.send(&[0; 7]),
        Err(RawSendError::WrongSize { len: 7, size: 8 })
    );
    let e = tx.try_send(&[0; 9]).unwrap_err().to_string();
    assert!(e.contains("9 bytes") && e.contains("8-byte"), "{e}");
    assert!(rx.is_empty(), "nothing was sent");
    tx.send(&7u64.to_ne_bytes()).unwrap();
    let mut short = [0u8; 4];
    let e = rx.try_recv_into(&mut short).unwrap_err();
    assert_eq!(e, RawRecvError::WrongSize { len: 4, size: 8 });
    assert!(e.to_string().contains("4 bytes") && e.to_string().contains("8-byte"));
    assert_eq!(
        rx.recv_into(&mut [0; 16]),
        Err(RawRecvError::WrongSize { len: 16, size: 8 })
    );
    // Nothing was taken: the item is still there.
    assert_eq!(rx.len(), 1);
    assert_eq!(rx.recv().unwrap(), 7u64.to_ne_bytes());
}

#[test]
fn full_empty_and_disconnected_as_the_typed_handles() {
    let (mut tx, mut rx) = raw_channel(2, &layout::<u32>());
    assert_eq!(rx.try_recv(), Err(RawRecvError::Empty));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(1)),
        Err(RawRecvError::Timeout)
    );
    tx.send(&1u32.to_ne_bytes()).unwrap();
    tx.send(&2u32.to_ne_bytes()).unwrap();
    assert!(tx.is_full());
    assert_eq!(tx.try_send(&3u32.to_ne_bytes()), Err(RawSendError::Full));
    assert_eq!(
        tx.send_timeout(&3u32.to_ne_bytes(), Duration::from_millis(1)),
        Err(RawSendError::Timeout)
    );
    assert_eq!((tx.len(), tx.capacity()), (2, 2));
    drop(tx);
    // Drained first, then disconnected.
    let got: Vec<Vec<u8>> = rx.iter().collect();
    assert_eq!(got, [1u32.to_ne_bytes(), 2u32.to_ne_bytes()]);
    assert_eq!(rx.try_recv(), Err(RawRecvError::Disconnected));
    assert_eq!(rx.recv(), Err(RawRecvError::Disconnected));
}

#[test]
fn task_done_and_join_count_raw_items() {
    let (mut tx, rx) = raw_channel(4, &layout::<u16>());
    tx.send(&5u16.to_ne_bytes()).unwrap();
    assert!(tx.join_timeout(Duration::from_millis(1)).is_err());
    let mut other = rx.try_clone().unwrap();
    other.recv().unwrap();
    assert_eq!(rx.task_done(), Err(TaskDoneError), "rx took nothing");
    other.task_done().unwrap();
    tx.join();
    assert_eq!(tx.stats().done, 1);
    assert!(format!("{other:?}").starts_with("RawReceiver"));
}

#[test]
fn a_raw_sender_thread_and_a_typed_receiver_thread() {
    const N: u16 = if cfg!(miri) { 60 } else { 20_000 };
    let (_, mut rx, raw_tx, _) = mixed::<Reading>(4);
    let stop = Stop::new();
    std::thread::scope(|s| {
        let mut raw_tx = raw_tx;
        let stop = &stop;
        s.spawn(move || {
            stop.guard(|| {
                for i in 0..N {
                    raw_tx.send(bytemuck::bytes_of(&reading(i))).unwrap();
                }
            })
        });
        stop.guard(|| {
            for i in 0..N {
                assert_eq!(rx.recv().unwrap(), reading(i));
            }
        });
    });
}

/// A raw receiver keeps the run of takes a typed one does (see
/// `channel::Run`): a run of eight items without finding the queue empty
/// makes a stream, a request of fewer never does, and an empty queue ends
/// it.
#[test]
fn raw_takes_count_the_run_of_a_stream() {
    let d = layout::<u64>();
    let (mut tx, mut rx) = raw_channel(16, &d);
    for n in [1u64, 7, 8] {
        for i in 0..n {
            tx.try_send(&i.to_ne_bytes()).unwrap();
        }
        for i in 0..n {
            assert_eq!(rx.recv().unwrap(), i.to_ne_bytes());
        }
        assert_eq!(rx.handle.trailing(), n >= 8, "a run of {n}");
        assert_eq!(rx.try_recv(), Err(RawRecvError::Empty));
        assert!(!rx.handle.trailing(), "gone once the queue is found empty");
    }
}
