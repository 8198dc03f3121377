//! Reading typed fields out of a `Value` object, with errors that name the attribute.

use crate::diag::{AttrPath, Diagnostic};
use crate::value::Value;

fn wrong(name: &str, expected: &str, got: &Value) -> Diagnostic {
    let got = match got {
        Value::Null => "null",
        Value::Unknown => "a value not known yet",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) | Value::Set(_) => "a list",
        Value::Map(_) | Value::Object(_) => "an object",
    };
    Diagnostic::error(
        AttrPath::attr(name),
        format!("Invalid value for `{name}`"),
        format!("`{name}` must be {expected}; got {got}."),
    )
}

pub fn string(value: &Value, name: &str) -> Result<String, Diagnostic> {
    match value.get(name) {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong(name, "a string", other)),
    }
}

pub fn opt_string(value: &Value, name: &str) -> Result<Option<String>, Diagnostic> {
    match value.get(name) {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(wrong(name, "a string", other)),
    }
}

pub fn opt_bool(value: &Value, name: &str) -> Result<Option<bool>, Diagnostic> {
    match value.get(name) {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => Err(wrong(name, "a bool", other)),
    }
}

/// A list (or set) of strings; null reads as empty.
pub fn string_list_or_empty(value: &Value, name: &str) -> Result<Vec<String>, Diagnostic> {
    match value.get(name) {
        Value::Null => Ok(Vec::new()),
        Value::List(items) | Value::Set(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong(name, "a list of strings", other)),
            })
            .collect(),
        other => Err(wrong(name, "a list of strings", other)),
    }
}
