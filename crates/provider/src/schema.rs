//! The plugin-protocol schema, produced from the model's schema (nothing restated here).

use model::schema::{Block, Nesting, Presence, TypeSchema};

use crate::codec::cty_type;
use crate::proto::tfplugin6 as pb;

pub fn to_proto(schema: &TypeSchema) -> pb::Schema {
    pb::Schema {
        version: schema.version,
        block: Some(block(&schema.block)),
    }
}

fn block(block: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: block
            .attributes
            .iter()
            .map(|a| pb::schema::Attribute {
                name: a.name.to_owned(),
                r#type: cty_type(&a.ty),
                description: a.description.to_owned(),
                required: a.presence == Presence::Required,
                optional: matches!(a.presence, Presence::Optional | Presence::OptionalComputed),
                computed: matches!(a.presence, Presence::Computed | Presence::OptionalComputed),
                sensitive: a.sensitive,
                description_kind: pb::StringKind::Markdown as i32,
                deprecated: a.deprecated,
                write_only: false,
            })
            .collect(),
        block_types: block
            .blocks
            .iter()
            .map(|b| pb::schema::NestedBlock {
                type_name: b.type_name.to_owned(),
                block: Some(self::block(&b.block)),
                nesting: match b.nesting {
                    Nesting::Single => pb::schema::nested_block::NestingMode::Single,
                    Nesting::List => pb::schema::nested_block::NestingMode::List,
                    Nesting::Set => pb::schema::nested_block::NestingMode::Set,
                } as i32,
                min_items: i64::from(b.min_items),
                // Terraform wants MinItems == MaxItems for a single block: 0/0 when optional.
                max_items: match b.nesting {
                    Nesting::Single if b.min_items == 0 => 0,
                    _ => i64::from(b.max_items),
                },
            })
            .collect(),
        description: block.description.to_owned(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::schema::NestedBlock;

    fn nested(nesting: Nesting, min_items: u32, max_items: u32) -> NestedBlock {
        NestedBlock {
            type_name: "b",
            nesting,
            block: Block {
                attributes: Vec::new(),
                blocks: Vec::new(),
                description: "",
            },
            min_items,
            max_items,
            description: "",
            force_new: false,
        }
    }

    #[test]
    fn item_bounds_are_as_terraform_wants_them_for_each_nesting() {
        for (b, (min, max)) in [
            // A single block: both bounds 0 when it is optional, both 1 when it is required.
            (nested(Nesting::Single, 0, 1), (0, 0)),
            (nested(Nesting::Single, 1, 1), (1, 1)),
            // Lists and sets keep their bounds.
            (nested(Nesting::List, 0, 0), (0, 0)),
            (nested(Nesting::List, 1, 3), (1, 3)),
            (nested(Nesting::Set, 2, 5), (2, 5)),
        ] {
            let proto = block(&Block {
                attributes: Vec::new(),
                blocks: vec![b.clone()],
                description: "",
            });
            let got = &proto.block_types[0];
            assert_eq!((got.min_items, got.max_items), (min, max), "{b:?}");
        }
    }
}
