//! The lexer and parser: shell text in, a syntax tree ([`List`]) out.
//! Pure, so it is tested natively. Text that ends inside a construct (an
//! open quote, `if` without `fi`, a trailing `|` or `&&`, ...) is
//! [`ParseError::Incomplete`]: the interactive loop reads another line and
//! tries again.
//!
//! The lexer and the parser share one cursor: a `$(` met inside a word is
//! parsed as a list on the spot, up to its `)`.

use std::fmt;

use super::ast::{
    AndOr, Command, Compound, Connector, Item, List, ParamOp, Part, Pipeline, RedirOp, Redirect,
    Simple, Stage, Subst, Word, is_name,
};

/// How deep constructs may nest: the stack is small on wasm.
const MAX_DEPTH: usize = 32;

/// Reserved words that end a compound list.
const CLOSERS: &[&str] = &["then", "elif", "else", "fi", "do", "done", "}"];

/// Reserved words, recognised only where a command may start (`in` only
/// after `for NAME`).
const RESERVED: &[&str] = &[
    "if", "then", "elif", "else", "fi", "for", "in", "do", "done", "while", "until", "case",
    "esac", "{", "}", "!",
];

/// Why text did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The text ends inside a construct: more lines may complete it.
    Incomplete,
    /// The text can never parse; the message says why.
    Syntax(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete => f.write_str("unexpected end of file"),
            Self::Syntax(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ParseError {}

/// A syntax error with `msg`.
fn syntax(msg: impl Into<String>) -> ParseError {
    ParseError::Syntax(msg.into())
}

/// Parse a whole program.
///
/// # Errors
/// [`ParseError::Incomplete`] when the text stops inside a construct,
/// [`ParseError::Syntax`] when it cannot parse.
pub fn parse(src: &str) -> Result<List, ParseError> {
    Parser::new(src, 0).program()
}

/// Operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// `&&`
    AndIf,
    /// `||`
    OrIf,
    /// `|`
    Pipe,
    /// `&`
    Amp,
    /// `;`
    Semi,
    /// `;;`
    DSemi,
    /// `<`
    Less,
    /// `>` (and `>|`)
    Great,
    /// `>>`
    DGreat,
    /// `<&`
    LessAnd,
    /// `>&`
    GreatAnd,
    /// `<>`
    LessGreat,
    /// `<<`
    DLess,
    /// `(`
    LParen,
    /// `)`
    RParen,
}

/// A token.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// A word (possibly a reserved word; the parser decides).
    Word(Word),
    /// Digits right before `<` or `>`: the descriptor redirected.
    IoNum(u32),
    /// An operator.
    Op(Op),
    /// A newline.
    Newline,
    /// The end of the text.
    Eof,
}

/// A token with where it lies in the text.
#[derive(Debug)]
struct Lexed {
    /// The token.
    tok: Tok,
    /// Index of its first character.
    start: usize,
    /// Index just past its last character.
    end: usize,
}

/// Where a run of word parts ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// At a blank or an operator: a whole word.
    Word,
    /// At `"`.
    Double,
    /// At `}` of `${NAME:-word}`.
    Brace,
    /// At `))` of `$((expr))`.
    Arith,
}

/// The lexer and parser's state.
struct Parser {
    /// The text.
    src: Vec<char>,
    /// The lexer's position.
    pos: usize,
    /// The token looked at but not taken.
    peeked: Option<Lexed>,
    /// The end of the last token taken.
    last_end: usize,
    /// How deep in nested constructs.
    depth: usize,
}

/// Whether `c` is an operator character (ends an unquoted word).
fn is_meta(c: char) -> bool {
    matches!(c, '|' | '&' | ';' | '<' | '>' | '(' | ')')
}

/// Whether `c` ends an unquoted word.
fn ends_word(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n') || is_meta(c)
}

/// Append `s` to `parts`, merging with a literal of the same quoting.
fn push_lit(parts: &mut Vec<Part>, s: &str, quoted: bool) {
    if let Some(Part::Lit { text, quoted: q }) = parts.last_mut()
        && *q == quoted
    {
        text.push_str(s);
        return;
    }
    parts.push(Part::Lit {
        text: s.to_owned(),
        quoted,
    });
}

/// Append a character with [`push_lit`].
fn push_char(parts: &mut Vec<Part>, c: char, quoted: bool) {
    let mut b = [0u8; 4];
    push_lit(parts, c.encode_utf8(&mut b), quoted);
}

impl Parser {
    /// A parser of `src` at nesting `depth`.
    fn new(src: &str, depth: usize) -> Self {
        Self {
            src: src.chars().collect(),
            pos: 0,
            peeked: None,
            last_end: 0,
            depth,
        }
    }

    /// The character at the cursor.
    fn cur(&self) -> Option<char> {
        self.src.get(self.pos).copied()
    }

    /// The character `n` past the cursor.
    fn at(&self, n: usize) -> Option<char> {
        self.src.get(self.pos + n).copied()
    }

