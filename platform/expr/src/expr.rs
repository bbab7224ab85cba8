//! The filter expression language: parsed once, evaluated per record.
//!
//! ```text
//! expr    := or
//! or      := and ("||" and)*
//! and     := unary ("&&" unary)*
//! unary   := "!" unary | primary
//! primary := "(" expr ")" | path (op literal)?
//! op      := "==" | "!=" | "<" | "<=" | ">" | ">="
//! path    := ident ("." ident)*          ident: [A-Za-z_][A-Za-z0-9_-]*
//! literal := string | number | true | false | null
//! ```
//!
//! A path alone means "present and truthy" (not null, false, 0 or "").

use std::borrow::Cow;

/// A value read from a record, as far as the language cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(f64),
    Str(Cow<'a, str>),
    /// An object or array: only truthiness and inequality apply.
    Composite,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed expression. Paths are indexes into [`Parsed::paths`].
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare(usize, Op, Literal),
    Truthy(usize),
}

/// An expression and the distinct field paths it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub expr: Expr,
    pub paths: Vec<Vec<String>>,
}

/// Where and why an expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number(f64),
    Op(Op),
    And,
    Or,
    Not,
    Dot,
    Open,
    Close,
}

fn describe(t: &Token) -> String {
    match t {
        Token::Ident(s) => format!("`{s}`"),
        Token::Str(s) => format!("\"{s}\""),
        Token::Number(n) => format!("{n}"),
        Token::Op(op) => format!("`{op:?}`"),
        Token::And => "`&&`".into(),
        Token::Or => "`||`".into(),
        Token::Not => "`!`".into(),
        Token::Dot => "`.`".into(),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |column: usize, message: String| ParseError {
        column: column + 1,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let two = chars.get(i + 1).copied();
        let token = match c {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '(' => Token::Open,
            ')' => Token::Close,
            '.' if !two.is_some_and(|d| d.is_ascii_digit()) => Token::Dot,
            '&' if two == Some('&') => {
                i += 1;
                Token::And
            }
            '|' if two == Some('|') => {
                i += 1;
                Token::Or
            }
            '=' if two == Some('=') => {
                i += 1;
                Token::Op(Op::Eq)
            }
            '!' if two == Some('=') => {
                i += 1;
                Token::Op(Op::Ne)
            }
            '!' => Token::Not,
            '<' | '>' => {
                let eq = two == Some('=');
                if eq {
                    i += 1;
                }
                Token::Op(match (c, eq) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                })
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, "unterminated string".into())),
                        Some('"') => break,
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some(&e @ ('"' | '\\')) => s.push(e),
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                _ => {
                                    return Err(err(
                                        i,
                                        "unknown escape (use \\\" \\\\ \\n \\t)".into(),
                                    ));
                                }
                            }
                            i += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                Token::Str(s)
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], '.' | '+' | '-'))
                {
                    // Stop at an exponent sign only right after e/E.
                    if matches!(chars[j], '+' | '-') && !matches!(chars[j - 1], 'e' | 'E') {
                        break;
                    }
                    j += 1;
                }
                let text: String = chars[i..j].iter().collect();
                let n: f64 = text
                    .parse()
                    .map_err(|_| err(start, format!("`{text}` is not a number")))?;
                i = j - 1;
                Token::Number(n)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], '_' | '-'))
                {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                i = j - 1;
                Token::Ident(word)
            }
            other => return Err(err(start, format!("unexpected `{other}`"))),
        };
        out.push((start + 1, token));
        i += 1;
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end_column: usize,
    paths: Vec<Vec<String>>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or(self.end_column, |(c, _)| *c)
    }

    fn expected(&self, what: &str) -> ParseError {
        let found = self.peek().map_or_else(|| "the end".to_owned(), describe);
        ParseError {
            column: self.column(),
            message: format!("expected {what}, found {found}"),
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.unary()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Some(Token::Open) => {
                self.pos += 1;
                let e = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(self.expected("`)`"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Token::Ident(_)) => {
                let path = self.path()?;
                match self.peek() {
                    Some(Token::Op(op)) => {
                        let op = *op;
                        self.pos += 1;
                        Ok(Expr::Compare(path, op, self.literal()?))
                    }
                    _ => Ok(Expr::Truthy(path)),
                }
            }
            _ => Err(self.expected("a field name, `!` or `(`")),
        }
    }

    fn path(&mut self) -> Result<usize, ParseError> {
        let mut segments = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Ident(name)) => {
                    segments.push(name.clone());
                    self.pos += 1;
                }
                _ => return Err(self.expected("a field name")),
            }
            if self.peek() != Some(&Token::Dot) {
                break;
            }
            self.pos += 1;
        }
        Ok(match self.paths.iter().position(|p| *p == segments) {
            Some(i) => i,
            None => {
                self.paths.push(segments);
                self.paths.len() - 1
            }
        })
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let lit = match self.peek() {
            Some(Token::Str(s)) => Literal::Str(s.clone()),
            Some(Token::Number(n)) => Literal::Number(*n),
            Some(Token::Ident(w)) if w == "true" => Literal::Bool(true),
            Some(Token::Ident(w)) if w == "false" => Literal::Bool(false),
            Some(Token::Ident(w)) if w == "null" => Literal::Null,
            _ => return Err(self.expected("a string, number, true, false or null")),
        };
        self.pos += 1;
        Ok(lit)
    }
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end_column: text.chars().count() + 1,
        paths: Vec::new(),
    };
    let expr = p.or()?;
    if p.pos < p.tokens.len() {
        return Err(p.expected("`&&`, `||` or the end"));
    }
    Ok(Parsed {
        expr,
        paths: p.paths,
    })
}

