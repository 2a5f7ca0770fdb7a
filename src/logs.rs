//! What `culao up` logs: culao's own lines, and of the embedded broker's (rumqttd) only the
//! ones an operator acts on.
//!
//! rumqttd logs every normal disconnect at error level, and a refused login twice (culao's
//! own line names the cause). [`QuietBroker`] drops those known lines and keeps the rest of
//! rumqttd's warnings and errors: a client held to its topics (`BadTenant`, `Invalid filter
//! prefix`), a TLS handshake refused (a device without its certificate), anything unknown.
//! With `CULAO_LOG` set the operator gets exactly what it names, unfiltered.

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

const DEFAULT_FILTER: &str = "info,iroh=warn,noq=warn,noq_proto=warn,sled=warn,rumqttd=warn";

/// rumqttd lines that say nothing an operator can act on.
const BROKER_NOISE: &[&str] = &[
    "no-connection id",
    "router-drop",
    "connection-stop",
    "disconnected",
    // The refusal is logged by culao with its cause (`mqtt::login`).
    "Error while handling MQTT connect packet",
];

/// Logs to stderr: `CULAO_LOG` if set, otherwise the default filter without broker noise.
pub fn init() {
    let (filter, quiet) = match EnvFilter::try_from_env("CULAO_LOG") {
        Ok(filter) => (filter, None),
        Err(_) => (EnvFilter::new(DEFAULT_FILTER), Some(QuietBroker)),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(quiet)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();
}

/// Drops rumqttd's [`BROKER_NOISE`] lines.
pub struct QuietBroker;

impl<S: Subscriber> Layer<S> for QuietBroker {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        if !event.metadata().target().starts_with("rumqttd") {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        !BROKER_NOISE.iter().any(|noise| message.0.contains(noise))
    }
}

/// An event's `message` field, as text.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Keeps the message of every event that reaches it.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Seen {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut message = Message::default();
            event.record(&mut message);
            self.0.lock().unwrap().push(message.0);
        }
    }

    #[test]
    fn broker_noise_is_dropped_and_what_an_operator_needs_is_kept() {
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry()
            .with(QuietBroker)
            .with(seen.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "rumqttd::server::broker", error = "Recv", "router-drop");
            tracing::error!(target: "rumqttd::router::routing", "no-connection id 3 is already gone");
            tracing::error!(target: "rumqttd::router::routing", reason = "BadTenant", "Failed to append to commitlog");
            tracing::error!(target: "rumqttd::server::broker", "Tls accept error");
            tracing::warn!(target: "culao_node::mqtt::login", "MQTT login refused");
            tracing::error!(target: "culao_node::core", "disconnected");
        });
        let seen = seen.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                "Failed to append to commitlog",
                "Tls accept error",
                "MQTT login refused",
                "disconnected"
            ]
        );
    }
}
