//! The interest trie: one node per token position, with literal children in a
//! hash map and the `*` / `>` children beside them.
//!
//! Owns the node layout, insert, remove (with pruning) and match collection on a
//! single-threaded trie. Must not touch locking, caching or statistics: the
//! `Sublist` wraps it in a lock and the baselines reuse it as is.
//!
//! Layout is chosen for memory (≤ 250 B per subscription at 1M): a node is 64
//! bytes and lives inline in its parent's map; a lone plain subscriber sits
//! in the node itself, more subscribers behind one box, so interior nodes
//! pay 16 bytes for them and the usual leaf (one subscriber) no allocation.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

use super::hash::{hash_bytes, IdBuild};
use super::{MatchResult, QueueGroup};
use crate::subject::TSEP;

type Children<T> = HashMap<TKey, Node<T>, IdBuild>;

/// A literal child's token with its hash computed once at insert, so a match
/// hashes each token of the subject once, not once per visited node (the walk
/// branches into `*` children and looks the same token up in several maps).
struct TKey {
    hash: u64,
    bytes: Box<[u8]>,
}

/// Borrowed view of a key, so maps can be probed with `(hash, &token)`
/// without allocating.
trait KeyView {
    fn key_hash(&self) -> u64;
    fn key_bytes(&self) -> &[u8];
}

impl KeyView for TKey {
    fn key_hash(&self) -> u64 {
        self.hash
    }
    fn key_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl KeyView for (u64, &[u8]) {
    fn key_hash(&self) -> u64 {
        self.0
    }
    fn key_bytes(&self) -> &[u8] {
        self.1
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for TKey {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl Hash for dyn KeyView + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.key_hash());
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, o: &Self) -> bool {
        self.key_hash() == o.key_hash() && self.key_bytes() == o.key_bytes()
    }
}

impl Eq for dyn KeyView + '_ {}

impl Hash for TKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

impl PartialEq for TKey {
    fn eq(&self, o: &Self) -> bool {
        self.hash == o.hash && self.bytes == o.bytes
    }
}

impl Eq for TKey {}

/// Probe key for a token.
#[inline]
fn probe<'a>(t: &'a (u64, &'a [u8])) -> &'a (dyn KeyView + 'a) {
    t
}

/// One token position.
pub(crate) struct Node<T> {
    literal: Children<T>,
    pwc: Option<Box<Node<T>>>,
    fwc: Option<Box<Node<T>>>,
    subs: Here<T>,
}

/// Subscribers of exactly the subject that ends at a node.
enum Here<T> {
    None,
    /// One plain subscriber (the usual leaf).
    One(T),
    /// Anything else (kept, once made, until no subscriber is left).
    Many(Box<Subs<T>>),
}

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
            literal: HashMap::with_hasher(IdBuild),
            pwc: None,
            fwc: None,
            subs: Here::None,
        }
    }
}

/// Pushes growing capacity 1, 2, 4, … instead of Vec's 4, 8, …: most subjects
/// have one subscriber and every spare slot costs at 1M subscriptions.
#[inline]
pub(super) fn push_tight<V>(v: &mut Vec<V>, x: V) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len().max(1));
    }
    v.push(x);
}

/// Removes one occurrence of `x` (order is not kept).
#[inline]
pub(super) fn remove_one<V: PartialEq>(v: &mut Vec<V>, x: &V) -> bool {
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
        self.literal.is_empty()
            && self.pwc.is_none()
            && self.fwc.is_none()
            && matches!(self.subs, Here::None)
    }
}

impl<T: Clone + PartialEq> Node<T> {
    fn add_sub(&mut self, queue: Option<&[u8]>, sub: T) {
        let mut subs = match std::mem::replace(&mut self.subs, Here::None) {
            Here::None if queue.is_none() => {
                self.subs = Here::One(sub);
                return;
            }
            Here::None => Box::new(Subs {
                plain: Vec::new(),
                queues: Vec::new(),
            }),
            Here::One(first) => Box::new(Subs {
                plain: vec![first],
                queues: Vec::new(),
            }),
            Here::Many(subs) => subs,
        };
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
        self.subs = Here::Many(subs);
    }

