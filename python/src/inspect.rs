//! `shmkit.remove`, `shmkit.ls` and `shmkit.inspect`: the library side of
//! the `shmkit rm`, `ls` and `inspect` commands.

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use crate::errors::AttachResult;

/// Removes the named segment. Processes attached to it keep using it until
/// they let go; nobody new can attach. `NotFoundError` if there is none.
/// Nothing is ever removed implicitly.
#[pyfunction]
pub fn remove(py: Python<'_>, name: &str) -> PyResult<()> {
    shmkit::remove(name).py(py)
}

/// What `shmkit.ls()` and `shmkit.inspect()` say of one segment.
#[pyclass(frozen, get_all, module = "shmkit")]
pub struct SegmentInfo {
    /// The segment name.
    name: String,
    /// `'spsc'`, `'mpmc'`, `'pipe'`, `'duplex'`, `'value'`, `'array'`;
    /// `'unknown'` or `'-'` for what this version cannot decode.
    kind: String,
    /// The file's length in bytes.
    size: u64,
    /// The file.
    path: String,
    /// Items (queues), elements (arrays), 1 (values), bytes per ring
    /// (pipes); `None` without a readable header.
    capacity: Option<u64>,
    /// The element type's layout description (`size 4 align 4 {0:i32}`).
    element: Option<String>,
    /// Items or bytes queued (queues and pipes).
    used: Option<u64>,
    /// What a value holds, or an array's first elements, as text.
    contents: Option<String>,
    /// Attached processes: `(pid, role, alive)`.
    peers: Vec<(u32, String, bool)>,
    /// No live process is attached (what a crash leaves behind).
    stale: bool,
    /// Removed while processes still had it mapped.
    removed: bool,
    /// What is wrong with it, one sentence each; empty when healthy.
    problems: Vec<String>,
}

impl SegmentInfo {
    fn of(r: shmkit::inspect::Report) -> SegmentInfo {
        SegmentInfo {
            kind: r.kind_name().to_owned(),
            name: r.name,
            size: r.len,
            path: r.path.display().to_string(),
            capacity: r.header.as_ref().map(|h| h.capacity),
            element: r.header.as_ref().map(|h| h.elem.layout.clone()),
            used: r.fill.map(|f| f.used),
            contents: r.contents,
            peers: r
                .peers
                .into_iter()
                .map(|p| (p.pid, p.role, p.alive))
                .collect(),
            stale: r.stale,
            removed: r.removed,
            problems: r.problems,
        }
    }
}

#[pymethods]
impl SegmentInfo {
    fn __repr__(&self) -> String {
        let capacity = self
            .capacity
            .map_or_else(|| "None".to_owned(), |c| c.to_string());
        format!(
            "SegmentInfo(name={:?}, kind={:?}, size={}, capacity={capacity}, peers={}, stale={})",
            self.name,
            self.kind,
            self.size,
            self.peers.len(),
            if self.stale { "True" } else { "False" }
        )
    }
}

/// Every shmkit segment in `/dev/shm`, sorted by name, as `SegmentInfo`s.
/// Reads them without attaching or writing; never waits.
#[pyfunction]
pub fn ls(py: Python<'_>) -> PyResult<Vec<SegmentInfo>> {
    let reports = py
        .detach(|| shmkit::inspect::list(&shmkit::Options::new()))
        .map_err(|e| PyOSError::new_err(format!("cannot list segments: {e}")))?;
    Ok(reports.into_iter().map(SegmentInfo::of).collect())
}

/// The `SegmentInfo` of one segment. `NotFoundError` if there is none.
#[pyfunction]
pub fn inspect(py: Python<'_>, name: &str) -> PyResult<SegmentInfo> {
    let r = py
        .detach(|| shmkit::inspect::inspect(name, &shmkit::Options::new()))
        .py(py)?;
    Ok(SegmentInfo::of(r))
}
