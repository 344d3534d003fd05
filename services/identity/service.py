"""identity's service layer: loads aggregates, asks the domain, stores events and lookups in
one transaction. The outbox relay publishes the events afterwards.

identity holds every person's data key (docs/personal-data.md): it creates it when the account
is registered, seals the person's fields with it, hands it to the reading services over
`GET /v1/person-keys/{user_id}`, and deletes it when the person is erased.
"""

import asyncio
import getpass
import hashlib
import hmac
import socket
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import partial
from uuid import UUID, uuid4

from argon2.exceptions import VerificationError
from stdnum.cn import ric

from contracts.events.identity import UserVerified, VerifiedPersonal
from contracts.reference import DistrictDirectory, load_districts
from kernel import audit, personal, revocation
from kernel.auth import Principal, Role
from kernel.clock import local_date
from kernel.db import Connection
from kernel.logging import get_logger
from kernel.problems import Conflict, NotFound, Refused, Unauthorized
from kernel.runtime import ServiceLayer, Storage
from services.identity import domain, projections
from services.identity.passwords import hasher
from services.identity.settings import IdentitySettings
from services.identity.verification import VerificationProvider, load_provider

log = get_logger(__name__)

_USER_NOT_FOUND = ("user_not_found", "未找到该用户。")
# Real-name verification refused, whatever the cause (provider, a number bound elsewhere).
VERIFICATION_FAILED = (
    "verification_failed",
    "实名认证未通过，请核对姓名和身份证号码是否与本人身份证一致；如有疑问请本人携带身份证到窗口办理或致电12333。",
)


def _name_form(name: str) -> str:
    """A name as compared by the match question: NFC, without surrounding blanks (what
    verification stored is the stripped name as typed)."""
    return unicodedata.normalize("NFC", name.strip())


@dataclass(frozen=True)
class Profile:
    """An account as its holder (or an operator) sees it: masked, with the sealed facts opened."""

    user_id: UUID
    phone_masked: str
    role: Role
    verified: bool
    name: str | None = None
    id_number_masked: str | None = None
    birth_date: date | None = None
    gender: str | None = None


@dataclass(frozen=True)
class Erasure:
    """What `erase` did: which of the person's data it deleted, and whether it had been done before."""

    user_id: UUID
    already_erased: bool
    key_deleted: bool
    login_deleted: bool
    id_binding_deleted: bool


