"""Real-name verification providers (guide Q4; the app's channels also check the face).

The provider is pluggable by config: `local` (default) accepts any sound ID number that is
not on the configured deny list; a public-security or face-check provider implements the
same protocol and is named in IDENTITY_VERIFICATION_PROVIDER as "module:Class".
"""

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.identity.resident_id import ResidentId


@dataclass(frozen=True)
class VerificationOutcome:
    passed: bool
    provider: str
    reason_code: str | None = None
    reason: str | None = None


class VerificationProvider(Protocol):
    name: str

    async def verify(self, name: str, resident: ResidentId, phone: str) -> VerificationOutcome: ...


class LocalVerificationProvider:
    """For development and tests: a deny list stands in for the public-security database."""

    name = "local"

    def __init__(self, deny_list: frozenset[str] = frozenset()) -> None:
        self.deny_list = deny_list

    @classmethod
    def from_file(cls, path: Path | None) -> "LocalVerificationProvider":
        if path is None or not path.exists():
            return cls()
        lines = (line.split("#", 1)[0].strip().upper() for line in path.read_text(encoding="utf-8").splitlines())
        return cls(frozenset(line for line in lines if line))

    async def verify(self, name: str, resident: ResidentId, phone: str) -> VerificationOutcome:
        if resident.number in self.deny_list:
            return VerificationOutcome(
                False, self.name, "identity_not_confirmed", "身份信息核验未通过，请本人携带身份证到窗口办理。"
            )
        return VerificationOutcome(True, self.name)


def load_provider(spec: str, deny_list: Path | None) -> VerificationProvider:
    if spec == "local":
        return LocalVerificationProvider.from_file(deny_list)
    module_name, _, class_name = spec.partition(":")
    provider: VerificationProvider = getattr(importlib.import_module(module_name), class_name)()
    return provider
