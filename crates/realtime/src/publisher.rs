use std::sync::Arc;

use async_trait::async_trait;
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

#[async_trait]
impl EventPublisher for InProcessPublisher {
    async fn publish(&self, event: Event) {
        crate::deliver(&self.hub, &event);
    }
}
