//! Exception handling: `try_table`, `throw`, `throw_ref`, and calls that
//! an exception may unwind through.
//!
//! An exception is a store object (`exn`): its tag's identity word, then
//! one 16-byte slot per value ([`EXN_VALUES`]). Inside a `try_table` every
//! call that may throw is a Cranelift `try_call` whose only handler is the
//! default one: the landing block of the innermost open `try_table` of the
//! function, which receives the exception pointer as payload. A landing
//! block compares the exception's tag with each `catch` clause of its
//! `try_table` in order, branches to the first that matches with the
//! values (and, for the `_ref` forms, the exception), and otherwise goes
//! on to the enclosing `try_table`'s landing block; past the outermost it
//! throws the exception on to this function's caller. `throw` and
//! `throw_ref` inside a `try_table` jump straight to the landing block;
//! outside one they call [`Builtin::Throw`], which walks the frame-pointer
//! chain to the nearest call site with a handler (`exn`).
//!
//! Invariants:
//! - INV-EXN-1: a landing block's code is emitted when it is created,
//!   while every frame its catch clauses name is still open, so its
//!   branches exist before those frames' ends are sealed (INV-12); the
//!   landing block itself is sealed with the rest at the function's end,
//!   as `try_call`s inside the `try_table` keep reaching it.
//! - INV-EXN-2: only non-tail calls inside a `try_table` are `try_call`s:
//!   a tail call leaves this frame, and with it its handlers.
//! - INV-EXN-3: the `try_call` callee has the `tail` convention (wasm
//!   functions and host thunks), whose exceptional edge clobbers every
//!   register, so the unwinder restores only the stack and frame pointers
//!   and the payload register.

use alloc::vec::Vec;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    BlockArg, ExceptionTableData, ExceptionTableItem, InstBuilder, MemFlagsData, SigRef, Value,
};
use wasmparser::{Catch, TryTable};

use super::super::exn::EXN_EXPOSED;
use super::{
    Builtin, CompileError, Kind, TRAP_NULL_REFERENCE, TRAP_OUT_OF_MEMORY, TRAP_UNREACHABLE,
    Translator, block_args, ir_type, off32,
};

/// Offset of an exception object's tag identity word.
pub const EXN_TAG: u32 = 0;
/// Offset of an exception object's first value slot (16 bytes each).
pub const EXN_VALUES: u32 = 16;

/// One catch clause, its label resolved to a frame index.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clause {
    /// The tag it catches; `None` catches every exception.
    tag: Option<u32>,
    /// Whether the handler also gets the exception (`catch_ref`,
    /// `catch_all_ref`).
    with_ref: bool,
    /// Index in the control stack of the frame it branches to.
    frame: usize,
}

/// An open `try_table` of the function being translated.
#[derive(Debug)]
pub(super) struct Scope {
    clauses: Vec<Clause>,
    /// Its landing block (one parameter: the exception), made on first
    /// use (INV-EXN-1).
    landing: Option<cranelift_codegen::ir::Block>,
}

/// Who a call goes to.
pub(super) enum Callee {
    /// A function of this module, linked directly.
    Direct(cranelift_codegen::ir::FuncRef),
    /// Code at an address.
    Indirect(Value),
}

impl Translator<'_, '_> {
    /// `try_table`: a block whose calls and throws go to its clauses.
    pub(super) fn try_table(&mut self, t: &TryTable) -> Result<(), CompileError> {
        // Clause labels count from outside the try_table.
        let mut clauses = Vec::with_capacity(t.catches.len());
        for c in &t.catches {
            let (tag, with_ref, label) = match *c {
                Catch::One { tag, label } => (Some(tag), false, label),
                Catch::OneRef { tag, label } => (Some(tag), true, label),
                Catch::All { label } => (None, false, label),
                Catch::AllRef { label } => (None, true, label),
            };
            let frame = (self.control.len())
                .checked_sub(1 + label as usize)
                .ok_or_else(|| self.err("unknown label"))?;
            clauses.push(Clause {
                tag,
                with_ref,
                frame,
            });
        }
        self.open_block(Kind::TryTable, t.ty)?;
        self.scopes.push(Scope {
            clauses,
            landing: None,
        });
        Ok(())
    }

