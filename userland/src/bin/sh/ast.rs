//! The shell's syntax tree: what [`super::parse`] builds from text and
//! [`super::exec`] runs. Words keep their quoting part by part, so that
//! expansion ([`super::expand`]) knows what to split into fields and what
//! to match against file names.

/// A sequence of and-or lists, each run in turn (`;`, newline) or started
/// in the background (`&`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct List {
    /// The and-or lists, in order.
    pub items: Vec<Item>,
}

/// One and-or list of a [`List`] with how it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// What to run.
    pub and_or: AndOr,
    /// Ended by `&`: start it and go on without waiting.
    pub background: bool,
}

/// Pipelines joined by `&&` and `||` (equal precedence, left to right).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AndOr {
    /// The first pipeline, always run.
    pub first: Pipeline,
    /// The others, each run or skipped by the status so far.
    pub rest: Vec<(Connector, Pipeline)>,
    /// The source text (for `jobs` and for running it in a child shell).
    pub text: String,
}

/// How a pipeline hangs on the status before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connector {
    /// `&&`: run when the status is 0.
    And,
    /// `||`: run when the status is not 0.
    Or,
}

/// Commands joined by `|`, optionally negated by `!`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipeline {
    /// `!`: the status is inverted.
    pub negated: bool,
    /// The commands, each one's output the next one's input.
    pub stages: Vec<Stage>,
}

/// One command of a pipeline with its source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// The command.
    pub command: Command,
    /// Its source text, redirections included (a compound command in a
    /// pipeline runs as `sh -c TEXT`).
    pub text: String,
}

/// A command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Assignments, words and redirections.
    Simple(Simple),
    /// `if`, `for`, `while`, `until`, `{ }` or `( )` with redirections
    /// after it.
    Compound(Compound, Vec<Redirect>),
}

/// A simple command: `NAME=value... word... redirection...` (redirections
/// may come anywhere).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Simple {
    /// The leading `NAME=value` words.
    pub assigns: Vec<(String, Word)>,
    /// The command name and arguments, before expansion.
    pub words: Vec<Word>,
    /// The redirections, in order.
    pub redirects: Vec<Redirect>,
}

/// A compound command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compound {
    /// `if LIST; then LIST; [elif LIST; then LIST;]... [else LIST;] fi`.
    If {
        /// Each condition with its body, `if` then the `elif`s.
        branches: Vec<(List, List)>,
        /// The `else` body.
        otherwise: Option<List>,
    },
    /// `for NAME [in WORDS]; do LIST; done`.
    For {
        /// The loop variable.
        var: String,
        /// The words (`None`: no `in`, the positional parameters).
        words: Option<Vec<Word>>,
        /// The body.
        body: List,
    },
    /// `while LIST; do LIST; done` or `until LIST; do LIST; done`.
    While {
        /// `until`: loop while the condition fails.
        until: bool,
        /// The condition.
        cond: List,
        /// The body.
        body: List,
    },
    /// `{ LIST; }`: run in the shell itself.
    Group(List),
    /// `( LIST )`: run in a child shell.
    Subshell(Subst),
}

/// A redirection: `[N]<`, `>`, `>>`, `<>`, `>&`, `<&` and a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The descriptor redirected (0, 1 or 2 are supported).
    pub fd: u32,
    /// What to do.
    pub op: RedirOp,
    /// The file name, or for [`RedirOp::Dup`] the descriptor number.
    pub target: Word,
}

/// What a redirection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirOp {
    /// `<`: read the file.
    Read,
    /// `>`: create or truncate the file and write it.
    Write,
    /// `>>`: create the file or append to it.
    Append,
    /// `<>`: open the file for reading and writing, creating it.
    ReadWrite,
    /// `>&N`, `<&N`: a copy of descriptor N.
    Dup,
}

/// A word before expansion: its parts, each literal or an expansion, each
/// quoted or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Word {
    /// The parts, in order.
    pub parts: Vec<Part>,
}

