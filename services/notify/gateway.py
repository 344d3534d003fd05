"""SMS gateways behind one protocol, chosen by NOTIFY_GATEWAY: `local` (default) writes to the
`sms_sink` table; `aliyun` calls Aliyun SMS (services.notify.aliyun). `SmsChannel` presents
either as kernel.effects' gateway of `OutgoingSms`.

Like a real provider, a gateway does NOT de-duplicate: sending the same out-id twice delivers
two messages. Exactly-once is kernel.effects' job (record first, look up after doubt)."""

from collections.abc import Mapping
from datetime import date, datetime
from typing import Protocol

import asyncpg

from kernel.effects import SendResult
from services.notify.domain import OutgoingSms, lookup_dates
from services.notify.settings import NotifySettings
from services.notify.templates import Templates


class SmsGateway(Protocol):
    name: str

    async def send(self, phone: str, template: str, params: Mapping[str, str], out_id: str) -> SendResult:
        """Hand one message to the provider. Raises (or times out) when the outcome is unknown."""
        ...

    async def lookup(self, phone: str, out_id: str, sent_on: date) -> SendResult | None:
        """Did a message with this out-id reach the provider on that (Shanghai) day? None: no.
        Raises when the provider cannot say."""
        ...


class SmsChannel:
    """An SMS gateway as kernel.effects sees it: one message in, and a lookup over every Shanghai
    day of the earlier attempts (SMS providers keep their records by day)."""

    def __init__(self, gateway: SmsGateway) -> None:
        self.gateway = gateway

    @property
    def name(self) -> str:
        return self.gateway.name

    async def send(self, effect: OutgoingSms) -> SendResult:
        return await self.gateway.send(effect.phone, effect.template, effect.params, effect.out_id)

    async def lookup(self, effect: OutgoingSms, since: datetime, until: datetime) -> SendResult | None:
        for day in lookup_dates(since, until):
            found = await self.gateway.lookup(effect.phone, effect.out_id, day)
            if found is not None:
                return found
        return None


class LocalSinkGateway:
    """For development and tests: the "provider" is a table that operators read at /v1/sms/sink.

    It renders the text itself, as Aliyun does from template code and parameters, and keeps
    every send (duplicates too) so that tests can count messages per out-id."""

    name = "local_sink"

    def __init__(self, pool: asyncpg.Pool, templates: Templates) -> None:
        self.pool = pool
        self.templates = templates

    async def send(self, phone: str, template: str, params: Mapping[str, str], out_id: str) -> SendResult:
        text = self.templates.render(template, params)
        sink_id = await self.pool.fetchval(
            "INSERT INTO sms_sink (out_id, phone, template, params, text) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            out_id,
            phone,
            template,
            dict(params),
            text,
        )
        return SendResult.accepted(f"local-{sink_id}")

    async def lookup(self, phone: str, out_id: str, sent_on: date) -> SendResult | None:
        sink_id = await self.pool.fetchval(
            "SELECT id FROM sms_sink WHERE out_id = $1 AND phone = $2 "
            "AND (received_at AT TIME ZONE 'Asia/Shanghai')::date = $3 ORDER BY id LIMIT 1",
            out_id,
            phone,
            sent_on,
        )
        return None if sink_id is None else SendResult.accepted(f"local-{sink_id}")


def load_gateway(settings: NotifySettings, templates: Templates, pool: asyncpg.Pool) -> SmsGateway:
    if settings.notify_gateway == "aliyun":
        from services.notify.aliyun import AliyunSmsGateway  # the SDK is an optional extra

        return AliyunSmsGateway.from_settings(settings, templates)
    return LocalSinkGateway(pool, templates)
