//! Schema-driven planning and validation shared by every Terraform type.
//!
//! These are Terraform's own planning rules, applied from the schema: configured values are
//! planned as written, defaults fill optional-computed attributes, computed attributes keep
//! their prior value unless the object is replaced, and a change of a force-new attribute
//! plans a replacement.

use std::collections::BTreeMap;

use crate::diag::{AttrPath, Diagnostic};
use crate::schema::{self, Attribute, Block, Nesting, Presence, Validator};
use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Replace,
    NoOp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The planned object, with `Unknown` where only the server can tell.
    pub planned: Value,
    /// The attributes whose change forces a replacement (empty unless `action` is `Replace`).
    pub requires_replace: Vec<AttrPath>,
    pub action: Action,
}

/// The value a default stands for.
pub fn default_value(default: &schema::Default) -> Value {
    match default {
        schema::Default::String(s) => Value::string(*s),
        schema::Default::Bool(b) => Value::Bool(*b),
        schema::Default::EmptyList => Value::List(Vec::new()),
    }
}

/// Plans `config` against `prior` (None when the object does not exist yet).
pub fn plan(block: &Block, prior: Option<&Value>, config: &Value) -> Plan {
    let mut planned = BTreeMap::new();
    for attr in &block.attributes {
        let configured = config.get(attr.name);
        let before = prior.map(|p| p.get(attr.name));
        let value = match attr.presence {
            Presence::Required | Presence::Optional => configured.clone(),
            Presence::OptionalComputed => {
                if !configured.is_null() {
                    configured.clone()
                } else if let Some(default) = &attr.default {
                    default_value(default)
                } else if let Some(before) = before {
                    before.clone()
                } else {
                    Value::Unknown
                }
            }
            Presence::Computed => before.cloned().unwrap_or(Value::Unknown),
        };
        planned.insert(attr.name.to_owned(), value);
    }
    for nested in &block.blocks {
        let configured = config.get(nested.type_name).clone();
        let value = match (nested.nesting, configured) {
            (Nesting::List, Value::Null) => Value::List(Vec::new()),
            (Nesting::Set, Value::Null) => Value::Set(Vec::new()),
            (_, v) => v,
        };
        planned.insert(nested.type_name.to_owned(), value);
    }

    let mut requires_replace = Vec::new();
    if let Some(prior) = prior {
        for attr in block.attributes.iter().filter(|a| a.force_new) {
            if changes(prior.get(attr.name), &planned[attr.name]) {
                requires_replace.push(AttrPath::attr(attr.name));
            }
        }
        for nested in block.blocks.iter().filter(|b| b.force_new) {
            if changes(prior.get(nested.type_name), &planned[nested.type_name]) {
                requires_replace.push(AttrPath::attr(nested.type_name));
            }
        }
    }
    let action = match prior {
        None => Action::Create,
        Some(_) if !requires_replace.is_empty() => {
            // The replacement is a new object: everything the server decides is unknown again.
            for attr in block
                .attributes
                .iter()
                .filter(|a| a.presence == Presence::Computed)
            {
                planned.insert(attr.name.to_owned(), Value::Unknown);
            }
            Action::Replace
        }
        Some(prior) if Value::Object(planned.clone()) != *prior => Action::Update,
        Some(_) => Action::NoOp,
    };
    Plan {
        planned: Value::Object(planned),
        requires_replace,
        action,
    }
}

/// `true` when `after` differs from `before`, or may differ because it is not known yet.
///
/// Terraform replaces an object when a force-new attribute is planned unknown, and the plan it
/// makes again at apply time, with the value known, must keep that action: an in-place update
/// planned here would become a replacement then ("Provider produced inconsistent final plan").
fn changes(before: &Value, after: &Value) -> bool {
    after.contains_unknown() || before != after
}

/// Checks a configuration against the schema: required attributes, computed-only attributes,
/// validators and the number of nested blocks. Unknown values pass.
pub fn validate(block: &Block, config: &Value) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    validate_block(block, config, &AttrPath::default(), &mut diags);
    diags
}

fn validate_block(block: &Block, config: &Value, at: &AttrPath, diags: &mut Vec<Diagnostic>) {
    for attr in &block.attributes {
        let path = child(at, attr.name);
        validate_attr(attr, config.get(attr.name), &path, diags);
    }
    for nested in &block.blocks {
        let path = child(at, nested.type_name);
        let items: Vec<&Value> = match config.get(nested.type_name) {
            Value::List(items) | Value::Set(items) => items.iter().collect(),
            Value::Null | Value::Unknown => Vec::new(),
            single => vec![single],
        };
        let n = items.len() as u32;
        if n < nested.min_items || (nested.max_items > 0 && n > nested.max_items) {
            let allowed = match (nested.min_items, nested.max_items) {
                (min, 0) => format!("at least {min}"),
                (min, max) if min == max => format!("exactly {min}"),
                (min, max) => format!("between {min} and {max}"),
            };
            diags.push(Diagnostic::error(
                path.clone(),
                format!("Wrong number of `{}` blocks", nested.type_name),
                format!("`{}` takes {allowed} block(s), got {n}.", nested.type_name),
            ));
        }
        for (idx, item) in items.into_iter().enumerate() {
            let item_path = match nested.nesting {
                Nesting::Single => path.clone(),
                Nesting::List | Nesting::Set => path.clone().index(idx),
            };
            validate_block(&nested.block, item, &item_path, diags);
        }
    }
}

fn child(at: &AttrPath, name: &str) -> AttrPath {
    at.clone().child(name)
}

fn validate_attr(attr: &Attribute, value: &Value, path: &AttrPath, diags: &mut Vec<Diagnostic>) {
    match (attr.presence, value) {
        (Presence::Required, Value::Null) => {
            diags.push(Diagnostic::error(
                path.clone(),
                format!("Missing required argument `{}`", attr.name),
                format!(
                    "The argument `{}` is required: {}",
                    attr.name,
                    first_sentence(attr.description)
                ),
            ));
            return;
        }
        (Presence::Computed, v) if !v.is_null() => {
            diags.push(Diagnostic::error(
                path.clone(),
                format!("`{}` cannot be set", attr.name),
                format!(
                    "`{}` is computed by the provider; remove it from the configuration.",
                    attr.name
                ),
            ));
            return;
        }
        _ => {}
    }
    let Value::String(text) = value else {
        return;
    };
    for validator in &attr.validators {
        match validator {
            Validator::OneOf(allowed) if !allowed.contains(&text.as_str()) => {
                let list = allowed
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                diags.push(Diagnostic::error(
                    path.clone(),
                    format!("Invalid value for `{}`", attr.name),
                    format!("`{}` must be one of {list}; got \"{text}\".", attr.name),
                ));
            }
            Validator::NotEmpty if text.is_empty() => diags.push(Diagnostic::error(
                path.clone(),
                format!("Invalid value for `{}`", attr.name),
                format!("`{}` must not be empty.", attr.name),
            )),
            _ => {}
        }
    }
}

fn first_sentence(text: &str) -> &str {
    text.split_once(". ").map_or(text, |(first, _)| first)
}