/// A piece of a [`Word`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Literal text; quoted text is neither split nor matched as a pattern.
    Lit {
        /// The text.
        text: String,
        /// Inside quotes or escaped.
        quoted: bool,
    },
    /// `~` at the start of a word: `$HOME`.
    Tilde,
    /// `$NAME`, `${NAME}`, `$?`, `$1`, `${NAME:-word}`, ...
    Param {
        /// The parameter: a variable name, digits or one of `?$#!@*`.
        name: String,
        /// What to do with it.
        op: ParamOp,
        /// Inside double quotes.
        quoted: bool,
    },
    /// `$(LIST)` or `` `LIST` ``: the output of the list.
    Command {
        /// The list and its text.
        sub: Subst,
        /// Inside double quotes.
        quoted: bool,
    },
    /// `$((EXPR))`: arithmetic.
    Arith {
        /// The expression's text, itself expanded first.
        expr: Vec<Part>,
        /// Inside double quotes.
        quoted: bool,
    },
}

/// The forms of parameter expansion. `colon`: an empty value counts as
/// unset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamOp {
    /// `$NAME`: the value.
    Plain,
    /// `${#NAME}`: the value's length.
    Length,
    /// `${NAME:-word}`: the word when unset.
    Default {
        /// `:-` rather than `-`.
        colon: bool,
        /// The word.
        word: Vec<Part>,
    },
    /// `${NAME:=word}`: the word, also assigned, when unset.
    Assign {
        /// `:=` rather than `=`.
        colon: bool,
        /// The word.
        word: Vec<Part>,
    },
    /// `${NAME:+word}`: the word when set.
    Alternate {
        /// `:+` rather than `+`.
        colon: bool,
        /// The word.
        word: Vec<Part>,
    },
    /// `${NAME:?word}`: an error with the word as message when unset.
    Error {
        /// `:?` rather than `?`.
        colon: bool,
        /// The word.
        word: Vec<Part>,
    },
}

/// A list inside a command substitution or a subshell, with its text (it
/// may be run as `sh -c TEXT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subst {
    /// The parsed list.
    pub list: List,
    /// Its source text.
    pub text: String,
}

impl Word {
    /// The text when the word is a single unquoted literal: how reserved
    /// words and `for`'s variable are recognised.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [
                Part::Lit {
                    text,
                    quoted: false,
                },
            ] => Some(text),
            _ => None,
        }
    }

    /// `NAME=value`: the name and the value's word, when the word starts
    /// with an unquoted valid name and `=`.
    pub fn as_assignment(&self) -> Option<(String, Word)> {
        let Some(Part::Lit {
            text,
            quoted: false,
        }) = self.parts.first()
        else {
            return None;
        };
        let eq = text.find('=')?;
        let name = &text[..eq];
        if !is_name(name) {
            return None;
        }
        let mut parts = Vec::new();
        let rest = &text[eq + 1..];
        if !rest.is_empty() {
            parts.push(Part::Lit {
                text: rest.to_owned(),
                quoted: false,
            });
        }
        parts.extend(self.parts.iter().skip(1).cloned());
        Some((name.to_owned(), Word { parts }))
    }
}

/// Whether `s` is a valid variable name: a letter or `_`, then letters,
/// digits and `_`.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
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

    #[test]
    fn names_are_letters_digits_and_underscores() {
        assert!(is_name("PATH"));
        assert!(is_name("_a1"));
        assert!(!is_name("1a"));
        assert!(!is_name(""));
        assert!(!is_name("a-b"));
    }

    #[test]
    fn assignments_need_an_unquoted_name() {
        let w = Word {
            parts: vec![lit("A=1")],
        };
        assert_eq!(
            w.as_assignment(),
            Some((
                "A".to_owned(),
                Word {
                    parts: vec![lit("1")]
                }
            ))
        );
        let w = Word {
            parts: vec![lit("A=")],
        };
        assert_eq!(w.as_assignment(), Some(("A".to_owned(), Word::default())));
        let w = Word {
            parts: vec![Part::Lit {
                text: "A=1".to_owned(),
                quoted: true,
            }],
        };
        assert_eq!(w.as_assignment(), None);
        let w = Word {
            parts: vec![lit("=1")],
        };
        assert_eq!(w.as_assignment(), None);
    }
}
