"""One applicant's journey as a fixed list of requests (docs/benchmarks.md, "The journey"), async so
that one process drives many at once. Each function returns what the journey reached, against what
was expected, with its timings; it never raises for a failed step (the chaos harness counts them).

Times are seconds on the monotonic clock from the journey's INTENDED start (tests/load/generator.py):
a slow system cannot hide its queue behind a late start."""

import asyncio
import json
import random
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx

from services.payment.channels.hmac_json import sign
from tests.load.http import StepFailed, poll
from tests.load.phone import Account, Clock, JourneyResult, Phone, new_account, phone_client

# What a journey returns lives with the phone; named here too, where its users first looked for it.
__all__ = ["Account", "JourneyResult", "account_journey", "application_journey", "counter_payment", "pipeline"]
from tests.load.stack import DATABASE_AWAY, PASSWORD, Stack
from tests.support import documents

CHOICES = {
    "pension_tier": 3,
    "medical_tier": 5,
    "household_kind": "changzhou",
    "household_region_code": "320402",
    "residence_district_code": "320411",
}
DOCUMENTS = (
    ("id_card_front", "front.png", documents.png),
    ("id_card_back", "back.jpg", documents.jpeg),
    ("hukou_first_page", "hukou1.pdf", documents.pdf),
    ("hukou_own_page", "hukou2.jpg", documents.jpeg),
)


async def register(phone: Phone) -> None:
    """SMS one-time code → read on the phone → register → log in → real-name verification."""
    identity, account = phone.stack.urls["identity"], phone.account
    assert phone.stack.codes is not None
    # 429 too_many_attempts: this phone asked already, an answer lost to a fault; the code is on its way.
    asked = {"phone": account.phone, "purpose": "register"}
    await phone.call("POST", f"{identity}/v1/phone-codes", {202}, ("too_many_attempts",), json=asked)
    code = await phone.stack.codes.code(account.phone, phone.stack.policy)
    phone.reach("code_texted")
    body = {"phone": account.phone, "password": PASSWORD, "code": code}
    await phone.call("POST", f"{identity}/v1/users", {201}, ("phone_taken",), json=body)
    phone.reach("registered")
    credentials = {"phone": account.phone, "password": PASSWORD}
    session = await phone.call("POST", f"{identity}/v1/sessions", {201}, json=credentials)
    account.user_id = str(session.json()["user_id"])  # also when registering's answer was lost
    account.auth = {"Authorization": f"Bearer {session.json()['access_token']}"}
    phone.reach("logged_in")
    person = {"name": account.name, "id_number": account.id_number}
    await phone.mine(
        "POST", f"{identity}/v1/users/{account.user_id}/verification", {201}, ("already_verified",), json=person
    )
    phone.reach("verified")


async def apply(phone: Phone) -> str:
    """Notice → apply (503 verification_pending retried: the fact travels through Kafka) → 4
    documents → submit; the application's id."""
    enrollment = phone.stack.urls["enrollment"]
    notice = await phone.call("GET", f"{enrollment}/v1/notice", {200})
    body = {"notice_version": notice.json()["version"], **CHOICES}

    async def created() -> httpx.Response | None:
        try:
            return await phone.mine("POST", f"{enrollment}/v1/applications", {201}, json=body)
        except StepFailed as exc:  # verified at identity, not yet known to enrollment: ask again
            if "verification_pending" not in str(exc):
                raise
            return None

    answer = await poll(created, "enrollment to know the verified person", phone.stack.policy)
    application = f"{enrollment}/v1/applications/{answer.json()['application_id']}"
    phone.reach("applied")
    for kind, filename, content in DOCUMENTS:
        files = {"file": (filename, content(), "application/octet-stream")}
        await phone.mine("PUT", f"{application}/documents/{kind}", {200, 201}, files=files)
    phone.reach("uploaded")
    phone.mark("submit_sent")
    await phone.mine("POST", f"{application}/submit", {200, 201, 202}, ("already_submitted",))
    phone.reach("submitted")
    return application


async def status_is(phone: Phone, application: str, status: str) -> dict[str, Any]:
    async def shown() -> dict[str, Any] | None:
        view: dict[str, Any] = (await phone.mine("GET", application, {200})).json()
        return view if view["status"] == status else None

    return await poll(shown, f"status {status}", phone.stack.policy)


async def review(phone: Phone, application: str) -> datetime:
    """under_review visible → the reviewer approves its case → approved visible; when the decision was sent."""
    view = await status_is(phone, application, "under_review")
    phone.reach("under_review")
    url = f"{phone.stack.urls['review']}/v1/cases/{view['case_id']}/decision"
    phone.mark("decision_sent")
    decided = datetime.now(UTC)
    approval = {"decision": "approved"}
    await phone.call("POST", url, {201}, ("already_decided",), json=approval, headers=phone.stack.reviewer)
    await status_is(phone, application, "approved")
    phone.reach("approved")
    return decided