    /// The text from `a` to `b`.
    fn text(&self, a: usize, b: usize) -> String {
        self.src
            .get(a..b)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    /// Run `f` one level deeper, refusing past [`MAX_DEPTH`].
    fn nest<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(syntax("too deeply nested"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    // ----- the lexer -----

    /// The next token.
    fn lex(&mut self) -> Result<Lexed, ParseError> {
        loop {
            match self.cur() {
                Some(' ' | '\t') => self.pos += 1,
                Some('\\') if self.at(1) == Some('\n') => {
                    if self.pos + 2 >= self.src.len() {
                        return Err(ParseError::Incomplete);
                    }
                    self.pos += 2;
                }
                Some('#') => {
                    while self.cur().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        let start = self.pos;
        let tok = match self.cur() {
            None => Tok::Eof,
            Some('\n') => {
                self.pos += 1;
                Tok::Newline
            }
            Some(c) if is_meta(c) => Tok::Op(self.op(c)),
            Some(c) => match c.is_ascii_digit().then(|| self.io_number()).flatten() {
                Some(n) => Tok::IoNum(n),
                None => Tok::Word(Word {
                    parts: self.parts(End::Word, false)?,
                }),
            },
        };
        Ok(Lexed {
            tok,
            start,
            end: self.pos,
        })
    }

    /// The operator starting with `c` at the cursor.
    fn op(&mut self, c: char) -> Op {
        let two = match (c, self.at(1)) {
            ('&', Some('&')) => Some(Op::AndIf),
            ('|', Some('|')) => Some(Op::OrIf),
            (';', Some(';')) => Some(Op::DSemi),
            ('>', Some('>')) => Some(Op::DGreat),
            ('>', Some('&')) => Some(Op::GreatAnd),
            ('>', Some('|')) => Some(Op::Great),
            ('<', Some('&')) => Some(Op::LessAnd),
            ('<', Some('>')) => Some(Op::LessGreat),
            ('<', Some('<')) => Some(Op::DLess),
            _ => None,
        };
        if let Some(op) = two {
            self.pos += 2;
            return op;
        }
        self.pos += 1;
        match c {
            '&' => Op::Amp,
            '|' => Op::Pipe,
            ';' => Op::Semi,
            '<' => Op::Less,
            '>' => Op::Great,
            '(' => Op::LParen,
            _ => Op::RParen,
        }
    }

    /// Digits right before `<` or `>`, taken as a descriptor number.
    fn io_number(&mut self) -> Option<u32> {
        let mut end = self.pos;
        while self.src.get(end).is_some_and(char::is_ascii_digit) {
            end += 1;
        }
        if !matches!(self.src.get(end), Some('<' | '>')) {
            return None;
        }
        let n = self.text(self.pos, end).parse().ok()?;
        self.pos = end;
        Some(n)
    }

    /// Word parts up to `end` (consumed, except a word's end).
    fn parts(&mut self, end: End, quoted: bool) -> Result<Vec<Part>, ParseError> {
        let mut parts = Vec::new();
        let mut parens = 0usize;
        loop {
            let Some(c) = self.cur() else {
                return if end == End::Word {
                    Ok(parts)
                } else {
                    Err(ParseError::Incomplete)
                };
            };
            match (end, c) {
                (End::Word, c) if ends_word(c) => return Ok(parts),
                (End::Double, '"') | (End::Brace, '}') => {
                    self.pos += 1;
                    return Ok(parts);
                }
                (End::Arith, ')') if parens == 0 => {
                    return match self.at(1) {
                        Some(')') => {
                            self.pos += 2;
                            Ok(parts)
                        }
                        None => Err(ParseError::Incomplete),
                        Some(_) => Err(syntax("expected `))` to end `$((`")),
                    };
                }
                _ => {}
            }
            match c {
                '\\' => match self.at(1) {
                    None => {
                        push_char(&mut parts, '\\', true);
                        self.pos += 1;
                    }
                    Some('\n') => {
                        if self.pos + 2 >= self.src.len() {
                            return Err(ParseError::Incomplete);
                        }
                        self.pos += 2;
                    }
                    Some(n) if matches!(end, End::Word | End::Brace) => {
                        push_char(&mut parts, n, true);
                        self.pos += 2;
                    }
                    Some(n) if matches!(n, '$' | '`' | '"' | '\\') => {
                        push_char(&mut parts, n, true);
                        self.pos += 2;
                    }
                    Some(_) => {
                        push_char(&mut parts, '\\', true);
                        self.pos += 1;
                    }
                },
                '\'' if end == End::Word || (end == End::Brace && !quoted) => {
                    let from = self.pos + 1;
                    let Some(len) = self.src[from..].iter().position(|&c| c == '\'') else {
                        return Err(ParseError::Incomplete);
                    };
                    let text = self.text(from, from + len);
                    push_lit(&mut parts, &text, true);
                    self.pos = from + len + 1;
                }
                '"' if matches!(end, End::Word | End::Brace) => {
                    self.pos += 1;
                    let inner = self.parts(End::Double, true)?;
                    if inner.is_empty() {
                        push_lit(&mut parts, "", true);
                    }
                    for p in inner {
                        match p {
                            Part::Lit { text, quoted } => push_lit(&mut parts, &text, quoted),
                            p => parts.push(p),
                        }
                    }
                }
                '$' => {
                    let part = self.nest(|p| p.dollar(quoted))?;
                    match part {
                        Some(p) => parts.push(p),
                        None => {
                            push_char(&mut parts, '$', quoted);
                            self.pos += 1;
                        }
                    }
                }
                '`' => {
                    let part = self.nest(|p| p.backtick(quoted))?;
                    parts.push(part);
                }
                '~' if end == End::Word
                    && parts.is_empty()
                    && self.at(1).is_none_or(|n| n == '/' || ends_word(n)) =>
                {
                    parts.push(Part::Tilde);
                    self.pos += 1;
                }
                c => {
                    if end == End::Arith {
                        if c == '(' {
                            parens += 1;
                        } else if c == ')' {
                            parens -= 1;
                        }
                    }
                    push_char(&mut parts, c, quoted);
                    self.pos += 1;
                }
            }
        }
    }

    /// The expansion at a `$` under the cursor, or `None` for a literal
    /// `$`.
    fn dollar(&mut self, quoted: bool) -> Result<Option<Part>, ParseError> {
        match self.at(1) {
            Some('(') if self.at(2) == Some('(') => {
                self.pos += 3;
                let expr = self.parts(End::Arith, true)?;
                Ok(Some(Part::Arith { expr, quoted }))
            }
            Some('(') => {
                self.pos += 2;
                let start = self.pos;
                let list = self.list()?;
                let text = self.close_paren(start)?;
                Ok(Some(Part::Command {
                    sub: Subst { list, text },
                    quoted,
                }))
            }
            Some('{') => {
                self.pos += 2;
                self.brace_param(quoted).map(Some)
            }
            Some(c) if matches!(c, '?' | '$' | '#' | '!' | '@' | '*') || c.is_ascii_digit() => {
                self.pos += 2;
                Ok(Some(Part::Param {
                    name: c.to_string(),
                    op: ParamOp::Plain,
                    quoted,
                }))
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                self.pos += 1;
                let name = self.param_name();
                Ok(Some(Part::Param {
                    name,
                    op: ParamOp::Plain,
                    quoted,
                }))
            }
            _ => Ok(None),
        }
    }

    /// A parameter's name at the cursor: a variable name, digits or one
    /// special character; empty when none.
    fn param_name(&mut self) -> String {
        let start = self.pos;
        match self.cur() {
            Some(c) if c.is_ascii_digit() => {
                while self.cur().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                while self
                    .cur()
                    .is_some_and(|c| c == '_' || c.is_ascii_alphanumeric())
                {
                    self.pos += 1;
                }
            }
            Some('?' | '$' | '#' | '!' | '@' | '*') => self.pos += 1,
            _ => {}
        }
        self.text(start, self.pos)
    }

    /// `${...}`, the cursor just past `${`.
    fn brace_param(&mut self, quoted: bool) -> Result<Part, ParseError> {
        let bad = |p: &Self| {
            if p.cur().is_none() {
                ParseError::Incomplete
            } else {
                syntax("bad substitution")
            }
        };
        let length = self.cur() == Some('#') && !matches!(self.at(1), Some('}') | None);
        if length {
            self.pos += 1;
        }
        let name = self.param_name();
        if name.is_empty() {
            return Err(bad(self));
        }
        let colon = !length && self.cur() == Some(':');
        if colon {
            self.pos += 1;
        }
        let op = match self.cur() {
            Some('}') if !colon => {
                self.pos += 1;
                return Ok(Part::Param {
                    name,
                    op: if length {
                        ParamOp::Length
                    } else {
                        ParamOp::Plain
                    },
                    quoted,
                });
            }
            Some(c @ ('-' | '=' | '+' | '?')) if !length => c,
            _ => return Err(bad(self)),
        };
        self.pos += 1;
        let word = self.parts(End::Brace, quoted)?;
        let op = match op {
            '-' => ParamOp::Default { colon, word },
            '=' => ParamOp::Assign { colon, word },
            '+' => ParamOp::Alternate { colon, word },
            _ => ParamOp::Error { colon, word },
        };
        Ok(Part::Param { name, op, quoted })
    }

    /// `` `...` ``, the cursor on the opening backquote.
    fn backtick(&mut self, quoted: bool) -> Result<Part, ParseError> {
        self.pos += 1;
        let mut inner = String::new();
        loop {
            match self.cur() {
                None => return Err(ParseError::Incomplete),
                Some('`') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') if matches!(self.at(1), Some('`' | '\\' | '$')) => {
                    inner.extend(self.at(1));
                    self.pos += 2;
                }
                Some(c) => {
                    inner.push(c);
                    self.pos += 1;
                }
            }
        }
        let list = Parser::new(&inner, self.depth)
            .program()
            .map_err(|e| match e {
                ParseError::Incomplete => syntax("unterminated construct inside `...`"),
                e => e,
            })?;
        Ok(Part::Command {
            sub: Subst { list, text: inner },
            quoted,
        })
    }

    // ----- tokens for the parser -----

    /// The next token, without taking it.
    fn peek(&mut self) -> Result<&Tok, ParseError> {
        let l = match self.peeked.take() {
            Some(l) => l,
            None => self.lex()?,
        };
        Ok(&self.peeked.insert(l).tok)
    }

    /// Take the next token.
    fn next(&mut self) -> Result<Tok, ParseError> {
        let l = match self.peeked.take() {
            Some(l) => l,
            None => self.lex()?,
        };
        self.last_end = l.end;
        Ok(l.tok)
    }

    /// Where the next token starts.
    fn start(&mut self) -> Result<usize, ParseError> {
        self.peek()?;
        Ok(self.peeked.as_ref().map_or(self.pos, |l| l.start))
    }

    /// The reserved word the next token is, if it is one.
    fn keyword(&mut self) -> Result<Option<&'static str>, ParseError> {
        Ok(match self.peek()? {
            Tok::Word(w) => w
                .as_literal()
                .and_then(|s| RESERVED.iter().copied().find(|k| *k == s)),
            _ => None,
        })
    }

    /// The error for the next token where it does not belong:
    /// [`ParseError::Incomplete`] at the end of the text.
    fn unexpected(&mut self) -> ParseError {
        let l = match self.peeked.take() {
            Some(l) => l,
            None => match self.lex() {
                Ok(l) => l,
                Err(e) => return e,
            },
        };
        let e = match l.tok {
            Tok::Eof => ParseError::Incomplete,
            Tok::Newline => syntax("unexpected newline"),
            _ => syntax(format!("unexpected `{}`", self.text(l.start, l.end))),
        };
        self.peeked = Some(l);
        e
    }

    /// Skip newline tokens.
    fn skip_newlines(&mut self) -> Result<(), ParseError> {
        while *self.peek()? == Tok::Newline {
            self.next()?;
        }
        Ok(())
    }

    /// Take the reserved word `kw`.
    fn expect(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.keyword()? == Some(kw) {
            self.next()?;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// Take a `)`, returning the text from `start` to it.
    fn close_paren(&mut self, start: usize) -> Result<String, ParseError> {
        self.peek()?;
        match self.peeked.take() {
            Some(Lexed {
                tok: Tok::Op(Op::RParen),
                start: end,
                end: after,
            }) => {
                self.last_end = after;
                Ok(self.text(start, end))
            }
            other => {
                self.peeked = other;
                Err(self.unexpected())
            }
        }
    }

    // ----- the grammar -----

    /// A whole program: a list up to the end of the text.
    fn program(&mut self) -> Result<List, ParseError> {
        let list = self.list()?;
        if *self.peek()? == Tok::Eof {
            Ok(list)
        } else {
            Err(self.unexpected())
        }
    }

    /// A list, up to the end, a `)` or a reserved word that closes a
    /// compound command (not taken).
    fn list(&mut self) -> Result<List, ParseError> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines()?;
            if matches!(self.peek()?, Tok::Eof | Tok::Op(Op::RParen)) {
                break;
            }
            if self.keyword()?.is_some_and(|k| CLOSERS.contains(&k)) {
                break;
            }
            let and_or = self.and_or()?;
            let background = match self.peek()? {
                Tok::Op(Op::Semi) => {
                    self.next()?;
                    false
                }
                Tok::Op(Op::Amp) => {
                    self.next()?;
                    true
                }
                Tok::Newline => false,
                _ => {
                    items.push(Item {
                        and_or,
                        background: false,
                    });
                    break;
                }
            };
            items.push(Item { and_or, background });
        }
        Ok(List { items })
    }

    /// A list that must hold a command.
    fn nonempty_list(&mut self) -> Result<List, ParseError> {
        let list = self.list()?;
        if list.items.is_empty() {
            Err(self.unexpected())
        } else {
            Ok(list)
        }
    }

    /// Pipelines joined by `&&` and `||`.
    fn and_or(&mut self) -> Result<AndOr, ParseError> {
        let start = self.start()?;
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let conn = match self.peek()? {
                Tok::Op(Op::AndIf) => Connector::And,
                Tok::Op(Op::OrIf) => Connector::Or,
                _ => break,
            };
            self.next()?;
            self.skip_newlines()?;
            rest.push((conn, self.pipeline()?));
        }
        Ok(AndOr {
            first,
            rest,
            text: self.text(start, self.last_end),
        })
    }

    /// Commands joined by `|`, maybe after `!`.
    fn pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let negated = self.keyword()? == Some("!");
        if negated {
            self.next()?;
        }
        let mut stages = vec![self.stage()?];
        while *self.peek()? == Tok::Op(Op::Pipe) {
            self.next()?;
            self.skip_newlines()?;
            stages.push(self.stage()?);
        }
        Ok(Pipeline { negated, stages })
    }

    /// One command with its text.
    fn stage(&mut self) -> Result<Stage, ParseError> {
        let start = self.start()?;
        let command = self.command()?;
        Ok(Stage {
            command,
            text: self.text(start, self.last_end),
        })
    }

    /// A simple or compound command.
    fn command(&mut self) -> Result<Command, ParseError> {
        let compound = match self.keyword()? {
            Some("if") => self.nest(Self::if_clause)?,
            Some("for") => self.nest(Self::for_clause)?,
            Some(kw @ ("while" | "until")) => {
                let until = kw == "until";
                self.nest(|p| p.while_clause(until))?
            }
            Some("{") => self.nest(Self::group)?,
            Some("case") => return Err(syntax("`case` is not supported")),
            Some(kw) if kw != "in" => return Err(self.unexpected()),
            _ if *self.peek()? == Tok::Op(Op::LParen) => self.nest(Self::subshell)?,
            _ => return self.simple().map(Command::Simple),
        };
        let mut redirects = Vec::new();
        while self.at_redirect()? {
            redirects.push(self.redirect()?);
        }
        Ok(Command::Compound(compound, redirects))
    }

    /// Whether a redirection comes next.
    fn at_redirect(&mut self) -> Result<bool, ParseError> {
        Ok(matches!(
            self.peek()?,
            Tok::IoNum(_)
                | Tok::Op(
                    Op::Less
                        | Op::Great
                        | Op::DGreat
                        | Op::LessAnd
                        | Op::GreatAnd
                        | Op::LessGreat
                        | Op::DLess
                )
        ))
    }

    /// A simple command.
    fn simple(&mut self) -> Result<Simple, ParseError> {
        let mut s = Simple::default();
        loop {
            if self.at_redirect()? {
                s.redirects.push(self.redirect()?);
                continue;
            }
            if !matches!(self.peek()?, Tok::Word(_)) {
                break;
            }
            if let Tok::Word(w) = self.next()? {
                match w.as_assignment() {
                    Some(a) if s.words.is_empty() => s.assigns.push(a),
                    _ => s.words.push(w),
                }
            }
        }
        if s.assigns.is_empty() && s.words.is_empty() && s.redirects.is_empty() {
            return Err(self.unexpected());
        }
        Ok(s)
    }

    /// A redirection.
    fn redirect(&mut self) -> Result<Redirect, ParseError> {
        let fd = match self.peek()? {
            Tok::IoNum(n) => {
                let n = *n;
                self.next()?;
                Some(n)
            }
            _ => None,
        };
        let (op, default) = match self.next()? {
            Tok::Op(Op::Less) => (RedirOp::Read, 0),
            Tok::Op(Op::Great) => (RedirOp::Write, 1),
            Tok::Op(Op::DGreat) => (RedirOp::Append, 1),
            Tok::Op(Op::LessGreat) => (RedirOp::ReadWrite, 0),
            Tok::Op(Op::LessAnd) => (RedirOp::Dup, 0),
            Tok::Op(Op::GreatAnd) => (RedirOp::Dup, 1),
            Tok::Op(Op::DLess) => return Err(syntax("here-documents are not supported")),
            _ => return Err(syntax("expected a redirection")),
        };
        match self.peek()? {
            Tok::Word(_) => {}
            Tok::Eof => return Err(syntax("expected a file name, found the end")),
            _ => return Err(self.unexpected()),
        }
        let Tok::Word(target) = self.next()? else {
            return Err(syntax("expected a file name"));
        };
        Ok(Redirect {
            fd: fd.unwrap_or(default),
            op,
            target,
        })
    }

    /// `if ... fi`, the cursor on `if`.
    fn if_clause(&mut self) -> Result<Compound, ParseError> {
        self.next()?;
        let mut branches = Vec::new();
        let mut otherwise = None;
        loop {
            let cond = self.nonempty_list()?;
            self.expect("then")?;
            let body = self.nonempty_list()?;
            branches.push((cond, body));
            match self.keyword()? {
                Some("elif") => {
                    self.next()?;
                }
                Some("else") => {
                    self.next()?;
                    otherwise = Some(self.nonempty_list()?);
                    self.expect("fi")?;
                    break;
                }
                Some("fi") => {
                    self.next()?;
                    break;
                }
                _ => return Err(self.unexpected()),
            }
        }
        Ok(Compound::If {
            branches,
            otherwise,
        })
    }

    /// `for NAME [in WORDS]; do ... done`, the cursor on `for`.
    fn for_clause(&mut self) -> Result<Compound, ParseError> {
        self.next()?;
        let var = match self.peek()? {
            Tok::Word(w) => match w.as_literal() {
                Some(n) if is_name(n) => n.to_owned(),
                _ => return Err(syntax("`for` needs a variable name")),
            },
            _ => return Err(self.unexpected()),
        };
        self.next()?;
        self.skip_newlines()?;
        let words = if self.keyword()? == Some("in") {
            self.next()?;
            let mut words = Vec::new();
            loop {
                match self.peek()? {
                    Tok::Word(_) | Tok::Op(Op::Semi) | Tok::Newline => {}
                    Tok::Eof => return Err(ParseError::Incomplete),
                    _ => {
                        let bad = self
                            .peeked
                            .as_ref()
                            .map(|l| self.text(l.start, l.end))
                            .unwrap_or_default();
                        return Err(syntax(format!("unexpected `{bad}` in `for`")));
                    }
                }
                match self.next()? {
                    Tok::Word(w) => words.push(w),
                    _ => break,
                }
            }
            Some(words)
        } else {
            if *self.peek()? == Tok::Op(Op::Semi) {
                self.next()?;
            }
            None
        };
        self.skip_newlines()?;
        self.expect("do")?;
        let body = self.nonempty_list()?;
        self.expect("done")?;
        Ok(Compound::For { var, words, body })
    }

    /// `while`/`until ... do ... done`, the cursor on the first word.
    fn while_clause(&mut self, until: bool) -> Result<Compound, ParseError> {
        self.next()?;
        let cond = self.nonempty_list()?;
        self.expect("do")?;
        let body = self.nonempty_list()?;
        self.expect("done")?;
        Ok(Compound::While { until, cond, body })
    }

    /// `{ ... }`, the cursor on `{`.
    fn group(&mut self) -> Result<Compound, ParseError> {
        self.next()?;
        let body = self.nonempty_list()?;
        self.expect("}")?;
        Ok(Compound::Group(body))
    }

    /// `( ... )`, the cursor on `(`.
    fn subshell(&mut self) -> Result<Compound, ParseError> {
        self.next()?;
        let start = self.last_end;
        let list = self.nonempty_list()?;
        let text = self.close_paren(start)?;
        Ok(Compound::Subshell(Subst { list, text }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Lit {
            text: s.to_owned(),
            quoted: false,
        }
    }

    fn q(s: &str) -> Part {
        Part::Lit {
            text: s.to_owned(),
            quoted: true,
        }
    }

    fn var(name: &str, quoted: bool) -> Part {
        Part::Param {
            name: name.to_owned(),
            op: ParamOp::Plain,
            quoted,
        }
    }

    fn w(parts: Vec<Part>) -> Word {
        Word { parts }
    }

    fn lw(s: &str) -> Word {
        w(vec![lit(s)])
    }

    /// The only simple command of `src`.
    fn simple(src: &str) -> Simple {
        let list = parse(src).unwrap();
        assert_eq!(list.items.len(), 1, "{src}");
        let ao = &list.items[0].and_or;
        assert!(ao.rest.is_empty());
        assert_eq!(ao.first.stages.len(), 1);
        match &ao.first.stages[0].command {
            Command::Simple(s) => s.clone(),
            c => panic!("not simple: {c:?}"),
        }
    }

    /// The only compound command of `src`.
    fn compound(src: &str) -> (Compound, Vec<Redirect>) {
        let list = parse(src).unwrap();
        assert_eq!(list.items.len(), 1, "{src}");
        match &list.items[0].and_or.first.stages[0].command {
            Command::Compound(c, r) => (c.clone(), r.clone()),
            c => panic!("not compound: {c:?}"),
        }
    }

    /// The words of each simple command of `list`'s first items.
    fn names(list: &List) -> Vec<String> {
        list.items
            .iter()
            .map(|i| i.and_or.text.clone())
            .collect::<Vec<_>>()
    }

    #[test]
    fn plain_words_split_on_blanks() {
        let s = simple("echo  hello\tworld");
        assert_eq!(s.words, vec![lw("echo"), lw("hello"), lw("world")]);
        assert!(s.assigns.is_empty() && s.redirects.is_empty());
    }

    #[test]
    fn quotes_and_escapes_keep_their_quoting() {
        let s = simple(r#"echo 'a b' "c $X d" e\ f "" '' "\"\\\$\a""#);
        assert_eq!(
            s.words,
            vec![
                lw("echo"),
                w(vec![q("a b")]),
                w(vec![q("c "), var("X", true), q(" d")]),
                w(vec![lit("e"), q(" "), lit("f")]),
                w(vec![q("")]),
                w(vec![q("")]),
                w(vec![q("\"\\$\\a")]),
            ]
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        let s = simple(r"echo '$X \n $(a)'");
        assert_eq!(s.words[1], w(vec![q("$X \\n $(a)")]));
    }

    #[test]
    fn mixed_quoting_in_one_word() {
        let s = simple(r#"echo a"b"'c'd"#);
        assert_eq!(
            s.words[1],
            w(vec![lit("a"), q("bc"), lit("d")]),
            "adjacent quoted pieces merge"
        );
    }

    #[test]
    fn dollar_forms() {
        let s = simple("echo $? $$ $# $1 ${10} $@ $* $! ${A} $A_b-c $ a$");
        let ps: Vec<_> = s.words[1..].iter().map(|w| w.parts.clone()).collect();
        assert_eq!(ps[0], vec![var("?", false)]);
        assert_eq!(ps[1], vec![var("$", false)]);
        assert_eq!(ps[2], vec![var("#", false)]);
        assert_eq!(ps[3], vec![var("1", false)]);
        assert_eq!(ps[4], vec![var("10", false)]);
        assert_eq!(ps[5], vec![var("@", false)]);
        assert_eq!(ps[6], vec![var("*", false)]);
        assert_eq!(ps[7], vec![var("!", false)]);
        assert_eq!(ps[8], vec![var("A", false)]);
        assert_eq!(ps[9], vec![var("A_b", false), lit("-c")]);
        assert_eq!(ps[10], vec![lit("$")]);
        assert_eq!(ps[11], vec![lit("a$")]);
    }

    #[test]
    fn braced_parameter_operators() {
        let s = simple(r#"echo ${X:-a b} ${X-} "${X:+$Y}" ${#X} ${X:=1} ${X?oops} ${#}"#);
        let ps: Vec<_> = s.words[1..].iter().map(|w| w.parts.clone()).collect();
        assert_eq!(
            ps[0],
            vec![Part::Param {
                name: "X".into(),
                op: ParamOp::Default {
                    colon: true,
                    word: vec![lit("a b")]
                },
                quoted: false
            }]
        );
        assert_eq!(
            ps[1],
            vec![Part::Param {
                name: "X".into(),
                op: ParamOp::Default {
                    colon: false,
                    word: vec![]
                },
                quoted: false
            }]
        );
        assert_eq!(
            ps[2],
            vec![Part::Param {
                name: "X".into(),
                op: ParamOp::Alternate {
                    colon: true,
                    word: vec![var("Y", true)]
                },
                quoted: true
            }]
        );
        assert_eq!(
            ps[3],
            vec![Part::Param {
                name: "X".into(),
                op: ParamOp::Length,
                quoted: false
            }]
        );
        assert!(matches!(
            &ps[4][0],
            Part::Param {
                op: ParamOp::Assign { colon: true, .. },
                ..
            }
        ));
        assert!(matches!(
            &ps[5][0],
            Part::Param {
                op: ParamOp::Error { colon: false, .. },
                ..
            }
        ));
        assert_eq!(ps[6], vec![var("#", false)]);
        assert_eq!(parse("echo ${}"), Err(syntax("bad substitution")));
        assert_eq!(parse("echo ${X%y}"), Err(syntax("bad substitution")));
        assert_eq!(parse("echo ${X"), Err(ParseError::Incomplete));
    }

    #[test]
    fn command_substitution_parses_its_list() {
        let s = simple("echo $(echo a | tr a b; pwd) x`pwd`");
        let Part::Command { sub, quoted } = &s.words[1].parts[0] else {
            panic!("{:?}", s.words[1]);
        };
        assert!(!quoted);
        assert_eq!(sub.text, "echo a | tr a b; pwd");
        assert_eq!(sub.list.items.len(), 2);
        assert_eq!(sub.list.items[0].and_or.first.stages.len(), 2);
        assert_eq!(s.words[2].parts[0], lit("x"));
        let Part::Command { sub, .. } = &s.words[2].parts[1] else {
            panic!("{:?}", s.words[2]);
        };
        assert_eq!(sub.text, "pwd");
    }

    #[test]
    fn command_substitution_nests_and_quotes() {
        let s = simple(r#"echo "$(echo "$(pwd)" ')')""#);
        let Part::Command { sub, quoted } = &s.words[1].parts[0] else {
            panic!("{:?}", s.words[1]);
        };
        assert!(quoted);
        assert_eq!(sub.text, r#"echo "$(pwd)" ')'"#);
        let inner = match &sub.list.items[0].and_or.first.stages[0].command {
            Command::Simple(s) => s.words.clone(),
            c => panic!("{c:?}"),
        };
        assert_eq!(inner.len(), 3);
        assert_eq!(inner[2], w(vec![q(")")]));
    }

    #[test]
    fn backquotes_unescape_before_parsing() {
        let s = simple(r"echo `echo \`pwd\``");
        let Part::Command { sub, .. } = &s.words[1].parts[0] else {
            panic!();
        };
        assert_eq!(sub.text, "echo `pwd`");
        assert_eq!(
            parse("echo `echo 'a`"),
            Err(syntax("unterminated construct inside `...`"))
        );
    }

    #[test]
    fn arithmetic_keeps_its_text() {
        let s = simple("echo $((1 + (2 * $X)))");
        assert_eq!(
            s.words[1].parts,
            vec![Part::Arith {
                expr: vec![q("1 + (2 * "), var("X", true), q(")")],
                quoted: false
            }]
        );
        assert_eq!(parse("echo $((1 + 2)"), Err(ParseError::Incomplete));
    }

    #[test]
    fn tilde_only_at_word_start() {
        let s = simple("cd ~/x ~ a~ '~'");
        assert_eq!(s.words[1].parts, vec![Part::Tilde, lit("/x")]);
        assert_eq!(s.words[2].parts, vec![Part::Tilde]);
        assert_eq!(s.words[3].parts, vec![lit("a~")]);
        assert_eq!(s.words[4].parts, vec![q("~")]);
    }

    #[test]
    fn comments_start_words_only() {
        let s = simple("echo a#b # the rest\n");
        assert_eq!(s.words, vec![lw("echo"), lw("a#b")]);
        assert_eq!(parse("# only a comment\n\n").unwrap().items.len(), 0);
    }

    #[test]
    fn line_continuation_joins_lines() {
        let s = simple("echo a\\\nb \\\n c");
        assert_eq!(s.words, vec![lw("echo"), lw("ab"), lw("c")]);
    }

    #[test]
    fn pipelines_of_any_length() {
        let list = parse("a | b -x |c|  d").unwrap();
        let p = &list.items[0].and_or.first;
        let texts: Vec<_> = p.stages.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["a", "b -x", "c", "d"]);
        assert!(!p.negated);
        let list = parse("! a | b").unwrap();
        assert!(list.items[0].and_or.first.negated);
        let list = parse("a |\n\n b").unwrap();
        assert_eq!(list.items[0].and_or.first.stages.len(), 2);
    }

    #[test]
    fn redirections_in_any_position() {
        let s = simple("<in cmd >out a 2>err >>app 2>&1 b <>rw 0<&2 >|clob");
        assert_eq!(s.words, vec![lw("cmd"), lw("a"), lw("b")]);
        let r: Vec<_> = s
            .redirects
            .iter()
            .map(|r| (r.fd, r.op, r.target.clone()))
            .collect();
        assert_eq!(
            r,
            vec![
                (0, RedirOp::Read, lw("in")),
                (1, RedirOp::Write, lw("out")),
                (2, RedirOp::Write, lw("err")),
                (1, RedirOp::Append, lw("app")),
                (2, RedirOp::Dup, lw("1")),
                (0, RedirOp::ReadWrite, lw("rw")),
                (0, RedirOp::Dup, lw("2")),
                (1, RedirOp::Write, lw("clob")),
            ]
        );
    }

    #[test]
    fn a_number_is_a_descriptor_only_next_to_the_operator() {
        let s = simple("echo 2 > f");
        assert_eq!(s.words, vec![lw("echo"), lw("2")]);
        assert_eq!(s.redirects[0].fd, 1);
        let s = simple("echo a2>f");
        assert_eq!(s.words, vec![lw("echo"), lw("a2")]);
        assert_eq!(s.redirects[0].fd, 1);
    }

    #[test]
    fn and_or_is_left_to_right_and_binds_tighter_than_separators() {
        let list = parse("a && b || c; d & e").unwrap();
        assert_eq!(list.items.len(), 3);
        let ao = &list.items[0].and_or;
        assert_eq!(ao.text, "a && b || c");
        assert_eq!(ao.first.stages[0].text, "a");
        let conns: Vec<_> = ao
            .rest
            .iter()
            .map(|(c, p)| (*c, p.stages[0].text.clone()))
            .collect();
        assert_eq!(
            conns,
            vec![
                (Connector::And, "b".to_owned()),
                (Connector::Or, "c".to_owned())
            ]
        );
        assert!(!list.items[0].background);
        assert!(list.items[1].background);
        assert_eq!(list.items[1].and_or.text, "d");
        assert!(!list.items[2].background);
        let list = parse("a | b && c | d").unwrap();
        let ao = &list.items[0].and_or;
        assert_eq!(ao.first.stages.len(), 2);
        assert_eq!(ao.rest[0].1.stages.len(), 2);
        let list = parse("a &&\n\n b").unwrap();
        assert_eq!(list.items[0].and_or.rest.len(), 1);
    }

    #[test]
    fn newlines_separate_commands() {
        let list = parse("a\nb;c\n\n d &\n").unwrap();
        assert_eq!(names(&list), ["a", "b", "c", "d"]);
        assert!(list.items[3].background);
    }

    #[test]
    fn background_keeps_the_and_or_text() {
        let list = parse("sleep 1 && echo done &").unwrap();
        assert_eq!(list.items[0].and_or.text, "sleep 1 && echo done");
        assert!(list.items[0].background);
    }

    #[test]
    fn assignments_lead_the_command() {
        let s = simple(r#"A=1 B="x y" cmd C=2"#);
        assert_eq!(
            s.assigns,
            vec![
                ("A".to_owned(), lw("1")),
                ("B".to_owned(), w(vec![q("x y")]))
            ]
        );
        assert_eq!(s.words, vec![lw("cmd"), lw("C=2")]);
        let s = simple("X=");
        assert_eq!(s.assigns, vec![("X".to_owned(), Word::default())]);
        assert!(s.words.is_empty());
    }

    #[test]
    fn if_with_elif_and_else() {
        let (c, r) = compound("if a; then b; elif c\nthen d\nelse e; fi >out");
        let Compound::If {
            branches,
            otherwise,
        } = c
        else {
            panic!()
        };
        assert_eq!(branches.len(), 2);
        assert_eq!(names(&branches[0].0), ["a"]);
        assert_eq!(names(&branches[0].1), ["b"]);
        assert_eq!(names(&branches[1].0), ["c"]);
        assert_eq!(names(&branches[1].1), ["d"]);
        assert_eq!(names(&otherwise.unwrap()), ["e"]);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn for_loops() {
        let (c, _) = compound("for i in a 'b c' $X; do echo $i; done");
        let Compound::For { var, words, body } = c else {
            panic!()
        };
        assert_eq!(var, "i");
        let words = words.unwrap();
        assert_eq!(words.len(), 3);
        assert_eq!(words[1], w(vec![q("b c")]));
        assert_eq!(names(&body), ["echo $i"]);
        let (c, _) = compound("for i\ndo\n echo\ndone");
        assert!(matches!(c, Compound::For { words: None, .. }));
        let (c, _) = compound("for i in do done; do x; done");
        let Compound::For { words, .. } = c else {
            panic!()
        };
        assert_eq!(words.unwrap(), vec![lw("do"), lw("done")]);
    }

    #[test]
    fn while_and_until() {
        let (c, _) = compound("while a; b; do c; done");
        let Compound::While { until, cond, body } = c else {
            panic!()
        };
        assert!(!until);
        assert_eq!(names(&cond), ["a", "b"]);
        assert_eq!(names(&body), ["c"]);
        let (c, _) = compound("until a\ndo\nc\ndone");
        assert!(matches!(c, Compound::While { until: true, .. }));
    }

    #[test]
    fn groups_and_subshells() {
        let (c, r) = compound("{ a; b; } 2>&1");
        assert!(matches!(c, Compound::Group(ref l) if l.items.len() == 2));
        assert_eq!(r.len(), 1);
        let (c, _) = compound("( cd /; ls )");
        let Compound::Subshell(sub) = c else { panic!() };
        assert_eq!(sub.text, " cd /; ls ");
        assert_eq!(sub.list.items.len(), 2);
    }

    #[test]
    fn compound_commands_in_pipelines_keep_their_text() {
        let list = parse("for i in 1 2; do echo $i; done > f | cat").unwrap();
        let stages = &list.items[0].and_or.first.stages;
        assert_eq!(stages[0].text, "for i in 1 2; do echo $i; done > f");
        assert_eq!(stages[1].text, "cat");
    }

    #[test]
    fn nested_compounds() {
        let src = "for i in 1 2\ndo\n  if a $i\n  then\n    while b; do c; done\n  fi\ndone";
        let (c, _) = compound(src);
        let Compound::For { body, .. } = c else {
            panic!()
        };
        assert_eq!(body.items.len(), 1);
    }

    #[test]
    fn reserved_words_only_in_command_position() {
        let s = simple("echo if then fi do done { }");
        assert_eq!(s.words.len(), 8);
        let s = simple("'if'");
        assert_eq!(s.words, vec![w(vec![q("if")])]);
    }

    #[test]
    fn incomplete_input_asks_for_more() {
        for src in [
            "echo 'abc",
            "echo \"abc",
            "echo \"$(ls\"",
            "echo $(ls",
            "echo `ls",
            "echo a\\\n",
            "a &&",
            "a ||\n",
            "a |",
            "if true; then",
            "if true; then echo\n",
            "if true; then echo; else",
            "if a\n",
            "for x in a b; do echo",
            "for x in a b",
            "for x",
            "for",
            "while true",
            "while true; do a; done; until b; do",
            "{ echo",
            "( a",
            "! ",
            "echo ${A:-x",
        ] {
            assert_eq!(parse(src), Err(ParseError::Incomplete), "{src:?}");
        }
    }

    #[test]
    fn complete_input_parses() {
        for src in [
            "",
            "\n",
            "echo a;",
            "echo a &",
            "if a; then b; fi",
            "for x in; do a; done",
            "while a; do b; done &",
            "a && b || c",
            "echo \\",
        ] {
            assert!(parse(src).is_ok(), "{src:?}");
        }
    }

    #[test]
    fn syntax_errors_are_reported() {
        for (src, msg) in [
            (";", "unexpected `;`"),
            ("a ;; b", "unexpected `;;`"),
            ("a | | b", "unexpected `|`"),
            ("a && ;", "unexpected `;`"),
            ("& a", "unexpected `&`"),
            ("fi", "unexpected `fi`"),
            ("done", "unexpected `done`"),
            ("then a", "unexpected `then`"),
            ("if ; then a; fi", "unexpected `;`"),
            ("if a; then fi", "unexpected `fi`"),
            ("if a; then b; done", "unexpected `done`"),
            ("while a; do done", "unexpected `done`"),
            ("for 1 in a; do b; done", "`for` needs a variable name"),
            ("for x in a | b; do c; done", "unexpected `|` in `for`"),
            ("echo >", "expected a file name, found the end"),
            ("echo >\n", "unexpected newline"),
            ("echo > ;", "unexpected `;`"),
            ("cat <<EOF", "here-documents are not supported"),
            ("case x in esac", "`case` is not supported"),
            (")", "unexpected `)`"),
            ("a )", "unexpected `)`"),
            ("a (", "unexpected `(`"),
            ("{ a; } b", "unexpected `b`"),
            ("echo $((1 + 2) )", "expected `))` to end `$((`"),
            ("(a) (b)", "unexpected `(`"),
        ] {
            assert_eq!(parse(src), Err(syntax(msg)), "{src:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let src = "$(".repeat(100);
        assert_eq!(parse(&src), Err(syntax("too deeply nested")));
        let src = "if a; then ".repeat(100);
        assert_eq!(parse(&src), Err(syntax("too deeply nested")));
        let ok = format!("echo {}x{}", "$(echo ".repeat(10), ")".repeat(10));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn non_ascii_text_is_kept() {
        let s = simple("echo héllo 'wörld'");
        assert_eq!(s.words[1], lw("héllo"));
        assert_eq!(s.words[2], w(vec![q("wörld")]));
    }
}