    /// `throw tag`: a new exception with the popped values, thrown.
    pub(super) fn throw(&mut self, tag: u32) -> Result<(), CompileError> {
        let params = self.tag_params(tag)?;
        let values = self.popn(params.len())?;
        let n = super::super::module::len_u32(params.len());
        let ptr = self.ptr();
        let identity = self.vmctx_load(ptr, self.offsets.tag(tag), true);
        let n_v = self
            .b
            .ins()
            .iconst(cranelift_codegen::ir::types::I32, i64::from(n));
        let exn = self.builtin(Builtin::ExnNew, &[identity, n_v])?;
        self.b.ins().trapz(exn, TRAP_OUT_OF_MEMORY);
        for (i, v) in (0u32..).zip(values) {
            self.b
                .ins()
                .store(MemFlagsData::trusted(), v, exn, off32(EXN_VALUES + 16 * i));
        }
        self.throw_exn(exn)
    }

    /// `throw_ref`: throw the popped exception again (null traps).
    pub(super) fn throw_ref(&mut self) -> Result<(), CompileError> {
        let exn = self.pop()?;
        self.b.ins().trapz(exn, TRAP_NULL_REFERENCE);
        self.throw_exn(exn)
    }

    /// Throw `exn` from here: to the innermost open `try_table`'s landing
    /// block, or out of this function.
    fn throw_exn(&mut self, exn: Value) -> Result<(), CompileError> {
        match self.scopes.len().checked_sub(1) {
            Some(i) => {
                let landing = self.landing(i);
                self.b.ins().jump(landing, &block_args(&[exn]));
                self.fill_landings()?;
            }
            None => self.throw_out(exn)?,
        }
        self.reachable = false;
        Ok(())
    }

    /// Hand `exn` to [`Builtin::Throw`], which unwinds past this frame and
    /// never returns here.
    fn throw_out(&mut self, exn: Value) -> Result<(), CompileError> {
        let ptr = self.ptr();
        let fp = self.b.ins().get_frame_pointer(ptr);
        self.builtin(Builtin::Throw, &[exn, fp])?;
        self.b.ins().trap(TRAP_UNREACHABLE);
        Ok(())
    }

    /// The landing block of scope `i`, made (and queued for its code) now
    /// if it has none.
    fn landing(&mut self, i: usize) -> cranelift_codegen::ir::Block {
        if let Some(b) = self.scopes[i].landing {
            return b;
        }
        let b = self.b.create_block();
        let ptr = self.ptr();
        self.b.append_block_param(b, ptr);
        self.scopes[i].landing = Some(b);
        self.pending_landings.push(i);
        b
    }

