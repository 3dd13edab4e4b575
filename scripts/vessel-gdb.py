# gdb support for the hosted Vessel kernel (`sim`, the tests).
#
# Load it with `gdb -x scripts/vessel-gdb.py --args target/debug/sim ...`,
# or let gdb auto-load the repository's `.gdbinit` (see the README's
# "Debugging" section for the one-line `add-auto-load-safe-path`).
#
# It does two things:
# 1. Signals. The hosted kernel raises SIGSEGV/SIGBUS/SIGILL/SIGFPE by
#    design (demand paging, copy-on-write, guard pages, wasm traps) and uses
#    two real-time signals as interrupts (SIG36: per-CPU timer, SIG37: IPI).
#    gdb is told to pass them all to the program without stopping or
#    printing. SIGTRAP stays gdb's own (breakpoints).
# 2. Commands:
#    vessel-cpus   each CPU thread and what it runs (wasm function, idle,
#                  or the innermost kernel function)
#    vessel-procs  the process table (pid, parent, state, CPU, CPU time,
#                  name), from the kernel's VESSEL_PROCESS_TABLE
#    vessel-code   the wasm code objects registered through gdb's JIT
#                  interface, by module (a process names its code after
#                  itself), with their functions and the CPUs in them now
#    vessel-bt     the wasm frames of the selected thread's backtrace, with
#                  byte offsets in the module
#
# Wasm functions are symbols `<module>!<name>` (or `<module>!func[N]`),
# registered when their code is published: `break calc!inner` works before
# the module is loaded (the breakpoint stays pending until then).

import re
import struct

import gdb

FAULT_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE")
# hal_hosted::TIMER_SIGNAL and IPI_SIGNAL (SIGRTMIN+2 and +3 under glibc).
INTERRUPT_SIGNALS = ("SIG36", "SIG37")

for sig in FAULT_SIGNALS + INTERRUPT_SIGNALS:
    gdb.execute("handle %s nostop noprint pass" % sig, to_string=True)
gdb.execute("set breakpoint pending on", to_string=True)


def is_wasm(name):
    return name is not None and "!" in name


def frames(thread):
    """The frames of `thread`, innermost first (selects it)."""
    thread.switch()
    frame = gdb.newest_frame()
    while frame is not None:
        yield frame
        try:
            frame = frame.older()
        except gdb.error:
            return


def cpu_threads():
    inferior = gdb.selected_inferior()
    threads = [t for t in inferior.threads() if (t.name or "").startswith("cpu")]
    return sorted(threads, key=lambda t: (len(t.name), t.name))


def describe(thread):
    """What `thread` runs: `wasm <symbol>`, `idle`, or a kernel function."""
    first = None
    for frame in frames(thread):
        name = frame.name()
        if is_wasm(name):
            return "wasm %s" % name
        if name is None:
            continue
        if first is None:
            first = name
        if "wait_for_interrupt" in name or "sigsuspend" in name:
            return "idle"
    return "kernel %s" % (first or "??")


