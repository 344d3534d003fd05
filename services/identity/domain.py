"""The account aggregate: pure decisions, commands in, events out (no I/O)."""

import re
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import phonenumbers

from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.identity import UserRegistered, UserVerified
from contracts.reference import DistrictDirectory
from kernel.aggregate import replay as fold
from kernel.auth import Role
from kernel.problems import Conflict, Refused
from services.identity.resident_id import InvalidIdNumber, ResidentId, parse_resident_id

# Names on resident ID cards: Chinese characters, with the middle dot of minority names.
_NAME = re.compile(r"^[\u3400-\u9fff\u00b7·]{2,30}$")


def normalize_mainland_mobile(raw: str) -> str:
    """Accept '13800138000', '+86 138 0013 8000', …; return E.164 or refuse."""
    try:
        number = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException as exc:
        raise Refused("invalid_phone", "手机号码格式不正确，请输入11位大陆手机号码。") from exc
    mobile = phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    if number.country_code != 86 or not phonenumbers.is_valid_number(number) or not mobile:
        raise Refused("invalid_phone", "手机号码格式不正确，请输入11位大陆手机号码。")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_password(password: str) -> None:
    if len(password) < 8 or len(password) > 128 or password.isdigit() or password.isalpha():
        raise Refused("weak_password", "密码需为8至128位，并同时包含字母和数字。")


def stream_id(user_id: UUID) -> str:
    return f"user-{user_id}"


def check_staff_agency(role: Role, agency_code: str | None, directory: DistrictDirectory) -> str | None:
    """A reviewer may be bound to one accepting agency of the reference directory (e.g. 320411);
    operators and applicants never are. The token carries it as the reviewer's scope."""
    if agency_code is None:
        return None
    code = agency_code.strip()
    if role != "reviewer":
        raise Refused("agency_not_allowed", "只有审核人员可以隶属于受理机构，经办管理人员和申请人不能指定受理机构。")
    if directory.agency(code) is None:
        known = "、".join(a.code for a in directory.agencies)
        raise Refused("unknown_agency", f"受理机构代码“{code}”不存在，可选：{known}。", known=known)
    return code


@dataclass(frozen=True)
class Account:
    user_id: UUID
    phone: str
    role: Role
    verified: UserVerified | None = None

    @property
    def version(self) -> int:
        return 1 + (self.verified is not None)


def evolve(account: Account | None, event: Event, _: Envelope) -> Account | None:
    if isinstance(event, UserRegistered):
        return Account(user_id=event.user_id, phone=event.phone, role=event.role)
    if isinstance(event, UserVerified) and account is not None:
        return Account(account.user_id, account.phone, account.role, event)
    return account


def replay(history: list[Envelope]) -> Account | None:
    return fold(history, evolve)


def register(user_id: UUID, phone: str, role: Role, now: datetime) -> UserRegistered:
    return UserRegistered(user_id=user_id, phone=phone, role=role, registered_at=now)


def verify(
    account: Account, name: str, id_number: str, provider: str, now: datetime, today: date
) -> tuple[UserVerified, ResidentId]:
    """Real-name verification: one person, one verification; name and ID number must be sound."""
    if account.verified is not None:
        raise Conflict("already_verified", "该账户已完成实名认证，无需重复认证。")
    clean_name = name.strip()
    if not _NAME.match(clean_name):
        raise Refused("invalid_name", "姓名应与身份证一致，仅可包含汉字和间隔号“·”。")
    try:
        resident = parse_resident_id(id_number, today)
    except InvalidIdNumber as exc:
        raise Refused("invalid_id_number", "身份证号码不正确，请核对18位公民身份号码。") from exc
    event = UserVerified(
        user_id=account.user_id,
        name=clean_name,
        id_number_masked=resident.masked,
        birth_date=resident.birth_date,
        gender=resident.gender,
        id_region_code=resident.region_code,
        provider=provider,
        verified_at=now,
    )
    return event, resident
