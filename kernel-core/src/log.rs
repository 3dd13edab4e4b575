//! A `tracing` subscriber that writes events to a [`Console`], for platforms
//! without a richer one (riscv). Hosted builds use `tracing-subscriber`.
//!
//! Each event becomes one line `LEVEL target: message key=value ...`,
//! formatted on the stack (no heap per event) and cut at 256 bytes. Spans are
//! accepted and ignored.

use core::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::cmdline::LogLevel;
use crate::fmtbuf::StackBuf;
use crate::hal::Console;

/// Writes events at or above a level to a console.
pub struct ConsoleSubscriber<C: 'static> {
    console: &'static C,
    max: Option<Level>,
}

impl<C: Console + Sync + 'static> ConsoleSubscriber<C> {
    /// A subscriber for `console` that keeps events up to `level`.
    pub const fn new(console: &'static C, level: LogLevel) -> Self {
        let max = match level {
            LogLevel::Off => None,
            LogLevel::Error => Some(Level::ERROR),
            LogLevel::Warn => Some(Level::WARN),
            LogLevel::Info => Some(Level::INFO),
            LogLevel::Debug => Some(Level::DEBUG),
            LogLevel::Trace => Some(Level::TRACE),
        };
        Self { console, max }
    }

    /// Make this the process-wide default subscriber. Returns false when
    /// one was installed before (which then stays).
    pub fn install(self) -> bool
    where
        C: Send,
    {
        tracing::dispatcher::set_global_default(tracing::Dispatch::new(self)).is_ok()
    }
}

struct Fields<'a, const N: usize>(&'a mut StackBuf<N>);

impl<const N: usize> Visit for Fields<'_, N> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = if field.name() == "message" {
            write!(self.0, " {value:?}")
        } else {
            write!(self.0, " {}={value:?}", field.name())
        };
    }
}

impl<C: Console + Sync + 'static> Subscriber for ConsoleSubscriber<C> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.max.is_some_and(|max| *metadata.level() <= max)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = StackBuf::<256>::new();
        let meta = event.metadata();
        let _ = write!(line, "{:>5} {}:", meta.level(), meta.target());
        event.record(&mut Fields(&mut line));
        let _ = line.write_str("\n");
        self.console.write(line.as_bytes());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}
