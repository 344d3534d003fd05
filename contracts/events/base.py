"""Base of every event model, public or not, the registry that maps names to classes, and the
field types that several services' events share (so one format is written down exactly once).
"""

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Final, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    model_validator,
)

_REGISTRY: dict[tuple[str, int], type["Event"]] = {}


class Event(BaseModel):
    """The `data` of an envelope. Subclasses name themselves and their schema version.

    `public` events are contracts: their JSON Schema is committed under contracts/schemas and a
    test refuses changes that would break a consumer.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    public: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" not in cls.__dict__:
            cls.event_type = cls.__name__
        key = (cls.event_type, cls.schema_version)
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise TypeError(f"event {key} is defined twice")
        _REGISTRY[key] = cls

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def event_class(event_type: str, schema_version: int) -> type[Event]:
    return _REGISTRY[(event_type, schema_version)]


def registered_events() -> list[type[Event]]:
    return sorted(_REGISTRY.values(), key=lambda c: (c.event_type, c.schema_version))


def latest_version(event_type: str) -> int:
    """The newest schema version for which a class of `event_type` is registered."""
    versions = [version for (name, version) in _REGISTRY if name == event_type]
    if not versions:
        raise KeyError(event_type)
    return max(versions)


# --- shared field types ---------------------------------------------------------------------


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _rfc3339_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    PlainSerializer(_rfc3339_utc, return_type=str, when_used="json"),
]
"""An instant. Input must carry an offset; it is kept in UTC and written as RFC 3339 with `Z`."""

MAINLAND_MOBILE_PATTERN: Final = r"^\+861[3-9]\d{9}$"
MainlandMobile = Annotated[str, Field(pattern=MAINLAND_MOBILE_PATTERN, examples=["+8613800138000"])]
"""A mainland China mobile number in E.164 form."""

MaskedPhone = Annotated[str, Field(pattern=r"^\+861[3-9]\d\*{4}\d{4}$", examples=["+86138****8000"])]
"""A mainland mobile number with its middle four digits hidden, see `mask_phone`."""

MaskedIdNumber = Annotated[str, Field(pattern=r"^\d{4}\*{10}\d{3}[0-9X]$", examples=["3204**********1234"])]
"""A resident ID number (GB 11643) with only its first four and last four characters shown."""

RegionCode = Annotated[str, Field(pattern=r"^[1-9]\d{5}$", examples=["320402"])]
"""A six-digit administrative division code (GB/T 2260); Changzhou's start 3204."""

Gender = Literal["male", "female"]
PensionTier = Annotated[int, Field(ge=1, le=5)]
"""Pension (养老保险) contribution tier: 1 = 一档 … 5 = 五档."""
MedicalTier = Literal[5]
"""Medical insurance (医疗保险) contribution tier: the guide offers only the fifth tier."""
Fen = Annotated[StrictInt, Field(ge=0)]
"""An amount of money in integer fen (1 yuan = 100 fen); never a float."""
NonEmptyStr = Annotated[str, Field(min_length=1)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

SealAlgorithm = Literal["A256GCM", "none"]
_BASE64 = r"^[A-Za-z0-9+/]*={0,2}$"
_NONCE_BASE64 = r"^[A-Za-z0-9+/]{16}$"  # 12 bytes


class Sealed(BaseModel):
    """Personal data sealed under one person's key (docs/personal-data.md, "Sealing").

    `data` is the AES-256-GCM ciphertext (with its tag) of a JSON object of the sealed fields,
    the associated data being `key_id`, so that a sealed value cannot be moved to another person.
    Only the services that identity gives the person's key can open it; for everyone else it is
    opaque. When the person is erased the key is deleted and every copy becomes unreadable.
    `alg: none` marks data upcast from an event version published in clear before sealing
    existed: `data` is then the JSON text itself.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="Sealed",
        json_schema_extra={
            "examples": [
                {
                    "key_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                    "alg": "A256GCM",
                    "nonce": "AQEBAQEBAQEBAQEB",
                    "data": "DOGVXQfrDUTudkwgLlZh4Ptevuipsybs0aYd1roeI5CAhw5YhRySkSij",
                }
            ]
        },
    )

    key_id: UUID = Field(description="The person whose key sealed the data: their user_id.")
    alg: SealAlgorithm = Field(
        description="A256GCM (AES-256-GCM), or none for data upcast from a version published in clear."
    )
    nonce: str | None = Field(
        default=None,
        pattern=_NONCE_BASE64,
        description="Base64 of the 12 random bytes of the AES-GCM nonce; absent for none.",
    )
    data: str = Field(
        min_length=1,
        description="A256GCM: base64 of the ciphertext (with the tag) of the JSON object of the sealed fields. "
        "none: that JSON text itself.",
    )

    @model_validator(mode="after")
    def _shape_of_the_algorithm(self) -> Self:
        if self.alg == "A256GCM":
            if self.nonce is None:
                raise ValueError("A256GCM needs a nonce")
            if not re.fullmatch(_BASE64, self.data) or len(self.data) % 4:
                raise ValueError("A256GCM data must be base64")
        elif self.nonce is not None:
            raise ValueError("alg none carries no nonce")
        return self


def sealed_text(fields: Mapping[str, Any]) -> str:
    """The JSON text that is sealed: compact, keys sorted, UTF-8 (the same for every sealer)."""
    return json.dumps(dict(fields), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def clear_as_sealed(key_id: object, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The `Sealed` form (`alg: none`) of fields an older event version published in clear: what
    the upcasters to the sealed versions produce (erasing the key cannot unpublish them)."""
    return {"key_id": str(key_id), "alg": "none", "data": sealed_text(fields)}


CHANGZHOU_PREFIX: Final = "3204"
JIANGSU_PREFIX: Final = "32"


def mask_phone(number: str) -> str:
    """The middle four digits hidden, in E.164 or national form: `+8613800138000` ->
    `+86138****8000`, `13800138000` -> `138****8000`. The one masked form of phone numbers in
    events, views and logs (kernel.logging masks free text with it)."""
    return f"{number[:-8]}****{number[-4:]}"


def mask_id_number(id_number: str) -> str:
    """`320402199003071234` -> `3204**********1234`: only the first four and last four characters
    (an old 15-digit number likewise). The one masked form of ID numbers in events, views and logs."""
    normalized = id_number.strip().upper()
    return f"{normalized[:4]}{'*' * (len(normalized) - 8)}{normalized[-4:]}"


def check_masked_id(masked: str, gender: str, region_code: str | None = None) -> None:
    """Cross-check a masked ID number with facts derived from the same number.

    GB 11643: the 17th character is odd for men and even for women, and the first six are the
    region of first issue. Raises ValueError on a contradiction (a producer bug).
    """
    odd = int(masked[16]) % 2 == 1
    if odd != (gender == "male"):
        raise ValueError(f"gender {gender!r} contradicts the masked ID number's 17th digit")
    if region_code is not None and not region_code.startswith(masked[:4]):
        raise ValueError("id_region_code does not start with the masked ID number's first digits")