class VesselCpus(gdb.Command):
    """List the CPUs of the hosted kernel: thread, name, what each runs."""

    def __init__(self):
        super().__init__("vessel-cpus", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        selected = gdb.selected_thread()
        if selected is None:
            print("no process")
            return
        try:
            for t in cpu_threads():
                mark = "*" if t == selected else " "
                print("%s %-6s thread %-3d lwp %-7d %s"
                      % (mark, t.name, t.num, t.ptid[1], describe(t)))
        finally:
            selected.switch()


def jit_objects():
    """(module, [(symbol, start, size)]) for each registered JIT object."""
    inferior = gdb.selected_inferior()
    desc = gdb.parse_and_eval("&__jit_debug_descriptor").cast(
        gdb.lookup_type("char").pointer())
    desc_addr = int(desc)
    # struct jit_descriptor { u32 version, action; entry *relevant, *first }
    first = struct.unpack("<Q", inferior.read_memory(desc_addr + 16, 8))[0]
    entry = first
    seen = 0
    while entry and seen < 100000:
        seen += 1
        nxt, _prev, addr, size = struct.unpack(
            "<QQQQ", inferior.read_memory(entry, 32))
        elf = bytes(inferior.read_memory(addr, size))
        yield parse_elf_symbols(elf)
        entry = nxt


def parse_elf_symbols(elf):
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shnum = struct.unpack_from("<H", elf, 0x3C)[0]
    sections = []
    for i in range(shnum):
        (_name, kind, _flags, addr, off, size, link, _info, _align,
         _entsize) = struct.unpack_from("<IIQQQQIIQQ", elf, shoff + 64 * i)
        sections.append((kind, addr, off, size, link))
    text_addr = sections[1][1] if shnum > 1 else 0
    symbols = []
    for kind, _addr, off, size, link in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        str_off = sections[link][2]
        for j in range(1, size // 24):
            name, info, _other, _shndx, value, sym_size = struct.unpack_from(
                "<IBBHQQ", elf, off + 24 * j)
            if info & 0xF != 2:  # STT_FUNC
                continue
            end = elf.index(b"\0", str_off + name)
            symbols.append((elf[str_off + name:end].decode("utf-8", "replace"),
                            text_addr + value, sym_size))
    module = symbols[0][0].split("!", 1)[0] if symbols else "?"
    return module, symbols


def process_table_address():
    """The address of the kernel's debugger process table, or None. Read
    from the printed address, which works with and without the symbol's
    debug info (the riscv image may lack it)."""
    for expr in ("&VESSEL_PROCESS_TABLE",
                 "&kernel_core::proc::debug::VESSEL_PROCESS_TABLE"):
        try:
            found = re.search(r"0x[0-9a-fA-F]+", str(gdb.parse_and_eval(expr)))
        except gdb.error:
            continue
        if found:
            return int(found.group(0), 16)
    try:
        text = gdb.execute("info address VESSEL_PROCESS_TABLE", to_string=True)
    except gdb.error:
        return None
    found = re.search(r"0x[0-9a-fA-F]+", text)
    return int(found.group(0), 16) if found else None


STATES = {0: "run", 1: "wait", 2: "ended"}


class VesselProcs(gdb.Command):
    """List the processes: pid, parent, state, last CPU, CPU time, name.

Reads `VESSEL_PROCESS_TABLE` (kernel-core `proc/debug.rs`): 64-byte rows
of kernel id, pid, parent, state, CPU, CPU ns and name, written by the
kernel as processes start, wait, end and are reaped. Works on sim under
gdb and on the riscv kernel through QEMU's gdb stub."""

    def __init__(self):
        super().__init__("vessel-procs", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        addr = process_table_address()
        if addr is None:
            print("no process table: not a Vessel kernel")
            return
        inferior = gdb.selected_inferior()
        version, slots = struct.unpack("<II", inferior.read_memory(addr, 8))
        if version != 1:
            print("process table version %d: this script reads version 1" % version)
            return
        raw = bytes(inferior.read_memory(addr + 8, 64 * slots))
        rows = []
        for i in range(slots):
            (kernel, pid, parent, state, cpu, cpu_ns) = struct.unpack_from(
                "<QIIIIQ", raw, 64 * i)
            if pid == 0:
                continue
            name = raw[64 * i + 32:64 * i + 64].split(b"\0", 1)[0]
            rows.append((kernel, pid, parent, state, cpu, cpu_ns,
                         name.decode("utf-8", "replace")))
        if not rows:
            print("no processes")
            return
        print("%6s %8s %8s %-6s %4s %10s  %s" %
              ("KERNEL", "PID", "PPID", "STATE", "CPU", "TIME", "NAME"))
        for kernel, pid, parent, state, cpu, cpu_ns, name in sorted(rows):
            print("%6d %8d %8d %-6s %4s %9.3fs  %s" % (
                kernel, pid, parent, STATES.get(state, "?"),
                "-" if cpu == 0xFFFFFFFF else str(cpu), cpu_ns / 1e9, name))


class VesselCode(gdb.Command):
    """List the wasm code the kernel runs, by module (one per process).

This reads what every process publishes to the debugger: its code
objects, registered with gdb through `__jit_debug_descriptor` and named
after the process (`Store::set_module_name`). Trampolines and host thunks
are left out unless an argument `all` is given."""

    def __init__(self):
        super().__init__("vessel-code", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        selected = gdb.selected_thread()
        if selected is None:
            print("no process")
            return
        running = {}
        try:
            for t in cpu_threads():
                what = describe(t)
                if what.startswith("wasm "):
                    running.setdefault(what[5:].split("!", 1)[0], []).append(t.name)
        finally:
            selected.switch()
        show_all = arg.strip() == "all"
        modules = {}
        for module, symbols in jit_objects():
            funcs = [s for s in symbols
                     if show_all or not s[0].endswith(("!trampoline", "!host-thunk"))]
            if funcs:
                modules.setdefault(module, []).extend(funcs)
        if not modules:
            print("no wasm code registered")
            return
        for module in sorted(modules):
            funcs = sorted(modules[module], key=lambda s: s[1])
            cpus = ", ".join(running.get(module, [])) or "-"
            print("%-20s %3d function(s)  running on: %s" % (module, len(funcs), cpus))
            for name, start, size in funcs:
                print("    %#x..%#x  %s" % (start, start + size, name))


class VesselBt(gdb.Command):
    """Print the wasm backtrace of the selected thread (CPU).

Each wasm frame as `#N <module>!<function> @ <byte offset in the module>`,
innermost first, then the kernel frame that entered wasm."""

    def __init__(self):
        super().__init__("vessel-bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        thread = gdb.selected_thread()
        if thread is None:
            print("no process")
            return
        selected_frame = gdb.selected_frame()
        n = 0
        entered = None
        try:
            in_wasm = False
            for frame in frames(thread):
                name = frame.name()
                if is_wasm(name):
                    in_wasm = True
                    if name.endswith(("!trampoline", "!host-thunk")):
                        continue
                    line = frame.find_sal().line
                    where = " @ %#x" % line if line else ""
                    print("#%-2d %s%s" % (n, name, where))
                    n += 1
                elif in_wasm and name is not None and "vessel_wasm_enter" not in name:
                    entered = name
                    break
        finally:
            selected_frame.select()
        if n == 0:
            print("no wasm frames on %s" % (thread.name or "this thread"))
        elif entered:
            print("    (entered from %s)" % entered)


VesselCpus()
VesselProcs()
VesselCode()
VesselBt()
