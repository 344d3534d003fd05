"""The banks' collection gateway, behind kernel.effects' `Gateway`: one collection request out per
`collection_requests` row, exactly once (kernel/effects.py: claimed and committed before the call,
looked up after doubt). Chosen by PAYMENT_BANK_GATEWAY:

- `local` (default, development and tests): the "bank" is the table `bank_collection_sink`, which
  keeps every request it is sent (duplicates too, so tests can count them per request id), like
  notify's SMS sink. Nothing is collected: the bank's answer is a signed `bank_withholding`
  notification, which tests and `flexctl` simulators post like a bank would.
- `http`: our collection protocol to the bank's gateway (services/payment/channels/README.md,
  "Collection requests"), signed with PAYMENT_BANK_GATEWAY_SECRET in the HMAC format the banks
  already use towards us.

Like a real bank, a gateway does NOT de-duplicate: exactly-once is kernel.effects' job.
"""

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg
import httpx

from kernel.effects import Policy, SendResult
from services.payment.channels.hmac_json import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from services.payment.settings import PaymentSettings


@dataclass(frozen=True)
class CollectionOrder:
    """A collection request as the bank receives it (kernel.effects' effect for payment)."""

    collection_request_id: UUID
    bill_id: UUID
    period: str
    agreement_no: str
    bank_code: str
    amount_fen: int

    def __post_init__(self) -> None:
        if type(self.amount_fen) is not int or self.amount_fen <= 0:
            raise TypeError("amount_fen must be a positive int")

    def body(self) -> dict[str, object]:
        """The request's fields, as documented for the banks; `out_trade_no` is the bill, which the
        bank's result notification names again."""
        return {
            "collection_request_id": str(self.collection_request_id),
            "out_trade_no": str(self.bill_id),
            "period": self.period,
            "agreement_no": self.agreement_no,
            "bank_code": self.bank_code,
            "amount_fen": self.amount_fen,
        }


def order_of(row: asyncpg.Record) -> CollectionOrder:
    return CollectionOrder(
        collection_request_id=row["collection_request_id"],
        bill_id=row["bill_id"],
        period=row["period"],
        agreement_no=row["agreement_no"],
        bank_code=row["bank_code"],
        amount_fen=row["amount_fen"],
    )


class BankGateway(Protocol):
    @property
    def name(self) -> str: ...

    async def send(self, effect: CollectionOrder) -> SendResult: ...

    async def lookup(self, effect: CollectionOrder, since: datetime, until: datetime) -> SendResult | None: ...


class LocalBankSink:
    """For development and tests: the bank is a table; every request is accepted."""

    name = "local_bank_sink"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def send(self, effect: CollectionOrder) -> SendResult:
        sink_id = await self.pool.fetchval(
            "INSERT INTO bank_collection_sink (collection_request_id, bill_id, agreement_no, bank_code, amount_fen) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING id",
            effect.collection_request_id,
            effect.bill_id,
            effect.agreement_no,
            effect.bank_code,
            effect.amount_fen,
        )
        return SendResult.accepted(f"local-{sink_id}")

    async def lookup(self, effect: CollectionOrder, since: datetime, until: datetime) -> SendResult | None:
        sink_id = await self.pool.fetchval(
            "SELECT min(id) FROM bank_collection_sink WHERE collection_request_id = $1", effect.collection_request_id
        )
        return None if sink_id is None else SendResult.accepted(f"local-{sink_id}")


class HttpBankGateway:
    """Our collection protocol over HTTPS: `POST {url}/collections` to ask, `GET
    {url}/collections/{collection_request_id}` to find an earlier request after doubt.

    Answers: 200/201/202 `{"reference": ...}` accepted; 404 on the lookup: never received; 409 on
    the send: the bank holds that request already (accepted, its reference); another 4xx
    `{"code": ...}`: refused for good (the code, e.g. agreement_not_found, becomes the failure's
    reason); 5xx and 429: refused for now, retried. Anything else raises (outcome unknown)."""

    name = "bank_http"

    def __init__(self, base_url: str, secret: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._secret = secret
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), transport=transport, timeout=10.0)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _signed(self, body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        return {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }

    async def send(self, effect: CollectionOrder) -> SendResult:
        body = json.dumps(effect.body(), ensure_ascii=False).encode("utf-8")
        response = await self._client.post("/collections", content=body, headers=self._signed(body))
        return _answer(response, accepted=(200, 201, 202, 409))

    async def lookup(self, effect: CollectionOrder, since: datetime, until: datetime) -> SendResult | None:
        response = await self._client.get(f"/collections/{effect.collection_request_id}", headers=self._signed(b""))
        if response.status_code == 404:
            return None
        return _answer(response, accepted=(200,))


def _answer(response: httpx.Response, accepted: tuple[int, ...]) -> SendResult:
    status = response.status_code
    if status in accepted:
        return SendResult.accepted(_field(response, "reference"))
    if status == 429 or 500 <= status < 600:
        return SendResult.refused(f"bank_http_{status}", retryable=True)
    if 400 <= status < 500:
        return SendResult.refused(_field(response, "code") or f"bank_http_{status}", retryable=False)
    raise RuntimeError(f"the bank gateway answered {status}: outcome unknown")


def _field(response: httpx.Response, name: str) -> str | None:
    try:
        value = response.json().get(name)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None


def load_bank_gateway(settings: PaymentSettings, pool: asyncpg.Pool) -> LocalBankSink | HttpBankGateway:
    if settings.payment_bank_gateway == "http":
        return HttpBankGateway(
            settings.payment_bank_gateway_url, settings.payment_bank_gateway_secret.get_secret_value()
        )
    return LocalBankSink(pool)


def collection_policy(settings: PaymentSettings) -> Policy:
    return Policy(
        batch=20,
        poll_seconds=settings.payment_collector_poll_seconds,
        max_attempts=settings.payment_collection_max_attempts,
        backoff_seconds=settings.payment_collection_backoff_seconds,
        call_timeout_seconds=settings.payment_collection_timeout_seconds,
        lease_seconds=settings.payment_collection_lease_seconds,
    )