    /// Emit the code of every landing block made but not yet filled
    /// (INV-EXN-1). The current block must be filled.
    fn fill_landings(&mut self) -> Result<(), CompileError> {
        while let Some(i) = self.pending_landings.pop() {
            let Some(block) = self.scopes[i].landing else {
                continue;
            };
            self.b.switch_to_block(block);
            let exn = self.b.block_params(block)[0];
            let ptr = self.ptr();
            let thrown = self
                .b
                .ins()
                .load(ptr, MemFlagsData::trusted(), exn, off32(EXN_TAG));
            let clauses = self.scopes[i].clauses.clone();
            let mut caught_all = false;
            for c in clauses {
                let mut args: Vec<Value> = Vec::new();
                let on_match = if let Some(tag) = c.tag {
                    let id = self.vmctx_load(ptr, self.offsets.tag(tag), true);
                    let eq = self.b.ins().icmp(IntCC::Equal, thrown, id);
                    let m = self.b.create_block();
                    let next = self.b.create_block();
                    self.b.ins().brif(eq, m, &[], next, &[]);
                    self.b.seal_block(m);
                    self.b.switch_to_block(m);
                    for (k, t) in (0u32..).zip(self.tag_params(tag)?) {
                        let ty = ir_type(t, ptr);
                        let off = off32(EXN_VALUES + 16 * k);
                        args.push(self.b.ins().load(ty, MemFlagsData::trusted(), exn, off));
                    }
                    Some(next)
                } else {
                    None
                };
                if c.with_ref {
                    // The handler holds the exception now (exn INV-EXN-4).
                    let one = self.b.ins().iconst(ptr, 1);
                    self.b
                        .ins()
                        .store(MemFlagsData::trusted(), one, exn, off32(EXN_EXPOSED));
                    args.push(exn);
                } else {
                    // Values read: the object may go.
                    self.builtin(Builtin::ExnDrop, &[exn])?;
                }
                let at = self.offset;
                let f = self
                    .control
                    .get_mut(c.frame)
                    .ok_or_else(|| super::invalid("unknown label", at))?;
                let dest = match f.kind {
                    Kind::Loop { header } => header,
                    _ => {
                        f.branched = true;
                        f.dest
                    }
                };
                self.b.ins().jump(dest, &block_args(&args));
                match on_match {
                    Some(next) => {
                        self.b.seal_block(next);
                        self.b.switch_to_block(next);
                    }
                    None => {
                        caught_all = true;
                        break;
                    }
                }
            }
            if !caught_all {
                match i.checked_sub(1) {
                    Some(outer) => {
                        let landing = self.landing(outer);
                        self.b.ins().jump(landing, &block_args(&[exn]));
                    }
                    None => self.throw_out(exn)?,
                }
            }
        }
        Ok(())
    }

    /// Emit a call of `callee` with signature `sig` and `args` (the
    /// callee's `vmctx` first); its results. Inside a `try_table` it is a
    /// `try_call` whose exceptions go to the landing block (INV-EXN-2).
    pub(super) fn emit_call(
        &mut self,
        callee: Callee,
        sig: SigRef,
        args: &[Value],
    ) -> Result<Vec<Value>, CompileError> {
        let Some(i) = self.scopes.len().checked_sub(1) else {
            let inst = match callee {
                Callee::Direct(f) => self.b.ins().call(f, args),
                Callee::Indirect(code) => self.b.ins().call_indirect(sig, code, args),
            };
            return Ok(self.b.inst_results(inst).to_vec());
        };
        let landing = self.landing(i);
        let returns: Vec<cranelift_codegen::ir::Type> = self.b.func.dfg.signatures[sig]
            .returns
            .iter()
            .map(|p| p.value_type)
            .collect();
        let next = self.b.create_block();
        for t in &returns {
            self.b.append_block_param(next, *t);
        }
        let ret_args: Vec<BlockArg> = (0..returns.len())
            .map(|k| BlockArg::TryCallRet(super::super::module::len_u32(k)))
            .collect();
        let normal = self.b.func.dfg.block_call(next, &ret_args);
        let exn_edge = self
            .b
            .func
            .dfg
            .block_call(landing, &[BlockArg::TryCallExn(0)]);
        let table = self
            .b
            .func
            .dfg
            .exception_tables
            .push(ExceptionTableData::new(
                sig,
                normal,
                [ExceptionTableItem::Default(exn_edge)],
            ));
        match callee {
            Callee::Direct(f) => self.b.ins().try_call(f, args, table),
            Callee::Indirect(code) => self.b.ins().try_call_indirect(code, args, table),
        };
        // The current block ends with the try_call: landing code may go
        // in now (INV-EXN-1).
        self.fill_landings()?;
        self.b.seal_block(next);
        self.b.switch_to_block(next);
        Ok(self.b.block_params(next).to_vec())
    }

    /// Leave the innermost scope (at its `try_table`'s `end`).
    pub(super) fn end_scope(&mut self) {
        self.scopes.pop();
    }

    /// The types of the values an exception of `tag` carries.
    fn tag_params(&self, tag: u32) -> Result<Vec<super::ValType>, CompileError> {
        let ty = *self
            .info
            .tags
            .get(tag as usize)
            .ok_or_else(|| self.err("unknown tag"))?;
        Ok(self
            .info
            .types
            .get(ty as usize)
            .ok_or_else(|| self.err("unknown type"))?
            .params
            .clone())
    }
}
