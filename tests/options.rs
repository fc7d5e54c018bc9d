//! `Options` that change where a segment lives and how its element type is
//! identified.

use shmkit::spsc::{Receiver, Sender};
use shmkit::{Error, Options};

#[derive(Clone, Copy, shmkit::Element, Debug, PartialEq)]
#[repr(C)]
struct Reading {
    micros: u64,
}

/// Another crate's definition of the same layout: same size, alignment and
/// primitives, another type name.
#[derive(Clone, Copy, shmkit::Element, Debug, PartialEq)]
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
fn types_agree_by_layout_and_a_different_layout_is_refused_with_both() {
    let name = name("layout");
    let mut tx = Sender::<Reading>::create(&name, 4).unwrap();
    // Same layout, another name: attaches.
    let mut rx = Receiver::<Sample>::open(&name).unwrap();
    tx.send(Reading { micros: 42 }).unwrap();
    assert_eq!(rx.recv(), Ok(Sample { t: 42 }));
    drop(rx);
    // Same size and alignment, another primitive: refused.
    let err = Receiver::<f64>::open(&name).unwrap_err();
    let msg = err.to_string();
    for needle in [
        "size 8 align 8 {0:u64}",
        "size 8 align 8 {0:f64}",
        "the layouts differ",
        "Options::type_tag",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
    match err {
        Error::WrongType {
            expected, found, ..
        } => {
            assert_eq!(expected.layout, "size 8 align 8 {0:f64}");
            assert_eq!(found.layout, "size 8 align 8 {0:u64}");
            assert!(found.name.ends_with("Reading"), "{}", found.name);
            assert!(!expected.tagged && !found.tagged);
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    shmkit::remove(&name).unwrap();
}

#[test]
fn a_type_tag_makes_the_tag_matter_instead_of_the_layout() {
    let name = name("tag");
    let tagged = Options::new().type_tag(0x5eed);
    let mut tx = Sender::<Reading>::create_with(&name, 4, &tagged).unwrap();
    // Without the tag, even the same layout is refused ...
    let why = |r: Result<Receiver<Sample>, Error>| match r {
        Err(e @ Error::WrongType { .. }) => e.to_string(),
        other => panic!("expected WrongType, got {other:?}"),
    };
    let msg = why(Receiver::<Sample>::open(&name));
    assert!(msg.contains("creator set Options::type_tag"), "{msg}");
    assert!(msg.contains("type tag 0x5eed"), "{msg}");
    // ... a different tag is refused ...
    let msg = why(Receiver::<Sample>::open_with(
        &name,
        &Options::new().type_tag(0x5eee),
    ));
    assert!(msg.contains("the type tags differ"), "{msg}");
    // ... and the same tag is accepted; size and alignment still must match.
    let mut rx = Receiver::<Sample>::open_with(&name, &tagged).unwrap();
    match Receiver::<[u8; 8]>::open_with(&name, &tagged) {
        Err(e @ Error::WrongType { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("sizes or alignments differ"), "{msg}");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    tx.send(Reading { micros: 42 }).unwrap();
    assert_eq!(rx.recv(), Ok(Sample { t: 42 }));
    shmkit::remove(&name).unwrap();

    // An untagged segment refuses a tagged handle of the same layout.
    let mut tx = Sender::<Reading>::create(&name, 4).unwrap();
    match Receiver::<Sample>::open_with(&name, &tagged) {
        Err(e @ Error::WrongType { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("this handle sets Options::type_tag"), "{msg}");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert_eq!(tx.try_send(Reading { micros: 1 }), Ok(()));
    shmkit::remove(&name).unwrap();
}

#[derive(Clone, Copy, shmkit::Element)]
#[repr(C)]
struct Pair {
    a: u32,
    b: i32,
}

/// Two types whose descriptions are longer than a header keeps and differ
/// only at the end.
#[derive(Clone, Copy, shmkit::Element)]
#[repr(C)]
struct LongU {
    pairs: [Pair; 60],
    last: u32,
}

#[derive(Clone, Copy, shmkit::Element)]
#[repr(C)]
struct LongI {
    pairs: [Pair; 60],
    last: i32,
}

#[test]
fn long_layouts_are_compared_whole_and_shown_cut() {
    let name = name("long");
    let long = shmkit::element::Description::of::<LongU>().unwrap();
    assert!(long.as_str().len() > shmkit::layout::header::ELEM_LAYOUT_ROOM);
    let _tx = Sender::<LongU>::create(&name, 2).unwrap();
    assert!(Receiver::<LongU>::open(&name).is_ok());
    match Receiver::<LongI>::open(&name) {
        Err(Error::WrongType {
            expected, found, ..
        }) => {
            // The caller's layout is whole (its last pair's `b` and `last`
            // are one run); the header's is its start.
            assert!(
                expected.layout.ends_with(",472:u32,476:i32[2]}"),
                "{}",
                expected.layout
            );
            assert_eq!(found.layout_len, long.as_str().len());
            assert_eq!(
                found.layout,
                long.as_str()[..shmkit::layout::header::ELEM_LAYOUT_ROOM]
            );
            assert!(found.to_string().contains("..."), "{found}");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    shmkit::remove(&name).unwrap();
}

/// A hand-written `describe` that forgets a field.
#[derive(Clone, Copy)]
#[repr(C)]
struct Forgetful {
    a: u32,
    b: u32,
}
// SAFETY: `repr(C)`, two `u32`: no padding, every bit pattern valid.
unsafe impl shmkit::bytemuck::Zeroable for Forgetful {}
// SAFETY: as above.
unsafe impl shmkit::bytemuck::Pod for Forgetful {}
impl shmkit::Element for Forgetful {
    fn describe(at: usize, out: &mut shmkit::element::Leaves) {
        out.field::<u32>(at);
    }
}

#[test]
fn a_wrong_hand_written_description_is_an_error_when_attaching() {
    let name = name("forgetful");
    match Sender::<Forgetful>::create(&name, 2) {
        Err(Error::InvalidArgument(why)) => {
            assert!(why.contains("Element::describe"), "{why}")
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert!(matches!(shmkit::remove(&name), Err(Error::NotFound { .. })));
}
