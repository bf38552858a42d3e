//! Structure-aware edits: the DER is parsed into a tree (constructed elements
//! and OCTET STRINGs that hold DER, such as `extnValue`, become inner nodes),
//! one node is edited, and the tree is re-encoded with every enclosing length
//! recomputed, so edits that change sizes still yield well-formed DER.

use crate::der;

#[derive(Clone, Debug)]
enum Node {
    Prim { tag: u8, data: Vec<u8> },
    Cons { tag: u8, children: Vec<Node> },
}

fn parse_run(mut input: &[u8], depth: usize) -> Option<Vec<Node>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (t, rest) = der::read(input)?;
        out.push(parse_one(t, depth));
        input = rest;
    }
    Some(out)
}

fn parse_one(t: der::Tlv<'_>, depth: usize) -> Node {
    let container = t.tag & 0x20 != 0 || (t.tag == 0x04 && t.value.first() == Some(&0x30));
    if container && depth < 16 {
        if let Some(children) = parse_run(t.value, depth + 1) {
            return Node::Cons {
                tag: t.tag,
                children,
            };
        }
    }
    Node::Prim {
        tag: t.tag,
        data: t.value.to_vec(),
    }
}

fn encode(nodes: &[Node], out: &mut Vec<u8>) {
    for n in nodes {
        match n {
            Node::Prim { tag, data } => out.extend(der::wrap(*tag, data)),
            Node::Cons { tag, children } => {
                let mut inner = Vec::new();
                encode(children, &mut inner);
                out.extend(der::wrap(*tag, &inner));
            }
        }
    }
}

fn count(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|n| match n {
            Node::Prim { .. } => 1,
            Node::Cons { children, .. } => 1 + count(children),
        })
        .sum()
}

/// Tree edit operations.
#[derive(Clone, Copy, Debug)]
pub enum Edit {
    /// Replace a node's contents (a constructed node becomes primitive).
    SetContent,
    /// Append bytes to a primitive node, or a new child to a constructed one.
    Append,
    /// Remove the node.
    Delete,
    /// Insert a copy of the node after it.
    Duplicate,
    /// Change the node's tag to the value.
    Retag,
    /// Truncate a primitive node to `value % len` bytes.
    Truncate,
}

/// Applies `edit` to the `index % count`-th node (pre-order) of the run of
/// elements in `buf`; leaves `buf` alone when it does not parse.
pub fn apply(buf: &mut Vec<u8>, edit: Edit, index: u16, value: u8, chunk: &[u8]) {
    let Some(mut nodes) = parse_run(buf, 0) else {
        return;
    };
    let total = count(&nodes);
    if total == 0 {
        return;
    }
    let mut target = usize::from(index) % total;
    edit_at(&mut nodes, &mut target, edit, value, chunk);
    buf.clear();
    encode(&nodes, buf);
}

/// Walks to the target; returns true once the edit was made.
fn edit_at(nodes: &mut Vec<Node>, target: &mut usize, edit: Edit, value: u8, chunk: &[u8]) -> bool {
    let mut i = 0;
    while i < nodes.len() {
        if *target == 0 {
            match edit {
                Edit::Delete => {
                    nodes.remove(i);
                }
                Edit::Duplicate => {
                    let copy = nodes[i].clone();
                    nodes.insert(i + 1, copy);
                }
                _ => edit_node(&mut nodes[i], edit, value, chunk),
            }
            return true;
        }
        *target -= 1;
        if let Node::Cons { children, .. } = &mut nodes[i] {
            if edit_at(children, target, edit, value, chunk) {
                return true;
            }
        }
        i += 1;
    }
    false
}

fn edit_node(node: &mut Node, edit: Edit, value: u8, chunk: &[u8]) {
    match (edit, node) {
        (Edit::Retag, Node::Prim { tag, .. } | Node::Cons { tag, .. }) => *tag = value,
        (Edit::SetContent, n) => {
            let tag = match n {
                Node::Prim { tag, .. } | Node::Cons { tag, .. } => *tag,
            };
            *n = Node::Prim {
                tag,
                data: chunk.to_vec(),
            };
        }
        (Edit::Append, Node::Prim { data, .. }) => data.extend_from_slice(chunk),
        (Edit::Append, Node::Cons { children, .. }) => match parse_run(chunk, 1) {
            Some(mut parsed) if !parsed.is_empty() => children.append(&mut parsed),
            _ => children.push(Node::Prim {
                tag: value,
                data: chunk.to_vec(),
            }),
        },
        (Edit::Truncate, Node::Prim { data, .. }) => {
            let keep = usize::from(value) % (data.len() + 1);
            data.truncate(keep);
        }
        (Edit::Truncate, Node::Cons { children, .. }) => {
            let keep = usize::from(value) % (children.len() + 1);
            children.truncate(keep);
        }
        _ => {}
    }
}
