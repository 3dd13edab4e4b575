//! Word expansion: parameters (`$NAME`, `${NAME:-word}`, `$?`, `$@`, ...),
//! command substitution, arithmetic, `~`, splitting of unquoted results
//! into fields on `IFS` (default blank, tab, newline; every `IFS`
//! character counts as white space) and file-name patterns (`*`, `?`,
//! `[...]`) from unquoted text. The shell's state is reached through
//! [`Context`], so all of it is tested natively.

use std::fmt;

use super::arith::{self, ArithError};
use super::ast::{ParamOp, Part, Subst, Word, is_name};

/// The `IFS` when unset.
const DEFAULT_IFS: &str = " \t\n";

/// What expansion needs from the shell.
pub trait Context {
    /// A parameter's value, `None` when unset: a variable, or one of `?`,
    /// `$`, `!`, `#` and the digits (`@` and `*` are taken from
    /// [`Context::positional`]).
    fn param(&mut self, name: &str) -> Option<String>;
    /// The positional parameters `$1`, `$2`, ...
    fn positional(&mut self) -> Vec<String>;
    /// Set a variable (for `${NAME:=word}`).
    fn assign(&mut self, name: &str, value: &str);
    /// The output of a command substitution's list.
    fn command(&mut self, sub: &Subst) -> String;
    /// The names in a directory (`""`: the current directory; otherwise a
    /// path ending in `/`), `None` when it cannot be read.
    fn read_dir(&mut self, dir: &str) -> Option<Vec<String>>;
    /// Whether a file is at `path`.
    fn exists(&mut self, path: &str) -> bool;
}

/// Why a word could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpandError {
    /// `$((...))` failed.
    Arith(ArithError),
    /// `${NAME?message}` of an unset parameter.
    Unset {
        /// The parameter.
        name: String,
        /// The message (the word, or "parameter not set").
        message: String,
    },
    /// `${NAME:=word}` where NAME is not a variable (`$1`, `$?`).
    BadAssign(String),
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Arith(e) => e.fmt(f),
            Self::Unset { name, message } => write!(f, "{name}: {message}"),
            Self::BadAssign(name) => write!(f, "${name}: cannot assign in this way"),
        }
    }
}

impl std::error::Error for ExpandError {}

impl From<ArithError> for ExpandError {
    fn from(e: ArithError) -> Self {
        Self::Arith(e)
    }
}

/// One field made by expansion.
#[derive(Debug)]
struct Field {
    /// Its text.
    text: String,
    /// Its text as a file-name pattern (characters that must match
    /// literally escaped with `\`) when unquoted text holds a pattern
    /// character.
    pattern: Option<String>,
}

/// Builds fields from expanded pieces.
#[derive(Debug)]
struct Builder {
    /// The fields finished.
    fields: Vec<Field>,
    /// The field being built.
    cur: String,
    /// [`Self::cur`] as a pattern.
    pat: String,
    /// Whether unquoted text of the current field has a pattern character.
    glob: bool,
    /// Whether the current field exists (even empty, as `""` makes it).
    started: bool,
    /// Whether unquoted results are split (not in assignments,
    /// redirection targets and the like).
    split: bool,
    /// The field separators.
    ifs: String,
}

/// Whether `c` is special in a pattern.
fn is_pattern_char(c: char) -> bool {
    matches!(c, '*' | '?' | '[')
}

/// Append `c` to a pattern so that it matches only itself.
fn push_escaped(pat: &mut String, c: char) {
    if is_pattern_char(c) || c == '\\' || c == ']' {
        pat.push('\\');
    }
    pat.push(c);
}

impl Builder {
    /// A builder; `split` says whether unquoted results become fields.
    fn new(split: bool, ifs: String) -> Self {
        Self {
            fields: Vec::new(),
            cur: String::new(),
            pat: String::new(),
            glob: false,
            started: false,
            split,
            ifs,
        }
    }

