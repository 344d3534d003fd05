"""An applicant and the staff, talking to the running services' public APIs only (and `flexctl` for
staff accounts), as the end-to-end tests drive the application journey of the guide."""

import asyncio
import concurrent.futures
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import asyncpg
import httpx

from tests.support import documents
from tests.support.infra import admin_url_of, group_prefix
from tests.support.people import id_number
from tests.support.processes import ROOT, ServiceProcess

T = TypeVar("T")
PASSWORD = "s3cret-pass"
# Real files: enrollment decodes images and parses PDFs (tests/support/documents.py).
PNG = documents.png()
JPEG = documents.jpeg()
PDF = documents.pdf()


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 45.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


PEOPLE: list["Person"] = []  # every test person of this session, in order of creation


class Person:
    """An applicant on a phone, talking to the public APIs only. Every one is remembered in
    `PEOPLE`, so that a scan for personal data in clear knows what to look for."""

    def __init__(self, system: dict[str, ServiceProcess], name: str, birth: date, male: bool) -> None:
        self.system = system
        self.name = name
        self.birth = birth
        self.phone = f"139{uuid4().int % 10**8:08d}"
        self.id_number = id_number(birth, male=male, seq=uuid4().int % 400)
        self.identity = httpx.Client(base_url=system["identity"].url, timeout=15)
        self.enrollment = httpx.Client(base_url=system["enrollment"].url, timeout=15)
        self.codes: list[str] = []  # the one-time codes texted to this person's phone
        PEOPLE.append(self)

    @property
    def personal_data(self) -> list[str]:
        """What must never be seen in clear: phone, name, ID number, birth date."""
        return [self.phone, self.name, self.id_number, self.birth.isoformat()]

    def register_and_verify(self) -> None:
        # The phone proven as the app does it: ask a code, read it on the phone (texted_code), register.
        asked = self.identity.post("/v1/phone-codes", json={"phone": self.phone, "purpose": "register"})
        assert asked.status_code == 202, asked.text
        code = texted_code(self.system, self.phone)
        self.codes.append(code)  # never to be seen on a topic (test_personal_data_on_topics)
        created = self.identity.post("/v1/users", json={"phone": self.phone, "password": PASSWORD, "code": code})
        assert created.status_code == 201, created.text
        self.user_id = created.json()["user_id"]
        token = login(self.identity, self.phone)
        self.auth = {"Authorization": f"Bearer {token}"}
        verified = self.identity.post(
            f"/v1/users/{self.user_id}/verification",
            json={"name": self.name, "id_number": self.id_number},
            headers=self.auth,
        )
        assert verified.status_code == 201, verified.text

    def apply(self, **choices: Any) -> str:
        notice = self.enrollment.get("/v1/notice")
        assert notice.status_code == 200 and "12333" in notice.text and "96888732" in notice.text
        body = {"notice_version": notice.json()["version"], **choices}

        def created() -> str | None:  # enrollment learns of the verification through Kafka
            answer = self.enrollment.post("/v1/applications", json=body, headers=self.auth)
            if answer.status_code == 503 and answer.json()["code"] == "verification_pending":
                assert answer.headers["retry-after"], answer.headers  # verified, not yet known: retry
                return None
            assert answer.status_code == 201, answer.text
            return str(answer.json()["application_id"])

        return eventually(created, "enrollment to know the verified person")

    def upload(self, application_id: str, kind: str, content: bytes, filename: str) -> None:
        answer = self.enrollment.put(
            f"/v1/applications/{application_id}/documents/{kind}",
            files={"file": (filename, content, "application/octet-stream")},
            headers=self.auth,
        )
        assert answer.status_code in (200, 201), answer.text

    def submit(self, application_id: str) -> None:
        answer = self.enrollment.post(f"/v1/applications/{application_id}/submit", headers=self.auth)
        assert answer.status_code in (200, 201, 202), answer.text

    def read_agency_notice(self, application_id: str) -> dict[str, Any]:
        """Guide PART-8: after approval, read and accept 《劳动事务代理人员须知》 (before the form)."""
        notice = self.enrollment.get("/v1/agency-notice")
        assert notice.status_code == 200 and notice.json()["title"] == "劳动事务代理人员须知", notice.text
        body = {"version": notice.json()["version"]}
        answer = self.enrollment.post(f"/v1/applications/{application_id}/agency-notice", json=body, headers=self.auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["agency_notice_version"] == body["version"]
        return answer.json()  # type: ignore[no-any-return]

    def status(self, application_id: str) -> dict[str, Any]:
        answer = self.enrollment.get(f"/v1/applications/{application_id}", headers=self.auth)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def wait_for_status(self, application_id: str, status: str, notified: bool = False) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            last.update(self.status(application_id))
            if last["status"] != status:
                return None
            return dict(last) if not notified or last["notified"] else None

        try:
            return eventually(reached, f"status {status}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last view: {last}") from None


SERVICES = ("identity", "enrollment", "review", "notify")


# Every test of a session runs from 127.0.0.1 against one database: identity's throttles get room
# (the throttling tests set their own limits).
IDENTITY_TEST_ENV = {
    "IDENTITY_CODE_RESEND_WINDOW_SECONDS": "0",
    "IDENTITY_CODE_PHONE_LIMIT": "1000",
    "IDENTITY_CODE_ADDRESS_LIMIT": "100000",
    "IDENTITY_REGISTER_ADDRESS_LIMIT": "100000",
    "IDENTITY_LOGIN_ADDRESS_LIMIT": "100000",
    "IDENTITY_VERIFY_ADDRESS_LIMIT": "100000",
}


def services(env: dict[str, str], log_dir: Path, names: tuple[str, ...] = SERVICES) -> dict[str, ServiceProcess]:
    """The services as processes (not started), each told where identity is: enrollment, review
    and notify ask it for persons' keys (docs/personal-data.md) with their shipped tokens. identity
    texts one-time codes through notify when notify runs (its local sink is then the phone), else
    into its own code_sink (IDENTITY_CODE_SENDER=local_sink)."""
    notify = ServiceProcess("notify", env, log_dir) if "notify" in names else None
    codes = {"IDENTITY_NOTIFY_URL": notify.url} if notify else {"IDENTITY_CODE_SENDER": "local_sink"}
    identity = ServiceProcess("identity", {**env, **IDENTITY_TEST_ENV, **codes}, log_dir)
    with_identity = {**env, "IDENTITY_URL": identity.url}
    if notify:
        notify.env = with_identity
    return {
        name: identity if name == "identity" else notify if name == "notify" and notify else
        ServiceProcess(name, with_identity, log_dir)
        for name in names
    }  # fmt: skip


def texted_code(system: dict[str, ServiceProcess], phone: str) -> str:
    """The one-time code last texted to `phone`: from notify's local sink gateway (`sms_sink`) when
    notify runs, else from identity's `code_sink`; read as the administrator."""
    e164 = "+86" + phone.removeprefix("+86")
    where = system.get("notify") or system["identity"]
    schema = where.env.get("SCHEMA_NAME") or where.name
    table = "sms_sink" if where.name == "notify" else "code_sink"

    async def read() -> str | None:
        conn = await asyncpg.connect(admin_url_of(where.env["DATABASE_URL"]))
        try:
            text: str | None = await conn.fetchval(
                f'SELECT text FROM "{schema}".{table} WHERE phone = $1 AND template = $2 ORDER BY id DESC LIMIT 1',
                e164,
                "one_time_code",
            )
            return text
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        text = thread.submit(asyncio.run, read()).result()
    found = re.search(r"验证码为(\d{6})", text or "")
    assert found is not None, f"no code was texted to the phone: {text!r}"
    return found.group(1)


@contextmanager
def running_system(
    e2e_env: dict[str, str], log_dir: Path, label: str, names: tuple[str, ...] = SERVICES
) -> Iterator[dict[str, ServiceProcess]]:
    """The services started as processes on consumer groups of their own (`label`), stopped after."""
    env = {**e2e_env, "CONSUMER_GROUP_PREFIX": group_prefix(label), "BATCH_WAIT_MS": "10"}
    system = services(env, log_dir, names)
    started: list[ServiceProcess] = []
    try:
        for service in system.values():
            started.append(service.start())
        yield system
    finally:
        for service in started:
            service.stop()


def login(identity: httpx.Client, phone: str) -> str:
    session = identity.post("/v1/sessions", json={"phone": phone, "password": PASSWORD})
    assert session.status_code == 201, session.text
    return str(session.json()["access_token"])


def staff_phone(
    system: dict[str, ServiceProcess], role: str, agency: str | None = None, number: str | None = None
) -> str:
    """A staff account made with `flexctl staff add` (password PASSWORD); its phone, to log in with.

    Staff are linked to their own ID number (review refuses them their own case), one staff account
    per number: `number` (an applicant's own, to test own_case), else a random one. The password
    goes through stdin, never argv."""
    phone = f"137{uuid4().int % 10**8:08d}"
    env = {**system["identity"].env, "PYTHONPATH": str(ROOT)}
    where = ["--agency", agency] if agency else []
    born = date(1965, 1, 1) + timedelta(days=uuid4().int % 10000)
    number = number or id_number(born, region="320411", seq=uuid4().int % 400)
    subprocess.run(
        [sys.executable, "-m", "ops.flexctl", "staff", "add", "--phone", phone, "--password-stdin", "--role", role,
         "--name", "李审核", "--id-number", number, *where],
        cwd=ROOT, env=env, check=True, capture_output=True, input=PASSWORD + "\n", text=True,
    )  # fmt: skip
    return phone


def staff(system: dict[str, ServiceProcess], role: str, agency: str | None = None) -> dict[str, str]:
    """A staff account's bearer header (`staff_phone`, logged in)."""
    phone = staff_phone(system, role, agency)
    identity = httpx.Client(base_url=system["identity"].url, timeout=15)
    return {"Authorization": f"Bearer {eventually(lambda: login(identity, phone), 'staff login')}"}


def pending_case(
    system: dict[str, ServiceProcess], reviewer: dict[str, str], application_id: str, attempt: int
) -> dict[str, Any]:
    review = httpx.Client(base_url=system["review"].url, timeout=15)

    def found() -> dict[str, Any] | None:
        answer = review.get("/v1/cases", params={"status": "pending"}, headers=reviewer)
        assert answer.status_code == 200, answer.text
        cases = [c for c in answer.json()["cases"] if c["application_id"] == application_id and c["attempt"] == attempt]
        assert len(cases) <= 1, "one case per submission"
        return cases[0] if cases else None

    return eventually(found, f"review case for attempt {attempt}")


def decide(system: dict[str, ServiceProcess], reviewer: dict[str, str], case_id: str, body: dict[str, Any]) -> None:
    review = httpx.Client(base_url=system["review"].url, timeout=15)
    answer = review.post(f"/v1/cases/{case_id}/decision", json=body, headers=reviewer)
    assert answer.status_code == 201, answer.text
    again = review.post(f"/v1/cases/{case_id}/decision", json=body, headers=reviewer)
    assert again.status_code == 409 and again.json()["code"] == "already_decided"


def sms_for(
    system: dict[str, ServiceProcess], operator: dict[str, str], user_id: str, count: int
) -> list[dict[str, Any]]:
    notify = httpx.Client(base_url=system["notify"].url, timeout=15)

    def sent() -> list[dict[str, Any]] | None:
        answer = notify.get("/v1/sms", params={"recipient_id": user_id}, headers=operator)
        assert answer.status_code == 200, answer.text
        items = [m for m in answer.json()["items"] if m["state"] == "sent"]
        assert len(items) <= count, "never more than one SMS per decision"
        return items if len(items) == count else None

    return eventually(sent, f"{count} SMS to the applicant")


def upload_changzhou_documents(person: Person, application_id: str) -> None:
    person.upload(application_id, "id_card_front", PNG, "front.png")
    person.upload(application_id, "id_card_back", JPEG, "back.jpg")
    person.upload(application_id, "hukou_first_page", PDF, "hukou1.pdf")
    person.upload(application_id, "hukou_own_page", JPEG, "hukou2.jpg")


# Pension 三档, medical 五档, a Changzhou household living in 新北区: the usual application of the tests.
CHANGZHOU = {"household_kind": "changzhou", "household_region_code": "320402", "residence_district_code": "320411"}


def decided_application(
    system: dict[str, ServiceProcess], name: str, birth: date, male: bool, decision: dict[str, Any]
) -> tuple[Person, str]:
    """A verified person whose application (pension 三档, medical 五档, Changzhou) was submitted and
    decided by a reviewer of 新北区 (`decision`: review's body, e.g. {"decision": "approved"})."""
    person = Person(system, name, birth, male=male)
    person.register_and_verify()
    application_id = person.apply(pension_tier=3, medical_tier=5, **CHANGZHOU)
    upload_changzhou_documents(person, application_id)
    person.submit(application_id)
    reviewer = staff(system, "reviewer", agency="320411")
    case = pending_case(system, reviewer, application_id, attempt=1)
    decide(system, reviewer, case["case_id"], decision)
    return person, application_id


def listed_bills(system: dict[str, ServiceProcess], person: Person, count: int) -> dict[str, Any]:
    """The person's bills view once it lists at least `count` bills (the account opens through Kafka)."""
    payment = httpx.Client(base_url=system["payment"].url, timeout=15)

    def listed() -> dict[str, Any] | None:
        answer = payment.get(f"/v1/insured/{person.user_id}/bills", headers=person.auth)
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        return view if len(view["bills"]) >= count else None

    return eventually(listed, f"{count} bills")
