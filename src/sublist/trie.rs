//! The interest trie: one node per token position, with literal children in a
//! hash map and the `*` / `>` children beside them.
//!
//! Owns the node layout, insert, remove (with pruning) and match collection on a
//! single-threaded trie. Must not touch locking, caching or statistics: the
//! `Sublist` wraps it in a lock and the baselines reuse it as is.
//!
//! Layout is chosen for memory (≤ 250 B per subscription at 1M): a node is 56
//! bytes and lives inline in its parent's map; subscribers sit behind one
//! optional box, so interior nodes pay nothing for them.

use std::collections::HashMap;

use bytes::Bytes;

use super::hash::FastBuild;
use super::{MatchResult, QueueGroup};
use crate::subject::TSEP;

type Children<T> = HashMap<Box<[u8]>, Node<T>, FastBuild>;

/// One token position.
pub(crate) struct Node<T> {
    literal: Children<T>,
    pwc: Option<Box<Node<T>>>,
    fwc: Option<Box<Node<T>>>,
    subs: Option<Box<Subs<T>>>,
}

/// Subscribers of exactly the subject that ends at a node.
struct Subs<T> {
    plain: Vec<T>,
    queues: Vec<QueueSubs<T>>,
}

struct QueueSubs<T> {
    name: Bytes,
    members: Vec<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            literal: HashMap::with_hasher(FastBuild),
            pwc: None,
            fwc: None,
            subs: None,
        }
    }
}

/// Pushes growing capacity 1, 2, 4, … instead of Vec's 4, 8, …: most subjects
/// have one subscriber and every spare slot costs at 1M subscriptions.
#[inline]
fn push_tight<V>(v: &mut Vec<V>, x: V) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len().max(1));
    }
    v.push(x);
}

/// Removes one occurrence of `x` (order is not kept).
#[inline]
fn remove_one<V: PartialEq>(v: &mut Vec<V>, x: &V) -> bool {
    match v.iter().position(|y| y == x) {
        Some(i) => {
            v.swap_remove(i);
            if v.capacity() > 8 && v.len() * 4 < v.capacity() {
                v.shrink_to_fit();
            }
            true
        }
        None => false,
    }
}

/// Splits off the first token: `(token, rest after the dot)`.
#[inline]
fn split_first(subject: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(TSEP, subject) {
        Some(i) => (&subject[..i], Some(&subject[i + 1..])),
        None => (subject, None),
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.pwc.is_none() && self.fwc.is_none() && self.subs.is_none()
    }
}

impl<T: Clone + PartialEq> Node<T> {
    fn add_sub(&mut self, queue: Option<&[u8]>, sub: T) {
        let subs = self.subs.get_or_insert_with(|| {
            Box::new(Subs {
                plain: Vec::new(),
                queues: Vec::new(),
            })
        });
        match queue {
            None => push_tight(&mut subs.plain, sub),
            Some(q) => match subs.queues.iter_mut().find(|g| g.name[..] == *q) {
                Some(g) => push_tight(&mut g.members, sub),
                None => push_tight(
                    &mut subs.queues,
                    QueueSubs {
                        name: Bytes::copy_from_slice(q),
                        members: vec![sub],
                    },
                ),
            },
        }
    }

    fn remove_sub(&mut self, queue: Option<&[u8]>, sub: &T) -> bool {
        let Some(subs) = self.subs.as_deref_mut() else {
            return false;
        };
        let found = match queue {
            None => remove_one(&mut subs.plain, sub),
            Some(q) => match subs.queues.iter().position(|g| g.name[..] == *q) {
                None => false,
                Some(i) => {
                    let found = remove_one(&mut subs.queues[i].members, sub);
                    if subs.queues[i].members.is_empty() {
                        subs.queues.swap_remove(i);
                    }
                    found
                }
            },
        };
        if subs.plain.is_empty() && subs.queues.is_empty() {
            self.subs = None;
        }
        found
    }

    /// Appends this node's subscribers; queue members join an existing group of
    /// the same name so a group spanning several patterns is one group.
    #[inline]
    fn collect_into(&self, out: &mut MatchResult<T>) {
        let Some(subs) = self.subs.as_deref() else {
            return;
        };
        out.plain.extend_from_slice(&subs.plain);
        for q in &subs.queues {
            match out.queues.iter_mut().find(|g| g.name == q.name) {
                Some(g) => g.members.extend_from_slice(&q.members),
                None => out.queues.push(QueueGroup {
                    name: q.name.clone(),
                    members: q.members.clone(),
                }),
            }
        }
    }
}

