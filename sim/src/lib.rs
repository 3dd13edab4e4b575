//! `sim` as a library: the parts of the simulator that tests share with
//! the command line.

pub mod input;
pub mod spec;
pub mod timeout;
pub mod wast;