    /// Literal text from the word itself.
    fn lit(&mut self, s: &str, quoted: bool) {
        self.started = true;
        self.cur.push_str(s);
        if quoted || !self.split {
            s.chars().for_each(|c| push_escaped(&mut self.pat, c));
        } else {
            // Unquoted text holds no `\` (the lexer turns `\x` into quoted
            // text), so it goes into the pattern as it is.
            self.glob |= s.chars().any(is_pattern_char);
            self.pat.push_str(s);
        }
    }

    /// The result of an expansion: split on `IFS` unless quoted.
    fn value(&mut self, s: &str, quoted: bool) {
        if quoted || !self.split {
            self.started = true;
            self.cur.push_str(s);
            s.chars().for_each(|c| push_escaped(&mut self.pat, c));
            return;
        }
        for c in s.chars() {
            if self.ifs.contains(c) {
                self.end();
            } else {
                self.started = true;
                self.cur.push(c);
                push_escaped(&mut self.pat, c);
            }
        }
    }

    /// Between the fields of `"$@"`: a field boundary (a blank when not
    /// splitting).
    fn separate(&mut self) {
        if self.split {
            self.end();
        } else {
            self.cur.push(' ');
        }
    }

    /// Finish the current field, if there is one.
    fn end(&mut self) {
        if self.started {
            let pattern = std::mem::take(&mut self.pat);
            self.fields.push(Field {
                text: std::mem::take(&mut self.cur),
                pattern: self.glob.then_some(pattern),
            });
        }
        self.cur.clear();
        self.pat.clear();
        self.glob = false;
        self.started = false;
    }
}

/// Expand `words` into fields: expansions, splitting, file-name patterns
/// (a pattern that matches nothing stays as it is).
///
/// # Errors
/// [`ExpandError`] when an expansion fails.
pub fn fields<C: Context + ?Sized>(
    ctx: &mut C,
    words: &[Word],
) -> Result<Vec<String>, ExpandError> {
    let ifs = ctx.param("IFS").unwrap_or_else(|| DEFAULT_IFS.to_owned());
    let mut out = Vec::new();
    for w in words {
        let mut b = Builder::new(true, ifs.clone());
        expand_parts(ctx, &w.parts, &mut b, false)?;
        b.end();
        for f in b.fields {
            match f.pattern {
                Some(p) => {
                    let found = glob(ctx, &p);
                    if found.is_empty() {
                        out.push(f.text);
                    } else {
                        out.extend(found);
                    }
                }
                None => out.push(f.text),
            }
        }
    }
    Ok(out)
}

/// Expand `word` into one string: no splitting, no patterns (assignment
/// values, redirection targets, `case`-less contexts).
///
/// # Errors
/// [`ExpandError`] when an expansion fails.
pub fn string<C: Context + ?Sized>(ctx: &mut C, word: &Word) -> Result<String, ExpandError> {
    string_parts(ctx, &word.parts)
}

/// [`string`] of parts.
fn string_parts<C: Context + ?Sized>(ctx: &mut C, parts: &[Part]) -> Result<String, ExpandError> {
    let mut b = Builder::new(false, String::new());
    expand_parts(ctx, parts, &mut b, false)?;
    Ok(b.cur)
}

/// Expand `parts` into `b`; `nested`: they are the word of
/// `${NAME:-word}` and the like, whose unquoted text is split too.
fn expand_parts<C: Context + ?Sized>(
    ctx: &mut C,
    parts: &[Part],
    b: &mut Builder,
    nested: bool,
) -> Result<(), ExpandError> {
    for part in parts {
        match part {
            Part::Lit { text, quoted } if nested && !quoted => b.value(text, false),
            Part::Lit { text, quoted } => b.lit(text, *quoted),
            Part::Tilde => match ctx.param("HOME") {
                Some(home) => b.value(&home, true),
                None => b.lit("~", true),
            },
            Part::Param { name, op, quoted } => param(ctx, name, op, *quoted, b)?,
            Part::Command { sub, quoted } => {
                let out = ctx.command(sub);
                b.value(out.trim_end_matches('\n'), *quoted);
            }
            Part::Arith { expr, quoted } => {
                let text = string_parts(ctx, expr)?;
                let n = arith::eval(&text, &mut |name| ctx.param(name))?;
                b.value(&n.to_string(), *quoted);
            }
        }
    }
    Ok(())
}

