"""enrollment's Prometheus metrics (served at /metrics with the kernel's)."""

from prometheus_client import Counter

SUBMISSIONS = Counter("flexenroll_enrollment_submissions_total", "Applications submitted for review (提交申报)")
REFUSALS = Counter(
    "flexenroll_enrollment_refusals_total",
    "Requests refused by a business rule, by action and code",
    ["action", "code"],
)
APPLICATIONS_OPENED = Counter("flexenroll_enrollment_applications_opened_total", "Applications opened")