    fn remove_sub(&mut self, queue: Option<&[u8]>, sub: &T) -> bool {
        let subs = match &mut self.subs {
            Here::None => return false,
            Here::One(only) => {
                if queue.is_some() || only != sub {
                    return false;
                }
                self.subs = Here::None;
                return true;
            }
            Here::Many(subs) => subs,
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
        // Down to one subscriber it stays boxed: interest going 1 ↔ 2 does
        // not allocate on every change.
        if subs.queues.is_empty() && subs.plain.is_empty() {
            self.subs = Here::None;
        }
        found
    }

    /// Appends this node's subscribers; queue members join an existing group of
    /// the same name so a group spanning several patterns is one group.
    #[inline]
    fn collect_into(&self, out: &mut MatchResult<T>) {
        let subs = match &self.subs {
            Here::None => return,
            Here::One(sub) => return out.plain.push(sub.clone()),
            Here::Many(subs) => subs,
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
pub struct Trie<T> {
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
    pub fn count(&self) -> usize {
        self.count
    }

    /// Inserts without validation (callers validate). Identical triples are
    /// stored twice and must be removed twice.
    pub fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, sub: T) {
        let mut node = &mut self.root;
        for tok in crate::subject::tokens(subject) {
            node = match tok {
                b"*" => node.pwc.get_or_insert_with(Box::default),
                b">" => node.fwc.get_or_insert_with(Box::default),
                _ => {
                    let k = (hash_bytes(tok), tok);
                    if node.literal.contains_key(probe(&k)) {
                        match node.literal.get_mut(probe(&k)) {
                            Some(child) => child,
                            None => unreachable!("contains_key just said present"),
                        }
                    } else {
                        node.literal
                            .entry(TKey {
                                hash: k.0,
                                bytes: Box::from(tok),
                            })
                            .or_default()
                    }
                }
            };
        }
        node.add_sub(queue, sub);
        self.count += 1;
    }

    /// Removes one occurrence; prunes nodes left empty. False if absent.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, sub: &T) -> bool {
        let found = remove_at(&mut self.root, Some(subject), queue, sub);
        if found {
            self.count -= 1;
        }
        found
    }

    /// Collects every subscription whose pattern matches the literal `subject`.
    #[inline]
    pub fn collect(&self, subject: &[u8], out: &mut MatchResult<T>) {
        match_subject_into(&self.root, subject, out);
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
            let k = (hash_bytes(tok), tok);
            let Some(child) = node.literal.get_mut(probe(&k)) else {
                return false;
            };
            let found = remove_at(child, next, queue, sub);
            if found && child.is_empty() {
                node.literal.remove(probe(&k));
                let cap = node.literal.capacity();
                if cap > 64 && node.literal.len() * 4 < cap {
                    node.literal.shrink_to_fit();
                }
            }
            found
        }
    }
}

/// Tokens hashed up front for subjects up to this many tokens (longer ones
/// use a heap buffer).
const STACK_TOKENS: usize = 16;

/// Hashes every token once, then walks.
fn match_subject_into<T: Clone + PartialEq>(
    root: &Node<T>,
    subject: &[u8],
    out: &mut MatchResult<T>,
) {
    if root.is_empty() {
        return;
    }
    let mut buf: [(u64, &[u8]); STACK_TOKENS] = [(0, &[]); STACK_TOKENS];
    let mut n = 0;
    for tok in crate::subject::tokens(subject) {
        if n == STACK_TOKENS {
            let all: Vec<(u64, &[u8])> = crate::subject::tokens(subject)
                .map(|t| (hash_bytes(t), t))
                .collect();
            match_level(root, &all, out);
            return;
        }
        buf[n] = (hash_bytes(tok), tok);
        n += 1;
    }
    match_level(root, &buf[..n], out);
}

/// Walks literal children iteratively and recurses only into `*` branches.
/// `toks` is never empty.
fn match_level<T: Clone + PartialEq>(
    mut node: &Node<T>,
    mut toks: &[(u64, &[u8])],
    out: &mut MatchResult<T>,
) {
    while let Some((tok, rest)) = toks.split_first() {
        if let Some(f) = node.fwc.as_deref() {
            f.collect_into(out);
        }
        if let Some(p) = node.pwc.as_deref() {
            if rest.is_empty() {
                p.collect_into(out);
            } else {
                match_level(p, rest, out);
            }
        }
        let Some(child) = node.literal.get(probe(tok)) else {
            return;
        };
        if rest.is_empty() {
            child.collect_into(out);
            return;
        }
        node = child;
        toks = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_is_compact() {
        assert_eq!(std::mem::size_of::<Node<u64>>(), 64);
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
