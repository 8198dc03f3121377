//! Schemas, as GetProviderSchema gives them.

use std::collections::{BTreeMap, BTreeSet};

use provider::proto::tfplugin6 as v6;

use crate::value::Tv;

#[derive(Debug, Clone)]
pub struct AttrS {
    pub name: String,
    pub optional: bool,
    pub computed: bool,
}

#[derive(Debug, Clone)]
pub struct BlockS {
    pub attrs: Vec<AttrS>,
    /// Nested block types: name, `true` when SINGLE (else LIST or SET), and their blocks.
    pub blocks: Vec<(String, bool, BlockS)>,
}

impl BlockS {
    pub fn keys(&self) -> BTreeSet<String> {
        self.attrs
            .iter()
            .map(|a| a.name.clone())
            .chain(self.blocks.iter().map(|b| b.0.clone()))
            .collect()
    }

    /// `partial` with every attribute and block of the schema present, as Terraform sends a
    /// configuration (absent attributes null, absent SINGLE blocks null, others empty).
    pub fn complete(&self, partial: &Tv) -> Tv {
        let mut out = BTreeMap::new();
        for attr in &self.attrs {
            out.insert(attr.name.clone(), partial.get(&attr.name).clone());
        }
        for (name, single, block) in &self.blocks {
            let value = match (partial.get(name), single) {
                (Tv::Null, true) => Tv::Null,
                (Tv::Null, false) => Tv::List(Vec::new()),
                (Tv::List(items), false) => {
                    Tv::List(items.iter().map(|i| block.complete(i)).collect())
                }
                (v, _) => block.complete(v),
            };
            out.insert(name.clone(), value);
        }
        Tv::Obj(out)
    }
}

pub fn block6(b: &v6::schema::Block) -> BlockS {
    BlockS {
        attrs: b
            .attributes
            .iter()
            .map(|a| AttrS {
                name: a.name.clone(),
                optional: a.optional,
                computed: a.computed,
            })
            .collect(),
        blocks: b
            .block_types
            .iter()
            .map(|n| {
                (
                    n.type_name.clone(),
                    n.nesting == v6::schema::nested_block::NestingMode::Single as i32,
                    block6(n.block.as_ref().expect("nested block schema")),
                )
            })
            .collect(),
    }
}
