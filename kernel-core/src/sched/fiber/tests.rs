//! Unit tests on stacks from the host allocator.

extern crate std;

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use std::sync::mpsc;
use std::thread;

use super::*;

/// A stack from the heap; the memory does not move with the value.
struct HeapStack(Box<[u128]>);

impl HeapStack {
    fn new(bytes: usize) -> Self {
        Self(vec![0u128; bytes / 16].into_boxed_slice())
    }
}

// SAFETY: the boxed slice is owned, does not move when the box does, is
// 16-byte aligned (`u128`) and a multiple of 16 bytes long; tests use at
// least `MIN_STACK` bytes.
unsafe impl FiberStack for HeapStack {
    fn bounds(&self) -> Range<usize> {
        let r = self.0.as_ptr_range();
        r.start as usize..r.end as usize
    }
}

const STACK: usize = 64 * 1024;

#[test]
fn runs_to_completion_then_finished_forever() {
    let runs = &SyncCell(Cell::new(0));
    let mut f = Fiber::new(HeapStack::new(STACK), move |_| {
        runs.0.set(runs.0.get() + 1);
    });
    assert!(!f.is_finished());
    assert_eq!(f.resume(), Resume::Finished);
    assert!(f.is_finished());
    for _ in 0..3 {
        assert_eq!(f.resume(), Resume::Finished);
    }
    drop(f);
    assert_eq!(runs.0.get(), 1);
}

/// A `Cell` the bodies (which must be `Send`) may borrow.
struct SyncCell<T>(Cell<T>);
// SAFETY: only one test's fibers and their resumer touch it, on one
// thread, one at a time (a fiber runs only inside `resume`).
unsafe impl<T: Send> Sync for SyncCell<T> {}

#[test]
fn two_fibers_ping_pong_10000_times() {
    const ROUNDS: u64 = 10_000;
    let ball = SyncCell(Cell::new(0u64));
    let ball = &ball;
    let mut ping = Fiber::new(HeapStack::new(STACK), move |s| {
        for i in 0..ROUNDS {
            assert_eq!(ball.0.get(), 2 * i);
            ball.0.set(2 * i + 1);
            s.suspend();
        }
    });
    let mut pong = Fiber::new(HeapStack::new(STACK), move |s| {
        for i in 0..ROUNDS {
            assert_eq!(ball.0.get(), 2 * i + 1);
            ball.0.set(2 * i + 2);
            s.suspend();
        }
    });
    for _ in 0..ROUNDS {
        assert_eq!(ping.resume(), Resume::Suspended);
        assert_eq!(pong.resume(), Resume::Suspended);
    }
    assert_eq!(ping.resume(), Resume::Finished);
    assert_eq!(pong.resume(), Resume::Finished);
    assert_eq!(ball.0.get(), 2 * ROUNDS);
}

#[test]
fn resumed_from_two_threads_keeps_its_locals() {
    const ROUNDS: u64 = 200;
    let fiber = Fiber::new(HeapStack::new(STACK), |s| {
        let mut locals = [0u64; 16];
        let mut sum = 0u64;
        for i in 0..ROUNDS {
            for (j, l) in locals.iter_mut().enumerate() {
                *l += i * j as u64;
            }
            sum += i;
            s.suspend();
            // Whichever thread resumed us, the locals are ours.
            for (j, l) in locals.iter().enumerate() {
                assert_eq!(*l, j as u64 * i * (i + 1) / 2);
            }
            assert_eq!(sum, i * (i + 1) / 2);
        }
    });
    // SAFETY: the body holds only integers across suspends.
    let fiber = unsafe { SendFiber::new(fiber) };
    let (to_b, from_a) = mpsc::channel::<SendFiber<'static, HeapStack>>();
    let (to_a, from_b) = mpsc::channel::<SendFiber<'static, HeapStack>>();
    let b = thread::spawn(move || {
        let mut resumes = 0;
        while let Ok(mut f) = from_a.recv() {
            let r = f.resume();
            resumes += 1;
            let done = r == Resume::Finished;
            if to_a.send(f).is_err() || done {
                break;
            }
        }
        resumes
    });
    let mut f = fiber;
    let mut resumes_a = 0;
    let finished_on_a = loop {
        resumes_a += 1;
        if f.resume() == Resume::Finished {
            break true;
        }
        to_b.send(f).expect("thread b is alive");
        f = from_b.recv().expect("thread b sends the fiber back");
        if f.is_finished() {
            break false;
        }
    };
    drop(to_b);
    let resumes_b = b.join().expect("thread b did not panic");
    assert!(finished_on_a || f.is_finished());
    assert_eq!(resumes_a + resumes_b, ROUNDS + 1);
    assert!(resumes_a > 1 && resumes_b > 1);
}

