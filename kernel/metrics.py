"""Prometheus metrics shared by the kernel's moving parts; services add their own."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter("flexenroll_relay_events_published_total", "Events the relay published", ["service"])
RELAY_BATCH_SECONDS = Histogram(
    "flexenroll_relay_batch_seconds", "Time to publish one relay batch", ["service"], buckets=(0.005, 0.02, 0.1, 0.5, 2)
)
OUTBOX_BACKLOG = Gauge("flexenroll_outbox_backlog", "Events stored but not yet published", ["service"])
MESSAGES_HANDLED = Counter(
    "flexenroll_consumer_messages_total", "Messages a consumer group took", ["consumer", "outcome"]
)
DEAD_LETTERS = Counter("flexenroll_dead_letters_total", "Messages sent to a dead-letter topic", ["consumer"])
