//! `#[derive(shmkit::Element)]` in a crate that, like a user's, depends on
//! shmkit and not on bytemuck.

use shmkit::element::Description;

fn text<T: shmkit::Element>() -> String {
    Description::of::<T>().unwrap().as_str().to_owned()
}

#[derive(Clone, Copy, Debug, PartialEq, shmkit::Element)]
#[repr(C)]
struct Reading {
    at_micros: u64,
    value: f32,
    sensor: [u8; 2],
    _pad: [u8; 2],
}

#[derive(Clone, Copy, shmkit::Element)]
#[repr(C)]
struct Point {
    x: f32,
    y: f32,
}

/// Nested structs and arrays of them.
#[derive(Clone, Copy, shmkit::Element)]
#[repr(C)]
struct Track {
    id: u32,
    flags: u16,
    kind: i16,
    points: [Point; 2],
    last: Reading,
}

#[derive(Clone, Copy, shmkit::Element)]
#[repr(C)]
struct Tuple(i64, [u16; 4]);

#[derive(Clone, Copy, shmkit::Element)]
#[repr(C)]
struct Unit;

#[derive(Clone, Copy, shmkit::Element)]
#[repr(transparent)]
struct Meters(f64);

#[derive(Clone, Copy, shmkit::Element)]
#[repr(C, packed)]
struct Packed {
    tag: u8,
    value: u32,
}

#[test]
fn descriptions_flatten_structs_and_merge_runs() {
    assert_eq!(text::<Reading>(), "size 16 align 8 {0:u64,8:f32,12:u8[4]}");
    assert_eq!(text::<Point>(), "size 8 align 4 {0:f32[2]}");
    // `points` is four f32 in a row; `last` starts with a u64.
    assert_eq!(
        text::<Track>(),
        "size 40 align 8 {0:u32,4:u16,6:i16,8:f32[4],24:u64,32:f32,36:u8[4]}"
    );
    assert_eq!(text::<Tuple>(), "size 16 align 8 {0:i64,8:u16[4]}");
    assert_eq!(text::<Unit>(), "size 0 align 1 {}");
    assert_eq!(text::<Meters>(), "size 8 align 8 {0:f64}");
    assert_eq!(text::<Packed>(), "size 5 align 1 {0:u8,1:u32}");
    assert_eq!(
        text::<[Point; 3]>(),
        "size 24 align 4 {0:f32[6]}",
        "an array of structs of one primitive is one run"
    );
}

#[test]
fn equal_layouts_have_equal_descriptions_whatever_the_names() {
    mod other {
        #[derive(Clone, Copy, shmkit::Element)]
        #[repr(C)]
        pub struct Reading {
            pub t: u64,
            pub v: f32,
            pub bytes: [u8; 4],
        }
    }
    let (a, b) = (
        Description::of::<Reading>().unwrap(),
        Description::of::<other::Reading>().unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a, Description::of::<[u8; 16]>().unwrap());
}

#[test]
fn derived_types_are_pod_through_shmkit_s_bytemuck() {
    let r = Reading {
        at_micros: 1,
        value: 2.0,
        sensor: [3, 4],
        _pad: [0; 2],
    };
    let bytes = shmkit::bytemuck::bytes_of(&r);
    assert_eq!(bytes.len(), 16);
    assert_eq!(shmkit::bytemuck::pod_read_unaligned::<Reading>(bytes), r);
    let zero: Reading = shmkit::bytemuck::Zeroable::zeroed();
    assert_eq!(zero.at_micros, 0);
}
