//! Arithmetic for `$((...))`: 64-bit integers (wrapping), variables by
//! bare name, and C's operators `+ - * / % << >> < <= > >= == != & ^ | &&
//! || ! ~` with parentheses. Pure: the caller supplies variable lookup.

use std::fmt;

/// How deep parentheses and unary operators may nest.
const MAX_DEPTH: usize = 64;

/// Why an expression has no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArithError {
    /// The expression does not parse; the message says where.
    Syntax(String),
    /// Division or remainder by zero.
    DivisionByZero,
    /// A variable's value is not a number.
    NotANumber(String),
}

impl fmt::Display for ArithError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(m) => write!(f, "arithmetic syntax error: {m}"),
            Self::DivisionByZero => f.write_str("division by zero"),
            Self::NotANumber(v) => write!(f, "`{v}' is not a number"),
        }
    }
}

impl std::error::Error for ArithError {}

/// A token of an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// A number.
    Num(i64),
    /// A variable name.
    Name(String),
    /// An operator or parenthesis.
    Op(&'static str),
}

/// The operators, longest first so that `<=` wins over `<`.
const OPS: &[&str] = &[
    "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+", "-", "*", "/", "%", "<", ">", "&", "^",
    "|", "!", "~", "(", ")",
];

/// A number in C's notation: decimal, `0x` hexadecimal, `0` octal.
fn number(s: &str) -> Option<i64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok().map(|v| v as i64)
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok().map(|v| v as i64)
    } else {
        s.parse::<u64>().ok().map(|v| v as i64)
    }
}

/// Split `expr` into tokens.
fn tokens(expr: &str) -> Result<Vec<Tok>, ArithError> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &expr[start..i];
            if c.is_ascii_digit() {
                let n = number(word)
                    .ok_or_else(|| ArithError::Syntax(format!("bad number `{word}'")))?;
                out.push(Tok::Num(n));
            } else {
                out.push(Tok::Name(word.to_owned()));
            }
        } else if let Some(op) = OPS.iter().find(|op| expr[i..].starts_with(**op)) {
            out.push(Tok::Op(op));
            i += op.len();
        } else {
            let bad = expr[i..].chars().next().unwrap_or('?');
            return Err(ArithError::Syntax(format!("unexpected `{bad}'")));
        }
    }
    Ok(out)
}

/// The binary operators by precedence level, loosest first.
const LEVELS: &[&[&str]] = &[
    &["||"],
    &["&&"],
    &["|"],
    &["^"],
    &["&"],
    &["==", "!="],
    &["<", "<=", ">", ">="],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "%"],
];

/// An evaluator over tokens.
struct Eval<'a> {
    /// The tokens.
    toks: Vec<Tok>,
    /// The next token's index.
    pos: usize,
    /// How deep in parentheses and unary operators.
    depth: usize,
    /// A variable's value.
    lookup: &'a mut dyn FnMut(&str) -> Option<String>,
}

impl Eval<'_> {
    /// The binary operator at the cursor when it is of `level`.
    fn op_at(&self, level: &[&str]) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Op(op)) if level.contains(op) => Some(op),
            _ => None,
        }
    }

    /// An expression of precedence `level` and tighter.
    fn binary(&mut self, level: usize) -> Result<i64, ArithError> {
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.binary(level + 1)?;
        while let Some(op) = self.op_at(ops) {
            self.pos += 1;
            let right = self.binary(level + 1)?;
            left = apply(op, left, right)?;
        }
        Ok(left)
    }

    /// A unary expression or a primary.
    fn unary(&mut self) -> Result<i64, ArithError> {
        if self.depth >= MAX_DEPTH {
            return Err(ArithError::Syntax("too deeply nested".to_owned()));
        }
        self.depth += 1;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    /// [`Self::unary`] without the depth check.
    fn unary_inner(&mut self) -> Result<i64, ArithError> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Num(n)) => Ok(n),
            Some(Tok::Name(name)) => {
                let value = (self.lookup)(&name).unwrap_or_default();
                let value = value.trim();
                if value.is_empty() {
                    return Ok(0);
                }
                let (neg, digits) = match value.strip_prefix('-') {
                    Some(d) => (true, d),
                    None => (false, value.strip_prefix('+').unwrap_or(value)),
                };
                let n = number(digits).ok_or_else(|| ArithError::NotANumber(value.to_owned()))?;
                Ok(if neg { n.wrapping_neg() } else { n })
            }
            Some(Tok::Op("(")) => {
                let v = self.binary(0)?;
                match self.toks.get(self.pos) {
                    Some(Tok::Op(")")) => {
                        self.pos += 1;
                        Ok(v)
                    }
                    _ => Err(ArithError::Syntax("missing `)'".to_owned())),
                }
            }
            Some(Tok::Op("-")) => Ok(self.unary()?.wrapping_neg()),
            Some(Tok::Op("+")) => self.unary(),
            Some(Tok::Op("!")) => Ok(i64::from(self.unary()? == 0)),
            Some(Tok::Op("~")) => Ok(!self.unary()?),
            Some(Tok::Op(op)) => Err(ArithError::Syntax(format!("unexpected `{op}'"))),
            None => Err(ArithError::Syntax("missing operand".to_owned())),
        }
    }
}

