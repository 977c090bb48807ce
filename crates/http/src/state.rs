use std::sync::Arc;

use confab_app::Services;
use confab_app::ports::Probe;
use confab_realtime::{Hub, SocketConfig};

/// What every request handler can reach.
#[derive(Clone)]
pub struct HttpState {
    /// The use cases.
    pub services: Services,
    /// This instance's sockets.
    pub hub: Arc<Hub>,
    /// Limits of each socket.
    pub socket: SocketConfig,
    /// Dependencies checked by `/readyz`.
    pub probes: Vec<Arc<dyn Probe>>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}
