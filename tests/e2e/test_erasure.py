"""Erasure end to end (docs/personal-data.md, "Erasure"), every service a real process over the real
broker and database: a journey to approval and the SMS, then `flexctl person erase USER_ID`. After
it no table of any service holds the person's phone, name or ID number, the application's history
stays (still approved), the person cannot log in, and neither a rebuild of the status projection
nor a replay of every topic into fresh services brings their data back; the sealed copies on the
topics no longer open."""

import asyncio
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from kernel.personal import PersonKeys
from kernel.settings import ServiceSettings
from tests.support.applicant import (
    PASSWORD,
    Person,
    decide,
    eventually,
    pending_case,
    running_system,
    sms_for,
    staff,
    upload_changzhou_documents,
)
from tests.support.infra import TOPIC_PREFIX, admin_url_of, group_prefix, provision_schema
from tests.support.personal import (
    clear_findings,
    clear_in_tables,
    read_all,
    schemas_with_tables,
    sealed_of,
    session_topics,
)
from tests.support.processes import ROOT, ServiceProcess

ERASED_NAME = "（已删除）"
OURS = ("enrollment", "review", "notify")


def rare_name() -> str:
    """A name no other test uses, so that finding it anywhere means it is this person's."""
    given = "璟瑜琛瑾璇珩琪瑶玥璞珂琰瑛璐"
    return random.choice(["欧阳", "司马", "上官", "诸葛"]) + "".join(random.sample(given, 2))