async def decision_texted(phone: Phone) -> datetime:
    """The decision's SMS, sent (notify's log, as an operator reads it); when notify sent it."""
    url, params = f"{phone.stack.urls['notify']}/v1/sms", {"recipient_id": phone.account.user_id}

    async def sent() -> datetime | None:
        page = await phone.call("GET", url, {200}, params=params, headers=phone.stack.operator)
        mine = [m for m in page.json()["items"] if m["template"] == "review_approved" and m["state"] == "sent"]
        return datetime.fromisoformat(mine[0]["sent_at"]) if mine else None

    return await poll(sent, "the decision's SMS", phone.stack.policy)


async def first_bill(phone: Phone) -> dict[str, Any]:
    """The person's first bill: the account opens through Kafka, then the operator bills it."""
    url = f"{phone.stack.urls['payment']}/v1/insured/{phone.account.user_id}/bills"
    biller = phone.stack.biller
    assert biller is not None

    async def billed() -> dict[str, Any] | None:
        answer = await phone.mine("GET", url, {200, 404})
        if answer.status_code == 404:
            return None  # no account yet
        bills: list[dict[str, Any]] = answer.json()["bills"]
        if not bills:
            try:
                await biller.bill(phone.account.user_id)
            except DATABASE_AWAY as exc:  # ask again
                phone.result.last_fault = f"billing: {type(exc).__name__}"
        return bills[0] if bills else None

    return await poll(billed, "the first bill", phone.stack.policy)


def counter_payment(secret: str, bill: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """A bank counter's signed notification that `bill` was paid (services/payment/channels/README.md)."""
    body = json.dumps(
        {"transaction_id": f"LOAD{uuid4().hex[:20]}", "out_trade_no": bill["bill_id"], "amount_fen": bill["amount_fen"],
         "paid_at": datetime.now(UTC).replace(microsecond=0).isoformat(), "bank_code": "ICBC"}
    ).encode()  # fmt: skip
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Flexenroll-Timestamp": timestamp,
               "X-Flexenroll-Signature": sign(secret, timestamp, body)}  # fmt: skip
    return headers, body


async def pay(phone: Phone, application: str) -> None:
    bill = await first_bill(phone)
    phone.reach("billed")
    headers, body = counter_payment(phone.stack.counter_secret, bill)
    phone.mark("payment_sent")
    url = f"{phone.stack.urls['payment']}/v1/channels/bank_counter/notifications"
    await phone.call("POST", url, {200, 204}, headers=headers, content=body)
    await status_is(phone, application, "active")
    phone.reach("active")


async def pipeline(phone: Phone) -> None:
    application = await apply(phone)
    decided = await review(phone, application)
    sent_at = await decision_texted(phone)
    phone.result.sms_after_decision = (sent_at - decided).total_seconds()
    phone.reach("sms_sent")
    await pay(phone, application)


async def guarded(result: JourneyResult, clock: Clock, steps: Coroutine[Any, Any, None]) -> JourneyResult:
    """Runs `steps`, recording a failure (or the run's cancellation) instead of raising it; `end`
    is when it stopped."""
    try:
        await steps
    except Exception as exc:  # whatever stopped it is reported, never raised: the run counts every journey
        result.error = f"{type(exc).__name__}: {exc}"[:500]
    except asyncio.CancelledError:  # the run's time is up: the generator wants what was reached
        result.error = "cancelled: the run's time was up"
    result.marks["end"] = clock.now()
    return result


async def account_journey(stack: Stack, index: int, intended: float, rng: random.Random) -> JourneyResult:
    """A new account: code → register → log in → verify (the password-hashing phase)."""
    account = new_account(rng)
    result = JourneyResult(index, expected="verified", account=account)
    async with phone_client(account, result, stack.balancer) as http:
        phone = Phone(stack, http, account, result, Clock(intended))
        return await guarded(result, phone.clock, register(phone))


async def application_journey(
    stack: Stack, index: int, intended: float, rng: random.Random, account: Account | None = None
) -> JourneyResult:
    """The application pipeline for `account` (created ahead), or the whole journey without one."""
    ahead = account is not None
    account = account or new_account(rng)
    result = JourneyResult(index, expected="active", account=account, reached="verified" if ahead else "started")

    async def steps(phone: Phone) -> None:
        if not ahead:
            await register(phone)
        await pipeline(phone)

    async with phone_client(account, result, stack.balancer) as http:
        phone = Phone(stack, http, account, result, Clock(intended))
        return await guarded(result, phone.clock, steps(phone))
