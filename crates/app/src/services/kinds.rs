//! The kinds of conversations messages were lately sent to.
//!
//! A sender's rate limit depends on the kind of conversation (direct or group), and the limit is
//! checked before the message is posted. A conversation's kind never changes once it is
//! created, so only the first send to a conversation reads it: later sends check the limit and
//! post, one trip to the store instead of two.

use std::collections::HashMap;
use std::sync::Mutex;

use confab_domain::{ConversationId, ConversationKind};

/// Conversations remembered before the memory is cleared and starts over. A forgotten kind
/// costs one send a read of its conversation, nothing else.
const REMEMBERED: usize = 65_536;

/// Conversation kinds seen lately, shared by every caller of one service.
#[derive(Debug, Default)]
pub(crate) struct KnownKinds {
    kinds: Mutex<HashMap<ConversationId, ConversationKind>>,
}

impl KnownKinds {
    /// The kind of `conversation`, if it was seen lately.
    pub(crate) fn get(&self, conversation: ConversationId) -> Option<ConversationKind> {
        self.lock().get(&conversation).copied()
    }

    /// Remembers that `conversation` is of `kind`.
    pub(crate) fn remember(&self, conversation: ConversationId, kind: ConversationKind) {
        let mut kinds = self.lock();
        if kinds.len() >= REMEMBERED && !kinds.contains_key(&conversation) {
            kinds.clear();
        }
        kinds.insert(conversation, kind);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, ConversationKind>> {
        // The map holds plain copies; one left half-updated by a panic is still valid.
        self.kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_kinds_and_starts_over_when_full() {
        let known = KnownKinds::default();
        let first = ConversationId::generate();
        assert_eq!(known.get(first), None);
        known.remember(first, ConversationKind::Group);
        assert_eq!(known.get(first), Some(ConversationKind::Group));
        for _ in 1..REMEMBERED {
            known.remember(ConversationId::generate(), ConversationKind::Direct);
        }
        assert_eq!(known.get(first), Some(ConversationKind::Group));
        let last = ConversationId::generate();
        known.remember(last, ConversationKind::Direct);
        assert_eq!(known.get(first), None, "a full memory starts over");
        assert_eq!(known.get(last), Some(ConversationKind::Direct));
    }
}
