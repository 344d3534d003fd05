"""The account aggregate: pure decisions, commands in, events out (no I/O)."""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID

import phonenumbers

from contracts.envelope import Envelope
from contracts.events.base import Event, Sealed, mask_phone
from contracts.events.identity import (
    PersonErased,
    PhoneChanged,
    RegisteredPersonal,
    UserRegistered,
    UserVerified,
    VerifiedPersonal,
)
from contracts.reference import DistrictDirectory
from kernel.aggregate import replay as fold
from kernel.auth import STAFF_ROLES, Role
from kernel.problems import Conflict, NotFound, Refused
from services.identity import passwords
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
    """The password rules of services/identity/passwords.py (at least 10 characters, not common,
    never trimmed)."""
    passwords.check_password(password)


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


Sealer = Callable[[Mapping[str, Any]], Sealed]
"""Seals a person's fields under their key (the service layer binds kernel.personal.seal to the
key; the domain only says which fields are sealed, docs/personal-data.md)."""


@dataclass(frozen=True)
class Account:
    user_id: UUID
    role: Role
    phone_masked: str
    version: int
    verified: UserVerified | None = None
    erased: bool = False


def evolve(account: Account | None, event: Event, envelope: Envelope) -> Account | None:
    version = envelope.stream_version
    if isinstance(event, UserRegistered):
        return Account(user_id=event.user_id, role=event.role, phone_masked=event.phone_masked, version=version)
    if account is None:
        return None
    if isinstance(event, UserVerified):
        return replace(account, verified=event, version=version)
    if isinstance(event, PhoneChanged):
        return replace(account, phone_masked=event.phone_masked, version=version)
    if isinstance(event, PersonErased):
        return replace(account, erased=True, version=version)
    return replace(account, version=version)


def replay(history: list[Envelope]) -> Account | None:
    return fold(history, evolve)


def register(user_id: UUID, phone: str, role: Role, now: datetime, seal: Sealer) -> UserRegistered:
    return UserRegistered(
        user_id=user_id,
        role=role,
        phone_masked=mask_phone(phone),
        personal=seal(RegisteredPersonal(phone=phone).model_dump(mode="json")),
        registered_at=now,
    )


def verify(
    account: Account, name: str, id_number: str, provider: str, now: datetime, today: date, seal: Sealer
) -> tuple[UserVerified, ResidentId, str]:
    """Real-name verification: one person, one verification; name and ID number must be sound.
    The name and the birth date are sealed; the number leaves identity only masked. Returns the
    event, the parsed number and the clean name (what the provider checks)."""
    if account.erased:
        raise NotFound("user_not_found", "未找到该用户。")
    if account.verified is not None:
        raise Conflict("already_verified", "该账户已完成实名认证，无需重复认证。")
    clean_name = name.strip()
    if not _NAME.match(clean_name):
        raise Refused("invalid_name", "姓名应与身份证一致，仅可包含汉字和间隔号“·”。")
    try:
        resident = parse_resident_id(id_number, today)
    except InvalidIdNumber as exc:
        raise Refused("invalid_id_number", "身份证号码不正确，请核对18位公民身份号码。") from exc
    personal = VerifiedPersonal(name=clean_name, birth_date=resident.birth_date)
    event = UserVerified(
        user_id=account.user_id,
        id_number_masked=resident.masked,
        gender=resident.gender,
        provider=provider,
        personal=seal(personal.model_dump(mode="json")),
        verified_at=now,
    )
    return event, resident, clean_name


def change_phone(account: Account, phone: str, now: datetime, seal: Sealer) -> PhoneChanged:
    """A new phone for the account (proven by a one-time code: services/identity/phone_codes.py),
    sealed like the registered one."""
    if account.erased:
        raise NotFound("user_not_found", "未找到该用户。")
    return PhoneChanged(
        user_id=account.user_id,
        phone_masked=mask_phone(phone),
        personal=seal(RegisteredPersonal(phone=phone).model_dump(mode="json")),
        changed_at=now,
    )


def erase(account: Account, now: datetime) -> PersonErased | None:
    """The person's erasure (docs/personal-data.md, "Erasure"); None when it was done before:
    erasing twice changes nothing."""
    if account.erased:
        return None
    return PersonErased(user_id=account.user_id, erased_at=now)


def check_staff_identity(name: str, id_number: str, today: date) -> tuple[ResidentId, str]:
    """A staff member's name and resident ID number, checked as verification checks an
    applicant's (services/identity/README.md, "Staff"): the parsed number and the clean name."""
    clean_name = name.strip()
    if not _NAME.match(clean_name):
        raise Refused("invalid_name", "姓名应与身份证一致，仅可包含汉字和间隔号“·”。")
    try:
        return parse_resident_id(id_number, today), clean_name
    except InvalidIdNumber as exc:
        raise Refused("invalid_id_number", "身份证号码不正确，请核对18位公民身份号码。") from exc


def check_staff_role(current: str, new: str | None = None) -> None:
    """Staff commands act on staff accounts only, and keep them staff: an applicant never becomes
    a reviewer by a role change (staff are created by `flexctl staff add`, with their ID number)."""
    if current not in STAFF_ROLES:
        raise Refused("not_staff", "该账户不是工作人员账户。")
    if new is not None and new not in STAFF_ROLES:
        raise Refused("invalid_role", "角色只能是 reviewer（审核人员）或 operator（经办管理人员）。")
