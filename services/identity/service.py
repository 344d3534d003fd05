"""identity's service layer: loads aggregates, asks the domain, stores events and lookups in
one transaction. The outbox relay publishes the events afterwards."""

import asyncio
from datetime import UTC, datetime
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from contracts.events.identity import UserVerified
from kernel.auth import Principal, Role
from kernel.eventstore import EventStore
from kernel.problems import Conflict, NotFound, Refused, Unauthorized
from services.identity import domain
from services.identity.verification import VerificationProvider

SHANGHAI = ZoneInfo("Asia/Shanghai")


def stream_id(user_id: UUID) -> str:
    return f"user-{user_id}"


class IdentityService:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, provider: VerificationProvider) -> None:
        self.pool = pool
        self.store = store
        self.provider = provider
        self.hasher = PasswordHasher()
        self._dummy_hash = self.hasher.hash("not-a-real-password-1")

    async def register(
        self, phone: str, password: str, role: Role, correlation_id: str, agency_code: str | None = None
    ) -> UUID:
        """A new account; `agency_code` binds a reviewer to one accepting agency (staff only, via
        flexctl). The agency stays in `credentials`: it is no fact of the public UserRegistered."""
        e164 = domain.normalize_mainland_mobile(phone)
        domain.check_password(password)
        agency = domain.check_staff_agency(role, agency_code)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        user_id = uuid4()
        event = domain.register(user_id, e164, role, datetime.now(UTC))
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    "INSERT INTO credentials (user_id, phone, password_hash, role, agency_code) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    user_id,
                    e164,
                    password_hash,
                    role,
                    agency,
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict("phone_taken", "该手机号码已注册，请直接登录。") from exc
            await self.store.append(conn, stream_id(user_id), 0, [event], correlation_id=correlation_id)
        return user_id

    async def login(self, phone: str, password: str) -> Principal:
        refused = Unauthorized("invalid_credentials", "手机号码或密码不正确。")
        try:
            e164 = domain.normalize_mainland_mobile(phone)
        except Refused as exc:
            raise refused from exc
        row = await self.pool.fetchrow(
            "SELECT user_id, password_hash, role, agency_code FROM credentials WHERE phone = $1", e164
        )
        # Hash even for an unknown phone so that timing does not tell which phones exist.
        stored = row["password_hash"] if row else self._dummy_hash
        try:
            await asyncio.to_thread(self.hasher.verify, stored, password)
        except VerificationError as exc:
            raise refused from exc
        if row is None:
            raise refused
        return Principal(user_id=row["user_id"], role=row["role"], agency_code=row["agency_code"])

    async def account(self, user_id: UUID) -> domain.Account:
        account = domain.replay(await self.store.load(self.pool, stream_id(user_id)))
        if account is None:
            raise NotFound("user_not_found", "未找到该用户。")
        return account

    async def verify(self, user_id: UUID, name: str, id_number: str, correlation_id: str) -> UserVerified:
        account = await self.account(user_id)
        now = datetime.now(UTC)
        event, resident = domain.verify(
            account, name, id_number, self.provider.name, now, now.astimezone(SHANGHAI).date()
        )
        outcome = await self.provider.verify(event.name, resident, account.phone)
        if not outcome.passed:
            raise Refused(outcome.reason_code or "verification_failed", outcome.reason or "实名认证未通过。")
        async with self.pool.acquire() as conn, conn.transaction():
            bound = await conn.fetchval(
                "INSERT INTO id_bindings (id_number, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING user_id",
                resident.number,
                user_id,
            )
            if bound is None:  # the number or this account is bound already: tell which
                if await conn.fetchval("SELECT 1 FROM id_bindings WHERE user_id = $1", user_id):
                    raise Conflict("already_verified", "该账户已完成实名认证，无需重复认证。")
                raise Conflict("id_number_taken", "该身份证号码已绑定其他账户，如有疑问请致电12333。")
            await self.store.append(conn, stream_id(user_id), account.version, [event], correlation_id=correlation_id)
        return event
