//! Running the syntax tree. [`Shell`] owns the shell's state (variables,
//! the current directory, `$?`, the positional parameters, background
//! jobs) and runs lists, pipelines, simple and compound commands,
//! redirections and command substitutions; the builtins live in
//! [`builtins`].
//!
//! Vessel has no fork: every child is a program started with
//! [`sys::spawn`] on chosen descriptors. Where a real shell would fork
//! itself — a builtin or compound command inside a pipeline, a background
//! and-or list, `( )`, a command substitution of more than one pipeline —
//! this shell starts `sh -c TEXT` instead, passing its unexported
//! variables as leading assignments and its positional parameters as
//! arguments.

#[path = "exec/builtins.rs"]
mod builtins;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

use userland::path::join;
use userland::sys::{self, Child, Status};

use crate::ast::{
    AndOr, Command, Compound, Connector, Item, List, Pipeline, RedirOp, Redirect, Simple, Stage,
    Subst, is_name,
};
use crate::expand::{self, Context, ExpandError};
use crate::parse;

/// The shell's standard input, output and error as raw descriptors, which
/// become a child's 0, 1 and 2.
pub type Io = [u32; 3];

/// Expanded `NAME=value` assignments.
type Assigns = Vec<(String, String)>;

/// The shell's own standard descriptors.
pub const STDIO: Io = [0, 1, 2];

/// `PATH` when unset.
const DEFAULT_PATH: &str = "/bin";

/// The shell when `PATH` has none.
const SH_PATH: &str = "/bin/sh";

/// Set in the environment of everything started in the background: a
/// shell that finds it starts its own children in the background too, so
/// that Ctrl-C does not reach them.
const BACKGROUND_VAR: &str = "SH_BACKGROUND";

/// How deep `source` may nest.
const MAX_SOURCE_DEPTH: usize = 16;

/// A shell variable.
#[derive(Clone, Debug)]
struct Var {
    /// Its value (`None`: exported by name but never set).
    value: Option<String>,
    /// Whether children get it in their environment.
    exported: bool,
}

/// How running something ended, besides `$?`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next command.
    Normal,
    /// `break N`: leave N loops.
    Break(usize),
    /// `continue N`: leave N - 1 loops and continue the next.
    Continue(usize),
    /// `exit`: leave the shell with this status.
    Exit(i32),
    /// A foreground command was killed (Ctrl-C): abandon the command line.
    Interrupt,
}

/// One process of a background job.
#[derive(Debug)]
struct JobProc {
    /// Its handle, until it has been waited for.
    child: Option<Child>,
    /// Its process id.
    pid: Option<u32>,
    /// Its `$?` once it ended (at once for a stage that never started).
    status: Option<i32>,
}

/// A background job: a pipeline, or a child shell running an and-or list.
#[derive(Debug)]
struct Job {
    /// Its number, `%N`.
    id: usize,
    /// Its processes, the pipeline's order.
    procs: Vec<JobProc>,
    /// Its source text.
    text: String,
}

impl Job {
    /// Collect the statuses of processes that ended; whether all have.
    fn poll(&mut self) -> bool {
        for p in &mut self.procs {
            if p.status.is_some() {
                continue;
            }
            let Some(child) = &p.child else {
                p.status = Some(1);
                continue;
            };
            match child.try_wait() {
                Ok(None) => {}
                Ok(Some(st)) => {
                    p.status = Some(st.code());
                    p.child = None;
                }
                Err(_) => {
                    p.status = Some(1);
                    p.child = None;
                }
            }
        }
        self.procs.iter().all(|p| p.status.is_some())
    }

    /// Wait for every process; the job's status.
    fn wait(&mut self) -> i32 {
        for p in &mut self.procs {
            if p.status.is_none() {
                p.status = Some(
                    p.child
                        .take()
                        .map_or(1, |c| c.wait().map_or(1, Status::code)),
                );
            }
        }
        self.status()
    }

    /// The status of its last process (0 while unknown).
    fn status(&self) -> i32 {
        self.procs.last().and_then(|p| p.status).unwrap_or(0)
    }

    /// Kill its running processes.
    fn kill(&self) {
        for p in &self.procs {
            if let Some(c) = &p.child {
                let _ = c.kill();
            }
        }
    }
}

/// What starting one stage of a pipeline gave.
#[derive(Debug)]
enum Started {
    /// A running process.
    Child(Child),
    /// Nothing to wait for: the stage is over with this status (a builtin
    /// run in the shell, a command not found, ...).
    Done(i32),
}

/// Writes to one of the shell's descriptors without owning it.
#[derive(Clone, Copy, Debug)]
pub struct FdWriter(pub u32);

impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = i32::try_from(self.0).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `fd` is one of the shell's descriptors (its standard ones
        // or a file or pipe it holds open for the command being run), open
        // for this call; ManuallyDrop keeps the borrowed File from closing it.
        let mut file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
        file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Write `text` to descriptor `fd` in one go, ignoring errors (a closed
/// output must not stop the shell).
fn put(fd: u32, text: &str) {
    let _ = FdWriter(fd).write_all(text.as_bytes());
}

/// A descriptor the kernel just gave this process, as a File that closes
/// it when dropped.
fn owned(fd: u32) -> Option<File> {
    let raw = i32::try_from(fd).ok()?;
    // SAFETY: the kernel just returned `fd` as a new descriptor of this
    // process; nothing else owns it, so the File becomes its only owner.
    Some(unsafe { File::from_raw_fd(raw) })
}

/// A file's raw descriptor, as `spawn` wants it.
fn raw(f: &File) -> u32 {
    u32::try_from(f.as_raw_fd()).unwrap_or(u32::MAX)
}

/// A new pipe: its read end and its write end.
fn make_pipe() -> Result<(File, File), sys::Error> {
    let (r, w) = sys::pipe()?;
    let r = owned(r);
    let w = owned(w);
    r.zip(w).ok_or(sys::Error::Invalid)
}

/// An I/O error as the shell words it.
pub fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::IsADirectory => "is a directory".to_owned(),
        io::ErrorKind::NotADirectory => "not a directory".to_owned(),
        io::ErrorKind::AlreadyExists => "file exists".to_owned(),
        _ => e.to_string(),
    }
}

/// `s` quoted for the shell: in single quotes, each `'` as `'\''`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Kill the processes of stages already started.
fn kill_all(started: &[Started]) {
    for s in started {
        if let Started::Child(c) = s {
            let _ = c.kill();
        }
    }
}

/// The stages of `list` when it is one foreground pipeline, not negated.
fn single_pipeline(list: &List) -> Option<&[Stage]> {
    match list.items.as_slice() {
        [
            Item {
                and_or,
                background: false,
            },
        ] if and_or.rest.is_empty() && !and_or.first.negated => Some(&and_or.first.stages),
        _ => None,
    }
}

/// The shell's state.
#[derive(Debug)]
pub struct Shell {
    /// The variables, exported or not.
    vars: BTreeMap<String, Var>,
    /// The current directory (absolute, folded).
    cwd: PathBuf,
    /// `$?`.
    status: i32,
    /// `$0`, `$1`, ...
    params: Vec<String>,
    /// Background jobs not yet reported done.
    jobs: Vec<Job>,
    /// `$!`.
    last_bg: Option<u32>,
    /// Started in the background: start children in the background too.
    background: bool,
    /// A foreground child was killed: unwind to the prompt.
    interrupted: bool,
    /// Reading commands from a terminal: background jobs are announced
    /// (`[N] PID`), as in other shells; scripts start them silently.
    pub interactive: bool,
    /// How many loops are running (for `break` and `continue`).
    loop_depth: usize,
    /// How deep in `source`.
    source_depth: usize,
    /// The status of the last command substitution of the command being
    /// expanded (`$?` of a command of assignments only).
    subst_status: Option<i32>,
}

/// What expansion needs, for one command: the shell and its descriptors
/// (command substitutions read the same input and share its error).
struct Ctx<'a> {
    /// The shell.
    sh: &'a mut Shell,
    /// The command's descriptors.
    io: Io,
}

impl Context for Ctx<'_> {
    fn param(&mut self, name: &str) -> Option<String> {
        match name {
            "?" => Some(self.sh.status.to_string()),
            "$" => Some(sys::getpid().unwrap_or(0).to_string()),
            "!" => self.sh.last_bg.map(|p| p.to_string()),
            "#" => Some(self.sh.params.len().saturating_sub(1).to_string()),
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
                .parse::<usize>()
                .ok()
                .and_then(|i| self.sh.params.get(i).cloned()),
            n => self.sh.get(n).map(str::to_owned),
        }
    }

    fn positional(&mut self) -> Vec<String> {
        self.sh.params.iter().skip(1).cloned().collect()
    }

    fn assign(&mut self, name: &str, value: &str) {
        self.sh.set_var(name, value.to_owned());
    }

    fn command(&mut self, sub: &Subst) -> String {
        self.sh.substitute(sub, self.io)
    }

    fn read_dir(&mut self, dir: &str) -> Option<Vec<String>> {
        let path = join(
            &self.sh.cwd,
            Path::new(if dir.is_empty() { "." } else { dir }),
        );
        let entries = fs::read_dir(path).ok()?;
        Some(
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
        )
    }

    fn exists(&mut self, path: &str) -> bool {
        fs::symlink_metadata(join(&self.sh.cwd, Path::new(path))).is_ok()
    }
}

