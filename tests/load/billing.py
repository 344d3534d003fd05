"""Monthly bills for the journeys' accounts, as `flexctl payment issue-bills` issues them (the
payment service layer's `bill_account`, each account in a transaction of its own), but for one
account at a time: issue-bills visits every account ever opened, and a run of the CLI costs an
interpreter start, which would weigh more than the journey measured (docs/benchmarks.md, "The
journey"). It works on a thread of its own, so that its CPU is counted apart from the generator's."""

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from kernel.clock import utc_now
from kernel.eventstore import EventStore
from kernel.runtime import OpenStorage
from ops.cli_support import service_pool
from services.payment.app import load_rules
from services.payment.domain import Month, account_id_for
from services.payment.service import PaymentService
from services.payment.settings import PaymentSettings

T = TypeVar("T")
THREAD_NAME = "billing"


class Biller:
    def __init__(self, env: dict[str, str]) -> None:
        # The payment service's own settings, as its process reads them (database, schema, role).
        default = PaymentSettings.model_fields["database_url"].default
        self.settings = PaymentSettings(
            database_url=env.get("DATABASE_URL", default), schema_name=env.get("SCHEMA_NAME", "")
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=THREAD_NAME, daemon=True)
        self.service: PaymentService | None = None
        self.pool: asyncpg.Pool | None = None

    @property
    def native_id(self) -> int | None:
        return self.thread.native_id

    async def _there(self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    async def _connect(self) -> tuple[PaymentService, asyncpg.Pool]:
        pool = await service_pool(self.settings)
        storage = OpenStorage(pool, EventStore(self.settings.service, self.settings.db_schema))
        return PaymentService(storage, load_rules(self.settings)), pool

    async def open(self) -> None:
        self.thread.start()
        self.service, self.pool = await self._there(self._connect())

    async def bill(self, user_id: str) -> int:
        """The person's bills up to this month that are not issued yet; how many were issued now."""
        assert self.service is not None, "Biller.open() first"
        issued = await self._there(self.service.bill_account(account_id_for(UUID(user_id)), Month.at(utc_now())))
        return len(issued)

    async def close(self) -> None:
        if self.pool is not None:
            await self._there(self.pool.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self.thread.join, 5)
