"""The shared kernel every service stands on: settings, logging, problems, event store, outbox
relay, idempotent consumer, auth and the HTTP shell. It knows no service's domain."""
