# gdb auto-loads this file when started in the repository root, once the
# path is trusted: add `add-auto-load-safe-path /path/to/vessel/.gdbinit`
# to ~/.gdbinit (see the README, "Debugging").
source scripts/vessel-gdb.py