class IdentityService(ServiceLayer):
    def __init__(
        self,
        storage: Storage,
        provider: VerificationProvider,
        directory: DistrictDirectory,
        *,
        id_number_hmac_key: bytes,
    ) -> None:
        super().__init__(storage)
        self.provider = provider
        self.directory = directory
        self._id_number_hmac_key = id_number_hmac_key
        self.hasher = hasher()
        self._dummy_hash = self.hasher.hash("not-a-real-password-1")

    @classmethod
    def from_settings(cls, storage: Storage, settings: IdentitySettings) -> "IdentityService":
        """The service as identity's settings configure it (the app and flexctl build it alike)."""
        return cls(
            storage,
            load_provider(settings.identity_verification_provider, settings.identity_verification_deny_list),
            load_districts(settings.districts_file),  # staff agencies must exist in it
            id_number_hmac_key=settings.identity_id_number_hmac_key.get_secret_value().encode(),
        )

    def id_number_hmac(self, id_number: str) -> bytes:
        """The keyed hash an ID number is bound by (docs/personal-data.md, "In the databases")."""
        return hmac.new(self._id_number_hmac_key, id_number.strip().upper().encode(), hashlib.sha256).digest()

    async def register(
        self, phone: str, password: str, role: Role, correlation_id: str, agency_code: str | None = None
    ) -> UUID:
        """A new account with its data key; `agency_code` binds a reviewer to one accepting agency
        (staff only, via flexctl). The agency stays in `credentials`: it is no fact of the public
        UserRegistered."""
        e164 = domain.normalize_mainland_mobile(phone)
        domain.check_password(password)
        agency = domain.check_staff_agency(role, agency_code, self.directory)
        phone_taken = Conflict("phone_taken", "该手机号码已注册，请直接登录。")
        if await projections.phone_registered(self.pool, e164):
            raise phone_taken
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        user_id = uuid4()
        key = personal.new_data_key()
        event = domain.register(user_id, e164, role, datetime.now(UTC), partial(personal.seal, key, user_id))
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await projections.add_credentials(conn, user_id, e164, password_hash, role, agency)
            except projections.PhoneTaken as exc:
                raise phone_taken from exc
            await projections.add_data_key(conn, user_id, key)
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
        if self.hasher.check_needs_rehash(stored):
            await self._rehash(found[0].user_id, stored, password)
        return found[0]

    async def _rehash(self, user_id: UUID, stored: str, password: str) -> None:
        """Store a hash made with older parameters again with today's (README, "Password hashing").
        Only if it is still the one just verified: a password reset in between must win."""
        fresh = await asyncio.to_thread(self.hasher.hash, password)
        status = await self.pool.execute(
            "UPDATE credentials SET password_hash = $3 WHERE user_id = $1 AND password_hash = $2",
            user_id,
            stored,
            fresh,
        )
        if status.endswith(" 1"):
            log.info("password_rehashed", user_id=str(user_id))

    async def account(self, user_id: UUID) -> domain.Account:
        """The account, unless it never existed or its person was erased (both: user_not_found)."""
        account = domain.replay(await self.store.load(self.pool, domain.stream_id(user_id)))
        if account is None or account.erased:
            raise NotFound(*_USER_NOT_FOUND)
        return account

    async def profile(self, user_id: UUID) -> Profile:
        account = await self.account(user_id)
        v = account.verified
        login = await projections.login_of(self.pool, user_id)  # the role now: `flexctl staff role` changes it
        view = Profile(account.user_id, account.phone_masked, login[0] if login else account.role, v is not None)
        if v is None:
            return view
        key = await projections.data_key(self.pool, user_id)
        if key is None and v.personal.alg != "none":
            return replace(view, id_number_masked=v.id_number_masked, gender=v.gender)
        opened = VerifiedPersonal.model_validate(personal.open_sealed(key, v.personal, owner=user_id))
        return replace(
            view,
            name=opened.name,
            birth_date=opened.birth_date,
            id_number_masked=v.id_number_masked,
            gender=v.gender,
        )

    async def verify(self, user_id: UUID, name: str, id_number: str, correlation_id: str) -> UserVerified:
        account = await self.account(user_id)
        key = await projections.data_key(self.pool, user_id)
        if key is None:  # erased between the two reads
            raise NotFound(*_USER_NOT_FOUND)
        now = datetime.now(UTC)
        seal = partial(personal.seal, key, user_id)
        event, resident, clean_name = domain.verify(
            account, name, id_number, self.provider.name, now, local_date(now), seal
        )
        phone = await projections.phone_of(self.pool, user_id)
        outcome = await self.provider.verify(clean_name, resident, phone or "")
        # One neutral answer for a provider's refusal and for a number bound to another account, so
        # that probing numbers tells nobody whether (or by whom) one is held (issue 9).
        taken = Refused(*VERIFICATION_FAILED)
        if not outcome.passed:
            log.info("verification_refused", user_id=str(user_id), reason=outcome.reason_code or "provider")
            raise taken
        digest = self.id_number_hmac(resident.number)
        already = Conflict("already_verified", "该账户已完成实名认证，无需重复认证。")
        # No code writes the legacy table any more: once a move committed, it stays empty.
        await self.rekey_legacy_bindings()
        async with self.pool.acquire() as conn, conn.transaction():
            holder = await projections.id_number_bound_to(conn, digest)  # looked up before the insert
            if holder is None and not await projections.bind_id_number(conn, digest, user_id):
                holder = await projections.id_number_bound_to(conn, digest)  # the race: bound in between
                if holder is None:  # the account is bound already (to another number)
                    raise already
            if holder == user_id:
                raise already
            if holder is not None:
                raise taken
            await self.store.append(
                conn, domain.stream_id(user_id), account.version, [event], correlation_id=correlation_id
            )
        return event

    async def person_key(self, user_id: UUID) -> bytes:
        """The person's data key, for a reading service (routes check which one asks)."""
        key = await projections.data_key(self.pool, user_id)
        if key is None:
            raise NotFound("person_key_not_found", "未找到该人员的数据密钥：账户不存在，或其个人信息已被删除。")
        return key

    async def match_person(self, id_number: str, name: str) -> UUID:
        """The verified person whose ID number and name these are, for payment's lookup of someone
        to pay for (docs/personal-data.md, "Who gets the key"). Every failure (no such binding,
        erased, not verified, another name) is the one `person_not_found`, so the answer never
        tells a known number from an unknown one."""
        not_found = NotFound("person_not_found", "未找到与该身份证号码和姓名相符的人员。")
        await self.rekey_legacy_bindings()  # as before any binding lookup: a pending move is never missed
        holder = await projections.id_number_bound_to(self.pool, self.id_number_hmac(ric.compact(id_number)))
        key = await projections.data_key(self.pool, holder) if holder is not None else None
        if holder is None or key is None:
            raise not_found
        account = domain.replay(await self.store.load(self.pool, domain.stream_id(holder)))
        if account is None or account.erased or account.verified is None:
            raise not_found
        opened = VerifiedPersonal.model_validate(personal.open_sealed(key, account.verified.personal, owner=holder))
        # Constant time, like the tokens: how much of a name matched is no business of the caller.
        if not hmac.compare_digest(_name_form(opened.name).encode(), _name_form(name).encode()):
            raise not_found
        return holder

    async def erase(self, user_id: UUID, correlation_id: str) -> Erasure:
        """Erase a person (docs/personal-data.md, "Erasure"): in one transaction delete their data
        key, their login and their ID-number binding, and append PersonErased. Erasing twice
        changes nothing; an unknown user is user_not_found."""
        stream = domain.stream_id(user_id)
        await self.rekey_legacy_bindings()  # so that the binding to delete is the keyed one
        async with self.pool.acquire() as conn, conn.transaction():
            account = domain.replay(await self.store.load(conn, stream))
            if account is None:
                raise NotFound(*_USER_NOT_FOUND)
            removed = await projections.erase_person(conn, user_id)
            # Tokens issued before are refused everywhere from the next revocation refresh on.
            await projections.revoke_tokens(conn, user_id, disabled=True)
            event = domain.erase(account, datetime.now(UTC))
            if event is not None:
                await self.store.append(conn, stream, account.version, [event], correlation_id=correlation_id)
        log.info("person_erased", user_id=str(user_id), already_erased=event is None, **removed)
        return Erasure(
            user_id=user_id,
            already_erased=event is None,
            key_deleted=removed["key"],
            login_deleted=removed["login"],
            id_binding_deleted=removed["id_binding"],
        )

    async def rekey_legacy_bindings(self) -> int:
        """Move clear ID numbers left by migration 001 into keyed hashes: at start, and before any
        binding is looked up or deleted (normally there is nothing left to move)."""
        async with self.pool.acquire() as conn, conn.transaction():
            moved = await projections.rekey_legacy_bindings(conn, self.id_number_hmac)
        if moved:
            log.info("id_bindings_rekeyed", moved=moved)
        return moved

    # --- tokens and staff accounts (services/identity/README.md, "Tokens", "Staff") -------------

    async def token_version_for(self, principal: Principal) -> int:
        """The version a new token of this account carries; a disabled account gets none."""
        version, disabled = await projections.token_state(self.pool, principal.user_id)
        if disabled:
            raise Unauthorized("account_disabled", "该账户已停用，请联系管理员。")
        return version

    async def check(self, user_id: UUID, version: int) -> None:
        """identity's own TokenGuard (kernel.auth): its table, not a refreshed copy."""
        version_now, disabled = await projections.token_state(self.pool, user_id)
        revocation.judge(revocation.Revocation(version_now, disabled) if (version_now or disabled) else None, version)

    async def revocations(self) -> list[tuple[UUID, int, bool]]:
        """(user_id, min_version, disabled) of every account ever disabled or bumped."""
        return [(r["user_id"], r["token_version"], r["disabled"]) for r in await projections.revocations(self.pool)]

    async def add_staff(
        self,
        phone: str,
        password: str,
        role: Role,
        name: str,
        id_number: str,
        correlation_id: str,
        agency_code: str | None = None,
    ) -> UUID:
        """A reviewer or operator account linked to its holder's verified ID number (kept as the
        keyed hash only), so that review can refuse them their own case (403 own_case)."""
        domain.check_staff_role(role, role)
        now = datetime.now(UTC)
        resident, clean_name = domain.check_staff_identity(name, id_number, local_date(now))
        outcome = await self.provider.verify(clean_name, resident, domain.normalize_mainland_mobile(phone))
        if not outcome.passed:
            raise Refused(outcome.reason_code or "verification_failed", outcome.reason or "实名认证未通过。")
        digest = self.id_number_hmac(resident.number)
        linked_elsewhere = Conflict("staff_id_number_taken", "该身份证号码已关联其他工作人员账户。")
        if await self.pool.fetchval("SELECT 1 FROM staff_identities WHERE id_number_hmac = $1", digest):
            raise linked_elsewhere
        user_id = await self.register(phone, password, role, correlation_id, agency_code=agency_code)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await projections.link_staff_identity(conn, user_id, digest):
                raise linked_elsewhere  # the race: the account stays unlinked, so it decides nothing
            await self._audit(conn, user_id, "staff_created", {"role": role, "agency_code": agency_code})
        return user_id

    async def account_id(self, ref: str) -> UUID:
        """A staff command's account: a user id or the phone it logs in with."""
        try:
            return UUID(ref)
        except ValueError:
            pass
        try:
            e164 = domain.normalize_mainland_mobile(ref)
        except Refused as exc:
            raise NotFound(*_USER_NOT_FOUND) from exc
        found = await projections.credentials_of(self.pool, e164)
        if found is None:
            raise NotFound(*_USER_NOT_FOUND)
        return found[0].user_id

    async def _staff_login(self, conn: Connection, user_id: UUID) -> tuple[Role, str | None]:
        login = await projections.login_of(conn, user_id)
        if login is None:
            raise NotFound(*_USER_NOT_FOUND)
        domain.check_staff_role(login[0])
        return login

    async def _audit(self, conn: Connection, user_id: UUID, action: str, detail: dict[str, object]) -> None:
        """Staff account changes are made by an operator at flexctl (no token): the trail names the
        OS user and host it ran as (kernel.audit)."""
        await audit.record(
            conn,
            actor_id=None,
            actor_role="flexctl",
            action=action,
            person_id=user_id,
            detail=detail,
            client=f"flexctl:{getpass.getuser()}@{socket.gethostname()}",
        )

    async def disable(self, user_id: UUID) -> int:
        """Disable a staff account: no log-in, and every token refused (the version is bumped, so
        enabling it again does not revive old tokens)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._staff_login(conn, user_id)
            version = await projections.revoke_tokens(conn, user_id, disabled=True)
            await self._audit(conn, user_id, "staff_disabled", {"token_version": version})
        log.info("staff_disabled", user_id=str(user_id))
        return version

    async def enable(self, user_id: UUID) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._staff_login(conn, user_id)
            await projections.set_disabled(conn, user_id, False)
            await self._audit(conn, user_id, "staff_enabled", {})
        log.info("staff_enabled", user_id=str(user_id))

    async def change_role(self, user_id: UUID, role: Role, agency_code: str | None = None) -> int:
        """A new role (and agency, for a reviewer): tokens of the old role are refused."""
        domain.check_staff_role(role, role)
        agency = domain.check_staff_agency(role, agency_code, self.directory)
        async with self.pool.acquire() as conn, conn.transaction():
            old_role, old_agency = await self._staff_login(conn, user_id)
            await projections.set_role(conn, user_id, role, agency)
            version = await projections.revoke_tokens(conn, user_id)
            detail = {"from": old_role, "to": role, "agency_from": old_agency, "agency_to": agency}
            await self._audit(conn, user_id, "staff_role_changed", {**detail, "token_version": version})
        log.info("staff_role_changed", user_id=str(user_id), role=role)
        return version

    async def reset_password(self, user_id: UUID, password: str) -> int:
        """A new password; every token issued so far is refused."""
        domain.check_password(password)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        async with self.pool.acquire() as conn, conn.transaction():
            await self._staff_login(conn, user_id)
            await projections.set_password_hash(conn, user_id, password_hash)
            version = await projections.revoke_tokens(conn, user_id)
            await self._audit(conn, user_id, "staff_password_reset", {"token_version": version})  # never the password
        log.info("staff_password_reset", user_id=str(user_id))
        return version

    async def same_person(self, staff_id: UUID, applicant_id: UUID) -> bool | None:
        """Whether the applicant's bound ID number is the staff member's own; None when the staff
        account has no linked ID number (review then refuses every decision)."""
        staff = await projections.staff_identity(self.pool, staff_id)
        if staff is None:
            return None
        await self.rekey_legacy_bindings()  # as before any binding lookup
        applicant = await projections.id_number_hmac_of(self.pool, applicant_id)
        return applicant is not None and hmac.compare_digest(staff, applicant)
