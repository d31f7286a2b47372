//! A published message as the fan-out sees it: the PUB/HPUB arguments over
//! the publisher's read frame, with the subject and reply an import mapped it
//! to, and the queue groups a leaf link chose.
//!
//! Owns only this view; it must not deliver anything (`deliver` does).

use std::ops::Range;

use bytes::Bytes;

use crate::protocol::{PubArgs, QueueNames};

/// A parsed PUB/HPUB seen through its frame; a message crossing into another
/// account carries its mapped subject and reply beside the same frame.
pub struct Message<'a> {
    pub frame: &'a Bytes,
    pub args: &'a PubArgs,
    /// From a leaf link: the queue groups (ranges into `frame`) the sender
    /// chose us for; only those get it (none: no queue group does).
    pub queue_filter: Option<Range<usize>>,
    /// Set when an import renamed the subject (instead of `args.subject`).
    subject: Option<&'a [u8]>,
    /// Set when an import replaced the reply (empty: none).
    reply: Option<&'a [u8]>,
}

impl<'a> Message<'a> {
    pub fn new(frame: &'a Bytes, args: &'a PubArgs) -> Self {
        Message {
            frame,
            args,
            queue_filter: None,
            subject: None,
            reply: None,
        }
    }

    /// Only the queue groups named by these ranges of the frame get it.
    pub fn with_queue_filter(mut self, queues: &QueueNames) -> Self {
        self.queue_filter = Some(queues.0.clone());
        self
    }

    /// The same message under another subject and reply (an account import).
    pub(super) fn mapped<'b>(&'b self, subject: &'b [u8], reply: &'b [u8]) -> Message<'b> {
        Message {
            frame: self.frame,
            args: self.args,
            queue_filter: None,
            subject: Some(subject),
            reply: Some(reply),
        }
    }

    pub fn subject(&self) -> &[u8] {
        match self.subject {
            Some(s) => s,
            None => self
                .frame
                .get(self.args.subject.clone())
                .unwrap_or_default(),
        }
    }

    pub(super) fn wants_group(&self, name: &[u8]) -> bool {
        match &self.queue_filter {
            None => true,
            Some(r) => QueueNames(r.clone())
                .ranges(self.frame)
                .any(|q| self.frame.get(q) == Some(name)),
        }
    }

    pub fn reply(&self) -> &[u8] {
        if let Some(r) = self.reply {
            return r;
        }
        match &self.args.reply {
            Some(r) => self.frame.get(r.clone()).unwrap_or_default(),
            None => b"",
        }
    }
}
