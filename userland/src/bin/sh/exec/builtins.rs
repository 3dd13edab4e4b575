//! The builtin commands, run inside the shell because they change its
//! state or read it: `cd`, `pwd`, `exit`, `export`, `unset`, `wait`,
//! `jobs`, `kill` (for `%N` jobs as well as process ids), `source` and
//! `.`, `break`, `continue`, `shift`, `true`, `false` and `:`.

use std::fs;
use std::io::Write;

use userland::sys;

use super::{Flow, Io, Job, MAX_SOURCE_DEPTH, Shell, Var, describe, quote};
use crate::ast::is_name;
use crate::parse;

/// Every builtin's name.
const BUILTINS: &[&str] = &[
    "cd", "pwd", "exit", "export", "unset", "wait", "jobs", "kill", "source", ".", "break",
    "continue", "shift", "true", "false", ":",
];

/// Builtins that only print (a command substitution may run them in the
/// shell, capturing their output).
const PURE: &[&str] = &["pwd", "jobs"];

/// Whether `name` is a builtin.
pub(super) fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// Whether `name` is a builtin that only prints.
pub(super) fn is_pure(name: &str) -> bool {
    PURE.contains(&name)
}

/// The status of a builtin that does nothing else: `true`, `:`, `false`.
pub(super) fn trivial(name: &str) -> Option<i32> {
    match name {
        "true" | ":" => Some(0),
        "false" => Some(1),
        _ => None,
    }
}

/// Write `text` to `out`, ignoring errors.
fn emit(out: &mut dyn Write, text: &str) {
    let _ = out.write_all(text.as_bytes());
}

impl Shell {
    /// Run the builtin `argv[0]` with output to `out` and errors to
    /// `io[2]`; sets `$?`.
    pub(super) fn run_builtin(&mut self, argv: &[String], io: Io, out: &mut dyn Write) -> Flow {
        let Some((name, args)) = argv.split_first() else {
            return Flow::Normal;
        };
        let (status, flow) = match name.as_str() {
            "cd" => (self.cd(args, io, out), Flow::Normal),
            "pwd" => {
                emit(out, &format!("{}\n", self.cwd_string()));
                (0, Flow::Normal)
            }
            "exit" => return self.exit(args, io),
            "export" => (self.export(args, io, out), Flow::Normal),
            "unset" => (self.unset(args, io), Flow::Normal),
            "wait" => (self.wait(args, io), Flow::Normal),
            "jobs" => (self.jobs(out), Flow::Normal),
            "kill" => (self.kill(args, io), Flow::Normal),
            "source" | "." => return self.source(name, args, io),
            "break" | "continue" => return self.loop_control(name, args, io),
            "shift" => (self.shift(args, io), Flow::Normal),
            other => (trivial(other).unwrap_or(0), Flow::Normal),
        };
        self.status = status;
        flow
    }

