"""identity's throttles (issue 9, "Throttling"; kernel/throttle.py, services/identity/throttling.py),
in-process on the real database: the probes of the issue, each refused now, and logged."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from kernel.throttle import Rule, Throttle, TooManyAttempts
from tests.support.identity import PASSWORD, RunningIdentity, register_through, running_identity, unique_phone
from tests.support.people import id_number


def client_at(identity: RunningIdentity, address: str) -> httpx.AsyncClient:
    """A client whose requests come from `address` (each test its own: the throttles count per address)."""
    transport = httpx.ASGITransport(app=identity.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://identity.test")


async def security_log(identity: RunningIdentity) -> list[dict[str, object]]:
    rows = await identity.runtime.pool.fetch("SELECT event, subject, address, detail::text AS detail FROM security_log")
    return [dict(r) for r in rows]


async def test_300_wrong_passwords_then_the_right_one_is_refused_and_logged() -> None:
    async with running_identity() as identity:
        person = await identity.register()
        other = await identity.register()
        statuses, answers = [], []
        for attempt in range(300):
            answer = await identity.client.post(
                "/v1/sessions", json={"phone": person.phone, "password": f"wrong-guess-{attempt:03d}"}
            )
            statuses.append(answer.status_code)
            answers.append(answer)
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses[:10]

        right = await identity.client.post("/v1/sessions", json={"phone": person.phone, "password": PASSWORD})
        assert right.status_code == 429, right.text  # locked: even the right password is refused
        body = right.json()
        assert right.headers["content-type"].startswith("application/problem+json")
        assert body["code"] == "too_many_attempts" and body["status"] == 429 and "请" in body["detail"]
        assert 0 < int(right.headers["Retry-After"]) <= 60 and body["retry_after"] == int(right.headers["Retry-After"])
        # Another account from the same address is not locked out by this one's failures.
        theirs = await identity.client.post("/v1/sessions", json={"phone": other.phone, "password": PASSWORD})
        assert theirs.status_code == 201, theirs.text

        log = await security_log(identity)
        events = [r["event"] for r in log]
        assert events.count("login_failed") == 5 and events.count("login_throttled") == 296
        assert events.count("lockout") == 1
        dump = str(log)
        assert "wrong-guess" not in dump and PASSWORD not in dump, "never a password in the security log"
        assert person.phone not in dump and person.phone[3:] not in dump, "the phone only masked"
        assert {r["subject"] for r in log} == {person.phone[:6] + "****" + person.phone[-4:]}
        assert {r["address"] for r in log} == {"127.0.0.1"}


async def test_a_failing_address_is_locked_out_across_accounts() -> None:
    async with running_identity(
        identity_login_address_limit=10, identity_login_address_lockout_seconds=300
    ) as identity:
        people = [await identity.register() for _ in range(4)]
        async with client_at(identity, "198.51.100.20") as attacker, client_at(identity, "198.51.100.21") as other:
            statuses = [
                (
                    await attacker.post("/v1/sessions", json={"phone": p.phone, "password": f"guess-{i}-xxxxx"})
                ).status_code
                for i in range(3)
                for p in people
            ]
            assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
            # Locked by address: a right password from there is refused too; from elsewhere it works.
            locked = await attacker.post("/v1/sessions", json={"phone": people[3].phone, "password": PASSWORD})
            assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 60
            fine = await other.post("/v1/sessions", json={"phone": people[3].phone, "password": PASSWORD})
            assert fine.status_code == 201, fine.text


async def test_mass_registration_is_throttled_per_address() -> None:
    async with running_identity(identity_register_address_limit=5) as identity:
        async with client_at(identity, "203.0.113.7") as farm, client_at(identity, "203.0.113.8") as neighbour:
            statuses = [(await register_through(farm, unique_phone())).status_code for _ in range(8)]
            assert statuses == [201] * 5 + [429] * 3
            refused = await register_through(farm, unique_phone())
            assert refused.json()["code"] == "too_many_attempts" and int(refused.headers["Retry-After"]) > 3000
            assert (await register_through(neighbour, unique_phone())).status_code == 201
        log = await security_log(identity)
        assert sum(r["event"] == "registration_throttled" for r in log) == 4
        assert {r["address"] for r in log if r["event"] == "registration_throttled"} == {"203.0.113.7"}


async def test_40_id_number_probes_are_throttled_and_reveal_nothing(tmp_path: Path) -> None:
    deny = tmp_path / "deny.txt"
    denied = id_number(date(1971, 5, 6), seq=11)
    deny.write_text(denied + "\n", encoding="utf-8")
    async with running_identity(identity_verification_deny_list=deny, identity_verify_address_limit=8) as identity:
        holders = [await identity.person(birth=date(1980 + i, 1, 2)) for i in range(3)]
        bound = [h.id_number for h in holders if h.id_number]
        assert len(bound) == 3

        # A generic refusal (the provider said no), for comparison.
        control = await identity.register()
        generic = await identity.client.post(
            f"/v1/users/{control.user_id}/verification",
            json={"name": "王五", "id_number": denied},
            headers=control.auth,
        )
        assert generic.status_code == 422 and generic.json()["code"] == "verification_failed"

        async with client_at(identity, "192.0.2.40") as prober:
            probing = await identity.register()
            answers = [
                await prober.post(
                    f"/v1/users/{probing.user_id}/verification",
                    json={"name": "王五", "id_number": bound[i % 3]},
                    headers=probing.auth,
                )
                for i in range(40)
            ]
            statuses = [a.status_code for a in answers]
            assert statuses[:5] == [422] * 5 and set(statuses[5:]) == {429}, statuses
            for answer in answers[:5]:  # exactly the generic refusal: nothing tells the number is held
                assert answer.json()["code"] == generic.json()["code"]
                assert answer.json()["detail"] == generic.json()["detail"]
                assert "绑定" not in answer.text and "taken" not in answer.text
            assert int(answers[-1].headers["Retry-After"]) > 60

            # A second account from the same address: the address's rate stops it too (8 per hour).
            second = await identity.register()
            more = [
                (
                    await prober.post(
                        f"/v1/users/{second.user_id}/verification",
                        json={"name": "王五", "id_number": bound[0]},
                        headers=second.auth,
                    )
                ).status_code
                for _ in range(5)
            ]
            assert more == [422, 422, 422, 429, 429]
        log = await security_log(identity)
        assert sum(r["event"] == "verification_failed" for r in log) == 1 + 5 + 3
        assert sum(r["event"] == "verification_throttled" for r in log) == 35 + 2
        assert not any(number in str(log) for number in bound), "no ID number in the security log"


async def test_lockouts_double_and_windows_slide() -> None:
    """kernel.throttle on its own, with a clock the test moves."""
    async with running_identity() as identity:
        now = [datetime(2026, 1, 5, 8, tzinfo=UTC)]
        throttle = Throttle(identity.runtime.pool, b"test-key", clock=lambda: now[0])
        rule = Rule("test_failures", limit=3, window=timedelta(minutes=10), lockout=timedelta(seconds=60))
        key = "+8613900000001"
        assert [await throttle.failed(rule, key) for _ in range(3)] == [0, 0, 60]
        with pytest.raises(TooManyAttempts) as locked:
            await throttle.check(rule, key)
        assert locked.value.retry_after == 60
        now[0] += timedelta(seconds=61)
        await throttle.check(rule, key)  # the lock-out is over
        assert [await throttle.failed(rule, key) for _ in range(3)] == [0, 0, 120]  # the next lasts twice as long
        now[0] += timedelta(seconds=121)
        assert [await throttle.failed(rule, key) for _ in range(3)] == [0, 0, 240]
        now[0] += timedelta(seconds=241)
        await throttle.failed(rule, key)
        await throttle.succeeded(rule, key)  # success forgets the failures in the window
        assert [await throttle.failed(rule, key) for _ in range(2)] == [0, 0]

        rate = Rule("test_rate", limit=2, window=timedelta(minutes=1))
        await throttle.take(rate, key)
        now[0] += timedelta(seconds=30)
        await throttle.take(rate, key)
        with pytest.raises(TooManyAttempts) as full:
            await throttle.take(rate, key)
        assert full.value.retry_after == 30  # when the first use leaves the window
        now[0] += timedelta(seconds=31)
        await throttle.take(rate, key)  # the window slid
        await throttle.take(rate, "another key")
