//! Training that the host can cancel.
//!
//! The learners are libraries without a cancellation hook: a random forest or a boosting run on a
//! million rows takes seconds to minutes inside one library call. So training runs on a worker
//! thread while the calling (backend) thread waits, running the interrupt check every 10 ms; when
//! the check unwinds (statement_timeout, pg_cancel_backend), the caller leaves at once and the
//! worker is told to stop. The worker cannot be stopped inside a library call; it finishes that
//! call and its result is dropped. At most one such abandoned worker exists per process: the next
//! training waits (still cancellable) until it has finished, so repeated cancellations cannot pile
//! up threads or memory.
//!
//! The worker touches no PostgreSQL state (no palloc, no elog: plain Rust on its own data) and
//! blocks every signal, so PostgreSQL's signal handlers keep running on the backend's own thread.

use crate::Result;
use clv_math::ClvError;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

static ABANDONED: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);

/// Keeps the worker's handle; if the caller unwinds before the result arrives, the handle is
/// parked in `ABANDONED` for the next training to wait on.
struct Guard(Option<JoinHandle<()>>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            if let Ok(mut slot) = ABANDONED.lock() {
                *slot = Some(h);
            }
        }
    }
}

fn wait_for_abandoned() {
    let handle = ABANDONED.lock().ok().and_then(|mut s| s.take());
    if let Some(h) = handle {
        let mut guard = Guard(Some(h));
        while guard.0.as_ref().is_some_and(|h| !h.is_finished()) {
            clv_math::interrupt::check();
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(h) = guard.0.take() {
            let _ = h.join();
        }
    }
}

/// Spawn with every signal blocked: the new thread inherits the mask.
fn spawn_blocked<F: FnOnce() + Send + 'static>(f: F) -> std::io::Result<JoinHandle<()>> {
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let r = std::thread::Builder::new()
            .name("clv_ext training".into())
            .stack_size(8 << 20)
            .spawn(f);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        r
    }
}

/// Run `f` on a worker thread, checking for interrupts every 10 ms while it runs. A panic in
/// `f` becomes an error.
pub fn run<T: Send + 'static, F: FnOnce() -> Result<T> + Send + 'static>(f: F) -> Result<T> {
    wait_for_abandoned();
    let (tx, rx) = mpsc::channel();
    let handle = spawn_blocked(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    })
    .map_err(|e| ClvError::InvalidParameter(format!("could not start the training thread: {e}")))?;
    let mut guard = Guard(Some(handle));
    loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(r) => {
                if let Some(h) = guard.0.take() {
                    let _ = h.join();
                }
                return match r {
                    Ok(v) => v,
                    Err(p) => {
                        let msg = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".into());
                        Err(ClvError::NoConvergence {
                            message: format!("training failed inside the learning library: {msg}"),
                            hint: "check the features for constant or duplicate columns, or change the hyperparameters".into(),
                        })
                    }
                };
            }
            Err(mpsc::RecvTimeoutError::Timeout) => clv_math::interrupt::check(),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(ClvError::NoConvergence {
                    message: "the training thread ended without a result".into(),
                    hint: "retry; report it if it repeats".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_results_and_panics_as_errors() {
        assert_eq!(run(|| Ok(41 + 1)).unwrap(), 42);
        let e = run::<(), _>(|| panic!("boom")).unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
    }
}
