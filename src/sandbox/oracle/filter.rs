//! SCIM filters (RFC 7644 §3.4.2.2), the subset OCC's `q` is documented to take: parsed into a
//! [`Filter`], then matched against a rendered item, attribute names and strings compared
//! without case, as SCIM's defaults are. Also how lists sort by an attribute.

use std::collections::HashSet;

use serde_json::{Value, json};

/// A parsed SCIM filter (RFC 7644 §3.4.2.2), the subset OCC's `q` is documented to take.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Compare { path: String, op: Op, value: Value },
    Present(String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Word(String),
    Literal(Value),
}

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if c == '"' {
            // A JSON string: find its closing quote, honouring backslash escapes.
            let start = i;
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                match chars[i] {
                    '\\' => i += 2,
                    '"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
            if !closed {
                return Err("a string is not closed".into());
            }
            let text: String = chars[start..i].iter().collect();
            let value: Value =
                serde_json::from_str(&text).map_err(|_| format!("{text} is not a valid string"))?;
            out.push(Tok::Literal(value));
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '(' | ')' | '"')
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(out)
}

impl Filter {
    /// Parses a filter; the error says what is wrong, for the 400 answer.
    pub fn parse(q: &str) -> Result<Filter, String> {
        let tokens = tokenize(q)?;
        let mut parser = Parser { tokens, at: 0 };
        let filter = parser.or()?;
        if parser.at != parser.tokens.len() {
            return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
        }
        Ok(filter)
    }

    /// The names (lower-cased) that a filter of the shape `name eq "..." or name eq "..."`
    /// can only match; `None` for any other shape. orgform's look-ups are this shape, and
    /// knowing it lets a list skip rendering items that can't match.
    pub(crate) fn only_names(&self) -> Option<HashSet<String>> {
        match self {
            Filter::Compare {
                path,
                op: Op::Eq,
                value: Value::String(name),
            } if path == "name" => Some(std::iter::once(name.to_lowercase()).collect()),
            Filter::Or(a, b) => {
                let mut names = a.only_names()?;
                names.extend(b.only_names()?);
                Some(names)
            }
            _ => None,
        }
    }

    /// Whether `item` matches.
    pub fn matches(&self, item: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(item) && b.matches(item),
            Filter::Or(a, b) => a.matches(item) || b.matches(item),
            Filter::Not(f) => !f.matches(item),
            Filter::Present(path) => lookup(item, path).is_some_and(|v| match v {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            }),
            Filter::Compare { path, op, value } => {
                let Some(actual) = lookup(item, path) else {
                    return *op == Op::Ne;
                };
                compare_op(actual, *op, value)
            }
        }
    }
}

struct Parser {
    tokens: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Filter, String> {
        self.joined("or", Parser::and, Filter::Or)
    }

    fn and(&mut self) -> Result<Filter, String> {
        self.joined("and", Parser::unary, Filter::And)
    }

    /// `operand (word operand)*`, joined from the left.
    fn joined(
        &mut self,
        word: &str,
        operand: fn(&mut Self) -> Result<Filter, String>,
        join: fn(Box<Filter>, Box<Filter>) -> Filter,
    ) -> Result<Filter, String> {
        let mut left = operand(self)?;
        while self.peek_word(word) {
            self.at += 1;
            let right = operand(self)?;
            left = join(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.group()?)));
        }
        if matches!(self.tokens.get(self.at), Some(Tok::Open)) {
            return self.group();
        }
        self.comparison()
    }

    fn group(&mut self) -> Result<Filter, String> {
        if !matches!(self.tokens.get(self.at), Some(Tok::Open)) {
            return Err("expected (".into());
        }
        self.at += 1;
        let inner = self.or()?;
        if !matches!(self.tokens.get(self.at), Some(Tok::Close)) {
            return Err("a parenthesis is not closed".into());
        }
        self.at += 1;
        Ok(inner)
    }

    fn comparison(&mut self) -> Result<Filter, String> {
        let Some(Tok::Word(path)) = self.tokens.get(self.at).cloned() else {
            return Err("expected an attribute name".into());
        };
        if !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            return Err(format!("{path} is not an attribute name"));
        }
        self.at += 1;
        let Some(Tok::Word(op)) = self.tokens.get(self.at).cloned() else {
            return Err(format!("expected an operator after {path}"));
        };
        self.at += 1;
        let op = match op.to_ascii_lowercase().as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            other => return Err(format!("{other} is not an operator")),
        };
        let value = match self.tokens.get(self.at).cloned() {
            Some(Tok::Literal(v)) => v,
            Some(Tok::Word(w)) => match w.as_str() {
                "true" => json!(true),
                "false" => json!(false),
                "null" => Value::Null,
                number => serde_json::from_str::<serde_json::Number>(number)
                    .map(Value::Number)
                    .map_err(|_| format!("{number} is not a value: quote strings"))?,
            },
            _ => return Err(format!("expected a value after {path}")),
        };
        self.at += 1;
        Ok(Filter::Compare { path, op, value })
    }
}

/// The value at a dotted attribute path, names matched without case (SCIM's rule).
pub(super) fn lookup<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(item, |value, part| {
        value
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(part))
            .map(|(_, v)| v)
    })
}

/// A value as text for comparison: strings as they are, numbers and booleans as written.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compare_op(actual: &Value, op: Op, expected: &Value) -> bool {
    if expected.is_null() {
        return match op {
            Op::Eq => actual.is_null(),
            Op::Ne => !actual.is_null(),
            _ => false,
        };
    }
    // Numbers compare as numbers; everything else as text without case.
    if let (Some(a), Some(b)) = (number(actual), number(expected))
        && (actual.is_number() || expected.is_number())
    {
        let ord = a.partial_cmp(&b);
        return match op {
            Op::Eq => ord == Some(std::cmp::Ordering::Equal),
            Op::Ne => ord != Some(std::cmp::Ordering::Equal),
            Op::Gt => ord == Some(std::cmp::Ordering::Greater),
            Op::Ge => matches!(
                ord,
                Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
            ),
            Op::Lt => ord == Some(std::cmp::Ordering::Less),
            Op::Le => matches!(
                ord,
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            ),
            Op::Co | Op::Sw | Op::Ew => false,
        };
    }
    let (Some(a), Some(b)) = (text(actual), text(expected)) else {
        return op == Op::Ne;
    };
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Co => a.contains(&b),
        Op::Sw => a.starts_with(&b),
        Op::Ew => a.ends_with(&b),
        Op::Gt => a > b,
        Op::Ge => a >= b,
        Op::Lt => a < b,
        Op::Le => a <= b,
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Sorts values: numbers by value, text without case, nulls last.
pub(super) fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        _ => text(a)
            .map(|t| t.to_lowercase())
            .cmp(&text(b).map(|t| t.to_lowercase())),
    }
}
