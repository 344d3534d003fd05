"""SMS one-time codes (issue 9): a person proves they hold a phone before it becomes an account's
(registration) or replaces an account's phone (phone change).

- `POST /v1/phone-codes {phone, purpose: "register"}` answers 202 the same way whether or not the
  phone has an account, so the answer never tells which numbers are registered. A phone without
  an account is texted a 6-digit code; a phone with one is texted a notice instead (template
  `phone_registered`: someone tried to register it; log in, or ignore it): its holder learns of
  it, nobody else does. Registration (`POST /v1/users`) then needs the code.
- `POST /v1/users/{id}/phone-codes {phone}` (the account holder): the same for a new phone of
  the account; `PUT /v1/users/{id}/phone {phone, code, password}` makes it the account's phone.

A code lives IDENTITY_CODE_TTL_SECONDS (5 min), admits IDENTITY_CODE_MAX_ATTEMPTS wrong tries
(5), and a newer code for the same phone and purpose replaces it. Only a keyed hash of it is
stored (HMAC-SHA-256 under identity's key, of a per-code salt and the code), the phone only as a
keyed hash; every wrong, expired, used or replaced code gets the one answer `invalid_code`.
The code never goes on a topic: identity asks notify over an authenticated internal call
(`POST /v1/internal/one-time-codes` with IDENTITY_NOTIFY_TOKEN), and notify texts it through its
gateway without recording it in its event store or its SMS log.
"""

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Literal, Protocol
from uuid import UUID, uuid4

import asyncpg
import httpx
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from contracts.events.base import mask_phone
from kernel import personal
from kernel.auth import CurrentPrincipal
from kernel.clock import utc_now
from kernel.logging import get_logger
from kernel.problems import Conflict, Forbidden, NotFound, Problem, Refused, Unauthorized
from kernel.throttle import client_address
from kernel.web import PROBLEM_RESPONSES, StrictBody, correlation_id, problem_responses
from services.identity import domain, projections
from services.identity.passwords import Password, check_password
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from services.identity.throttling import Guard

log = get_logger(__name__)

Purpose = Literal["register", "change_phone"]
Message = Literal["one_time_code", "phone_registered"]
PURPOSE_TEXT: dict[str, str] = {"register": "注册账户", "change_phone": "更换手机号码"}
INVALID_CODE = ("invalid_code", "验证码不正确或已失效，请重新获取验证码。")


class CodeSender(Protocol):
    async def send(self, phone: str, message: Message, purpose: Purpose, code: str | None, minutes: int) -> None:
        """Text `phone`; raises Problem 503 `sms_unavailable` when it cannot."""
        ...

    async def aclose(self) -> None: ...


