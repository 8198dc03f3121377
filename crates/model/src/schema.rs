//! The schema of every Terraform type, as data.
//!
//! This is the single description of each type: the provider turns it into the plugin-protocol
//! schema and `cargo xtask docs` turns it into the registry pages. Nothing else restates it.

/// The value type of an attribute, in Terraform's type system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrType {
    String,
    Number,
    Bool,
    List(Box<AttrType>),
    Set(Box<AttrType>),
    Map(Box<AttrType>),
    /// An object with the given attribute names and types, in schema order.
    Object(Vec<(&'static str, AttrType)>),
}

/// Whether the user must, may or may not write an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The user must set it.
    Required,
    /// The user may set it; when unset it is null.
    Optional,
    /// The user may set it; when unset the provider fills it (a default or a server value).
    OptionalComputed,
    /// Only the provider sets it.
    Computed,
}

/// A check on a configured value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validator {
    /// The string must be one of these values.
    OneOf(&'static [&'static str]),
    /// The string must not be empty.
    NotEmpty,
}

/// A default the provider plans when the user leaves an optional attribute unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Default {
    String(&'static str),
    Bool(bool),
    EmptyList,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: AttrType,
    pub presence: Presence,
    pub description: &'static str,
    pub sensitive: bool,
    /// A change of this attribute forces the resource to be replaced.
    pub force_new: bool,
    pub default: Option<Default>,
    pub validators: Vec<Validator>,
    pub deprecated: bool,
}

/// A plain attribute: not sensitive, not forcing a replacement, no default, no validator.
/// Schemas adjust the fields that differ.
pub fn attr(
    name: &'static str,
    ty: AttrType,
    presence: Presence,
    description: &'static str,
) -> Attribute {
    Attribute {
        name,
        ty,
        presence,
        description,
        sensitive: false,
        force_new: false,
        default: None,
        validators: Vec::new(),
        deprecated: false,
    }
}

/// How many nested blocks of one kind may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedBlock {
    pub type_name: &'static str,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: u32,
    pub max_items: u32,
    pub description: &'static str,
    pub force_new: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Resource,
    DataSource,
    Provider,
    /// An ephemeral resource (Terraform 1.10 and later): opened in each run, never stored.
    Ephemeral,
}

/// One Terraform type: a resource, a data source, an ephemeral resource, or a provider's own
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSchema {
    /// For example `lxd_trust_token`; for a provider, its local name (`lxd`, `oci`).
    pub name: &'static str,
    pub kind: Kind,
    /// The schema version stored in state.
    pub version: i64,
    pub block: Block,
    /// `true` when `terraform import` is supported.
    pub importable: bool,
    /// The import id format, shown in docs (`<operation id>`, `users/{userId}/authTokens/{id}`).
    pub import_id_format: Option<&'static str>,
}