/// A parameter's value (`@` and `*`: the positional parameters joined by
/// blanks, unset when there are none).
fn lookup<C: Context + ?Sized>(ctx: &mut C, name: &str) -> Option<String> {
    if name == "@" || name == "*" {
        let p = ctx.positional();
        (!p.is_empty()).then(|| p.join(" "))
    } else {
        ctx.param(name)
    }
}

/// Expand one parameter into `b`.
fn param<C: Context + ?Sized>(
    ctx: &mut C,
    name: &str,
    op: &ParamOp,
    quoted: bool,
    b: &mut Builder,
) -> Result<(), ExpandError> {
    if name == "@" && quoted && *op == ParamOp::Plain {
        for (i, p) in ctx.positional().iter().enumerate() {
            if i > 0 {
                b.separate();
            }
            b.value(p, true);
        }
        return Ok(());
    }
    let value = lookup(ctx, name);
    let set = |colon: bool| value.as_ref().is_some_and(|v| !(colon && v.is_empty()));
    match op {
        ParamOp::Plain => b.value(value.as_deref().unwrap_or(""), quoted),
        ParamOp::Length => {
            let n = value.map_or(0, |v| v.chars().count());
            b.value(&n.to_string(), quoted);
        }
        ParamOp::Default { colon, word } => {
            if set(*colon) {
                b.value(value.as_deref().unwrap_or(""), quoted);
            } else {
                b.value("", quoted);
                expand_parts(ctx, word, b, true)?;
            }
        }
        ParamOp::Assign { colon, word } => {
            if set(*colon) {
                b.value(value.as_deref().unwrap_or(""), quoted);
            } else {
                if !is_name(name) {
                    return Err(ExpandError::BadAssign(name.to_owned()));
                }
                let s = string_parts(ctx, word)?;
                ctx.assign(name, &s);
                b.value(&s, quoted);
            }
        }
        ParamOp::Alternate { colon, word } => {
            b.value("", quoted);
            if set(*colon) {
                expand_parts(ctx, word, b, true)?;
            }
        }
        ParamOp::Error { colon, word } => {
            if set(*colon) {
                b.value(value.as_deref().unwrap_or(""), quoted);
            } else {
                let mut message = string_parts(ctx, word)?;
                if message.is_empty() {
                    message = "parameter not set".to_owned();
                }
                return Err(ExpandError::Unset {
                    name: name.to_owned(),
                    message,
                });
            }
        }
    }
    Ok(())
}

/// Whether a pattern component has an unescaped pattern character.
fn has_pattern(comp: &str) -> bool {
    let mut escaped = false;
    for c in comp.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if is_pattern_char(c) {
            return true;
        }
    }
    false
}

/// A pattern component without its escapes.
fn unescape(comp: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in comp.chars() {
        if !escaped && c == '\\' {
            escaped = true;
        } else {
            out.push(c);
            escaped = false;
        }
    }
    out
}

/// The paths matching `pattern` (components separated by `/`), sorted.
fn glob<C: Context + ?Sized>(ctx: &mut C, pattern: &str) -> Vec<String> {
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    if comps.is_empty() {
        return Vec::new();
    }
    let root = if pattern.starts_with('/') { "/" } else { "" };
    let mut found = vec![root.to_owned()];
    for (i, comp) in comps.iter().enumerate() {
        let sep = if i + 1 == comps.len() { "" } else { "/" };
        let mut next = Vec::new();
        for prefix in &found {
            if has_pattern(comp) {
                let Some(mut names) = ctx.read_dir(prefix) else {
                    continue;
                };
                names.sort();
                for name in names {
                    let hidden_ok = !name.starts_with('.') || comp.starts_with('.');
                    if hidden_ok && matches(comp, &name) {
                        next.push(format!("{prefix}{name}{sep}"));
                    }
                }
            } else {
                next.push(format!("{prefix}{}{sep}", unescape(comp)));
            }
        }
        found = next;
    }
    if comps.last().is_some_and(|c| !has_pattern(c)) {
        found.retain(|p| ctx.exists(p));
    }
    if pattern.ends_with('/') {
        found.iter_mut().for_each(|p| p.push('/'));
    }
    found
}

