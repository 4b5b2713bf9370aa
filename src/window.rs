#![allow(non_snake_case)]
//! Window functions that need the whole partition (quantile scores, value tiers).
//!
//! pgrx has no window-function support, so these are plain V1 C functions over PostgreSQL's
//! window API (windowapi.h, not in pgrx's bindings). Each computes the results for the whole
//! partition on its first row, keeps them in partition-local memory and then answers every row in
//! O(1): O(n log n) per partition with no second pass written by the user.

use pgrx::prelude::*;
use std::ffi::{c_int, c_void};

const WINDOW_SEEK_HEAD: c_int = 1;

// Called through `guard` so a PostgreSQL error inside them unwinds Rust frames properly.
mod raw {
    use super::*;
    unsafe extern "C-unwind" {
        pub fn WinGetPartitionLocalMemory(winobj: *mut c_void, sz: usize) -> *mut c_void;
        pub fn WinGetCurrentPosition(winobj: *mut c_void) -> i64;
        pub fn WinGetPartitionRowCount(winobj: *mut c_void) -> i64;
        pub fn WinGetFuncArgInPartition(
            winobj: *mut c_void,
            argno: c_int,
            relpos: c_int,
            seektype: c_int,
            set_mark: bool,
            isnull: *mut bool,
            isout: *mut bool,
        ) -> pg_sys::Datum;
        pub fn WinGetFuncArgCurrent(
            winobj: *mut c_void,
            argno: c_int,
            isnull: *mut bool,
        ) -> pg_sys::Datum;
    }
}

use pg_sys::ffi::pg_guard_ffi_boundary as guard;

unsafe fn WinGetPartitionLocalMemory(w: *mut c_void, sz: usize) -> *mut c_void {
    unsafe { guard(|| raw::WinGetPartitionLocalMemory(w, sz)) }
}
unsafe fn WinGetCurrentPosition(w: *mut c_void) -> i64 {
    unsafe { guard(|| raw::WinGetCurrentPosition(w)) }
}
unsafe fn WinGetPartitionRowCount(w: *mut c_void) -> i64 {
    unsafe { guard(|| raw::WinGetPartitionRowCount(w)) }
}
#[allow(clippy::too_many_arguments)]
unsafe fn WinGetFuncArgInPartition(
    w: *mut c_void,
    argno: c_int,
    relpos: c_int,
    seek: c_int,
    mark: bool,
    isnull: *mut bool,
    isout: *mut bool,
) -> pg_sys::Datum {
    unsafe { guard(|| raw::WinGetFuncArgInPartition(w, argno, relpos, seek, mark, isnull, isout)) }
}
unsafe fn WinGetFuncArgCurrent(w: *mut c_void, argno: c_int, isnull: *mut bool) -> pg_sys::Datum {
    unsafe { guard(|| raw::WinGetFuncArgCurrent(w, argno, isnull)) }
}

pub struct Window(*mut c_void);

impl Window {
    /// # Safety
    /// `fcinfo` must be the call info of a function declared `WINDOW` in SQL.
    pub unsafe fn of(fcinfo: pg_sys::FunctionCallInfo) -> Self {
        let ctx = unsafe { (*fcinfo).context };
        if ctx.is_null() || unsafe { (*ctx).type_ } != pg_sys::NodeTag::T_WindowObjectData {
            error!("clv_ext window function called without OVER ()");
        }
        Window(ctx as *mut c_void)
    }

    /// An argument of the current row (for arguments that must be constant over the partition).
    pub fn current_arg<T: FromDatum>(&self, argno: i32) -> Option<T> {
        let mut isnull = false;
        unsafe {
            let d = WinGetFuncArgCurrent(self.0, argno, &mut isnull);
            T::from_datum(d, isnull)
        }
    }

    /// The result of the current row; `compute` sees argument `argno` of every row of the
    /// partition (in window order) and is called once per partition.
    pub fn partition_result<A: FromDatum, R: Copy>(
        &self,
        argno: i32,
        compute: impl FnOnce(&[Option<A>]) -> Vec<R>,
    ) -> R {
        const _: () = assert!(std::mem::align_of::<u64>() == 8);
        assert!(std::mem::align_of::<R>() <= 8);
        unsafe {
            let n = WinGetPartitionRowCount(self.0) as usize;
            // Layout: a u64 "computed" flag (the memory starts zeroed), then n results.
            let mem =
                WinGetPartitionLocalMemory(self.0, 8 + n * std::mem::size_of::<R>()) as *mut u8;
            let flag = mem as *mut u64;
            let results = mem.add(8) as *mut R;
            if *flag == 0 {
                let mut values = Vec::with_capacity(n);
                for i in 0..n {
                    let (mut isnull, mut isout) = (false, false);
                    let d = WinGetFuncArgInPartition(
                        self.0,
                        argno,
                        i as c_int,
                        WINDOW_SEEK_HEAD,
                        false,
                        &mut isnull,
                        &mut isout,
                    );
                    values.push(A::from_datum(d, isnull || isout));
                    if i % 4096 == 0 {
                        check_for_interrupts!();
                    }
                }
                let out = compute(&values);
                assert_eq!(out.len(), n, "one result per row");
                std::ptr::copy_nonoverlapping(out.as_ptr(), results, n);
                *flag = 1;
            }
            *results.add(WinGetCurrentPosition(self.0) as usize)
        }
    }
}