fn truthy(v: &Value<'_>) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => *n != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Composite => true,
    }
}

fn compare(v: &Value<'_>, op: Op, lit: &Literal) -> bool {
    use std::cmp::Ordering;
    let ordering = match (v, lit) {
        (Value::Number(a), Literal::Number(b)) => a.partial_cmp(b),
        (Value::Str(a), Literal::Str(b)) => Some(a.as_ref().cmp(b.as_str())),
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        // Different types: only "not equal" holds.
        _ => None,
    };
    match (op, ordering) {
        (Op::Ne, None) => true,
        (_, None) => false,
        (Op::Eq, Some(o)) => o == Ordering::Equal,
        (Op::Ne, Some(o)) => o != Ordering::Equal,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
    }
}

impl Expr {
    /// The same expression with path `i` renumbered to `map[i]`.
    pub fn remapped(&self, map: &[usize]) -> Expr {
        match self {
            Expr::Or(parts) => Expr::Or(parts.iter().map(|e| e.remapped(map)).collect()),
            Expr::And(parts) => Expr::And(parts.iter().map(|e| e.remapped(map)).collect()),
            Expr::Not(e) => Expr::Not(Box::new(e.remapped(map))),
            Expr::Compare(p, op, lit) => Expr::Compare(map[*p], *op, lit.clone()),
            Expr::Truthy(p) => Expr::Truthy(map[*p]),
        }
    }

    /// Evaluates against the values found for each path (`None`: absent).
    /// An absent field is like `null`, except that `!=` any value holds.
    pub fn eval(&self, values: &[Option<Value<'_>>]) -> bool {
        match self {
            Expr::Or(parts) => parts.iter().any(|e| e.eval(values)),
            Expr::And(parts) => parts.iter().all(|e| e.eval(values)),
            Expr::Not(e) => !e.eval(values),
            Expr::Truthy(p) => values[*p].as_ref().is_some_and(truthy),
            Expr::Compare(p, op, lit) => match &values[*p] {
                Some(v) => compare(v, *op, lit),
                None => {
                    *op == Op::Ne && *lit != Literal::Null || *op == Op::Eq && *lit == Literal::Null
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_precedence_and_shares_paths() {
        let p = parse(r#"level == "error" && status >= 500 || !debug && level != "info""#).unwrap();
        assert_eq!(
            p.paths,
            vec![
                vec!["level".to_owned()],
                vec!["status".into()],
                vec!["debug".into()]
            ]
        );
        assert!(matches!(p.expr, Expr::Or(ref v) if v.len() == 2));
    }

    #[test]
    fn errors_name_the_column() {
        let e = parse("level == ").unwrap_err();
        assert_eq!(e.column, 10);
        assert!(e.message.contains("expected a string, number"), "{e}");
        let e = parse(r#"level = "x""#).unwrap_err();
        assert_eq!(e.column, 7, "{e}");
        let e = parse("(a == 1").unwrap_err();
        assert_eq!(
            e,
            ParseError {
                column: 8,
                message: "expected `)`, found the end".into()
            }
        );
        let e = parse(r#"a == "open"#).unwrap_err();
        assert_eq!(e.column, 6);
        assert!(
            parse("a == 1 b")
                .unwrap_err()
                .message
                .contains("expected `&&`, `||` or the end")
        );
        assert!(parse("").is_err());
    }

    #[test]
    fn evaluation_rules() {
        let p = parse(r#"a == "x" && n >= 5.5 && !gone && present"#).unwrap();
        let v = |a: &'static str, n: f64| {
            vec![
                Some(Value::Str(a.into())),
                Some(Value::Number(n)),
                None,
                Some(Value::Bool(true)),
            ]
        };
        assert!(p.expr.eval(&v("x", 6.0)));
        assert!(!p.expr.eval(&v("x", 5.0)));
        assert!(!p.expr.eval(&v("y", 9.0)));
        // A string compared with a number is simply false.
        let q = parse("n > 3").unwrap();
        assert!(!q.expr.eval(&[Some(Value::Str("9".into()))]));
        assert!(parse("n != 3").unwrap().expr.eval(&[None]));
        assert!(parse("n == null").unwrap().expr.eval(&[None]));
        assert!(parse("-1.5e1 < 0").is_err(), "a literal cannot come first");
        assert!(
            parse("n > -1.5e1")
                .unwrap()
                .expr
                .eval(&[Some(Value::Number(-10.0))])
        );
    }
}
