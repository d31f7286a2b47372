//! The kinds of connection, as nats-server has them (its `kind` field):
//! one reader/writer/outbound machinery, with kind-specific op handling and
//! delivery encoding.
//!
//! Owns what differs by kind and nothing else: the wire form of a delivery
//! (`MSG`/`HMSG` to a client, `LMSG` to a leaf link) and the id label in logs.
//! Must not hold state.

use natrium_proto::encode;

/// Which protocol the peer speaks. Every connection has exactly one, fixed at
/// accept (or at dial, for links this server solicits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An application client: client ops in, `MSG`/`HMSG` out, one per
    /// matching subscription (addressed by its sid).
    Client,
    /// A leaf-node link: `LS+`/`LS-`/`LMSG` in, `LMSG` out, one per message
    /// per link (addressed by subject and the queue groups it may serve).
    Leaf,
    /// The server's own client: owns the route subscriptions that carry
    /// messages across accounts (`account`); never written to a socket.
    Internal,
}

impl Kind {
    /// The id label nats-server's log lines use: `cid:7`, `lid:3`.
    pub fn id_label(self) -> &'static str {
        match self {
            Kind::Client => "cid",
            Kind::Leaf => "lid",
            Kind::Internal => "iid",
        }
    }

    /// Encodes the control line of one delivery (the payload follows it).
    /// `sid` addresses a client subscription; `queues` the groups a leaf link
    /// may pick a member of. `hdr` is the header length when headers are sent.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_delivery(
        self,
        out: &mut Vec<u8>,
        subject: &[u8],
        sid: &[u8],
        reply: &[u8],
        queues: &[&[u8]],
        hdr: Option<usize>,
        body_len: usize,
    ) {
        match (self, hdr) {
            (Kind::Client | Kind::Internal, Some(h)) => {
                encode::hmsg_line(out, subject, sid, reply, h, body_len)
            }
            (Kind::Client | Kind::Internal, None) => {
                encode::msg_line(out, subject, sid, reply, body_len)
            }
            (Kind::Leaf, hdr) => encode::lmsg_line(out, subject, reply, queues, hdr, body_len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: Kind, reply: &[u8], queues: &[&[u8]], hdr: Option<usize>) -> String {
        let mut out = Vec::new();
        kind.encode_delivery(&mut out, b"foo.bar", b"9", reply, queues, hdr, 5);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn client_deliveries_are_msg_and_hmsg() {
        assert_eq!(line(Kind::Client, b"", &[], None), "MSG foo.bar 9 5\r\n");
        assert_eq!(
            line(Kind::Client, b"r", &[], Some(2)),
            "HMSG foo.bar 9 r 2 5\r\n"
        );
    }

    #[test]
    fn leaf_deliveries_are_lmsg() {
        assert_eq!(line(Kind::Leaf, b"", &[], None), "LMSG foo.bar 5\r\n");
        assert_eq!(line(Kind::Leaf, b"r", &[], None), "LMSG foo.bar r 5\r\n");
        assert_eq!(
            line(Kind::Leaf, b"r", &[b"q1", b"q2"], None),
            "LMSG foo.bar + r q1 q2 5\r\n"
        );
        assert_eq!(
            line(Kind::Leaf, b"", &[b"q"], Some(2)),
            "HMSG foo.bar | q 2 5\r\n"
        );
    }
}
