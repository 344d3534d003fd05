"""identity's service layer: loads aggregates, asks the domain, stores events and lookups in
one transaction. The outbox relay publishes the events afterwards."""

import asyncio
from datetime import UTC, datetime
from uuid import UUID, uuid4

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from contracts.events.identity import UserVerified
from contracts.reference import DistrictDirectory
from kernel.auth import Principal, Role
from kernel.clock import local_date
from kernel.problems import Conflict, NotFound, Refused, Unauthorized
from kernel.runtime import ServiceLayer, Storage
from services.identity import domain, projections
from services.identity.verification import VerificationProvider


class IdentityService(ServiceLayer):
    def __init__(self, storage: Storage, provider: VerificationProvider, directory: DistrictDirectory) -> None:
        super().__init__(storage)
        self.provider = provider
        self.directory = directory
        self.hasher = PasswordHasher()
        self._dummy_hash = self.hasher.hash("not-a-real-password-1")

    async def register(
        self, phone: str, password: str, role: Role, correlation_id: str, agency_code: str | None = None
    ) -> UUID:
        """A new account; `agency_code` binds a reviewer to one accepting agency (staff only, via
        flexctl). The agency stays in `credentials`: it is no fact of the public UserRegistered."""
        e164 = domain.normalize_mainland_mobile(phone)
        domain.check_password(password)
        agency = domain.check_staff_agency(role, agency_code, self.directory)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        user_id = uuid4()
        event = domain.register(user_id, e164, role, datetime.now(UTC))
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await projections.add_credentials(conn, user_id, e164, password_hash, role, agency)
            except projections.PhoneTaken as exc:
                raise Conflict("phone_taken", "该手机号码已注册，请直接登录。") from exc
            await self.store.append(conn, domain.stream_id(user_id), 0, [event], correlation_id=correlation_id)
        return user_id

    async def login(self, phone: str, password: str) -> Principal:
        refused = Unauthorized("invalid_credentials", "手机号码或密码不正确。")
        try:
            e164 = domain.normalize_mainland_mobile(phone)
        except Refused as exc:
            raise refused from exc
        found = await projections.credentials_of(self.pool, e164)
        # Hash even for an unknown phone so that timing does not tell which phones exist.
        stored = found[1] if found else self._dummy_hash
        try:
            await asyncio.to_thread(self.hasher.verify, stored, password)
        except VerificationError as exc:
            raise refused from exc
        if found is None:
            raise refused
        return found[0]

    async def account(self, user_id: UUID) -> domain.Account:
        account = domain.replay(await self.store.load(self.pool, domain.stream_id(user_id)))
        if account is None:
            raise NotFound("user_not_found", "未找到该用户。")
        return account

    async def verify(self, user_id: UUID, name: str, id_number: str, correlation_id: str) -> UserVerified:
        account = await self.account(user_id)
        now = datetime.now(UTC)
        event, resident = domain.verify(account, name, id_number, self.provider.name, now, local_date(now))
        outcome = await self.provider.verify(event.name, resident, account.phone)
        if not outcome.passed:
            raise Refused(outcome.reason_code or "verification_failed", outcome.reason or "实名认证未通过。")
        async with self.pool.acquire() as conn, conn.transaction():
            if not await projections.bind_id_number(conn, resident.number, user_id):
                if await projections.has_binding(conn, user_id):  # tell which of the two is bound
                    raise Conflict("already_verified", "该账户已完成实名认证，无需重复认证。")
                raise Conflict("id_number_taken", "该身份证号码已绑定其他账户，如有疑问请致电12333。")
            await self.store.append(
                conn, domain.stream_id(user_id), account.version, [event], correlation_id=correlation_id
            )
        return event
