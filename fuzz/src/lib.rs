//! Helpers shared by the fuzz targets: a counting allocator (to check memory
//! caps) and the property checks several targets make.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the bytes live on this thread and their
/// peak since the last [`Counting::reset`]. libFuzzer runs a target on one
/// thread, so a thread-local count is exact for the code under test.
pub struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grow(by: usize) {
    // try_with: the allocator also runs while thread-locals are torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(by);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrink(by: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(by)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grow(new_size - layout.size());
        } else {
            shrink(layout.size() - new_size);
        }
        System.realloc(ptr, layout, new_size)
    }
}

impl Counting {
    /// Run `f` and return its result with the peak number of bytes it had
    /// allocated at once (above what was live when it started).
    pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let base = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(base));
        let out = f();
        let peak = PEAK.with(Cell::get);
        (out, peak.saturating_sub(base))
    }
}

/// Reasons are shown to users and logged: they must stay short whatever the
/// input (names are cut to 80 characters by `printable`).
pub const MAX_REASON_BYTES: usize = 2048;

pub fn assert_bounded_reason(reason: &str) {
    assert!(!reason.trim().is_empty(), "an empty reason");
    assert!(
        reason.len() <= MAX_REASON_BYTES,
        "a reason of {} bytes: {:?}…",
        reason.len(),
        &reason.chars().take(200).collect::<String>()
    );
}

/// The first component of a problem path (`layers[2].bucket` → `layers`).
pub fn top_field(path: &str) -> &str {
    let end = path.find(['.', '[']).unwrap_or(path.len());
    &path[..end]
}

/// Each problem names a field: a non-empty path whose first component is one
/// of `fields`.
pub fn assert_problems_name_fields(problems: &lakeops_shared::validate::Problems, fields: &[&str]) {
    assert!(!problems.is_empty(), "an error without a problem");
    for (path, problem) in problems.iter() {
        assert!(
            fields.contains(&top_field(path)),
            "problem `{problem}` is under `{path}`, not a field of the document"
        );
        assert!(!problem.trim().is_empty(), "an empty problem at `{path}`");
    }
}

/// Split the input: the first byte (0 when empty) and the rest.
pub fn split_first(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    }
}
