//! What the board's test binaries share.

use std::sync::OnceLock;
use std::time::Duration;

/// A plain HTTP client that sees redirects instead of following them and takes every status
/// as a response (the tests check statuses themselves).
pub fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(30)))
                .proxy(None)
                .build(),
        )
    })
}