#[inline(never)]
fn mix(x: f64, i: u32) -> f64 {
    core::hint::black_box(x * 1.000_001 + f64::from(i).sqrt())
}

#[test]
fn float_registers_survive_switches() {
    const ROUNDS: u32 = 1000;
    let expected = |seed: f64| {
        let (mut a, mut b, mut c) = (seed, seed * 2.0, seed * 3.0);
        for i in 0..ROUNDS {
            a = mix(a, i);
            b = mix(b, i + 1);
            c = mix(c, i + 2);
        }
        a + b * 10.0 + c * 100.0
    };
    let out = [SyncCell(Cell::new(0.0f64)), SyncCell(Cell::new(0.0f64))];
    let out = &out;
    let body = |k: usize, seed: f64| {
        move |s: &Suspender| {
            // Values live across suspends: the compiler keeps them in
            // callee-saved float registers or on the stack.
            let (mut a, mut b, mut c) = (seed, seed * 2.0, seed * 3.0);
            for i in 0..ROUNDS {
                a = mix(a, i);
                s.suspend();
                b = mix(b, i + 1);
                s.suspend();
                c = mix(c, i + 2);
            }
            out[k].0.set(a + b * 10.0 + c * 100.0);
        }
    };
    let mut f1 = Fiber::new(HeapStack::new(STACK), body(0, 1.5));
    let mut f2 = Fiber::new(HeapStack::new(STACK), body(1, -7.25));
    // The resumer keeps float values live across resumes too.
    let (mut x, mut y) = (0.5f64, 0.25f64);
    loop {
        let r1 = f1.resume();
        x = mix(x, 3);
        let r2 = f2.resume();
        y = mix(y, 5);
        if r1 == Resume::Finished && r2 == Resume::Finished {
            break;
        }
    }
    let (mut ex, mut ey) = (0.5f64, 0.25f64);
    for _ in 0..=2 * ROUNDS {
        ex = mix(ex, 3);
        ey = mix(ey, 5);
    }
    assert_eq!(out[0].0.get().to_bits(), expected(1.5).to_bits());
    assert_eq!(out[1].0.get().to_bits(), expected(-7.25).to_bits());
    assert_eq!((x.to_bits(), y.to_bits()), (ex.to_bits(), ey.to_bits()));
}

