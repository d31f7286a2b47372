//! Baselines the engine is measured against (benches/sublist.rs): a naive
//! scan matcher and the talk's "trie" (one `RwLock` around the trie, no
//! cache). Benchmark code, not part of the server.
//!
//! Owns nothing the engine uses; must not be optimised beyond what the named
//! designs do, or the comparison stops meaning anything.

use std::sync::{PoisonError, RwLock};

use bytes::Bytes;

use natrium::subject;
use natrium::sublist::{MatchResult, QueueGroup, SublistError, Trie};

/// One stored subscription: pattern, queue, subscriber.
type Entry<T> = (Box<[u8]>, Option<Bytes>, T);

/// Every subscription in one vector; a match tests each one.
pub struct NaiveScan<T> {
    subs: RwLock<Vec<Entry<T>>>,
}

impl<T: Clone + PartialEq> Default for NaiveScan<T> {
    fn default() -> Self {
        NaiveScan {
            subs: RwLock::new(Vec::new()),
        }
    }
}

impl<T: Clone + PartialEq> NaiveScan<T> {
    pub fn insert(&self, subj: &[u8], queue: Option<&[u8]>, sub: T) -> Result<(), SublistError> {
        subject::validate_subscribe(subj)?;
        let mut v = self.subs.write().unwrap_or_else(PoisonError::into_inner);
        v.push((Box::from(subj), queue.map(Bytes::copy_from_slice), sub));
        Ok(())
    }

    pub fn remove(&self, subj: &[u8], queue: Option<&[u8]>, sub: &T) -> Result<(), SublistError> {
        let mut v = self.subs.write().unwrap_or_else(PoisonError::into_inner);
        let pos = v
            .iter()
            .position(|(s, q, t)| &s[..] == subj && q.as_deref() == queue && t == sub);
        match pos {
            Some(i) => {
                v.swap_remove(i);
                Ok(())
            }
            None => Err(SublistError::NotFound),
        }
    }

    pub fn match_subject(&self, subj: &[u8]) -> MatchResult<T> {
        let v = self.subs.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = MatchResult::new();
        for (pat, q, t) in v.iter() {
            if !subject::subject_matches(pat, subj) {
                continue;
            }
            match q {
                None => out.plain.push(t.clone()),
                Some(name) => match out.queues.iter_mut().find(|g| g.name == name) {
                    Some(g) => g.members.push(t.clone()),
                    None => out.queues.push(QueueGroup {
                        name: name.clone(),
                        members: vec![t.clone()],
                    }),
                },
            }
        }
        out
    }
}

/// The talk's "trie": one `RwLock` around the trie, no cache; every match
/// takes the read lock and walks the trie.
pub struct RwLockTrie<T> {
    trie: RwLock<Trie<T>>,
}

impl<T: Clone + PartialEq> Default for RwLockTrie<T> {
    fn default() -> Self {
        RwLockTrie {
            trie: RwLock::new(Trie::default()),
        }
    }
}

impl<T: Clone + PartialEq> RwLockTrie<T> {
    pub fn insert(&self, subj: &[u8], queue: Option<&[u8]>, sub: T) -> Result<(), SublistError> {
        subject::validate_subscribe(subj)?;
        self.trie
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(subj, queue, sub);
        Ok(())
    }

    pub fn remove(&self, subj: &[u8], queue: Option<&[u8]>, sub: &T) -> Result<(), SublistError> {
        let found = self
            .trie
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(subj, queue, sub);
        if found {
            Ok(())
        } else {
            Err(SublistError::NotFound)
        }
    }

    pub fn match_subject(&self, subj: &[u8]) -> MatchResult<T> {
        let mut out = MatchResult::new();
        self.trie
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .collect(subj, &mut out);
        out
    }
}
