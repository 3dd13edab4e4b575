//! `sh`: Vessel's shell, small and POSIX-flavoured.
//!
//! Usage: `sh` (commands from standard input, with the prompt `$ `),
//! `sh FILE [ARGS...]` (a script, `$0` being FILE), `sh -c COMMANDS
//! [NAME [ARGS...]]`. Exits with the last command's status (2 for a
//! syntax error in a script or `-c`).
//!
//! The language: words with `'...'`, `"..."` and `\` quoting and `#`
//! comments; `$NAME`, `${NAME}`, `${NAME:-word}` (and `-`, `=`, `+`, `?`
//! with or without `:`), `${#NAME}`, `$?`, `$$`, `$!`, `$#`, `$0`..`$9`,
//! `${10}`, `$@`, `$*`, `~`, `$(...)` and `` `...` ``, `$((...))`;
//! unquoted results split into fields and `*`, `?`, `[...]` patterns
//! matched against file names; pipelines `|`, `!`, `&&`, `||`, `;`, `&`,
//! newlines; redirections `<`, `>`, `>|`, `>>`, `<>`, `N>&M` for
//! descriptors 0 to 2; `NAME=value` assignments (before a command: for
//! that program only); `if`/`elif`/`else`, `for`, `while`, `until`,
//! `{ ...; }` and `( ... )`. Builtins: `cd`, `pwd`, `exit`, `export`,
//! `unset`, `wait`, `jobs`, `kill`, `source`/`.`, `break`, `continue`,
//! `shift`, `true`, `false`, `:`; anything else is a program found
//! through `PATH` (default `/bin`).
//!
//! WASI has no current directory: the shell keeps its own and hands it to
//! every program as `PWD`. Ctrl-C is the kernel's: it kills the
//! foreground programs, and the shell then abandons the rest of the
//! command line with `$?` 130.
//!
//! Not supported: here-documents, `case`, functions, `read`, `test`/`[`
//! as builtins (they are programs, if installed), descriptors above 2,
//! non-blank `IFS` characters as field delimiters. A builtin or compound
//! command inside a pipeline runs in a child shell (so `jobs | cat` shows
//! that shell's jobs: none). A script or `-c` text is parsed whole before
//! it runs. Ctrl-C cannot stop a loop of builtins only, nor `wait` for a
//! background job: the kernel kills programs, and the shell learns of
//! Ctrl-C only from a foreground program killed.
//!
//! Layout: [`parse`] (text to [`ast`], pure), [`expand`] and [`arith`]
//! (word expansion, pure behind a trait), [`exec`] (running it).

#[path = "sh/arith.rs"]
mod arith;
#[path = "sh/ast.rs"]
mod ast;
#[path = "sh/exec.rs"]
mod exec;
#[path = "sh/expand.rs"]
mod expand;
#[path = "sh/parse.rs"]
mod parse;

use std::io::{self, BufRead, Write};

use exec::Shell;
use parse::ParseError;

/// Print `text` to standard output at once (the prompt).
fn prompt(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Print `sh: MSG` on standard error.
fn complain(msg: &str) {
    let _ = io::stderr().write_all(format!("sh: {msg}\n").as_bytes());
}

/// Read commands from standard input until its end, prompting with `$ `
/// (and `> ` for the lines that continue a command); the last status.
fn interactive(mut sh: Shell) -> i32 {
    sh.interactive = true;
    let stdin = io::stdin();
    let mut pending = String::new();
    loop {
        if pending.is_empty() {
            sh.report_jobs();
            prompt("$ ");
        } else {
            prompt("> ");
        }
        let mut line = Vec::new();
        match stdin.lock().read_until(b'\n', &mut line) {
            Ok(0) => {
                if !pending.is_empty() {
                    complain("syntax error: unexpected end of file");
                    sh.set_status(2);
                }
                prompt("\n");
                return sh.status();
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                complain(&format!("cannot read input: {e}"));
                return sh.status();
            }
        }
        pending.push_str(&String::from_utf8_lossy(&line));
        if !pending.ends_with('\n') {
            pending.push('\n');
        }
        match parse::parse(&pending) {
            Err(ParseError::Incomplete) => {}
            Err(ParseError::Syntax(msg)) => {
                complain(&format!("syntax error: {msg}"));
                sh.set_status(2);
                pending.clear();
            }
            Ok(list) => {
                pending.clear();
                if let Some(code) = sh.run_top(&list) {
                    return code;
                }
            }
        }
    }
}

/// Run the shell with its arguments (`args[0]` its name); its exit status.
fn run(args: &[String]) -> i32 {
    let name = args.first().cloned().unwrap_or_else(|| "sh".to_owned());
    match args.get(1).map(String::as_str) {
        None | Some("-") => interactive(Shell::new(vec![name])),
        Some("-c") => {
            let Some(text) = args.get(2) else {
                complain("-c: option requires an argument");
                return 2;
            };
            let params = match args.get(3..) {
                Some(rest) if !rest.is_empty() => rest.to_vec(),
                _ => vec![name],
            };
            Shell::new(params).run_script(text)
        }
        Some("--") if args.len() == 2 => interactive(Shell::new(vec![name])),
        Some(opt) if opt.starts_with('-') && opt != "--" => {
            complain(&format!("{opt}: unknown option"));
            2
        }
        Some(_) => {
            let rest = if args[1] == "--" {
                &args[2..]
            } else {
                &args[1..]
            };
            let mut sh = Shell::new(rest.to_vec());
            let Some(file) = rest.first() else {
                return interactive(sh);
            };
            match std::fs::read(sh.resolve(file)) {
                Ok(bytes) => sh.run_script(&String::from_utf8_lossy(&bytes)),
                Err(e) => {
                    complain(&format!("{file}: {}", exec::describe(&e)));
                    127
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(run(&args));
}