#[test]
fn nested_fibers() {
    let log = SyncCell(Cell::new(Vec::new()));
    let log = &log;
    let push = move |v: u32| {
        let mut l = log.0.take();
        l.push(v);
        log.0.set(l);
    };
    let mut outer = Fiber::new(HeapStack::new(STACK), move |so| {
        push(1);
        let mut inner = Fiber::new(HeapStack::new(STACK), move |si| {
            push(2);
            si.suspend();
            push(4);
            si.suspend();
            push(7);
        });
        assert_eq!(inner.resume(), Resume::Suspended);
        push(3);
        so.suspend();
        assert_eq!(inner.resume(), Resume::Suspended);
        push(5);
        so.suspend();
        assert_eq!(inner.resume(), Resume::Finished);
        push(8);
        assert_eq!(inner.resume(), Resume::Finished);
    });
    assert_eq!(outer.resume(), Resume::Suspended); // after 3
    assert_eq!(outer.resume(), Resume::Suspended); // after 5
    push(6);
    assert_eq!(outer.resume(), Resume::Finished);
    assert_eq!(log.0.take(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn thousand_fibers_alive_at_once() {
    const N: usize = 1000;
    let total = SyncCell(Cell::new(0usize));
    let total = &total;
    let mut fibers: Vec<_> = (0..N)
        .map(|i| {
            Fiber::new(HeapStack::new(16 * 1024), move |s| {
                let mine = i;
                s.suspend();
                total.0.set(total.0.get() + mine);
                s.suspend();
            })
        })
        .collect();
    for f in &mut fibers {
        assert_eq!(f.resume(), Resume::Suspended);
    }
    for f in fibers.iter_mut().rev() {
        assert_eq!(f.resume(), Resume::Suspended);
    }
    for f in &mut fibers {
        assert_eq!(f.resume(), Resume::Finished);
    }
    assert_eq!(total.0.get(), N * (N - 1) / 2);
}

/// Counts drops, to see which destructors run.
struct Tally<'a>(&'a SyncCell<u32>);
impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.0.0.set(self.0.0.get() + 1);
    }
}

#[test]
fn dropping_fresh_fiber_drops_the_closure_suspended_one_leaks() {
    let drops = SyncCell(Cell::new(0));
    let t = Tally(&drops);
    let fresh = Fiber::new(HeapStack::new(STACK), move |_| drop(t));
    drop(fresh);
    assert_eq!(drops.0.get(), 1, "a fiber that never ran drops its closure");

    let t = Tally(&drops);
    let mut parked = Fiber::new(HeapStack::new(STACK), move |s| {
        let _t = t;
        s.suspend();
    });
    assert_eq!(parked.resume(), Resume::Suspended);
    drop(parked);
    assert_eq!(drops.0.get(), 1, "abandoned frames run no destructor");

    let t = Tally(&drops);
    let mut done = Fiber::new(HeapStack::new(STACK), move |_| drop(t));
    assert_eq!(done.resume(), Resume::Finished);
    assert_eq!(drops.0.get(), 2);
    // SAFETY: the fiber finished; nothing is left on its stack.
    let stack = unsafe { done.into_stack() };
    assert_eq!(stack.0.len(), STACK / 16);
}

#[test]
fn stack_bounds_are_the_stack() {
    let stack = HeapStack::new(STACK);
    let want = stack.bounds();
    let inside = SyncCell(Cell::new(0usize));
    let inside_ref = &inside;
    let mut f = Fiber::new(stack, move |_| {
        let local = 0u8;
        inside_ref.0.set(core::ptr::from_ref(&local) as usize);
    });
    assert_eq!(f.stack_bounds(), want);
    assert_eq!(f.resume(), Resume::Finished);
    assert!(want.contains(&inside.0.get()));
}

/// x86_64 has no callee-saved float registers, but MXCSR is callee-saved:
/// a rounding mode set inside a fiber stays with the fiber.
#[cfg(target_arch = "x86_64")]
#[test]
fn mxcsr_is_per_fiber() {
    fn get() -> u32 {
        let mut v = 0u32;
        // SAFETY: stores MXCSR into a local.
        unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &raw mut v, options(nostack)) };
        v
    }
    fn set(v: u32) {
        // SAFETY: loads a valid MXCSR value (exceptions masked).
        unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &raw const v, options(nostack)) };
    }
    const ROUND_DOWN: u32 = 1 << 13;
    let outside = get();
    let mut f = Fiber::new(HeapStack::new(STACK), |s| {
        set(get() | ROUND_DOWN);
        s.suspend();
        assert_eq!(get() & (3 << 13), ROUND_DOWN);
        set(get() & !(3 << 13));
    });
    assert_eq!(f.resume(), Resume::Suspended);
    assert_eq!(get(), outside);
    assert_eq!(f.resume(), Resume::Finished);
    assert_eq!(get(), outside);
}
