//! Everything the process logs, at every level, while a test holds a capture, kept in memory so
//! the test can search it (e.g. for a secret that must never be logged).
//!
//! The subscriber has to be global (a test's tasks run on the runtime's worker threads, which a
//! thread's default subscriber would not reach), so it is installed once per process. A test
//! binary holds many unrelated tests, so it records only while some capture is held, and into
//! every capture held at that moment: a capture sees all of its own test's lines (and those of
//! any test running alongside), and the other tests do not pay for TRACE-level formatting.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

type Buffer = Arc<Mutex<Vec<u8>>>;

/// The buffers of the captures held now.
static HELD: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());
/// How many captures are held: checked on every log line, so not behind the lock.
static HOLDERS: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

/// What the process logged since [`capture`] returned it; recording stops when it is dropped.
pub struct Captured(Buffer);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        let mut held = HELD.lock().expect("held captures");
        held.retain(|b| !Arc::ptr_eq(b, &self.0));
        HOLDERS.store(held.len(), Ordering::SeqCst);
    }
}

/// Writes each formatted line into every held capture.
struct ToHeld;

impl Write for ToHeld {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for b in HELD.lock().expect("held captures").iter() {
            b.lock().expect("log buffer").extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ToHeld {
    type Writer = ToHeld;
    fn make_writer(&'a self) -> Self::Writer {
        ToHeld
    }
}

/// Installs (once per process) a TRACE-level subscriber that records while a capture is held,
/// and starts a capture.
pub fn capture() -> Captured {
    INSTALL.call_once(|| {
        let recording =
            tracing_subscriber::filter::filter_fn(|_| HOLDERS.load(Ordering::SeqCst) > 0);
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(ToHeld)
                    .with_filter(recording),
            )
            .init();
    });
    let buffer = Buffer::default();
    let mut held = HELD.lock().expect("held captures");
    held.push(buffer.clone());
    HOLDERS.store(held.len(), Ordering::SeqCst);
    Captured(buffer)
}
