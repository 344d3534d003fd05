"""kernel.personal: sealing and opening personal data (docs/personal-data.md, "Sealing"), and the
key client's own logic (cache, "no key", identity unavailable) against a scripted transport; the
client against the real identity is tested in tests/integration/test_identity_person_keys.py."""

import base64
import json
from uuid import UUID, uuid4

import httpx
import pytest

from contracts.events.base import Sealed
from kernel.consumer import INFRASTRUCTURE_ERRORS
from kernel.personal import (
    IdentityUnavailable,
    PersonKeys,
    SealedDataError,
    SealTampered,
    WrongPerson,
    clear,
    new_data_key,
    open_sealed,
    seal,
)
from kernel.settings import ServiceSettings, local_secret

PERSON = UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
FIELDS = {"name": "张三", "birth_date": "1990-03-07", "phone": "+8613800138000"}


def _flip(text: str, at: int = 0) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_a_sealed_value_opens_with_its_persons_key_and_hides_the_fields() -> None:
    key = new_data_key()
    sealed = seal(key, PERSON, FIELDS)
    assert sealed.alg == "A256GCM" and sealed.key_id == PERSON
    assert len(base64.b64decode(sealed.nonce or "")) == 12
    text = sealed.model_dump_json()
    for value in ("张三", "1990-03-07", "+8613800138000", "13800138000", "\\u5f20"):
        assert value not in text
    assert open_sealed(key, sealed) == FIELDS
    assert open_sealed(key, Sealed.model_validate_json(text), owner=PERSON) == FIELDS
    again = seal(key, PERSON, FIELDS)
    assert again.nonce != sealed.nonce and again.data != sealed.data  # a fresh nonce every time


def test_data_keys_are_32_random_bytes() -> None:
    keys = {new_data_key() for _ in range(50)}
    assert len(keys) == 50 and {len(k) for k in keys} == {32}


@pytest.mark.parametrize(
    "change",
    [
        lambda s: {"data": _flip(s.data)},  # the ciphertext
        lambda s: {"data": _flip(s.data, at=-1)},  # the tag
        lambda s: {"nonce": _flip(s.nonce or "")},
        lambda s: {"data": base64.b64encode(base64.b64decode(s.data)[:-1]).decode()},  # truncated
    ],
    ids=["ciphertext", "tag", "nonce", "truncated"],
)
def test_tampered_data_is_refused(change: object) -> None:
    key = new_data_key()
    sealed = seal(key, PERSON, FIELDS)
    tampered = sealed.model_copy(update=change(sealed))  # type: ignore[operator]
    with pytest.raises(SealTampered, match="does not open"):
        open_sealed(key, tampered)


def test_a_value_moved_to_another_person_does_not_open() -> None:
    """The key_id is the associated data: relabelling a sealed value fails even with the right key."""
    key = new_data_key()
    sealed = seal(key, PERSON, FIELDS)
    moved = sealed.model_copy(update={"key_id": uuid4()})
    with pytest.raises(SealTampered):
        open_sealed(key, moved)
    with pytest.raises(WrongPerson, match="read as person"):
        open_sealed(key, sealed, owner=uuid4())


def test_another_persons_key_does_not_open_it() -> None:
    sealed = seal(new_data_key(), PERSON, FIELDS)
    with pytest.raises(SealTampered):
        open_sealed(new_data_key(), sealed)


def test_errors_never_carry_the_key_or_the_fields() -> None:
    key = new_data_key()
    sealed = seal(key, PERSON, FIELDS)
    with pytest.raises(SealedDataError) as refused:
        open_sealed(key, sealed.model_copy(update={"data": _flip(sealed.data)}))
    message = str(refused.value)
    assert base64.b64encode(key).decode() not in message and key.hex() not in message
    assert "张三" not in message and "+8613800138000" not in message
    assert not issubclass(SealedDataError, INFRASTRUCTURE_ERRORS)  # a message fault: dead-lettered


def test_alg_none_is_the_clear_json_and_needs_no_key() -> None:
    plain = clear(PERSON, FIELDS)
    assert plain.alg == "none" and plain.nonce is None
    assert json.loads(plain.data) == FIELDS
    assert open_sealed(None, plain) == FIELDS
    with pytest.raises(WrongPerson):
        open_sealed(None, plain, owner=uuid4())
    with pytest.raises(SealTampered, match="JSON object"):
        open_sealed(None, Sealed(key_id=PERSON, alg="none", data="[1, 2]"))


def test_sealing_refuses_keys_and_nonces_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal(b"short", PERSON, FIELDS)
    with pytest.raises(ValueError, match="12 bytes"):
        seal(new_data_key(), PERSON, FIELDS, nonce=b"123")
    with pytest.raises(ValueError, match="32 bytes"):
        open_sealed(None, seal(new_data_key(), PERSON, FIELDS))


# --- PersonKeys: the client's own logic ---------------------------------------------------------


class Identity:
    """A scripted key endpoint: answers from `keys`, counts requests, records the token."""

    def __init__(self) -> None:
        self.keys: dict[UUID, bytes] = {}
        self.status: int | None = None  # force an answer
        self.down = False
        self.requests = 0
        self.tokens: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        self.tokens.append(request.headers.get("authorization", ""))
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.status is not None:
            return httpx.Response(self.status, json={"code": "x"})
        user_id = UUID(request.url.path.rsplit("/", 1)[1])
        if user_id not in self.keys:
            return httpx.Response(404, json={"code": "person_key_not_found"})
        return httpx.Response(200, json={"user_id": str(user_id), "key": base64.b64encode(self.keys[user_id]).decode()})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(identity: Identity, clock: Clock | None = None) -> PersonKeys:
    return PersonKeys(
        ServiceSettings(service="review"),
        transport=httpx.MockTransport(identity.handle),
        ttl_seconds=30,
        clock=clock or Clock(),
    )


async def test_keys_are_fetched_with_the_services_token_and_cached_for_a_while() -> None:
    identity, clock = Identity(), Clock()
    key = new_data_key()
    identity.keys[PERSON] = key
    keys = client(identity, clock)
    sealed = seal(key, PERSON, FIELDS)
    assert await keys.open(sealed, owner=PERSON) == FIELDS
    assert await keys.key_of(PERSON) == key
    assert identity.requests == 1
    assert identity.tokens == [f"Bearer {local_secret('personal-data', 'review')}"]
    clock.now += 31
    assert await keys.key_of(PERSON) == key
    assert identity.requests == 2
    assert base64.b64encode(key).decode() not in repr(keys)
    await keys.aclose()


async def test_an_erased_key_reads_as_nothing_and_forget_drops_the_cache() -> None:
    identity = Identity()
    key = new_data_key()
    identity.keys[PERSON] = key
    keys = client(identity)
    sealed = seal(key, PERSON, FIELDS)
    assert await keys.open(sealed) == FIELDS
    del identity.keys[PERSON]  # erased at identity
    assert await keys.open(sealed) == FIELDS  # still cached: that is what forget is for
    keys.forget(PERSON)
    assert await keys.key_of(PERSON) is None
    assert await keys.open(sealed) is None
    assert identity.requests == 2  # "no key" is cached too
    await keys.aclose()


async def test_alg_none_opens_without_asking_identity() -> None:
    identity = Identity()
    keys = client(identity)
    assert await keys.open(clear(PERSON, FIELDS)) == FIELDS
    assert identity.requests == 0
    await keys.aclose()


@pytest.mark.parametrize("status", [500, 502, 503, 401, 403, 200])
async def test_identity_unusable_is_an_infrastructure_error(status: int) -> None:
    identity = Identity()
    identity.status = status  # 200 with a body that is no key
    keys = client(identity)
    with pytest.raises(IdentityUnavailable) as failed:
        await keys.key_of(PERSON)
    assert isinstance(failed.value, OSError) and isinstance(failed.value, INFRASTRUCTURE_ERRORS)
    identity.status = None
    identity.keys[PERSON] = new_data_key()
    assert await keys.key_of(PERSON) == identity.keys[PERSON]  # a failure is not cached
    await keys.aclose()


async def test_unreachable_identity_is_an_infrastructure_error() -> None:
    identity = Identity()
    identity.down = True
    keys = client(identity)
    with pytest.raises(OSError, match="identity unreachable"):
        await keys.open(seal(new_data_key(), PERSON, FIELDS))
    await keys.aclose()


async def test_a_key_for_another_person_is_refused() -> None:
    """identity answering with someone else's user_id is a broken answer, not a key to use."""

    def wrong(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"user_id": str(uuid4()), "key": base64.b64encode(new_data_key()).decode()})

    keys = PersonKeys(ServiceSettings(service="notify"), transport=httpx.MockTransport(wrong))
    with pytest.raises(IdentityUnavailable):
        await keys.key_of(PERSON)
    await keys.aclose()