    /// `cd [DIR]`: `/` by default, `-` for `$OLDPWD`.
    fn cd(&mut self, args: &[String], io: Io, out: &mut dyn Write) -> i32 {
        let (target, show) = match args {
            [] => ("/".to_owned(), false),
            [d] if d == "-" => match self.get("OLDPWD") {
                Some(old) => (old.to_owned(), true),
                None => {
                    self.warn(io, "cd: OLDPWD not set");
                    return 1;
                }
            },
            [d] => (d.clone(), false),
            _ => {
                self.warn(io, "cd: too many arguments");
                return 1;
            }
        };
        let path = self.resolve(&target);
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                let old = self.cwd_string();
                self.cwd = path;
                self.set_var("OLDPWD", old);
                self.export_value("PWD", self.cwd_string());
                if show {
                    emit(out, &format!("{}\n", self.cwd_string()));
                }
                0
            }
            Ok(_) => {
                self.warn(io, format_args!("cd: {target}: not a directory"));
                1
            }
            Err(e) => {
                self.warn(io, format_args!("cd: {target}: {}", describe(&e)));
                1
            }
        }
    }

    /// `exit [N]`: leave with N, by default `$?`.
    fn exit(&mut self, args: &[String], io: Io) -> Flow {
        match args {
            [] => Flow::Exit(self.status),
            [n] => match n.parse::<i64>() {
                Ok(v) => Flow::Exit(i32::try_from(v & 0xff).unwrap_or(0)),
                Err(_) => {
                    self.warn(io, format_args!("exit: {n}: numeric argument required"));
                    Flow::Exit(2)
                }
            },
            _ => {
                self.warn(io, "exit: too many arguments");
                self.status = 1;
                Flow::Normal
            }
        }
    }

    /// `export [NAME[=VALUE]]...`; without names, list the exported
    /// variables.
    fn export(&mut self, args: &[String], io: Io, out: &mut dyn Write) -> i32 {
        let names: Vec<&String> = args.iter().filter(|a| *a != "-p").collect();
        if names.is_empty() {
            let mut text = String::new();
            for (k, v) in &self.vars {
                match (v.exported, &v.value) {
                    (true, Some(value)) => text.push_str(&format!("export {k}={}\n", quote(value))),
                    (true, None) => text.push_str(&format!("export {k}\n")),
                    _ => {}
                }
            }
            emit(out, &text);
            return 0;
        }
        let mut status = 0;
        for a in names {
            match a.split_once('=') {
                Some((name, value)) if is_name(name) => {
                    self.export_value(name, value.to_owned());
                }
                None if is_name(a) => {
                    self.vars
                        .entry(a.clone())
                        .or_insert(Var {
                            value: None,
                            exported: true,
                        })
                        .exported = true;
                }
                _ => {
                    self.warn(io, format_args!("export: `{a}': not a valid identifier"));
                    status = 1;
                }
            }
        }
        status
    }

    /// `unset NAME...`.
    fn unset(&mut self, args: &[String], io: Io) -> i32 {
        let mut status = 0;
        for a in args.iter().filter(|a| *a != "-v") {
            if is_name(a) {
                self.vars.remove(a.as_str());
            } else {
                self.warn(io, format_args!("unset: `{a}': not a valid identifier"));
                status = 1;
            }
        }
        status
    }

    /// The index of the job `spec` names: `%N`, `%%`, `%+`, `%` (the
    /// latest), or a process id of one of its processes.
    fn find_job(&self, spec: &str) -> Option<usize> {
        match spec.strip_prefix('%') {
            Some("" | "%" | "+") => self.jobs.len().checked_sub(1),
            Some(n) => {
                let n: usize = n.parse().ok()?;
                self.jobs.iter().position(|j| j.id == n)
            }
            None => {
                let pid: u32 = spec.parse().ok()?;
                self.jobs
                    .iter()
                    .position(|j| j.procs.iter().any(|p| p.pid == Some(pid)))
            }
        }
    }

    /// `wait [%JOB|PID]...`: wait for the jobs named, or all; the last
    /// one's status (0 for all).
    fn wait(&mut self, args: &[String], io: Io) -> i32 {
        if args.is_empty() {
            for mut job in std::mem::take(&mut self.jobs) {
                job.wait();
            }
            return 0;
        }
        let mut status = 0;
        for a in args {
            match self.find_job(a) {
                Some(i) => {
                    let mut job: Job = self.jobs.remove(i);
                    status = job.wait();
                }
                None => {
                    self.warn(io, format_args!("wait: {a}: no such job"));
                    status = 127;
                }
            }
        }
        status
    }

    /// `jobs`: `[N] running  TEXT` or `[N] done STATUS  TEXT` for each
    /// job; the done ones are forgotten.
    fn jobs(&mut self, out: &mut dyn Write) -> i32 {
        let mut text = String::new();
        self.jobs.retain_mut(|job| {
            let done = job.poll();
            if done {
                text.push_str(&format!(
                    "[{}] done {}  {}\n",
                    job.id,
                    job.status(),
                    job.text
                ));
            } else {
                text.push_str(&format!("[{}] running  {}\n", job.id, job.text));
            }
            !done
        });
        emit(out, &text);
        0
    }

    /// `kill [-SIGNAL] %JOB|PID...`: Vessel has one way to end a process,
    /// so a signal given is ignored.
    fn kill(&mut self, args: &[String], io: Io) -> i32 {
        let mut targets = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if !targets.is_empty() || a == "-" || !a.starts_with('-') {
                targets.push(a);
            } else if a == "--" {
                targets.extend(it.by_ref());
            } else if a == "-s" || a == "-n" {
                it.next();
            }
        }
        if targets.is_empty() {
            self.warn(io, "kill: usage: kill [-SIGNAL] %JOB|PID...");
            return 2;
        }
        let mut status = 0;
        for t in targets {
            if t.starts_with('%') {
                match self.find_job(t) {
                    Some(i) => self.jobs[i].kill(),
                    None => {
                        self.warn(io, format_args!("kill: {t}: no such job"));
                        status = 1;
                    }
                }
                continue;
            }
            let Ok(pid) = t.parse::<u32>() else {
                self.warn(
                    io,
                    format_args!("kill: {t}: arguments must be process or job IDs"),
                );
                status = 1;
                continue;
            };
            let own = self
                .jobs
                .iter()
                .flat_map(|j| &j.procs)
                .find(|p| p.pid == Some(pid))
                .and_then(|p| p.child.as_ref());
            let r = match own {
                Some(child) => child.kill(),
                None => sys::kill_pid(pid),
            };
            if let Err(e) = r {
                self.warn(io, format_args!("kill: {pid}: {e}"));
                status = 1;
            }
        }
        status
    }

    /// The file `source NAME` reads: NAME with a `/` from the current
    /// directory; otherwise the current directory's NAME if there is one,
    /// else the first in `PATH`.
    fn script_path(&self, name: &str) -> std::path::PathBuf {
        let local = self.resolve(name);
        if name.contains('/') || fs::metadata(&local).is_ok() {
            return local;
        }
        self.lookup(name).map_or(local, Into::into)
    }

    /// `source FILE [ARGS]` and `. FILE [ARGS]`: run FILE's commands in
    /// this shell (with ARGS as positional parameters while it runs).
    fn source(&mut self, name: &str, args: &[String], io: Io) -> Flow {
        let Some((file, rest)) = args.split_first() else {
            self.warn(io, format_args!("{name}: filename argument required"));
            self.status = 2;
            return Flow::Normal;
        };
        if self.source_depth >= MAX_SOURCE_DEPTH {
            self.warn(io, format_args!("{name}: {file}: too deeply nested"));
            self.status = 1;
            return Flow::Normal;
        }
        let text = match fs::read(self.script_path(file)) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                self.warn(io, format_args!("{file}: {}", describe(&e)));
                self.status = 1;
                return Flow::Normal;
            }
        };
        let list = match parse::parse(&text) {
            Ok(l) => l,
            Err(e) => {
                self.warn(io, format_args!("{file}: syntax error: {e}"));
                self.status = 2;
                return Flow::Normal;
            }
        };
        let saved = (!rest.is_empty()).then(|| {
            let mut params = vec![self.params.first().cloned().unwrap_or_default()];
            params.extend(rest.iter().cloned());
            std::mem::replace(&mut self.params, params)
        });
        self.status = 0;
        self.source_depth += 1;
        let flow = self.run_list(&list, io);
        self.source_depth -= 1;
        if let Some(params) = saved {
            self.params = params;
        }
        flow
    }

    /// `break [N]` and `continue [N]`.
    fn loop_control(&mut self, name: &str, args: &[String], io: Io) -> Flow {
        let n = match args {
            [] => 1,
            [a] => match a.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    self.warn(io, format_args!("{name}: {a}: loop count out of range"));
                    self.status = 1;
                    return Flow::Normal;
                }
            },
            _ => {
                self.warn(io, format_args!("{name}: too many arguments"));
                self.status = 1;
                return Flow::Normal;
            }
        };
        self.status = 0;
        if self.loop_depth == 0 {
            self.warn(io, format_args!("{name}: only meaningful in a loop"));
            return Flow::Normal;
        }
        let n = n.min(self.loop_depth);
        if name == "break" {
            Flow::Break(n)
        } else {
            Flow::Continue(n)
        }
    }

    /// `shift [N]`: drop the first N positional parameters.
    fn shift(&mut self, args: &[String], io: Io) -> i32 {
        let n = match args.first().map(|a| a.parse::<usize>()) {
            None => 1,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                self.warn(io, "shift: numeric argument required");
                return 1;
            }
        };
        if n >= self.params.len() {
            if n > 0 {
                self.warn(io, "shift: shift count out of range");
                return 1;
            }
            return 0;
        }
        self.params.drain(1..=n);
        0
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use userland::path::join;

    use super::*;

    #[test]
    fn builtin_sets() {
        assert!(is_builtin("cd") && is_builtin(".") && is_builtin(":"));
        assert!(!is_builtin("echo") && !is_builtin("ls"));
        assert!(PURE.iter().all(|p| is_builtin(p)));
        assert_eq!(trivial("false"), Some(1));
        assert_eq!(trivial("cd"), None);
    }

    #[test]
    fn jobs_and_wait_with_no_jobs() {
        let mut sh = Shell::new(vec!["sh".to_owned()]);
        let mut out = Vec::new();
        let argv = ["jobs".to_owned()];
        assert_eq!(
            sh.run_builtin(&argv, super::super::STDIO, &mut out),
            Flow::Normal
        );
        assert!(out.is_empty());
        assert_eq!(sh.run_script("wait"), 0);
        assert_eq!(sh.run_script("wait %1"), 127);
        assert_eq!(sh.run_script("kill %1"), 1);
        assert_eq!(sh.run_script("kill"), 2);
        assert_eq!(sh.run_script("kill -9 x"), 1);
    }

    #[test]
    fn export_lists_quoted_values() {
        let mut sh = Shell::new(vec!["sh".to_owned()]);
        sh.run_script("export ZZ_TEST=\"it's\"");
        let mut out = Vec::new();
        let argv = ["export".to_owned()];
        sh.run_builtin(&argv, super::super::STDIO, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("export ZZ_TEST='it'\\''s'\n"), "{text}");
    }

    #[test]
    fn break_outside_a_loop_is_harmless() {
        let mut sh = Shell::new(vec!["sh".to_owned()]);
        assert_eq!(sh.run_script("break; x=1"), 0);
        assert_eq!(sh.get("x"), Some("1"));
        assert_eq!(sh.run_script("for i in 1; do break 0; done"), 1);
    }

    #[test]
    fn joins_are_folded() {
        let sh = Shell::new(vec!["sh".to_owned()]);
        assert_eq!(
            sh.script_path("/a/../b"),
            join(Path::new("/"), Path::new("/b"))
        );
    }
}
