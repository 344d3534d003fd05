"""Separation of duties: nobody decides the case of a person with their own ID number (403
own_case, services/review/README.md, "Own cases").

review never holds ID numbers in a comparable form, and identity holds both sides as the same
keyed hash (the applicant's ID-number binding, the staff member's linked ID number). So before a
decision review asks identity, with the deciding reviewer's own token, "is this applicant me?"
(`GET /v1/staff/me/same-person/{applicant_id}`). When identity cannot answer, no decision is
made (503 identity_unavailable): the check fails closed.
"""

from collections.abc import Awaitable, Callable
from uuid import UUID

import httpx

from kernel.logging import get_logger
from kernel.problems import Forbidden, Problem

log = get_logger(__name__)

# (the reviewer's bearer token, the applicant) -> None when the reviewer's account is linked to
# no ID number, else whether the applicant is the reviewer.
SamePerson = Callable[[str, UUID], Awaitable[bool | None]]


class IdentityUnavailable(Problem):
    status = 503


def identity_same_person(identity_url: str, transport: httpx.AsyncBaseTransport | None = None) -> SamePerson:
    """Ask identity at IDENTITY_URL."""

    async def ask(token: str, applicant_id: UUID) -> bool | None:
        try:
            async with httpx.AsyncClient(base_url=identity_url, transport=transport, timeout=5.0) as client:
                answer = await client.get(
                    f"/v1/staff/me/same-person/{applicant_id}", headers={"Authorization": f"Bearer {token}"}
                )
            answer.raise_for_status()
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("same_person_check_failed", error=type(exc).__name__)
            raise IdentityUnavailable("identity_unavailable", "暂时无法核对审核人员身份，请稍后再试。") from exc
        return bool(body["same_person"]) if body.get("linked") else None

    return ask


async def refuse_own_case(same_person: SamePerson, token: str, applicant_id: UUID) -> None:
    same = await same_person(token, applicant_id)
    if same is None:
        raise Forbidden(
            "staff_identity_not_linked", "您的工作人员账户尚未关联身份证号码，不能作出审核决定，请联系管理员。"
        )
    if same:
        raise Forbidden("own_case", "不能审核本人的申报（申请人与您是同一人）。")