impl Shell {
    /// A shell with the positional parameters `params` (`$0` first), the
    /// process's environment as exported variables, its `PWD` as the
    /// current directory (else `/`) and `PATH` defaulting to `/bin`.
    pub fn new(mut params: Vec<String>) -> Self {
        let mut vars = BTreeMap::new();
        for (k, v) in std::env::vars_os() {
            vars.insert(
                k.to_string_lossy().into_owned(),
                Var {
                    value: Some(v.to_string_lossy().into_owned()),
                    exported: true,
                },
            );
        }
        let cwd = match vars.get("PWD").and_then(|v| v.value.as_deref()) {
            Some(p) if p.starts_with('/') => join(Path::new("/"), Path::new(p)),
            _ => PathBuf::from("/"),
        };
        if params.is_empty() {
            params.push("sh".to_owned());
        }
        let mut sh = Self {
            background: vars.contains_key(BACKGROUND_VAR),
            vars,
            cwd,
            status: 0,
            params,
            jobs: Vec::new(),
            last_bg: None,
            interrupted: false,
            interactive: false,
            loop_depth: 0,
            source_depth: 0,
            subst_status: None,
        };
        sh.export_value("PWD", sh.cwd_string());
        if sh.get("PATH").is_none() {
            sh.export_value("PATH", DEFAULT_PATH.to_owned());
        }
        sh
    }

    /// `$?`.
    pub fn status(&self) -> i32 {
        self.status
    }

    /// Set `$?`.
    pub fn set_status(&mut self, status: i32) {
        self.status = status;
    }

