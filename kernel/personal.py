"""Personal data sealed per person (docs/personal-data.md): AES-256-GCM under the person's own data
key, and the client that asks identity for those keys.

No phone number, name, ID number or birth date travels in clear on a topic: each is sealed with
its person's key (`seal`), and erasing the key at identity makes every copy unreadable at once.
The associated data of the encryption is the `key_id` (the person's user_id), so a sealed value
moved onto another person's event does not open. Keys are never logged, nor put in an error.
"""

import base64
import binascii
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.events.base import Sealed, sealed_text
from kernel.logging import get_logger
from kernel.settings import ServiceSettings

log = get_logger(__name__)

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # docs/personal-data.md, "Sealing": 12 random bytes per sealing
KEY_PATH = "/v1/person-keys/{user_id}"  # identity's key endpoint (docs/personal-data.md, "Who gets the key")


class SealedDataError(ValueError):
    """Sealed data that cannot be opened with the key given: a fact about the message, not the
    infrastructure (a consumer dead-letters it after its retries)."""


class SealTampered(SealedDataError):
    """The ciphertext, its nonce or its key_id was changed, or it was sealed under another key."""


class WrongPerson(SealedDataError):
    """The data was sealed for another person than the one it is read for."""


class IdentityUnavailable(ConnectionError):
    """identity did not answer a key request usably (unreachable, timed out, 5xx, refused our token).

    An OSError, so the kernel consumer treats it as infrastructure: the batch is retried later and
    nothing is dead-lettered (kernel.consumer.INFRASTRUCTURE_ERRORS). A refused token is here too:
    it is a configuration fault of the reading service, never a fault of the message."""


def new_data_key() -> bytes:
    """A person's data key: 32 random bytes from the operating system's CSPRNG."""
    return os.urandom(KEY_BYTES)


def seal(key: bytes, key_id: UUID, fields: Mapping[str, Any], *, nonce: bytes | None = None) -> Sealed:
    """Seal a JSON object of personal fields under `key` (the key of person `key_id`).

    `nonce` is for reproducible examples only: a nonce must never be used twice with one key, so
    production code leaves it to the CSPRNG.
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"a data key has {KEY_BYTES} bytes")
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"a nonce has {NONCE_BYTES} bytes")
    ciphertext = AESGCM(key).encrypt(nonce, sealed_text(fields).encode(), str(key_id).encode())
    return Sealed(
        key_id=key_id,
        alg="A256GCM",
        nonce=base64.b64encode(nonce).decode(),
        data=base64.b64encode(ciphertext).decode(),
    )


def clear(key_id: UUID, fields: Mapping[str, Any]) -> Sealed:
    """The `alg: none` form: fields that were published in clear (what upcasters produce)."""
    return Sealed(key_id=key_id, alg="none", data=sealed_text(fields))


def open_sealed(key: bytes | None, sealed: Sealed, *, owner: UUID | None = None) -> dict[str, Any]:
    """The fields sealed in `sealed`, opened with the key of its person.

    `owner`: the person the caller reads it for (the event's user_id or applicant_id); a value
    sealed for someone else raises WrongPerson. `alg: none` needs no key: it was published in clear.
    """
    if owner is not None and sealed.key_id != owner:
        raise WrongPerson(f"data sealed for person {sealed.key_id} was read as person {owner}'s")
    if sealed.alg == "none":
        text = sealed.data
    else:
        if key is None or len(key) != KEY_BYTES:
            raise ValueError(f"a data key of {KEY_BYTES} bytes is needed to open A256GCM data")
        try:
            nonce = base64.b64decode(sealed.nonce or "", validate=True)
            ciphertext = base64.b64decode(sealed.data, validate=True)
            text = AESGCM(key).decrypt(nonce, ciphertext, str(sealed.key_id).encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SealTampered(
                f"sealed data of person {sealed.key_id} does not open: changed, moved from another person, "
                "or sealed under another key"
            ) from exc
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SealTampered(f"sealed data of person {sealed.key_id} is not a JSON object") from exc
    if not isinstance(fields, dict):
        raise SealTampered(f"sealed data of person {sealed.key_id} is not a JSON object")
    return fields


class PersonKeys:
    """The client of identity's key endpoint, for a service that must read sealed fields.

    It authenticates with the service's own token (`PERSONAL_DATA_TOKEN`, else the shipped
    development one), keeps keys a short while in memory (`ttl_seconds`: a key erased at identity
    stays usable here at most that long unless `forget` is called, which a service does on
    `PersonErased`), and remembers "no key" the same while. `transport` binds it to an
    in-process identity in tests (httpx.ASGITransport).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        ttl_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=settings.identity_url,
            transport=transport,
            timeout=timeout_seconds,
            headers={"Authorization": f"Bearer {settings.personal_data_secret()}"},
        )
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[UUID, tuple[float, bytes | None]] = {}

    def __repr__(self) -> str:  # never the cache: it holds keys
        return f"PersonKeys({self._client.base_url}, {len(self._cache)} cached)"

    async def aclose(self) -> None:
        await self._client.aclose()

    def forget(self, user_id: UUID) -> None:
        """Drop what is cached for a person (their erasure reached this service)."""
        self._cache.pop(user_id, None)

    async def key_of(self, user_id: UUID) -> bytes | None:
        """The person's data key, or None when identity has none (never existed, or erased)."""
        now = self._clock()
        cached = self._cache.get(user_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        key = await self._fetch(user_id)
        self._cache[user_id] = (now, key)
        return key

    async def open(self, sealed: Sealed, *, owner: UUID | None = None) -> dict[str, Any] | None:
        """The sealed fields, or None when the person's key is gone (erased: nothing to read).

        `alg: none` data opens without asking identity. Raises SealedDataError for data that
        does not open with the person's key, IdentityUnavailable when identity cannot say."""
        if sealed.alg == "none":
            return open_sealed(None, sealed, owner=owner)
        if owner is not None and sealed.key_id != owner:
            raise WrongPerson(f"data sealed for person {sealed.key_id} was read as person {owner}'s")
        key = await self.key_of(sealed.key_id)
        if key is None:
            return None
        return open_sealed(key, sealed, owner=owner)

    async def _fetch(self, user_id: UUID) -> bytes | None:
        path = KEY_PATH.format(user_id=user_id)
        try:
            response = await self._client.get(path)
        except httpx.TransportError as exc:  # connect, read, timeouts
            raise IdentityUnavailable(f"identity unreachable for a person key: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise IdentityUnavailable(
                f"identity refused this service's personal-data token ({response.status_code}): check "
                "PERSONAL_DATA_TOKEN here and IDENTITY_KEY_READERS at identity"
            )
        if response.status_code != 200:
            raise IdentityUnavailable(f"identity answered {response.status_code} to a person-key request")
        try:
            body = response.json()
            key = base64.b64decode(body["key"], validate=True)
            if UUID(str(body["user_id"])) != user_id or len(key) != KEY_BYTES:
                raise ValueError("not the key asked for")
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise IdentityUnavailable("identity answered a person-key request with an unusable body") from exc
        log.debug("person_key_fetched", user_id=str(user_id))
        return key
