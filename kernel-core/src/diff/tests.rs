//! Unit tests of the oracle's rules and of the record format.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::record::{self, Case, Event, FormatError};
use super::{
    Divergence, Kind, Memories, Outcome, Snapshot, Step, Value, Verdict, compare_states, fnv,
    judge, judge_instantiation,
};

fn ret(v: i32) -> Result<Outcome, String> {
    Ok(Outcome::Returned(vec![Value::I32(v)]))
}

fn trap(k: Kind) -> Result<Outcome, String> {
    Ok(Outcome::Trapped(k))
}

#[test]
fn equal_outcomes_are_the_same_and_unequal_ones_diverge() {
    assert_eq!(judge(&ret(1), &ret(1)), Verdict::Same);
    assert_eq!(judge(&ret(1), &ret(2)), Verdict::Diverged);
    assert_eq!(
        judge(&trap(Kind::Unreachable), &trap(Kind::Unreachable)),
        Verdict::Same
    );
    assert_eq!(
        judge(&trap(Kind::Unreachable), &trap(Kind::MemoryOutOfBounds)),
        Verdict::Diverged
    );
    assert_eq!(judge(&ret(0), &trap(Kind::Unreachable)), Verdict::Diverged);
    assert_eq!(judge(&Err("no cpu".into()), &ret(0)), Verdict::Diverged);
    assert_eq!(judge(&Err("x".into()), &Err("x".into())), Verdict::Diverged);
}

#[test]
fn a_budget_running_out_on_either_side_is_inconclusive() {
    let out = Ok(Outcome::Exhausted);
    assert_eq!(judge(&out, &ret(1)), Verdict::Inconclusive);
    assert_eq!(judge(&trap(Kind::Unreachable), &out), Verdict::Inconclusive);
    assert_eq!(judge(&out, &out), Verdict::Inconclusive);
    assert_eq!(judge_instantiation(&out, &ret(1)), Verdict::Inconclusive);
}

#[test]
fn stack_overflow_matches_only_itself() {
    let so = trap(Kind::StackOverflow);
    assert_eq!(judge(&so, &so), Verdict::SameOverflow);
    // wasmtime's stack is the smaller one: its overflow alone is a
    // budget; Vessel's alone is a divergence.
    assert_eq!(judge(&ret(3), &so), Verdict::Inconclusive);
    assert_eq!(judge(&trap(Kind::Unreachable), &so), Verdict::Inconclusive);
    assert_eq!(judge(&so, &ret(3)), Verdict::Diverged);
    assert_eq!(judge(&so, &trap(Kind::Unreachable)), Verdict::Diverged);
    // An instantiation whose start function overflowed on both sides
    // failed alike.
    assert_eq!(judge_instantiation(&so, &so), Verdict::Same);
}

#[test]
fn states_compare_by_name_and_snapshot() {
    let g = |n: &str, v| (String::from(n), Snapshot::Global(Value::I32(v)));
    let m = |n: &str, hash| (String::from(n), Snapshot::Memory { len: 65536, hash });
    let ours = vec![g("a", 1), m("mem", 7)];
    assert_eq!(
        compare_states(&ours, &[m("mem", 7), g("a", 1)], "f"),
        Ok(())
    );
    let e = compare_states(&ours, &[g("a", 1), m("mem", 8)], "f").unwrap_err();
    assert_eq!(
        e.step,
        Step::State {
            after: "f".into(),
            what: "mem".into()
        }
    );
    let missing: Result<(), Divergence> = compare_states(&ours, &[g("a", 1)], "f");
    assert!(missing.is_err());
}

#[test]
fn fnv_matches_its_reference_values() {
    // FNV-1a 64 test vectors.
    assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(super::fnv_continue(fnv(b"foo"), b"bar"), fnv(b"foobar"));
}

fn sample() -> Case {
    Case {
        seed: 42,
        memories: Memories::Bounded,
        wasm: Some(vec![0, b'a', b's', b'm', 1, 0, 0, 0]),
        events: vec![
            Event::Instantiate {
                outcome: Ok(Outcome::Returned(Vec::new())),
                state: vec![
                    ("g".into(), Snapshot::Global(Value::F64(0x7ff8 << 48))),
                    (
                        "m".into(),
                        Snapshot::Memory {
                            len: 1 << 16,
                            hash: 9,
                        },
                    ),
                ],
            },
            Event::Call {
                export: "f".into(),
                args: vec![
                    Value::I32(-1),
                    Value::I64(i64::MIN),
                    Value::F32(0x7fc0_0000),
                    Value::V128(u128::MAX),
                    Value::Ref { null: true },
                ],
                outcome: Ok(Outcome::Returned(vec![Value::Ref { null: false }])),
                state: Vec::new(),
            },
            Event::Call {
                export: "g".into(),
                args: Vec::new(),
                outcome: trap(Kind::StackOverflow),
                state: Vec::new(),
            },
            Event::Instantiate {
                outcome: Err("wasmtime: out of memory".into()),
                state: Vec::new(),
            },
        ],
    }
}

#[test]
fn cases_and_bundles_round_trip() {
    let a = sample();
    let b = Case {
        seed: 7,
        memories: Memories::GuardPages,
        wasm: None,
        events: Vec::new(),
    };
    let enc = [record::encode_case(&a), record::encode_case(&b)];
    let bundle = record::bundle(&enc);
    let cases = record::cases(&bundle).unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(record::decode_case(cases[0]), Ok(a));
    assert_eq!(record::decode_case(cases[1]), Ok(b));
    assert_eq!(record::cases(&record::bundle(&[])).unwrap().len(), 0);
}

#[test]
fn every_prefix_and_flipped_byte_is_an_error_not_a_panic() {
    let enc = record::encode_case(&sample());
    for n in 0..enc.len() {
        assert!(record::decode_case(&enc[..n]).is_err(), "prefix {n}");
    }
    let mut longer = enc.clone();
    longer.push(0);
    assert_eq!(
        record::decode_case(&longer),
        Err(FormatError::Trailing { at: enc.len() })
    );
    // Any byte flipped decodes to something or to an error; never a panic.
    for i in 0..enc.len() {
        let mut bad = enc.clone();
        bad[i] ^= 0xff;
        let _ = record::decode_case(&bad);
    }
    let bundle = record::bundle(&[enc]);
    for n in 0..bundle.len() {
        assert!(record::cases(&bundle[..n]).is_err(), "bundle prefix {n}");
    }
    for i in 0..bundle.len() {
        let mut bad = bundle.clone();
        bad[i] ^= 1;
        assert!(record::cases(&bad).is_err(), "bundle byte {i} flipped");
    }
}

#[test]
fn hostile_counts_are_refused_before_allocating() {
    // A case claiming 4 G events in a few bytes.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.push(1);
    bytes.push(0);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        record::decode_case(&bytes),
        Err(FormatError::Truncated { at: 10 })
    );
    assert_eq!(
        record::decode_case(&[0; 8].iter().chain(&[7]).copied().collect::<Vec<_>>()),
        Err(FormatError::BadTag { at: 8, tag: 7 })
    );
    assert_eq!(record::cases(b"nope"), Err(FormatError::BadMagic));
}