class NotifyCodeSender:
    """Asks notify to text it (`POST /v1/internal/one-time-codes`, bearer IDENTITY_NOTIFY_TOKEN)."""

    def __init__(self, url: str, token: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(
            base_url=url, timeout=10, transport=transport, headers={"Authorization": f"Bearer {token}"}
        )

    async def send(self, phone: str, message: Message, purpose: Purpose, code: str | None, minutes: int) -> None:
        body = {"phone": phone, "template": message, "purpose": purpose, "code": code, "minutes": minutes}
        try:
            answer = await self._client.post("/v1/internal/one-time-codes", json=body)
        except httpx.HTTPError as exc:
            log.warning("code_sms_unreachable", error=type(exc).__name__)
            raise _unavailable() from exc
        if answer.status_code != 202:
            log.warning("code_sms_refused", status=answer.status_code)
            raise _unavailable()

    async def aclose(self) -> None:
        await self._client.aclose()


def _unavailable() -> Problem:
    return Problem("sms_unavailable", "短信发送暂时不可用，请稍后再试。", 503)


def render(message: Message, purpose: Purpose, code: str | None, minutes: int) -> str:
    """The text as identity's local sink keeps it (notify's templates.toml has the real ones)."""
    if message == "one_time_code":
        return (
            f"【常州人社】您的验证码为{code}，{minutes}分钟内有效，用于{PURPOSE_TEXT[purpose]}。请勿将验证码告诉他人。"
        )
    return "【常州人社】有人尝试用本手机号码注册账户，但该号码已注册，请直接登录。如非本人操作，请忽略本短信。"


class LocalCodeSink:
    """Development and tests (IDENTITY_CODE_SENDER=local_sink): the text goes to `code_sink`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def send(self, phone: str, message: Message, purpose: Purpose, code: str | None, minutes: int) -> None:
        await self.pool.execute(
            "INSERT INTO code_sink (phone, template, text) VALUES ($1, $2, $3)",
            phone,
            message,
            render(message, purpose, code, minutes),
        )

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class CodeRequest:
    expires_in: int
    resend_after: int


class PhoneCodes:
    """Issues and checks codes in identity's `phone_codes` table (migration 005)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        sender: CodeSender,
        secret: bytes,
        settings: IdentitySettings,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.pool = pool
        self.sender = sender
        self._secret = secret
        self.ttl = timedelta(seconds=settings.identity_code_ttl_seconds)
        self.max_attempts = settings.identity_code_max_attempts
        self.resend_after = int(settings.identity_code_resend_window_seconds)
        self.clock = clock

    def _phone_hmac(self, e164: str) -> bytes:
        return hmac.new(self._secret, f"phone-code\x00{e164}".encode(), hashlib.sha256).digest()

    def _code_hash(self, salt: bytes, code: str) -> bytes:
        return hmac.new(self._secret, salt + code.encode(), hashlib.sha256).digest()

    async def request(self, e164: str, purpose: Purpose, user_id: UUID | None = None) -> CodeRequest:
        """Text a code to `e164`, or, when it has an account, the notice; the answer is the same."""
        registered = await projections.phone_registered(self.pool, e164)
        minutes = int(self.ttl.total_seconds() // 60)
        if registered:
            await self.sender.send(e164, "phone_registered", purpose, None, minutes)
            log.info("phone_code_notice_sent", phone=mask_phone(e164), purpose=purpose)
        else:
            code = f"{secrets.randbelow(10**6):06d}"
            salt = secrets.token_bytes(16)
            now = self.clock()
            async with self.pool.acquire() as conn, conn.transaction():
                # A newer code replaces the older ones of this phone and purpose.
                await conn.execute(
                    "DELETE FROM phone_codes WHERE (phone_hmac = $1 AND purpose = $2) OR expires_at < $3",
                    self._phone_hmac(e164),
                    purpose,
                    now - timedelta(days=1),
                )
                await conn.execute(
                    "INSERT INTO phone_codes (code_id, phone_hmac, purpose, user_id, salt, code_hash, created_at, "
                    "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    uuid4(),
                    self._phone_hmac(e164),
                    purpose,
                    user_id,
                    salt,
                    self._code_hash(salt, code),
                    now,
                    now + self.ttl,
                )
            await self.sender.send(e164, "one_time_code", purpose, code, minutes)
            log.info("phone_code_sent", phone=mask_phone(e164), purpose=purpose)
        return CodeRequest(expires_in=int(self.ttl.total_seconds()), resend_after=self.resend_after)

    async def consume(self, e164: str, purpose: Purpose, code: str, user_id: UUID | None = None) -> None:
        """Accept the code once, or refuse `invalid_code` (wrong, expired, used, too many tries,
        another account's): one answer for all, so it tells nothing about the phone."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT code_id, user_id, salt, code_hash, attempts, expires_at, used_at FROM phone_codes "
                "WHERE phone_hmac = $1 AND purpose = $2 ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
                self._phone_hmac(e164),
                purpose,
            )
            usable = (
                row is not None
                and row["used_at"] is None
                and row["expires_at"] > now
                and row["attempts"] < self.max_attempts
                and row["user_id"] == user_id
            )
            if row is None or not usable:
                raise Refused(*INVALID_CODE)
            right = hmac.compare_digest(self._code_hash(row["salt"], code), row["code_hash"])
            if not right:
                await conn.execute("UPDATE phone_codes SET attempts = attempts + 1 WHERE code_id = $1", row["code_id"])
            else:
                await conn.execute("UPDATE phone_codes SET used_at = $2 WHERE code_id = $1", row["code_id"], now)
        if not right:  # the attempt is counted (committed) before the refusal
            raise Refused(*INVALID_CODE)


def make_sender(settings: IdentitySettings, pool: asyncpg.Pool) -> NotifyCodeSender | LocalCodeSink:
    if settings.identity_code_sender == "local_sink":
        return LocalCodeSink(pool)
    return NotifyCodeSender(settings.identity_notify_url, settings.identity_notify_token.get_secret_value())


# --- HTTP -------------------------------------------------------------------------------------

router = APIRouter(prefix="/v1", responses={**PROBLEM_RESPONSES, **problem_responses(429, 503)}, tags=["phone codes"])

Code = Annotated[str, Field(pattern=r"^[0-9]{6}$", examples=["123456"], description="The 6-digit code from the SMS.")]


class CodeWanted(StrictBody):
    phone: str = Field(min_length=1, max_length=32, examples=["13800138000"])
    purpose: Literal["register"] = Field(
        default="register", description="register (a new phone of an account: POST /v1/users/{id}/phone-codes)."
    )


class NewPhoneCodeWanted(StrictBody):
    phone: str = Field(min_length=1, max_length=32, examples=["13900139000"])


class CodeSent(BaseModel):
    expires_in: int = Field(description="Seconds the code stays valid.")
    resend_after: int = Field(description="Seconds before another code may be asked for this phone.")


def phone_codes(request: Request) -> PhoneCodes:
    codes: PhoneCodes = request.app.state.phone_codes
    return codes


def guard(request: Request) -> Guard:
    g: Guard = request.app.state.guard
    return g


Codes = Annotated[PhoneCodes, Depends(phone_codes)]
Guarded = Annotated[Guard, Depends(guard)]

_ACCEPTED = "202 whether or not the phone has an account (it is then texted a notice, not a code)."


async def _texted(guard: Guard, e164: str, address: str, send: Callable[[], Awaitable[CodeRequest]]) -> CodeRequest:
    """The limits, then the text; a text that could not be sent (503) is not counted."""
    await guard.code_request(e164, address)
    try:
        return await send()
    except Problem as exc:
        if exc.status == 503:
            await guard.code_not_sent(e164, address)
        raise


@router.post(
    "/phone-codes", status_code=202, summary="Text a 6-digit code to prove a phone (注册验证码)", description=_ACCEPTED
)
async def request_code(body: CodeWanted, codes: Codes, guard: Guarded, request: Request) -> CodeSent:
    e164 = domain.normalize_mainland_mobile(body.phone)
    sent = await _texted(guard, e164, client_address(request), partial(codes.request, e164, body.purpose))
    return CodeSent(expires_in=sent.expires_in, resend_after=sent.resend_after)


@router.post(
    "/users/{user_id}/phone-codes",
    status_code=202,
    summary="Text a code to a new phone of the account (更换手机号码验证码)",
    description=_ACCEPTED,
)
async def request_phone_change_code(
    user_id: UUID, body: NewPhoneCodeWanted, codes: Codes, guard: Guarded, principal: CurrentPrincipal, request: Request
) -> CodeSent:
    if principal.user_id != user_id:
        raise Forbidden("not_your_account", "只能查看或办理本人的账户业务。")
    e164 = domain.normalize_mainland_mobile(body.phone)
    sent = await _texted(guard, e164, client_address(request), partial(codes.request, e164, "change_phone", user_id))
    return CodeSent(expires_in=sent.expires_in, resend_after=sent.resend_after)


async def register_with_code(request: Request, phone: str, password: str, code: str) -> str:
    """What POST /v1/users checks before the account is made: the address's registration rate,
    the password rules (before the code is spent, so a weak password costs no code) and the
    phone's one-time code. Returns the phone in E.164."""
    guard, address = request.app.state.guard, client_address(request)
    e164 = domain.normalize_mainland_mobile(phone)
    await guard.registration(e164, address)
    check_password(password)
    try:
        await phone_codes(request).consume(e164, "register", code)
    except Refused:
        await guard.code_failed(e164, address, "register")
        raise
    return e164


# --- phone change ---------------------------------------------------------------------------------


class PhoneChange(StrictBody):
    phone: str = Field(min_length=1, max_length=32, examples=["13900139000"], description="The new phone.")
    code: Code
    password: Password  # the account's password, as typed: a stolen token alone changes no phone


class PhoneView(BaseModel):
    user_id: UUID
    phone_masked: str


async def change_phone(
    svc: IdentityService, codes: PhoneCodes, user_id: UUID, phone: str, code: str, correlation_id: str
) -> str:
    """Make `phone` (E.164, its code checked here) the account's phone: `credentials` and
    PhoneChanged in one transaction. Returns the masked new phone."""
    account = await svc.account(user_id)
    current = await projections.phone_of(svc.pool, user_id)
    if current == phone:
        raise Refused("phone_unchanged", "新手机号码与当前手机号码相同。")
    await codes.consume(phone, "change_phone", code, user_id)
    key = await projections.data_key(svc.pool, user_id)
    if key is None:
        raise NotFound("user_not_found", "未找到该用户。")
    event = domain.change_phone(account, phone, utc_now(), partial(personal.seal, key, user_id))
    async with svc.pool.acquire() as conn, conn.transaction():
        try:
            async with conn.transaction():  # a savepoint: the race with a registration of the phone
                await conn.execute("UPDATE credentials SET phone = $2 WHERE user_id = $1", user_id, phone)
        except asyncpg.UniqueViolationError as exc:
            raise Conflict("phone_taken", "该手机号码已被其他账户使用。") from exc
        await svc.store.append(conn, domain.stream_id(user_id), account.version, [event], correlation_id=correlation_id)
    log.info("phone_changed", user_id=str(user_id), phone=event.phone_masked)
    return event.phone_masked


@router.put(
    "/users/{user_id}/phone",
    summary="Change the account's phone (更换手机号码): the new phone's code and the password",
    responses=problem_responses(429),
)
async def put_phone(
    user_id: UUID, body: PhoneChange, codes: Codes, guard: Guarded, principal: CurrentPrincipal, request: Request
) -> PhoneView:
    if principal.user_id != user_id:
        raise Forbidden("not_your_account", "只能查看或办理本人的账户业务。")
    svc: IdentityService = request.app.state.identity
    e164 = domain.normalize_mainland_mobile(body.phone)
    address = client_address(request)
    current = await projections.phone_of(svc.pool, user_id)
    if current is None:
        raise NotFound("user_not_found", "未找到该用户。")
    await guard.before_login(current, address)  # the password is guessed like a log-in's: same throttle
    try:
        await svc.login(current, body.password)
    except Unauthorized as exc:
        await guard.login_failed(current, address, exc.code)
        raise
    try:
        masked = await change_phone(svc, codes, user_id, e164, body.code, correlation_id(request))
    except Refused as exc:
        if exc.code == "invalid_code":
            await guard.code_failed(e164, address, "change_phone")
        raise
    return PhoneView(user_id=user_id, phone_masked=masked)
