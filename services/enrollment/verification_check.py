"""Is the caller verified at identity already? Asked when enrollment has not heard so yet.

enrollment learns of a verification from identity.events (UserVerified); while the broker is slow or
away, a person who has just verified would be told 422 `not_verified`, which is not true (issue 10,
"Resilience bugs"). So before refusing, enrollment asks identity with the caller's own token
(`GET /v1/users/{user_id}`, an applicant token's audience includes identity) and, when identity says
verified, answers 503 `verification_pending` with Retry-After: the truth, and an answer to retry."""

from uuid import UUID

import httpx

from kernel.logging import get_logger
from kernel.problems import Problem

log = get_logger(__name__)

# The fact travels identity → Kafka → enrollment in well under a second when the broker is up
# (docs/benchmarks.md): a phone that asks again after one second mostly finds it there.
RETRY_AFTER_SECONDS = 1


class VerificationCheck:
    def __init__(self, identity_url: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(base_url=identity_url, transport=transport, timeout=3.0)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def verified_at_identity(self, user_id: UUID, authorization: str | None) -> bool:
        """True only when identity answers that this account is verified; anything else (no token,
        identity unreachable, not verified) is False, and the caller's refusal stands."""
        if not authorization:
            return False
        try:
            answer = await self._client.get(f"/v1/users/{user_id}", headers={"Authorization": authorization})
        except httpx.HTTPError as exc:
            log.info("verification_check_unavailable", error=type(exc).__name__)
            return False
        return answer.status_code == 200 and answer.json().get("verified") is True


def pending() -> Problem:
    return Problem(
        "verification_pending",
        "您的实名认证已完成，认证结果正在同步中，请稍等几秒后重试。",
        503,
        retry_after=RETRY_AFTER_SECONDS,
    )