    /// `p` made absolute against the shell's current directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        join(&self.cwd, Path::new(p))
    }

    /// The current directory as text.
    fn cwd_string(&self) -> String {
        self.cwd.to_string_lossy().into_owned()
    }

    /// A variable's value.
    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).and_then(|v| v.value.as_deref())
    }

    /// Set a variable, keeping whether it is exported.
    fn set_var(&mut self, name: &str, value: String) {
        match self.vars.get_mut(name) {
            Some(v) => v.value = Some(value),
            None => {
                self.vars.insert(
                    name.to_owned(),
                    Var {
                        value: Some(value),
                        exported: false,
                    },
                );
            }
        }
    }

    /// Set a variable and export it.
    fn export_value(&mut self, name: &str, value: String) {
        self.vars.insert(
            name.to_owned(),
            Var {
                value: Some(value),
                exported: true,
            },
        );
    }

    /// Print `sh: MSG` on the error descriptor of `io`.
    fn warn(&self, io: Io, msg: impl fmt::Display) {
        put(io[2], &format!("sh: {msg}\n"));
    }

    // ----- the top level -----

    /// Run a parsed command line on the standard descriptors; `Some` with
    /// the status when it asked to leave the shell.
    pub fn run_top(&mut self, list: &List) -> Option<i32> {
        let flow = self.run_list(list, STDIO);
        self.interrupted = false;
        match flow {
            Flow::Exit(n) => Some(n),
            _ => None,
        }
    }

    /// Parse and run a whole script (`sh FILE`, `sh -c`); the shell's exit
    /// status. A syntax error runs nothing and gives 2.
    pub fn run_script(&mut self, text: &str) -> i32 {
        match parse::parse(text) {
            Ok(list) => self.run_top(&list).unwrap_or(self.status),
            Err(e) => {
                self.warn(STDIO, format_args!("syntax error: {e}"));
                2
            }
        }
    }

    /// Print `[N] done  TEXT` for each background job that ended, and
    /// forget it.
    pub fn report_jobs(&mut self) {
        let mut msg = String::new();
        self.jobs.retain_mut(|job| {
            let done = job.poll();
            if done {
                msg.push_str(&format!("[{}] done  {}\n", job.id, job.text));
            }
            !done
        });
        put(2, &msg);
    }

    // ----- lists -----

    /// Run a list.
    pub fn run_list(&mut self, list: &List, io: Io) -> Flow {
        for item in &list.items {
            let flow = if item.background {
                self.start_job(&item.and_or, io);
                Flow::Normal
            } else {
                self.run_and_or(&item.and_or, io)
            };
            if flow != Flow::Normal {
                return flow;
            }
            if self.interrupted {
                return Flow::Interrupt;
            }
        }
        Flow::Normal
    }

    /// Run an and-or list in the foreground.
    fn run_and_or(&mut self, ao: &AndOr, io: Io) -> Flow {
        let mut flow = self.run_pipeline(&ao.first, io);
        for (conn, p) in &ao.rest {
            if flow != Flow::Normal || self.interrupted {
                break;
            }
            let run = match conn {
                Connector::And => self.status == 0,
                Connector::Or => self.status != 0,
            };
            if run {
                flow = self.run_pipeline(p, io);
            }
        }
        flow
    }

    /// Run a pipeline in the foreground: one command in the shell itself,
    /// several as processes joined by pipes.
    fn run_pipeline(&mut self, p: &Pipeline, io: Io) -> Flow {
        let flow = match p.stages.as_slice() {
            [stage] => self.run_command(&stage.command, io),
            stages => {
                self.status = match self.start_stages(stages, io, true) {
                    Some(started) => self.wait_all(started, io),
                    None => 126,
                };
                Flow::Normal
            }
        };
        if p.negated && flow == Flow::Normal {
            self.status = i32::from(self.status == 0);
        }
        flow
    }

    /// Start an and-or list in the background as a job: a pipeline's
    /// processes directly, anything else in a child shell.
    fn start_job(&mut self, ao: &AndOr, io: Io) {
        let started = if ao.rest.is_empty() && !ao.first.negated {
            self.start_stages(&ao.first.stages, io, false)
        } else {
            self.spawn_sh(&ao.text, io, false, "sh")
                .ok()
                .map(|s| vec![s])
        };
        let Some(started) = started else {
            self.status = 126;
            return;
        };
        self.status = 0;
        let procs: Vec<JobProc> = started
            .into_iter()
            .map(|s| match s {
                Started::Child(c) => JobProc {
                    pid: c.pid().ok(),
                    child: Some(c),
                    status: None,
                },
                Started::Done(n) => JobProc {
                    child: None,
                    pid: None,
                    status: Some(n),
                },
            })
            .collect();
        if procs.iter().all(|p| p.child.is_none()) {
            return;
        }
        let pid = procs.iter().rev().find_map(|p| p.pid).unwrap_or(0);
        let id = self.jobs.iter().map(|j| j.id).max().unwrap_or(0) + 1;
        if self.interactive {
            put(io[2], &format!("[{id}] {pid}\n"));
        }
        self.last_bg = Some(pid);
        self.jobs.push(Job {
            id,
            procs,
            text: ao.text.clone(),
        });
    }

    // ----- commands -----

    /// Run one command in the shell (a simple command's program in the
    /// foreground).
    fn run_command(&mut self, cmd: &Command, io: Io) -> Flow {
        match cmd {
            Command::Simple(s) => self.run_simple(s, io),
            Command::Compound(c, redirects) => {
                let Some((io, _files)) = self.open_redirects(redirects, io) else {
                    self.status = 1;
                    return Flow::Normal;
                };
                self.run_compound(c, io)
            }
        }
    }

    /// Expand a simple command's words and assignments.
    fn expand_simple(&mut self, s: &Simple, io: Io) -> Result<(Vec<String>, Assigns), ExpandError> {
        self.subst_status = None;
        let mut assigns = Vec::new();
        for (name, word) in &s.assigns {
            let value = expand::string(&mut Ctx { sh: self, io }, word)?;
            assigns.push((name.clone(), value));
        }
        let argv = expand::fields(&mut Ctx { sh: self, io }, &s.words)?;
        Ok((argv, assigns))
    }

    /// Run a simple command: assignments only, a builtin, or a program in
    /// the foreground.
    fn run_simple(&mut self, s: &Simple, io: Io) -> Flow {
        let expanded = self.expand_simple(s, io);
        if self.interrupted {
            return Flow::Interrupt;
        }
        let (argv, assigns) = match expanded {
            Ok(v) => v,
            Err(e) => {
                self.warn(io, e);
                self.status = 1;
                return Flow::Normal;
            }
        };
        let Some((io, _files)) = self.open_redirects(&s.redirects, io) else {
            self.status = 1;
            return Flow::Normal;
        };
        let Some(name) = argv.first() else {
            for (name, value) in assigns {
                self.set_var(&name, value);
            }
            self.status = self.subst_status.unwrap_or(0);
            return Flow::Normal;
        };
        if builtins::is_builtin(name) {
            return self.run_builtin(&argv, io, &mut FdWriter(io[1]));
        }
        self.status = self.run_program(&argv, &assigns, io);
        Flow::Normal
    }

    /// Run the program `argv[0]` in the foreground and wait for it; its
    /// status.
    fn run_program(&mut self, argv: &[String], assigns: &[(String, String)], io: Io) -> i32 {
        let Some(name) = argv.first() else {
            return 0;
        };
        let Some(path) = self.lookup(name) else {
            self.warn(io, format_args!("{name}: command not found"));
            return 127;
        };
        match self.spawn(path, argv.to_vec(), assigns, io, true) {
            Ok(child) => self.wait_fg(&child, io),
            Err(e) => {
                self.warn(io, format_args!("{name}: {e}"));
                126
            }
        }
    }

    /// Run a compound command in the shell.
    fn run_compound(&mut self, c: &Compound, io: Io) -> Flow {
        match c {
            Compound::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches {
                    let flow = self.run_list(cond, io);
                    if flow != Flow::Normal {
                        return flow;
                    }
                    if self.status == 0 {
                        return self.run_list(body, io);
                    }
                }
                match otherwise {
                    Some(body) => self.run_list(body, io),
                    None => {
                        self.status = 0;
                        Flow::Normal
                    }
                }
            }
            Compound::For { var, words, body } => {
                let items = match words {
                    Some(words) => {
                        self.subst_status = None;
                        let r = expand::fields(&mut Ctx { sh: self, io }, words);
                        if self.interrupted {
                            return Flow::Interrupt;
                        }
                        match r {
                            Ok(v) => v,
                            Err(e) => {
                                self.warn(io, e);
                                self.status = 1;
                                return Flow::Normal;
                            }
                        }
                    }
                    None => self.params.iter().skip(1).cloned().collect(),
                };
                self.status = 0;
                self.loop_depth += 1;
                let mut flow = Flow::Normal;
                for item in items {
                    self.set_var(var, item);
                    if let Some(f) = self.loop_step(body, io) {
                        flow = f;
                        break;
                    }
                }
                self.loop_depth -= 1;
                flow
            }
            Compound::While { until, cond, body } => {
                self.loop_depth += 1;
                let mut last = 0;
                let flow = loop {
                    if let Some(f) = self.loop_step(cond, io) {
                        break f;
                    }
                    if (self.status == 0) == *until {
                        self.status = last;
                        break Flow::Normal;
                    }
                    if let Some(f) = self.loop_step(body, io) {
                        break f;
                    }
                    last = self.status;
                };
                self.loop_depth -= 1;
                flow
            }
            Compound::Group(body) => self.run_list(body, io),
            Compound::Subshell(sub) => {
                self.status = match self.spawn_sh(&sub.text, io, true, "sh") {
                    Ok(Started::Child(c)) => self.wait_fg(&c, io),
                    Ok(Started::Done(n)) => n,
                    Err(()) => 126,
                };
                Flow::Normal
            }
        }
    }

    /// Run a loop's list once: `None` to go on looping, else how the loop
    /// ends.
    fn loop_step(&mut self, list: &List, io: Io) -> Option<Flow> {
        match self.run_list(list, io) {
            Flow::Normal | Flow::Continue(1) => None,
            Flow::Continue(n) => Some(Flow::Continue(n - 1)),
            Flow::Break(1) => Some(Flow::Normal),
            Flow::Break(n) => Some(Flow::Break(n - 1)),
            other => Some(other),
        }
    }

    // ----- redirections -----

    /// Apply redirections to `io`: the new descriptors and the files that
    /// must stay open while they are used. `None` (after a message) when a
    /// file cannot be opened.
    fn open_redirects(&mut self, redirects: &[Redirect], io: Io) -> Option<(Io, Vec<File>)> {
        let mut io = io;
        let mut files = Vec::new();
        for r in redirects {
            let target = match expand::string(&mut Ctx { sh: self, io }, &r.target) {
                Ok(t) => t,
                Err(e) => {
                    self.warn(io, e);
                    return None;
                }
            };
            if target.is_empty() {
                self.warn(io, "ambiguous redirect");
                return None;
            }
            let fd = match usize::try_from(r.fd) {
                Ok(fd) if fd < 3 => fd,
                _ => {
                    self.warn(io, format_args!("{}: bad file descriptor", r.fd));
                    return None;
                }
            };
            let mut opts = OpenOptions::new();
            match r.op {
                RedirOp::Dup => match target.parse::<usize>() {
                    Ok(from) if from < 3 => {
                        io[fd] = io[from];
                        continue;
                    }
                    _ => {
                        self.warn(io, format_args!("{target}: bad file descriptor"));
                        return None;
                    }
                },
                RedirOp::Read => opts.read(true),
                // Vessel copies a descriptor into a child with its own
                // offset (on Unix they share one): truncate, then write in
                // append mode, so that the children of a redirected loop,
                // or a stdout and stderr on the same file, write one after
                // another instead of over each other.
                RedirOp::Write => {
                    let truncated = OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(self.resolve(&target));
                    if let Err(e) = truncated {
                        self.warn(io, format_args!("{target}: {}", describe(&e)));
                        return None;
                    }
                    opts.append(true)
                }
                RedirOp::Append => opts.append(true).create(true),
                RedirOp::ReadWrite => opts.read(true).write(true).create(true),
            };
            match opts.open(self.resolve(&target)) {
                Ok(f) => {
                    io[fd] = raw(&f);
                    files.push(f);
                }
                Err(e) => {
                    self.warn(io, format_args!("{target}: {}", describe(&e)));
                    return None;
                }
            }
        }
        Some((io, files))
    }

    // ----- processes -----

    /// The program a command name stands for: a path when it has a `/`,
    /// else the first file of that name in a `PATH` directory.
    fn lookup(&self, name: &str) -> Option<String> {
        let is_file = |p: &Path| fs::metadata(p).is_ok_and(|m| m.is_file());
        if name.is_empty() {
            return None;
        }
        if name.contains('/') {
            let p = self.resolve(name);
            return is_file(&p).then(|| p.to_string_lossy().into_owned());
        }
        self.get("PATH")
            .unwrap_or(DEFAULT_PATH)
            .split(':')
            .map(|d| {
                join(
                    &self.cwd,
                    &Path::new(if d.is_empty() { "." } else { d }).join(name),
                )
            })
            .find(|p| is_file(p))
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// The environment for a child: the exported variables, `PWD` (the
    /// current directory), `PATH`, then `extra`, and the background mark
    /// when `background`.
    fn environment(&self, extra: &[(String, String)], background: bool) -> Vec<String> {
        let mut env: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in &self.vars {
            if let (true, Some(value)) = (v.exported, &v.value) {
                env.insert(k, value);
            }
        }
        let cwd = self.cwd_string();
        env.insert("PWD", &cwd);
        env.entry("PATH").or_insert(DEFAULT_PATH);
        for (k, v) in extra {
            env.insert(k, v);
        }
        if background {
            env.insert(BACKGROUND_VAR, "1");
        }
        env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// Start a program (in the background when this shell is).
    fn spawn(
        &self,
        path: String,
        args: Vec<String>,
        extra: &[(String, String)],
        io: Io,
        foreground: bool,
    ) -> Result<Child, sys::Error> {
        let foreground = foreground && !self.background;
        sys::spawn(&sys::Command {
            path,
            args,
            env: self.environment(extra, !foreground),
            stdio: io,
            foreground,
        })
    }

    /// Start `sh -c SCRIPT` with this shell's unexported variables and
    /// positional parameters; errors are reported as `sh: NAME: ERROR`.
    fn spawn_sh(
        &mut self,
        script: &str,
        io: Io,
        foreground: bool,
        name: &str,
    ) -> Result<Started, ()> {
        let path = self.lookup("sh").unwrap_or_else(|| SH_PATH.to_owned());
        let mut text = String::new();
        for (k, v) in &self.vars {
            if let (false, Some(value)) = (v.exported, &v.value)
                && is_name(k)
            {
                text.push_str(&format!("{k}={}\n", quote(value)));
            }
        }
        text.push_str(script);
        let mut args = vec!["sh".to_owned(), "-c".to_owned(), text];
        args.extend(self.params.iter().cloned());
        match self.spawn(path, args, &[], io, foreground) {
            Ok(c) => Ok(Started::Child(c)),
            Err(e) => {
                self.warn(io, format_args!("{name}: {e}"));
                Err(())
            }
        }
    }

    /// Wait for a foreground child; its status. A kill (Ctrl-C) marks the
    /// command line interrupted.
    fn wait_fg(&mut self, child: &Child, io: Io) -> i32 {
        match child.wait() {
            Ok(st) => {
                if st == Status::Killed && !self.background {
                    self.interrupted = true;
                }
                st.code()
            }
            Err(e) => {
                self.warn(io, format_args!("wait: {e}"));
                1
            }
        }
    }

    /// Wait for every stage; the last one's status.
    fn wait_all(&mut self, started: Vec<Started>, io: Io) -> i32 {
        let mut status = 0;
        for s in started {
            status = match s {
                Started::Child(c) => self.wait_fg(&c, io),
                Started::Done(n) => n,
            };
        }
        status
    }

    /// Start each stage of a pipeline as a process, joined by pipes, the
    /// first reading `io[0]` and the last writing `io[1]`. `None` (after a
    /// message) when a stage could not start: the others are killed and
    /// the pipes closed.
    fn start_stages(&mut self, stages: &[Stage], io: Io, foreground: bool) -> Option<Vec<Started>> {
        let mut started = Vec::new();
        let mut input: Option<File> = None;
        for (i, stage) in stages.iter().enumerate() {
            let (next_input, output) = if i + 1 == stages.len() {
                (None, None)
            } else {
                match make_pipe() {
                    Ok((r, w)) => (Some(r), Some(w)),
                    Err(e) => {
                        self.warn(io, format_args!("cannot make a pipe: {e}"));
                        kill_all(&started);
                        return None;
                    }
                }
            };
            let sio = [
                input.as_ref().map_or(io[0], raw),
                output.as_ref().map_or(io[1], raw),
                io[2],
            ];
            match self.start_stage(stage, sio, foreground, None) {
                Ok(s) => started.push(s),
                Err(()) => {
                    kill_all(&started);
                    return None;
                }
            }
            // The shell's copies of the ends the stage got: the next stage's
            // reader sees the end of input once the writers are done.
            drop(output);
            input = next_input;
        }
        Some(started)
    }

    /// Start one stage on `io`. A program is spawned; a builtin or
    /// compound command runs in a child shell, except that a builtin
    /// without effect on the shell runs here writing to `capture` when
    /// given, and `true`, `false` and `:` just give their status.
    /// `Err` (after a message) when spawning failed.
    fn start_stage(
        &mut self,
        stage: &Stage,
        io: Io,
        foreground: bool,
        capture: Option<&mut Vec<u8>>,
    ) -> Result<Started, ()> {
        let s = match &stage.command {
            Command::Compound(..) => return self.spawn_sh(&stage.text, io, foreground, "sh"),
            Command::Simple(s) => s,
        };
        let (argv, assigns) = match self.expand_simple(s, io) {
            Ok(v) => v,
            Err(e) => {
                self.warn(io, e);
                return Ok(Started::Done(1));
            }
        };
        let Some((io, _files)) = self.open_redirects(&s.redirects, io) else {
            return Ok(Started::Done(1));
        };
        let Some(name) = argv.first() else {
            return Ok(Started::Done(self.subst_status.unwrap_or(0)));
        };
        if builtins::is_builtin(name) {
            if let Some(status) = builtins::trivial(name) {
                return Ok(Started::Done(status));
            }
            if let Some(buf) = capture
                && builtins::is_pure(name)
            {
                self.run_builtin(&argv, io, buf);
                return Ok(Started::Done(self.status));
            }
            let script: Vec<String> = argv.iter().map(|a| quote(a)).collect();
            return self.spawn_sh(&script.join(" "), io, foreground, name);
        }
        let Some(path) = self.lookup(name) else {
            self.warn(io, format_args!("{name}: command not found"));
            return Ok(Started::Done(127));
        };
        match self.spawn(path, argv.clone(), &assigns, io, foreground) {
            Ok(c) => Ok(Started::Child(c)),
            Err(e) => {
                self.warn(io, format_args!("{name}: {e}"));
                Err(())
            }
        }
    }

    /// Run a command substitution: its list's output, read through a pipe
    /// while it runs. A single pipeline's programs are started directly,
    /// anything else in a child shell.
    fn substitute(&mut self, sub: &Subst, io: Io) -> String {
        if sub.list.items.is_empty() {
            self.subst_status = Some(0);
            return String::new();
        }
        let (mut reader, writer) = match make_pipe() {
            Ok(p) => p,
            Err(e) => {
                self.warn(io, format_args!("cannot make a pipe: {e}"));
                self.subst_status = Some(126);
                return String::new();
            }
        };
        let sio = [io[0], raw(&writer), io[2]];
        let mut out = Vec::new();
        let started = match single_pipeline(&sub.list) {
            Some([stage]) => self
                .start_stage(stage, sio, true, Some(&mut out))
                .ok()
                .map(|s| vec![s]),
            Some(stages) => self.start_stages(stages, sio, true),
            None => self
                .spawn_sh(&sub.text, sio, true, "sh")
                .ok()
                .map(|s| vec![s]),
        };
        drop(writer);
        if let Err(e) = reader.read_to_end(&mut out) {
            self.warn(io, format_args!("command substitution: {}", describe(&e)));
        }
        drop(reader);
        let status = match started {
            Some(s) => self.wait_all(s, io),
            None => 126,
        };
        self.subst_status = Some(status);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell() -> Shell {
        Shell::new(vec!["sh".to_owned(), "a".to_owned()])
    }

    #[test]
    fn quoting_round_trips_through_the_parser() {
        for s in ["plain", "two words", "it's", "'", "", "$X `y` \\ \""] {
            let q = quote(s);
            let list = parse::parse(&format!("echo {q}")).unwrap();
            let Command::Simple(simple) = &list.items[0].and_or.first.stages[0].command else {
                panic!()
            };
            let mut sh = shell();
            let v = expand::fields(
                &mut Ctx {
                    sh: &mut sh,
                    io: STDIO,
                },
                &simple.words,
            )
            .unwrap();
            assert_eq!(v, ["echo", s]);
        }
    }

    #[test]
    fn assignments_and_exports() {
        let mut sh = shell();
        assert_eq!(sh.run_script("A=1 B=two; C=$A$B"), 0);
        assert_eq!(sh.get("C"), Some("1two"));
        assert!(!sh.vars["C"].exported);
        sh.run_script("export C D=4 E");
        assert!(sh.vars["C"].exported);
        assert_eq!(sh.get("D"), Some("4"));
        assert_eq!(sh.get("E"), None);
        let env = sh.environment(&[("X".to_owned(), "y".to_owned())], true);
        assert!(env.contains(&"C=1two".to_owned()));
        assert!(env.contains(&"X=y".to_owned()));
        assert!(env.contains(&format!("{BACKGROUND_VAR}=1")));
        assert!(env.iter().any(|e| e.starts_with("PWD=/")));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert!(!env.iter().any(|e| e.starts_with("A=")));
        sh.run_script("unset C D");
        assert_eq!(sh.get("C"), None);
        assert_eq!(sh.run_script("export 1x"), 1);
    }

    #[test]
    fn if_elif_else_with_builtins() {
        let mut sh = shell();
        sh.run_script(
            "n=; for i in 1 2 3 4; do if false; then n=x; elif true; then n=$n$i; else n=y; fi; done",
        );
        assert_eq!(sh.get("n"), Some("1234"));
        sh.run_script("if false; then a=1; else a=2; fi");
        assert_eq!(sh.get("a"), Some("2"));
        assert_eq!(sh.run_script("false; if false; then :; fi"), 0);
        assert_eq!(sh.run_script("{ false; true; } && g=1"), 0);
        assert_eq!(sh.get("g"), Some("1"));
    }

    #[test]
    fn loops_break_and_continue() {
        let mut sh = shell();
        sh.run_script(
            "s=; for i in 1 2 3 4 5; do if true; then s=$s$i; fi; \
             for j in a b; do continue 2; s=x; done; done",
        );
        assert_eq!(sh.get("s"), Some("12345"));
        sh.run_script("i=0; while true; do i=$((i+1)); if false; then :; else break; fi; done");
        assert_eq!(sh.get("i"), Some("1"));
        assert_eq!(sh.status, 0);
        sh.run_script("i=0; until false; do i=$((i+1)); for x in a; do break 2; done; done");
        assert_eq!(sh.get("i"), Some("1"));
        assert_eq!(sh.run_script("i=0; while false; do i=1; done"), 0);
        assert_eq!(sh.get("i"), Some("0"));
        assert_eq!(sh.run_script("while true; do false; break; done"), 0);
        assert_eq!(sh.run_script("for a in x y; do :; done; false"), 1);
        assert_eq!(sh.run_script("false; for a in; do :; done"), 0);
    }

    #[test]
    fn status_and_exit() {
        let mut sh = shell();
        assert_eq!(sh.run_script("false"), 1);
        assert_eq!(sh.run_script("! false"), 0);
        assert_eq!(sh.run_script("true && false || true"), 0);
        assert_eq!(sh.run_script("false && true"), 1);
        assert_eq!(sh.run_script("exit 3; true"), 3);
        assert_eq!(sh.run_script("false; exit"), 1);
        assert_eq!(sh.run_script("exit 256"), 0);
        assert_eq!(sh.run_script("exit x"), 2);
        assert_eq!(sh.run_script("if ; then"), 2);
        assert_eq!(sh.run_script("x=$((1/0))"), 1);
        assert_eq!(sh.run_script("no-such-command-here"), 127);
        assert_eq!(sh.run_script("x=$?"), 0);
        assert_eq!(sh.get("x"), Some("127"));
    }

    #[test]
    fn cd_and_pwd() {
        let mut sh = shell();
        let tmp = std::env::temp_dir();
        let tmp = tmp.to_string_lossy();
        assert_eq!(sh.run_script(&format!("cd {tmp}")), 0);
        assert_eq!(
            sh.cwd_string(),
            join(Path::new("/"), Path::new(&*tmp)).to_string_lossy()
        );
        assert_eq!(sh.get("PWD"), Some(sh.cwd_string().as_str()));
        assert_eq!(sh.run_script("cd /no/such/dir"), 1);
        assert_eq!(sh.run_script("cd"), 0);
        assert_eq!(sh.cwd_string(), "/");
        assert_eq!(sh.run_script("cd -"), 0);
        assert_eq!(
            sh.cwd_string(),
            join(Path::new("/"), Path::new(&*tmp)).to_string_lossy()
        );
        assert_eq!(sh.run_script("cd a b"), 1);
    }

    #[test]
    fn shift_and_positional() {
        let mut sh = Shell::new(vec!["s".into(), "1".into(), "2".into(), "3".into()]);
        sh.run_script("a=$#$1; shift; b=$#$1; shift 2; c=$#");
        assert_eq!(sh.get("a"), Some("31"));
        assert_eq!(sh.get("b"), Some("22"));
        assert_eq!(sh.get("c"), Some("0"));
        assert_eq!(sh.run_script("shift"), 1);
    }

    #[test]
    fn redirection_targets_must_be_descriptors_or_files() {
        let mut sh = shell();
        assert_eq!(sh.run_script("true 3>x"), 1);
        assert_eq!(sh.run_script("true >&5"), 1);
        assert_eq!(sh.run_script("true > /no/such/dir/f"), 1);
        assert_eq!(sh.run_script("true 2>&1"), 0);
    }

    #[test]
    fn source_runs_in_this_shell() {
        let dir = std::env::temp_dir().join(format!("sh-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("lib.sh");
        fs::write(&file, "LIBVAR=$1-loaded\nreturn_=1\n").unwrap();
        let mut sh = shell();
        let f = file.to_string_lossy();
        assert_eq!(sh.run_script(&format!("source {f} x; . {f}")), 0);
        assert_eq!(sh.get("LIBVAR"), Some("a-loaded"));
        assert_eq!(sh.params, ["sh", "a"]);
        fs::write(&file, format!("source {f}\n")).unwrap();
        assert_eq!(
            sh.run_script(&format!("source {f}")),
            1,
            "nesting is bounded"
        );
        fs::write(&file, "if\n").unwrap();
        assert_eq!(sh.run_script(&format!("source {f}")), 2);
        assert_eq!(sh.run_script("source /no/such/file"), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redirections_write_files() {
        let dir = std::env::temp_dir().join(format!("sh-redir-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut sh = shell();
        let d = dir.to_string_lossy();
        assert_eq!(
            sh.run_script(&format!("cd {d} && pwd > out && pwd >> out; : > empty")),
            0
        );
        let out = fs::read_to_string(dir.join("out")).unwrap();
        let canon = join(Path::new("/"), &dir).to_string_lossy().into_owned();
        assert_eq!(out, format!("{canon}\n{canon}\n"));
        assert_eq!(fs::read_to_string(dir.join("empty")).unwrap(), "");
        assert_eq!(sh.run_script("for f in *; do n=$n$f,; done"), 0);
        assert_eq!(sh.get("n"), Some("empty,out,"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
