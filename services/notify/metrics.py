"""notify's Prometheus metrics (served at /metrics with the kernel's)."""

from prometheus_client import Counter, Gauge

SMS_SENT = Counter("flexenroll_sms_sent_total", "Text messages the gateway accepted", ["provider"])
SMS_FAILED = Counter("flexenroll_sms_failed_total", "Text messages given up", ["provider", "error_code"])
SMS_PENDING = Gauge("flexenroll_sms_pending", "Text messages not yet sent or given up, by state", ["state"])
SMS_LOOKUPS = Counter("flexenroll_sms_lookups_total", "Provider look-ups after an uncertain outcome", ["outcome"])
SMS_SKIPPED = Counter("flexenroll_sms_skipped_total", "Text messages recorded but deliberately not sent", ["reason"])