@pytest.fixture(scope="module")
def system(e2e_env: dict[str, str], log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    with running_system(e2e_env, log_dir, "e2e-erase") as system:
        yield system


def flexctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The operators' command, as a process with a service's settings."""
    return subprocess.run(
        [sys.executable, "-m", "ops.flexctl", *args],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def get(base: str, path: str, auth: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{base}{path}", headers=auth, timeout=15)


def cases_of(system: dict[str, ServiceProcess], operator: dict[str, str], application_id: str) -> list[dict[str, Any]]:
    answer = get(system["review"].url, f"/v1/cases?status=all&application_id={application_id}", operator)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["cases"])


def test_an_erased_person_leaves_no_clear_data_and_the_history_stays(
    system: dict[str, ServiceProcess], e2e_env: dict[str, str], log_dir: Path
) -> None:
    name, birth = rare_name(), date(1979, 4, 23)
    person = Person(system, name, birth, male=True)
    person.register_and_verify()
    application_id = person.apply(
        pension_tier=2, medical_tier=5, household_kind="changzhou",
        household_region_code="320402", residence_district_code="320411",
    )  # fmt: skip
    upload_changzhou_documents(person, application_id)
    person.submit(application_id)
    reviewer, operator = staff(system, "reviewer"), staff(system, "operator")
    case = pending_case(system, reviewer, application_id, attempt=1)
    assert case["applicant"]["name"] == name and case["applicant"]["birth_date"] == birth.isoformat()
    decide(system, reviewer, case["case_id"], {"decision": "approved"})
    [sms] = sms_for(system, operator, person.user_id, 1)
    assert sms["phone_masked"] is not None and person.phone not in str(sms)
    person.wait_for_status(application_id, "approved", notified=True)
    person.read_agency_notice(application_id)
    form_path = f"/v1/applications/{application_id}/registration-form.pdf"
    assert get(system["enrollment"].url, form_path, operator).status_code == 200

    # --- the erasure, as an operator runs it --------------------------------------------------
    erased = flexctl(system["identity"].env, "person", "erase", person.user_id, "--yes")
    assert erased.returncode == 0, erased.stdout + erased.stderr
    assert person.phone not in erased.stdout + erased.stderr and name not in erased.stdout + erased.stderr

    # Each service learns it from identity.events.
    def blanked() -> bool:
        [seen] = cases_of(system, operator, application_id)
        return bool(seen["applicant"]["personal_data_erased"])

    eventually(blanked, "review to blank the applicant's data")
    [seen] = cases_of(system, operator, application_id)
    assert seen["applicant"]["name"] == ERASED_NAME and seen["applicant"]["birth_date"] is None
    assert seen["applicant"]["phone_masked"] is None and seen["applicant"]["age_at_submission"] is None
    assert seen["status"] == "decided" and seen["decision"] == "approved"  # the decision stays

    def form_gone() -> httpx.Response | None:
        answer = get(system["enrollment"].url, form_path, operator)
        return answer if answer.status_code == 410 else None

    gone = eventually(form_gone, "enrollment to refuse the form of an erased person")
    assert gone.json()["code"] == "personal_data_erased" and "删除" in gone.json()["detail"]

    def phone_cleared() -> bool:
        answer = get(system["notify"].url, f"/v1/sms?recipient_id={person.user_id}", operator)
        return all(m["phone_masked"] is None for m in answer.json()["items"])

    eventually(phone_cleared, "notify to clear the phone of the person's messages")
    [message] = get(system["notify"].url, f"/v1/sms?recipient_id={person.user_id}", operator).json()["items"]
    assert message["state"] == "sent"  # what happened stays: it was texted

    view = get(system["enrollment"].url, f"/v1/applications/{application_id}", operator).json()
    assert view["status"] == "approved" and view["notified"] and view["attempt"] == 1
    login = httpx.post(f"{system['identity'].url}/v1/sessions", json={"phone": person.phone, "password": PASSWORD})
    assert login.status_code == 401, login.text

    clear = [person.phone, name, person.id_number]
    database = admin_url_of(e2e_env["DATABASE_URL"])  # the scans read every schema, as the administrator
    every_schema = asyncio.run(schemas_with_tables(database))
    assert set(OURS) | {"identity"} <= set(every_schema)
    assert asyncio.run(clear_in_tables(database, every_schema, clear)) == []
    assert asyncio.run(clear_in_tables(database, OURS, [birth.isoformat()])) == []

    # --- a rebuild of the status projection from the topics -----------------------------------
    rebuilt = flexctl(system["enrollment"].env, "projection", "rebuild", "enrollment-status")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    view = get(system["enrollment"].url, f"/v1/applications/{application_id}", operator).json()
    assert view["status"] == "approved" and view["notified"]
    assert asyncio.run(clear_in_tables(database, ["enrollment"], [*clear, birth.isoformat()])) == []

    # --- every topic, read back: nothing in clear, and the sealed copies no longer open -------
    messages = asyncio.run(read_all(asyncio.run(session_topics(TOPIC_PREFIX))))
    secrets = [*clear, birth.isoformat(), f"+86{person.phone}"]
    leaks = [(m.where(), f) for m in messages for f in clear_findings(m.raw, secrets) if any(s in f for s in secrets)]
    assert leaks == []
    sealed = sealed_of(messages, UUID(person.user_id))
    assert len(sealed) >= 3 and {s.alg for s in sealed} == {"A256GCM"}  # registered, verified, submitted

    async def open_all() -> list[dict[str, Any] | None]:
        settings = ServiceSettings(service="enrollment", identity_url=system["identity"].url)
        keys = PersonKeys(settings)
        try:
            assert await keys.key_of(UUID(person.user_id)) is None
            return [await keys.open(s) for s in sealed]
        finally:
            await keys.aclose()

    assert asyncio.run(open_all()) == [None] * len(sealed)

    # --- a replay of every topic into fresh services ---------------------------------------------
    replay_env = {"CONSUMER_GROUP_PREFIX": group_prefix("e2e-replay"), "BATCH_WAIT_MS": "10"}
    schemas = {name: f"{name}_replay_{uuid4().hex[:6]}" for name in OURS}
    for name, schema in schemas.items():  # as an operator provisions a service's new schema
        asyncio.run(provision_schema(name, schema, database))
    replayed = {
        name: ServiceProcess(
            name, {**system[name].env, **replay_env, "SCHEMA_NAME": schemas[name], "RELAY_ENABLED": "false"}, log_dir
        )
        for name in OURS
    }
    try:
        for service in replayed.values():
            service.start()
        assert_replay_forgets(replayed, schemas, database, person.user_id, application_id, operator)
        assert asyncio.run(clear_in_tables(database, schemas.values(), [*clear, birth.isoformat()])) == []
    finally:
        for service in replayed.values():
            service.stop()


def assert_replay_forgets(
    replayed: dict[str, ServiceProcess],
    schemas: dict[str, str],
    database: str,
    user_id: str,
    application_id: str,
    operator: dict[str, str],
) -> None:
    """Services rebuilt from the topics keep the person's history and none of their data."""

    async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    def rows(sql: str, *args: Any) -> list[asyncpg.Record]:
        return asyncio.run(fetch(sql, *args))

    def caught_up() -> bool:
        erased = rows(f'SELECT 1 FROM "{schemas["enrollment"]}".erased_people WHERE user_id = $1', UUID(user_id))
        cases = rows(
            f'SELECT 1 FROM "{schemas["review"]}".cases WHERE application_id = $1 '
            "AND personal_data_erased_at IS NOT NULL",
            UUID(application_id),
        )
        failed = rows(
            f'SELECT 1 FROM "{schemas["notify"]}".sms_messages WHERE recipient_id = $1 AND phone IS NULL '
            "AND recipient_erased_at IS NOT NULL",
            UUID(user_id),
        )
        return bool(erased and cases and failed)

    eventually(caught_up, "the replayed services to reach the erasure", timeout=120)
    assert rows(f'SELECT * FROM "{schemas["enrollment"]}".people WHERE user_id = $1', UUID(user_id)) == []
    assert rows(f'SELECT * FROM "{schemas["notify"]}".recipients WHERE user_id = $1', UUID(user_id)) == []
    # enrollment's applications live in its event store, not on topics it reads: its status view
    # comes back from the topics by the operators' rebuild (enrollment.events plus the subscribed ones).
    enrollment = replayed["enrollment"]
    rebuilt = flexctl(enrollment.env, "projection", "rebuild", "enrollment-status", "--schema", schemas["enrollment"])
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    view = get(enrollment.url, f"/v1/applications/{application_id}", operator).json()
    assert view["status"] == "approved" and view["notified"], view
    [case] = get(replayed["review"].url, f"/v1/cases?status=all&application_id={application_id}", operator).json()[
        "cases"
    ]
    assert case["applicant"]["name"] == ERASED_NAME and case["applicant"]["personal_data_erased"]
