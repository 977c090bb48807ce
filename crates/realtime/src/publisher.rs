use std::sync::Arc;

use async_trait::async_trait;
use bytestring::ByteString;
use confab_api::ws::ServerFrame;
use confab_app::Event;
use confab_app::ports::EventPublisher;

use crate::Hub;

/// Delivers events to the sockets of this instance: the whole fan-out of a single-instance
/// deployment, and the local half of a multi-instance one.
#[derive(Debug, Clone)]
pub struct InProcessPublisher {
    hub: Arc<Hub>,
}

impl InProcessPublisher {
    /// A publisher delivering through `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

/// The frame clients receive for an event.
fn frame_for(event: &Event) -> ServerFrame {
    match event {
        Event::MessageCreated { message, .. } => ServerFrame::MessageNew {
            message: message.into(),
        },
    }
}

#[async_trait]
impl EventPublisher for InProcessPublisher {
    async fn publish(&self, event: Event) {
        // Serialized once; every socket gets a cheap clone of the same bytes.
        let frame = match serde_json::to_string(&frame_for(&event)) {
            Ok(text) => ByteString::from(text),
            Err(error) => {
                tracing::error!(%error, "could not serialize an event; it is not delivered");
                return;
            }
        };
        self.hub.fan_out(event.recipients(), event.origin(), &frame);
    }
}
