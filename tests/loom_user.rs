//! A user's own protocol, model-checked with loom through shmkit's
//! in-process channels: what someone who embeds shmkit can do with their
//! code. Run with `RUSTFLAGS="--cfg loom" cargo test --release --test
//! loom_user`; without `--cfg loom` this file is empty.
#![cfg(loom)]

use loom::thread;

/// A request/response pair over two spsc channels: the worker answers each
/// request with its double, and the client sees every answer in order, in
/// every interleaving loom explores.
#[test]
fn request_response_over_spsc() {
    loom::model(|| {
        let (mut req_tx, mut req_rx) = shmkit::spsc::channel::<u32>(1);
        let (mut resp_tx, mut resp_rx) = shmkit::spsc::channel::<u32>(1);
        let worker = thread::spawn(move || {
            // Ends when the client drops its sender.
            while let Ok(x) = req_rx.recv() {
                resp_tx.send(x * 2).unwrap();
            }
        });
        for x in 1..=2 {
            req_tx.send(x).unwrap();
            assert_eq!(resp_rx.recv(), Ok(x * 2));
        }
        drop(req_tx);
        worker.join().unwrap();
        // The worker left after its last answer: end of stream.
        assert!(resp_rx.recv().is_err());
    });
}

/// Two producers share one mpmc queue through `clone`; the consumer gets
/// every item exactly once, then end of stream.
#[test]
fn cloned_mpmc_senders() {
    loom::model(|| {
        let (mut tx, mut rx) = shmkit::mpmc::channel::<u32>(2);
        let mut tx2 = tx.clone();
        let other = thread::spawn(move || tx2.send(2).unwrap());
        tx.send(1).unwrap();
        drop(tx);
        let mut got = [rx.recv().unwrap(), rx.recv().unwrap()];
        other.join().unwrap();
        got.sort();
        assert_eq!(got, [1, 2]);
        assert!(rx.recv().is_err());
    });
}