/// The whole trie plus its subscription count. Not thread-safe by itself.
pub(crate) struct Trie<T> {
    root: Node<T>,
    count: usize,
}

impl<T> Default for Trie<T> {
    fn default() -> Self {
        Trie {
            root: Node::default(),
            count: 0,
        }
    }
}

impl<T: Clone + PartialEq> Trie<T> {
    /// Number of stored subscriptions (duplicates counted).
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Inserts without validation (callers validate). Identical triples are
    /// stored twice and must be removed twice.
    pub(crate) fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, sub: T) {
        let mut node = &mut self.root;
        for tok in crate::subject::tokens(subject) {
            node = match tok {
                b"*" => node.pwc.get_or_insert_with(Box::default),
                b">" => node.fwc.get_or_insert_with(Box::default),
                _ if node.literal.contains_key(tok) => match node.literal.get_mut(tok) {
                    Some(child) => child,
                    None => unreachable!("contains_key just said present"),
                },
                _ => node.literal.entry(Box::from(tok)).or_default(),
            };
        }
        node.add_sub(queue, sub);
        self.count += 1;
    }

    /// Removes one occurrence; prunes nodes left empty. False if absent.
    pub(crate) fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, sub: &T) -> bool {
        let found = remove_at(&mut self.root, Some(subject), queue, sub);
        if found {
            self.count -= 1;
        }
        found
    }

    /// Collects every subscription whose pattern matches the literal `subject`.
    #[inline]
    pub(crate) fn collect(&self, subject: &[u8], out: &mut MatchResult<T>) {
        match_level(&self.root, subject, out);
    }

    /// Collects only the subscriptions whose subject is byte-identical to
    /// `subject` (wildcard tokens in it are walked as `*`/`>` children).
    pub(crate) fn collect_exact(&self, subject: &[u8], out: &mut MatchResult<T>) {
        let mut node = &self.root;
        for tok in crate::subject::tokens(subject) {
            let next = match tok {
                b"*" => node.pwc.as_deref(),
                b">" => node.fwc.as_deref(),
                _ => node.literal.get(tok),
            };
            match next {
                Some(n) => node = n,
                None => return,
            }
        }
        node.collect_into(out);
    }
}

fn remove_at<T: Clone + PartialEq>(
    node: &mut Node<T>,
    rest: Option<&[u8]>,
    queue: Option<&[u8]>,
    sub: &T,
) -> bool {
    let Some(rest) = rest else {
        return node.remove_sub(queue, sub);
    };
    let (tok, next) = split_first(rest);
    match tok {
        b"*" | b">" => {
            let slot = if tok == b"*" {
                &mut node.pwc
            } else {
                &mut node.fwc
            };
            let Some(child) = slot.as_deref_mut() else {
                return false;
            };
            let found = remove_at(child, next, queue, sub);
            if found && child.is_empty() {
                *slot = None;
            }
            found
        }
        _ => {
            let Some(child) = node.literal.get_mut(tok) else {
                return false;
            };
            let found = remove_at(child, next, queue, sub);
            if found && child.is_empty() {
                node.literal.remove(tok);
                let cap = node.literal.capacity();
                if cap > 64 && node.literal.len() * 4 < cap {
                    node.literal.shrink_to_fit();
                }
            }
            found
        }
    }
}

/// Walks literal children iteratively and recurses only into `*` branches.
fn match_level<T: Clone + PartialEq>(
    mut node: &Node<T>,
    mut rest: &[u8],
    out: &mut MatchResult<T>,
) {
    loop {
        let (tok, next) = split_first(rest);
        if let Some(f) = node.fwc.as_deref() {
            f.collect_into(out);
        }
        if let Some(p) = node.pwc.as_deref() {
            match next {
                None => p.collect_into(out),
                Some(n) => match_level(p, n, out),
            }
        }
        let Some(child) = node.literal.get(tok) else {
            return;
        };
        match next {
            None => {
                child.collect_into(out);
                return;
            }
            Some(n) => {
                node = child;
                rest = n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_is_compact() {
        assert_eq!(std::mem::size_of::<Node<u64>>(), 56);
    }

    #[test]
    fn prune_on_remove() {
        let mut t: Trie<u32> = Trie::default();
        t.insert(b"a.b.c", None, 1);
        t.insert(b"a.*.>", Some(b"q"), 2);
        assert!(t.remove(b"a.b.c", None, &1));
        assert!(!t.remove(b"a.b.c", None, &1));
        assert!(t.remove(b"a.*.>", Some(b"q"), &2));
        assert!(t.root.is_empty());
        assert_eq!(t.count(), 0);
    }
}
