"""notify's Prometheus metrics (served with the kernel's on the metrics port, kernel.server)."""

from prometheus_client import Counter, Gauge

from kernel.effects import Claim, LookupOutcome, Next, Observer
from services.notify.domain import OutgoingSms

SMS_SENT = Counter("flexenroll_sms_sent_total", "Text messages the gateway accepted", ["provider"])
SMS_FAILED = Counter("flexenroll_sms_failed_total", "Text messages given up", ["provider", "error_code"])
SMS_PENDING = Gauge("flexenroll_sms_pending", "Text messages not yet sent or given up, by state", ["state"])
SMS_LOOKUPS = Counter("flexenroll_sms_lookups_total", "Provider look-ups after an uncertain outcome", ["outcome"])
SMS_SKIPPED = Counter("flexenroll_sms_skipped_total", "Text messages recorded but deliberately not sent", ["reason"])


class SmsMetrics(Observer[OutgoingSms]):
    """The sender's counters, fed by kernel.effects' dispatcher (after each commit)."""

    def looked_up(self, claim: Claim[OutgoingSms], outcome: LookupOutcome) -> None:
        SMS_LOOKUPS.labels(outcome).inc()

    def recorded(self, claim: Claim[OutgoingSms], outcome: Next, provider: str) -> None:
        if outcome.state == "sent":
            SMS_SENT.labels(provider).inc()
        elif outcome.state == "failed":
            SMS_FAILED.labels(provider, outcome.error_code or "unknown_error").inc()