/// `left op right`.
fn apply(op: &str, l: i64, r: i64) -> Result<i64, ArithError> {
    Ok(match op {
        "||" => i64::from(l != 0 || r != 0),
        "&&" => i64::from(l != 0 && r != 0),
        "|" => l | r,
        "^" => l ^ r,
        "&" => l & r,
        "==" => i64::from(l == r),
        "!=" => i64::from(l != r),
        "<" => i64::from(l < r),
        "<=" => i64::from(l <= r),
        ">" => i64::from(l > r),
        ">=" => i64::from(l >= r),
        "<<" => l.wrapping_shl((r & 63) as u32),
        ">>" => l.wrapping_shr((r & 63) as u32),
        "+" => l.wrapping_add(r),
        "-" => l.wrapping_sub(r),
        "*" => l.wrapping_mul(r),
        "/" | "%" if r == 0 => return Err(ArithError::DivisionByZero),
        "/" => l.wrapping_div(r),
        _ => l.wrapping_rem(r),
    })
}

/// The value of `expr`, variables read through `lookup` (unset or empty:
/// 0). An empty expression is 0.
///
/// # Errors
/// [`ArithError`] for bad syntax, a division by zero or a variable that is
/// not a number.
pub fn eval(expr: &str, lookup: &mut dyn FnMut(&str) -> Option<String>) -> Result<i64, ArithError> {
    let toks = tokens(expr)?;
    if toks.is_empty() {
        return Ok(0);
    }
    let mut e = Eval {
        toks,
        pos: 0,
        depth: 0,
        lookup,
    };
    let v = e.binary(0)?;
    match e.toks.get(e.pos) {
        None => Ok(v),
        Some(Tok::Num(n)) => Err(ArithError::Syntax(format!("unexpected `{n}'"))),
        Some(Tok::Name(n)) => Err(ArithError::Syntax(format!("unexpected `{n}'"))),
        Some(Tok::Op(op)) => Err(ArithError::Syntax(format!("unexpected `{op}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> Result<i64, ArithError> {
        eval(s, &mut |name| match name {
            "x" => Some("7".to_owned()),
            "neg" => Some(" -3 ".to_owned()),
            "empty" => Some(String::new()),
            "word" => Some("abc".to_owned()),
            _ => None,
        })
    }

    #[test]
    fn precedence_and_parentheses() {
        assert_eq!(ev("1 + 2 * 3"), Ok(7));
        assert_eq!(ev("(1 + 2) * 3"), Ok(9));
        assert_eq!(ev("10 - 3 - 2"), Ok(5));
        assert_eq!(ev("2 * 3 % 4"), Ok(2));
        assert_eq!(ev("1 < 2 == 1"), Ok(1));
        assert_eq!(ev("1 || 0 && 0"), Ok(1));
        assert_eq!(ev("1 << 4 | 1"), Ok(17));
        assert_eq!(ev(""), Ok(0));
    }

    #[test]
    fn unary_operators() {
        assert_eq!(ev("-3 + +2"), Ok(-1));
        assert_eq!(ev("!0 + !5"), Ok(1));
        assert_eq!(ev("~0"), Ok(-1));
        assert_eq!(ev("- -1"), Ok(1));
    }

    #[test]
    fn variables_by_name() {
        assert_eq!(ev("x * 2"), Ok(14));
        assert_eq!(ev("neg + 1"), Ok(-2));
        assert_eq!(ev("unset + empty"), Ok(0));
        assert_eq!(ev("word"), Err(ArithError::NotANumber("abc".to_owned())));
    }

    #[test]
    fn number_notations() {
        assert_eq!(ev("0x10 + 010 + 10"), Ok(34));
        assert!(matches!(ev("08"), Err(ArithError::Syntax(_))));
    }

    #[test]
    fn errors() {
        assert_eq!(ev("1 / 0"), Err(ArithError::DivisionByZero));
        assert_eq!(ev("1 % 0"), Err(ArithError::DivisionByZero));
        assert!(matches!(ev("1 +"), Err(ArithError::Syntax(_))));
        assert!(matches!(ev("(1"), Err(ArithError::Syntax(_))));
        assert!(matches!(ev("1 2"), Err(ArithError::Syntax(_))));
        assert!(matches!(ev("1 $ 2"), Err(ArithError::Syntax(_))));
        assert!(matches!(ev(&"(".repeat(1000)), Err(ArithError::Syntax(_))));
        assert_eq!(ev("9223372036854775807 + 1"), Ok(i64::MIN));
        assert_eq!(ev("-9223372036854775808 / -1"), Ok(i64::MIN));
    }
}
