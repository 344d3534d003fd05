"""Separation of duties: nobody decides the case of a person with their own ID number (403
own_case, services/review/README.md, "Own cases").

review never holds ID numbers in a comparable form, and identity holds both sides as the same
keyed hash (the applicant's ID-number binding, the staff member's linked ID number). So before a
decision review asks identity, with the deciding reviewer's own token, "is this applicant me?"
(`GET /v1/staff/me/same-person/{applicant_id}`). When identity cannot answer, no decision is
made (503 identity_unavailable): the check fails closed.
"""

import asyncio
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


class IdentitySamePerson:
    """Asks identity at IDENTITY_URL (a SamePerson), over one client for the process: building an
    httpx client loads the CA bundle into an SSL context, about 30 ms of CPU, which a client per
    decision paid every time (issue 10, item 5). The client is opened on first use, on the loop
    that uses it, and `aclose` closes it (the runtime stopping); the next use opens a new one."""

    def __init__(self, identity_url: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._url = identity_url
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _open(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        # A client's connections belong to the loop that opened them (tests run several loops).
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(base_url=self._url, transport=self._transport, timeout=5.0)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __call__(self, token: str, applicant_id: UUID) -> bool | None:
        try:
            answer = await self._open().get(
                f"/v1/staff/me/same-person/{applicant_id}", headers={"Authorization": f"Bearer {token}"}
            )
            answer.raise_for_status()
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("same_person_check_failed", error=type(exc).__name__)
            raise IdentityUnavailable("identity_unavailable", "暂时无法核对审核人员身份，请稍后再试。") from exc
        return bool(body["same_person"]) if body.get("linked") else None


def identity_same_person(identity_url: str, transport: httpx.AsyncBaseTransport | None = None) -> IdentitySamePerson:
    """Ask identity at IDENTITY_URL."""
    return IdentitySamePerson(identity_url, transport)


async def refuse_own_case(same_person: SamePerson, token: str, applicant_id: UUID) -> None:
    same = await same_person(token, applicant_id)
    if same is None:
        raise Forbidden(
            "staff_identity_not_linked", "您的工作人员账户尚未关联身份证号码，不能作出审核决定，请联系管理员。"
        )
    if same:
        raise Forbidden("own_case", "不能审核本人的申报（申请人与您是同一人）。")
