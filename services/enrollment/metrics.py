"""enrollment's Prometheus metrics (served with the kernel's on the metrics port, kernel.server)."""

from prometheus_client import Counter

SUBMISSIONS = Counter("flexenroll_enrollment_submissions_total", "Applications submitted for review (提交申报)")
REFUSALS = Counter(
    "flexenroll_enrollment_refusals_total",
    "Requests refused by a business rule, by action and code",
    ["action", "code"],
)
APPLICATIONS_OPENED = Counter("flexenroll_enrollment_applications_opened_total", "Applications opened")
