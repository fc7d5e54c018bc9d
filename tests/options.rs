//! `Options` that change where a segment lives and how its element type is
//! identified.

use shmkit::bytemuck::{Pod, Zeroable};
use shmkit::spsc::{Receiver, Sender};
use shmkit::{Error, Options};

#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
#[repr(C)]
struct Reading {
    micros: u64,
}

/// Another crate's definition of the same layout: same size and alignment,
/// another type name.
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
#[repr(C)]
struct Sample {
    t: u64,
}

fn name(tag: &str) -> String {
    format!("o{}-{tag}", std::process::id())
}

#[test]
fn a_directory_option_places_the_segment_there_and_only_there() {
    let dir = std::env::temp_dir().join(format!("shmkit-opt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = Options::new().dir(&dir);
    let name = name("dir");
    let mut tx = Sender::<u64>::create_with(&name, 4, &opts).unwrap();
    assert!(dir.join(format!("shmkit.{name}")).is_file());
    assert!(!std::path::Path::new(&format!("/dev/shm/shmkit.{name}")).exists());
    // Without the option the name is not found; with it, it is.
    assert!(matches!(
        Receiver::<u64>::open(&name),
        Err(Error::NotFound { .. })
    ));
    let mut rx = Receiver::<u64>::open_with(&name, &opts).unwrap();
    tx.send(7).unwrap();
    assert_eq!(rx.recv(), Ok(7));
    assert!(matches!(shmkit::remove(&name), Err(Error::NotFound { .. })));
    shmkit::remove_with(&name, &opts).unwrap();
    assert!(!dir.join(format!("shmkit.{name}")).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_type_tag_lets_two_definitions_of_one_layout_agree() {
    let name = name("tag");
    let tagged = Options::new().type_tag(0x5eed);
    let mut tx = Sender::<Reading>::create_with(&name, 4, &tagged).unwrap();
    // By type name the two definitions differ ...
    match Receiver::<Sample>::open(&name) {
        Err(Error::WrongType {
            expected, found, ..
        }) => {
            assert_eq!((expected.size, expected.align), (found.size, found.align));
            assert!(found.name.ends_with("Reading"), "{}", found.name);
            assert_eq!(found.fingerprint, 0x5eed);
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    // ... a different tag is refused too ...
    let other = Options::new().type_tag(0x5eee);
    assert!(matches!(
        Receiver::<Sample>::open_with(&name, &other),
        Err(Error::WrongType { .. })
    ));
    // ... and the same tag is accepted; size and alignment still must match.
    let mut rx = Receiver::<Sample>::open_with(&name, &tagged).unwrap();
    assert!(matches!(
        Receiver::<[u8; 8]>::open_with(&name, &tagged),
        Err(Error::WrongType { .. })
    ));
    tx.send(Reading { micros: 42 }).unwrap();
    assert_eq!(rx.recv(), Ok(Sample { t: 42 }));
    shmkit::remove(&name).unwrap();
}
