"""identity's throttles (issue 9, "Throttling"; kernel/throttle.py): log-in, registration,
real-name verification and one-time codes, per account (or phone) and per client address, with
the limits of IdentitySettings (`identity_login_*`, `identity_register_*`, `identity_verify_*`,
`identity_code_*`). Every failure and refusal is written to the security log (never a password
or a code; phones masked)."""

import contextlib
from dataclasses import dataclass
from uuid import UUID

import asyncpg
from fastapi import Request

from kernel.problems import Problem
from kernel.throttle import Rule, Throttle, TooManyAttempts, rule_from, security_event
from services.identity import domain
from services.identity.settings import IdentitySettings


@dataclass(frozen=True)
class Rules:
    login_account: Rule
    login_address: Rule
    register_address: Rule
    verify_account: Rule
    verify_address: Rule
    code_resend: Rule
    code_phone: Rule
    code_address: Rule

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> "Rules":
        values = settings.model_dump()
        return cls(
            login_account=rule_from(values, "identity_login_account", lockout=True),
            login_address=rule_from(values, "identity_login_address", lockout=True),
            register_address=rule_from(values, "identity_register_address", lockout=False),
            verify_account=rule_from(values, "identity_verify_account", lockout=True),
            verify_address=rule_from(values, "identity_verify_address", lockout=False),
            code_resend=rule_from(values, "identity_code_resend", lockout=False),
            code_phone=rule_from(values, "identity_code_phone", lockout=False),
            code_address=rule_from(values, "identity_code_address", lockout=False),
        )


class Guard:
    """The throttles as identity's routes use them."""

    def __init__(self, pool: asyncpg.Pool, secret: bytes, rules: Rules) -> None:
        self.pool = pool
        self.throttle = Throttle(pool, secret)
        self.rules = rules

    async def _refused(
        self, event: str, exc: TooManyAttempts, subject: str | None, address: str, **detail: object
    ) -> None:
        await security_event(self.pool, event, subject=subject, address=address, retry_after=exc.retry_after, **detail)

    # --- log-in -----------------------------------------------------------------------------

    async def before_login(self, phone: str, address: str) -> None:
        """429 while the account or the address is locked out: the password is not even checked."""
        for rule, key in ((self.rules.login_account, phone), (self.rules.login_address, address)):
            try:
                await self.throttle.check(rule, key)
            except TooManyAttempts as exc:
                await self._refused("login_throttled", exc, phone, address, rule=rule.name)
                raise

    async def login_failed(self, phone: str, address: str, code: str) -> None:
        locked = {
            rule.name: await self.throttle.failed(rule, key)
            for rule, key in ((self.rules.login_account, phone), (self.rules.login_address, address))
        }
        await security_event(self.pool, "login_failed", subject=phone, address=address, reason=code)
        for rule_name, seconds in locked.items():
            if seconds:
                await security_event(
                    self.pool, "lockout", subject=phone, address=address, rule=rule_name, seconds=seconds
                )

    async def login_succeeded(self, phone: str) -> None:
        await self.throttle.succeeded(self.rules.login_account, phone)

    # --- registration -----------------------------------------------------------------------

    async def registration(self, phone: str, address: str) -> None:
        try:
            await self.throttle.take(self.rules.register_address, address)
        except TooManyAttempts as exc:
            await self._refused("registration_throttled", exc, phone, address)
            raise

    # --- real-name verification ---------------------------------------------------------------

    async def before_verification(self, user_id: UUID, address: str) -> None:
        account = str(user_id)
        try:
            await self.throttle.check(self.rules.verify_account, account)
            await self.throttle.take(self.rules.verify_address, address)
        except TooManyAttempts as exc:
            await self._refused("verification_throttled", exc, None, address, user_id=account)
            raise

    async def verification_failed(self, user_id: UUID, address: str, problem: Problem) -> None:
        seconds = await self.throttle.failed(self.rules.verify_account, str(user_id))
        await security_event(
            self.pool, "verification_failed", address=address, user_id=str(user_id), reason=problem.code
        )
        if seconds:
            await security_event(
                self.pool,
                "lockout",
                address=address,
                user_id=str(user_id),
                rule=self.rules.verify_account.name,
                seconds=seconds,
            )

    # --- one-time codes -------------------------------------------------------------------------

    def _code_rules(self, phone: str, address: str) -> tuple[tuple[Rule, str], ...]:
        return (
            (self.rules.code_address, address),
            (self.rules.code_resend, phone),
            (self.rules.code_phone, phone),
        )

    async def code_request(self, phone: str, address: str) -> None:
        """Resend limit and hourly limits per phone and per address."""
        for rule, key in self._code_rules(phone, address):
            try:
                await self.throttle.take(rule, key)
            except TooManyAttempts as exc:
                await self._refused("code_throttled", exc, phone, address, rule=rule.name)
                raise

    async def code_not_sent(self, phone: str, address: str) -> None:
        """The text could not be sent (notify or the database away: 503): the request counts for
        none of the limits, so the person may ask again at once instead of waiting out the resend
        window for a code that never came. Best effort: with the database away there is nothing to
        give back either way."""
        with contextlib.suppress(Exception):
            for rule, key in self._code_rules(phone, address):
                await self.throttle.give_back(rule, key)

    async def code_failed(self, phone: str, address: str, purpose: str) -> None:
        await security_event(self.pool, "code_failed", subject=phone, address=address, purpose=purpose)


def login_key(phone: str) -> str:
    """The account a log-in names: its E.164 phone, or what was typed when that is no phone."""
    try:
        return domain.normalize_mainland_mobile(phone)
    except Problem:
        return phone.strip()[:32]


def guard_of(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard
