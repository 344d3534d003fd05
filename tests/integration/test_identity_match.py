"""identity's match question (docs/personal-data.md, "Who gets the key"): POST /v1/people/match
answers payment alone, with the user_id when the ID number is bound and the verified name is the
one given, and with one and the same 404 for every other case."""

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from kernel.settings import local_secret
from tests.support.identity import RunningIdentity, running_identity
from tests.support.people import id_number

URL = "/v1/people/match"
PAYMENT = {"Authorization": f"Bearer {local_secret('identity-match', 'payment')}"}


@pytest.fixture
async def identity() -> AsyncIterator[RunningIdentity]:
    async with running_identity() as running:
        yield running


async def ask(identity: RunningIdentity, number: str, name: str, headers: dict[str, str] = PAYMENT) -> httpx.Response:
    return await identity.client.post(URL, json={"id_number": number, "name": name}, headers=headers)


def not_found(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["code"] == "person_not_found"
    return body


async def test_a_verified_number_and_its_name_match_the_person(identity: RunningIdentity) -> None:
    person = await identity.person(name="欧阳·明")
    assert person.id_number is not None
    answer = await ask(identity, person.id_number, "欧阳·明")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"user_id": str(person.user_id)}
    assert answer.headers["cache-control"] == "no-store"
    # The number as people type it: lower-case x, spaces around; the name with blanks around.
    spaced = await ask(identity, f" {person.id_number.lower()} ", " 欧阳·明 ")
    assert spaced.status_code == 200 and spaced.json() == {"user_id": str(person.user_id)}


async def test_another_name_and_an_unknown_number_get_one_answer(
    identity: RunningIdentity, capsys: pytest.CaptureFixture[str]
) -> None:
    person = await identity.person(name="张三")
    assert person.id_number is not None
    unknown = id_number(date(1985, 6, 1), seq=777)
    answers = [
        await ask(identity, person.id_number, "张四"),  # the number is known, the name is not theirs
        await ask(identity, person.id_number, "张"),  # a prefix of the name is not the name
        await ask(identity, unknown, "张三"),  # nobody holds the number
    ]
    bodies = [not_found(answer) for answer in answers]
    assert bodies[0] == bodies[1] == bodies[2]  # same status, same body: nothing tells them apart
    assert any("\u4e00" <= ch <= "\u9fff" for ch in bodies[0]["detail"])
    assert "user_id" not in bodies[0]
    log = capsys.readouterr().out
    assert "person_match_asked" in log  # who asked is logged ...
    assert person.id_number not in log and unknown not in log and "张四" not in log  # ... never what


async def test_an_erased_person_is_not_found(identity: RunningIdentity) -> None:
    person = await identity.person(name="李四")
    assert person.id_number is not None
    assert (await ask(identity, person.id_number, "李四")).status_code == 200
    await identity.erase(person.user_id)
    erased = not_found(await ask(identity, person.id_number, "李四"))
    unknown = not_found(await ask(identity, id_number(date(1985, 6, 1), seq=778), "李四"))
    assert erased == unknown


async def test_only_payment_may_ask(identity: RunningIdentity) -> None:
    person = await identity.person(name="王五")
    assert person.id_number is not None
    missing = await ask(identity, person.id_number, "王五", headers={})
    assert missing.status_code == 401 and missing.json()["code"] == "authentication_required"
    # A key reader's token (payment's included), a person's login and a made-up token are no match token.
    for token in (local_secret("personal-data", "payment"), person.token, "not-a-token"):
        answer = await ask(identity, person.id_number, "王五", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_token", token
        assert any("\u4e00" <= ch <= "\u9fff" for ch in answer.json()["detail"])


async def test_the_askers_and_their_tokens_come_from_settings() -> None:
    async with running_identity(identity_match_readers={"payment": "a-token-of-payment"}) as identity:
        person = await identity.person(name="赵六")
        assert person.id_number is not None
        shipped = await ask(identity, person.id_number, "赵六")
        assert shipped.status_code == 401
        configured = await ask(
            identity, person.id_number, "赵六", headers={"Authorization": "Bearer a-token-of-payment"}
        )
        assert configured.status_code == 200 and configured.json() == {"user_id": str(person.user_id)}
