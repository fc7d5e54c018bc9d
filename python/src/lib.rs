//! The native half of the `shmkit` Python package (`shmkit._shmkit`): the
//! classes over the Rust crate's handles. `python/shmkit/__init__.py`
//! re-exports them with the pure-Python parts (the exceptions, `Pipe`).
//!
//! One module per Python class; what every blocking call shares (releasing
//! the GIL, `timeout=`, Ctrl-C) is in `wait`, the typecode dispatch of
//! `Value` and `Array` in `typecode`, the error mapping in `errors`.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use pyo3::prelude::*;

mod array;
mod dict;
mod errors;
mod fastpickle;
mod inspect;
mod lock;
mod locks;
mod pipe;
mod queue;
mod typecode;
mod typed_queue;
mod value;
mod wait;

#[pymodule]
fn _shmkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<value::Value>()?;
    m.add_class::<array::Array>()?;
    m.add_class::<lock::RLock>()?;
    m.add_class::<locks::Lock>()?;
    m.add_class::<locks::Event>()?;
    m.add_class::<locks::Semaphore>()?;
    m.add_class::<locks::BoundedSemaphore>()?;
    m.add_class::<locks::Condition>()?;
    m.add_class::<locks::Barrier>()?;
    m.add_class::<dict::Dict>()?;
    m.add_class::<pipe::Connection>()?;
    m.add_class::<queue::Queue>()?;
    m.add_class::<queue::JoinableQueue>()?;
    m.add_class::<queue::SimpleQueue>()?;
    m.add_class::<typed_queue::TypedQueue>()?;
    m.add_function(wrap_pyfunction!(typed_queue::layout, m)?)?;
    m.add_class::<inspect::SegmentInfo>()?;
    m.add_function(wrap_pyfunction!(inspect::remove, m)?)?;
    m.add_function(wrap_pyfunction!(inspect::ls, m)?)?;
    m.add_function(wrap_pyfunction!(inspect::inspect, m)?)?;
    m.add("MAX_NAME_LEN", shmkit::MAX_NAME_LEN)?;
    m.add("TYPECODES", typecode::TYPECODES)?;
    m.add("DEFAULT_PIPE_CAPACITY", pipe::DEFAULT_CAPACITY)?;
    m.add("DEFAULT_QUEUE_MAXSIZE", queue::DEFAULT_MAXSIZE)?;
    m.add("DEFAULT_ITEM_SIZE", queue::DEFAULT_ITEM_SIZE)?;
    Ok(())
}