/// How a bracket expression at the start of `p` treats `c`: whether it
/// matches and how many pattern characters it spans; `None` when it is
/// not closed (then `[` is literal).
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let mut lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if lo == '\\' {
            i += 1;
            lo = *p.get(i)?;
        }
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&h| h != ']') {
            let mut hi = p[i + 1];
            i += 2;
            if hi == '\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            hit |= lo <= c && c <= hi;
        } else {
            hit |= lo == c;
        }
    }
}

/// How many pattern characters at the start of `p` (not `*`) match `c`,
/// `None` when they do not.
fn step(p: &[char], c: char) -> Option<usize> {
    match p.first()? {
        '?' => Some(1),
        '[' => match class(p, c) {
            Some((hit, len)) => hit.then_some(len),
            None => (c == '[').then_some(1),
        },
        '\\' if p.len() > 1 => (p[1] == c).then_some(2),
        &l => (l == c).then_some(1),
    }
}

/// Whether `name` matches the pattern `pattern` (`*`, `?`, `[...]`, `\`
/// escapes).
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if p.get(pi) == Some(&'*') {
            pi += 1;
            star = Some((pi, ni));
            continue;
        }
        if let Some(len) = step(&p[pi.min(p.len())..], n[ni]) {
            pi += len;
            ni += 1;
            continue;
        }
        match star {
            Some((sp, sn)) => {
                pi = sp;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ast::Command;
    use crate::parse::parse;

    /// A shell state for tests.
    #[derive(Default)]
    struct Mock {
        vars: BTreeMap<String, String>,
        args: Vec<String>,
        /// Command text → output.
        outputs: BTreeMap<String, String>,
        /// Directory → names.
        dirs: BTreeMap<String, Vec<String>>,
    }

    impl Context for Mock {
        fn param(&mut self, name: &str) -> Option<String> {
            match name {
                "#" => Some(self.args.len().to_string()),
                "?" => Some("3".to_owned()),
                n if n.chars().all(|c| c.is_ascii_digit()) => {
                    let i: usize = n.parse().ok()?;
                    if i == 0 {
                        Some("sh".to_owned())
                    } else {
                        self.args.get(i - 1).cloned()
                    }
                }
                n => self.vars.get(n).cloned(),
            }
        }
        fn positional(&mut self) -> Vec<String> {
            self.args.clone()
        }
        fn assign(&mut self, name: &str, value: &str) {
            self.vars.insert(name.to_owned(), value.to_owned());
        }
        fn command(&mut self, sub: &Subst) -> String {
            self.outputs.get(&sub.text).cloned().unwrap_or_default()
        }
        fn read_dir(&mut self, dir: &str) -> Option<Vec<String>> {
            self.dirs.get(dir).cloned()
        }
        fn exists(&mut self, path: &str) -> bool {
            let (dir, name) = match path.rfind('/') {
                Some(i) => (&path[..=i], &path[i + 1..]),
                None => ("", path),
            };
            self.dirs
                .get(dir)
                .is_some_and(|names| names.iter().any(|n| n == name))
        }
    }

    fn mock() -> Mock {
        let mut m = Mock::default();
        for (k, v) in [
            ("X", "a b  c"),
            ("E", ""),
            ("S", " lead trail "),
            ("HOME", "/home/me"),
            ("N", "5"),
            ("STAR", "*.rs"),
        ] {
            m.vars.insert(k.to_owned(), v.to_owned());
        }
        m.args = vec!["one".to_owned(), "two words".to_owned()];
        m.outputs
            .insert("ls".to_owned(), "f1\nf2 f3\n\n".to_owned());
        m.outputs.insert("pwd".to_owned(), "/tmp\n".to_owned());
        m.dirs.insert(
            String::new(),
            ["b.rs", "a.rs", ".hidden.rs", "c.txt", "src"]
                .map(String::from)
                .to_vec(),
        );
        m.dirs.insert(
            "src/".to_owned(),
            ["main.rs", "lib.rs"].map(String::from).to_vec(),
        );
        m.dirs
            .insert("/".to_owned(), ["bin", "etc"].map(String::from).to_vec());
        m
    }

    /// The words of the only simple command of `src`, expanded.
    fn ex(m: &mut Mock, src: &str) -> Result<Vec<String>, ExpandError> {
        let list = parse(src).unwrap();
        let Command::Simple(s) = &list.items[0].and_or.first.stages[0].command else {
            panic!("{src}");
        };
        fields(m, &s.words)
    }

    fn ok(src: &str) -> Vec<String> {
        ex(&mut mock(), src).unwrap()
    }

    #[test]
    fn unquoted_results_split_quoted_do_not() {
        assert_eq!(ok("e $X"), ["e", "a", "b", "c"]);
        assert_eq!(ok("e \"$X\""), ["e", "a b  c"]);
        assert_eq!(ok("e x$S"), ["e", "x", "lead", "trail"]);
        assert_eq!(ok("e x${S}y"), ["e", "x", "lead", "trail", "y"]);
        assert_eq!(ok("e 'a  b' c\\ d"), ["e", "a  b", "c d"]);
    }

    #[test]
    fn empty_values_make_fields_only_when_quoted() {
        assert_eq!(ok("e $E $UNSET"), ["e"]);
        assert_eq!(ok("e \"$E\" '' \"\""), ["e", "", "", ""]);
        assert_eq!(ok("e \"$UNSET\"x"), ["e", "x"]);
        assert_eq!(ok("e ${E:-}"), ["e"]);
        assert_eq!(ok("e \"${E:-}\""), ["e", ""]);
    }

    #[test]
    fn special_parameters() {
        assert_eq!(
            ok("e $? $# $0 $1 \"$2\" $3"),
            ["e", "3", "2", "sh", "one", "two words"]
        );
        assert_eq!(ok("e \"$@\""), ["e", "one", "two words"]);
        assert_eq!(ok("e \"<$@>\""), ["e", "<one", "two words>"]);
        assert_eq!(ok("e $@"), ["e", "one", "two", "words"]);
        assert_eq!(ok("e \"$*\""), ["e", "one two words"]);
        let mut m = mock();
        m.args.clear();
        assert_eq!(ex(&mut m, "e \"$@\"").unwrap(), ["e"]);
        assert_eq!(ex(&mut m, "e \"$*\"").unwrap(), ["e", ""]);
    }

    #[test]
    fn parameter_operators() {
        assert_eq!(
            ok("e ${UNSET:-d 1} ${E:-d2} ${E-d3}"),
            ["e", "d", "1", "d2"]
        );
        assert_eq!(ok("e \"${UNSET:-d 1}\""), ["e", "d 1"]);
        assert_eq!(
            ok("e ${N:-no} ${N:+yes} ${E+set} ${E:+no}"),
            ["e", "5", "yes", "set"]
        );
        assert_eq!(ok("e ${#X} ${#UNSET} ${#}"), ["e", "6", "0", "2"]);
        let mut m = mock();
        assert_eq!(ex(&mut m, "e ${NEW:=v 1}").unwrap(), ["e", "v", "1"]);
        assert_eq!(m.vars.get("NEW").map(String::as_str), Some("v 1"));
        assert_eq!(
            ex(&mut m, "e ${1:=x}"),
            Ok(vec!["e".to_owned(), "one".to_owned()])
        );
        assert_eq!(
            ex(&mut m, "e ${9:=x}"),
            Err(ExpandError::BadAssign("9".to_owned()))
        );
        assert_eq!(
            ex(&mut m, "e ${UNSET?gone}"),
            Err(ExpandError::Unset {
                name: "UNSET".to_owned(),
                message: "gone".to_owned()
            })
        );
        assert_eq!(
            ex(&mut m, "e ${E:?}"),
            Err(ExpandError::Unset {
                name: "E".to_owned(),
                message: "parameter not set".to_owned()
            })
        );
        assert_eq!(ex(&mut m, "e ${E?}"), Ok(vec!["e".to_owned()]));
    }

    #[test]
    fn command_substitution_strips_newlines_and_splits() {
        assert_eq!(ok("e $(ls)"), ["e", "f1", "f2", "f3"]);
        assert_eq!(ok("e \"$(ls)\""), ["e", "f1\nf2 f3"]);
        assert_eq!(ok("e x`pwd`/y"), ["e", "x/tmp/y"]);
        assert_eq!(ok("e $(nothing)"), ["e"]);
    }

    #[test]
    fn arithmetic() {
        assert_eq!(ok("e $((1 + 2 * N)) $(( $N - 1 ))"), ["e", "11", "4"]);
        assert_eq!(
            ex(&mut mock(), "e $((1 / 0))"),
            Err(ExpandError::Arith(ArithError::DivisionByZero))
        );
    }

    #[test]
    fn tilde_is_home() {
        assert_eq!(ok("e ~ ~/x a~"), ["e", "/home/me", "/home/me/x", "a~"]);
        let mut m = mock();
        m.vars.remove("HOME");
        assert_eq!(ex(&mut m, "e ~/x").unwrap(), ["e", "~/x"]);
    }

    #[test]
    fn patterns_match_file_names() {
        assert_eq!(ok("e *.rs"), ["e", "a.rs", "b.rs"]);
        assert_eq!(ok("e .*.rs"), ["e", ".hidden.rs"]);
        assert_eq!(ok("e ?.t*"), ["e", "c.txt"]);
        assert_eq!(ok("e [ab].rs"), ["e", "a.rs", "b.rs"]);
        assert_eq!(ok("e src/*.rs"), ["e", "src/lib.rs", "src/main.rs"]);
        assert_eq!(ok("e */main.rs"), ["e", "src/main.rs"]);
        assert_eq!(ok("e */none.rs"), ["e", "*/none.rs"]);
        assert_eq!(ok("e /b*"), ["e", "/bin"]);
        assert_eq!(ok("e *.none"), ["e", "*.none"]);
        assert_eq!(
            ok("e '*.rs' \"*\".rs \\*.rs"),
            ["e", "*.rs", "*.rs", "*.rs"]
        );
        assert_eq!(ok("e $STAR"), ["e", "*.rs"], "expanded text is no pattern");
        assert_eq!(ok("A=*.rs"), Vec::<String>::new());
    }

    #[test]
    fn strings_do_not_split() {
        let list = parse("A=$X$E\"$@\"*").unwrap();
        let Command::Simple(s) = &list.items[0].and_or.first.stages[0].command else {
            panic!();
        };
        let v = string(&mut mock(), &s.assigns[0].1).unwrap();
        assert_eq!(v, "a b  cone two words*");
    }

    #[test]
    fn pattern_matching() {
        assert!(matches("*", "abc"));
        assert!(matches("*", ""));
        assert!(matches("a*c", "abbbc"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*c", "abcd"));
        assert!(matches("?b?", "abc"));
        assert!(!matches("?", ""));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[!a-c]x", "bx"));
        assert!(matches("[^a-c]x", "dx"));
        assert!(matches("[]]", "]"));
        assert!(matches("[a\\]]", "]"));
        assert!(matches("[", "["));
        assert!(matches("a[", "a["));
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "a"));
        assert!(matches("**a", "ba"));
        assert!(matches("é*", "éte"));
    }
}
