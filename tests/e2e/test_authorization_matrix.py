"""The authorisation matrix (issue 9): every route of every service, as each kind of caller, against
the five services running as real processes.

The routes come from each service's own OpenAPI document, so a route added without an entry in
`POLICY` fails this test: every route has an owner and a role, written down here. Callers:

- `none`: no token; `forged`: a token of the right shape signed with a key identity does not hold;
- `owner`: the applicant whose application, account and messages the paths name (approved, billed);
- `other`: another verified applicant;
- `reviewer_in` / `reviewer_out`: reviewers bound to the owner's accepting agency / to another one;
- `city_reviewer`: a reviewer bound to no agency; `operator`;
- `disabled`: an operator whose account was disabled after it logged in (its token is refused
  everywhere once the services refreshed the revocations).

An allowed caller gets anything but 401 and 403 (its request may still be refused for what it
asks: 404, 409, 422); a refused caller gets 401, 403, or 404 where a resource is hidden as absent.
Mutating routes run after the reads, the review decision last."""

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support import documents
from tests.support.applicant import (
    Person,
    decide,
    eventually,
    pending_case,
    running_system,
    staff,
    upload_changzhou_documents,
)
from tests.support.payment import issue_bills
from tests.support.processes import ROOT, ServiceProcess

NAMES = ("identity", "enrollment", "review", "notify", "payment")
KINDS = ("none", "forged", "owner", "other", "reviewer_in", "reviewer_out", "city_reviewer", "operator", "disabled")
STAFF = frozenset({"reviewer_in", "reviewer_out", "city_reviewer", "operator"})
PUBLIC = frozenset(KINDS)
SIGNED_IN = frozenset({"owner", "other"}) | STAFF
NOBODY: frozenset[str] = frozenset()  # service tokens or channel signatures only


def only(*kinds: str) -> frozenset[str]:
    return frozenset(kinds)


# (service, "METHOD path") -> the callers allowed. Everyone else is refused.
POLICY: dict[tuple[str, str], frozenset[str]] = {
    # identity
    ("identity", "POST /v1/phone-codes"): PUBLIC,
    ("identity", "POST /v1/users"): PUBLIC,
    ("identity", "POST /v1/sessions"): PUBLIC,
    ("identity", "GET /.well-known/jwks.json"): PUBLIC,
    ("identity", "GET /v1/token-revocations"): PUBLIC,
    ("identity", "GET /v1/users/{user_id}"): only("owner", "operator"),
    ("identity", "POST /v1/users/{user_id}/verification"): only("owner"),
    ("identity", "POST /v1/users/{user_id}/phone-codes"): only("owner"),
    ("identity", "PUT /v1/users/{user_id}/phone"): only("owner"),
    ("identity", "GET /v1/person-keys/{user_id}"): NOBODY,
    ("identity", "POST /v1/people/match"): NOBODY,
    ("identity", "GET /v1/staff/me/same-person/{applicant_id}"): STAFF,
    # enrollment
    ("enrollment", "GET /v1/notice"): PUBLIC,
    ("enrollment", "GET /v1/agency-notice"): PUBLIC,
    ("enrollment", "POST /v1/applications"): only("owner", "other"),
    ("enrollment", "GET /v1/applications"): SIGNED_IN,  # one's own applications (staff: none)
    ("enrollment", "GET /v1/applications/{application_id}"): only("owner", "reviewer_in", "city_reviewer", "operator"),
    ("enrollment", "PUT /v1/applications/{application_id}/documents/{kind}"): only("owner"),
    ("enrollment", "GET /v1/applications/{application_id}/documents/{kind}"): only(
        "owner", "reviewer_in", "city_reviewer", "operator"
    ),
    ("enrollment", "POST /v1/applications/{application_id}/submit"): only("owner"),
    ("enrollment", "GET /v1/applications/{application_id}/agency-notice"): only("owner"),
    ("enrollment", "POST /v1/applications/{application_id}/agency-notice"): only("owner"),
    ("enrollment", "PATCH /v1/applications/{application_id}"): only("owner"),
    ("enrollment", "GET /v1/applications/{application_id}/registration-form.pdf"): only(
        "owner", "reviewer_in", "city_reviewer", "operator"
    ),
    # Not possible in the app (guide Q7): every signed-in caller is told so.
    ("enrollment", "POST /v1/back-payments"): SIGNED_IN,
    ("enrollment", "POST /v1/suspensions"): SIGNED_IN,
    ("enrollment", "GET /v1/stats/applications"): STAFF,  # the dashboard: aggregates only
    # review
    ("review", "GET /v1/cases"): STAFF,
    ("review", "GET /v1/cases/{case_id}"): only("reviewer_in", "city_reviewer", "operator"),
    ("review", "POST /v1/cases/{case_id}/decision"): only("reviewer_in", "city_reviewer"),
    ("review", "GET /v1/reason-codes"): STAFF,
    ("review", "GET /v1/agencies"): STAFF,
    ("review", "GET /v1/stats/decisions"): STAFF,  # a bound reviewer: their agency's figures
    # payment
    ("payment", "PUT /v1/insured/{user_id}/tiers"): only("owner"),
    ("payment", "GET /v1/insured/{user_id}/bills"): only("owner", "operator"),
    ("payment", "POST /v1/channels/{channel}/notifications"): NOBODY,
    ("payment", "POST /v1/channels/bank_withholding/agreements"): NOBODY,
    ("payment", "GET /v1/insured/{user_id}/withholding-agreements"): only("owner", "operator"),
    ("payment", "GET /v1/withholding/collections"): only("operator"),
    ("payment", "GET /v1/refunds"): only("operator"),
    ("payment", "GET /v1/reconciliation/exceptions"): only("operator"),
    ("payment", "POST /v1/bills/lookup"): only("owner", "other", "operator"),
    # The route admits reviewers too, but their tokens carry no `payment` audience (kernel.auth.AUDIENCES).
    ("payment", "GET /v1/stats/settlements"): only("operator"),
    # The year's amounts per tier: whoever uses payment (reviewers' tokens do not name it).
    ("payment", "GET /v1/tariffs/{year}"): only("owner", "other", "operator"),
    # notify
    ("notify", "GET /v1/sms"): only("operator"),
    ("notify", "GET /v1/sms/sink"): only("operator"),
    ("notify", "GET /v1/sms/{sms_id}"): only("operator"),
    ("notify", "POST /v1/internal/one-time-codes"): NOBODY,
}
# A 401 about what the body carries (a password, a code), not about who is calling.
BODY_CREDENTIALS = {"invalid_credentials", "invalid_code"}
# Whose health is everyone's business: not part of the matrix.
UNGUARDED = {"GET /healthz", "GET /readyz"}
BODIES: dict[str, Any] = {
    "POST /v1/phone-codes": {"phone": "13900000000", "purpose": "register"},
    "POST /v1/users": {"phone": "13900000000", "password": "not-a-common-one-9", "code": "000000"},
    "POST /v1/sessions": {"phone": "13900000000", "password": "not-a-common-one-9"},
    "POST /v1/bills/lookup": {"id_number": "320402199001010017", "name": "张三"},
    "POST /v1/cases/{case_id}/decision": {"decision": "approved"},
    "PUT /v1/insured/{user_id}/tiers": {"pension_tier": 3, "medical_tier": 5},
    "POST /v1/users/{user_id}/verification": {"name": "张三", "id_number": "320402199001010017"},
    "POST /v1/users/{user_id}/phone-codes": {"phone": "13900000001"},
    "PUT /v1/users/{user_id}/phone": {"phone": "13900000001", "code": "000000", "password": "not-a-common-one-9"},
    "POST /v1/applications/{application_id}/agency-notice": {"version": "2026-01"},
    "PATCH /v1/applications/{application_id}": {"pension_tier": 2},
}


@dataclass
class World:
    system: dict[str, ServiceProcess]
    headers: dict[str, dict[str, str]]
    path_values: dict[str, str]


def forged_token(user_id: str) -> str:
    """Right claims, right algorithm, a key of our own: what an outsider can make."""
    claims = {"sub": user_id, "role": "operator", "iss": "flexenroll-identity", "exp": int(time.time()) + 600,
              "aud": list(NAMES), "ver": 1}  # fmt: skip
    return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "flexenroll-dev"})


def staff_phone_token(system: dict[str, ServiceProcess], role: str) -> tuple[str, dict[str, str]]:
    headers = staff(system, role)
    token = headers["Authorization"].removeprefix("Bearer ")
    payload = jwt.decode(token, options={"verify_signature": False})
    return str(payload["sub"]), headers


def disable(system: dict[str, ServiceProcess], user_id: str) -> None:
    env = {**system["identity"].env, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "ops.flexctl", "staff", "disable", user_id], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def world(e2e_env: dict[str, str], log_dir: Path) -> Iterator[World]:
    env = {**e2e_env, "TOKEN_REVOCATIONS_REFRESH_SECONDS": "1", "NOTIFY_SENDER_POLL_SECONDS": "0.2"}
    with running_system(env, log_dir, "matrix", NAMES) as system:
        owner = Person(system, "许矩阵", date(1986, 4, 9), male=True)
        owner.register_and_verify()
        application_id = owner.apply(pension_tier=3, medical_tier=5, household_kind="changzhou",
                                     household_region_code="320402", residence_district_code="320411")  # fmt: skip
        upload_changzhou_documents(owner, application_id)
        owner.submit(application_id)
        other = Person(system, "何旁人", date(1990, 8, 1), male=False)
        other.register_and_verify()
        city = staff(system, "reviewer")
        case = pending_case(system, city, application_id, attempt=1)
        decide(system, city, case["case_id"], {"decision": "approved"})
        owner.wait_for_status(application_id, "approved")
        issue_bills(system["payment"])
        disabled_id, disabled_headers = staff_phone_token(system, "operator")
        disable(system, disabled_id)
        time.sleep(3)  # every service refreshed its revocations (TOKEN_REVOCATIONS_REFRESH_SECONDS=1)
        operator = staff(system, "operator")
        sms = eventually(lambda: _an_sms_of(system, operator, owner.user_id), "the owner's decision SMS")
        headers = {
            "none": {},
            "forged": {"Authorization": f"Bearer {forged_token(owner.user_id)}"},
            "owner": owner.auth,
            "other": other.auth,
            "reviewer_in": staff(system, "reviewer", agency="320411"),
            "reviewer_out": staff(system, "reviewer", agency="320402"),
            "city_reviewer": city,
            "operator": operator,
            "disabled": disabled_headers,
        }
        values = {
            "user_id": owner.user_id,
            "application_id": application_id,
            "case_id": case["case_id"],
            "kind": "id_card_front",
            "sms_id": sms,
            "channel": "wechat",
            "applicant_id": owner.user_id,
            "year": "2027",
        }
        yield World(system, headers, values)


def _an_sms_of(system: dict[str, ServiceProcess], operator: dict[str, str], user_id: str) -> str | None:
    answer = httpx.get(f"{system['notify'].url}/v1/sms", params={"recipient_id": user_id}, headers=operator)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    return str(items[0]["sms_id"]) if items else None


def routes(system: dict[str, ServiceProcess]) -> list[tuple[str, str, str]]:
    """(service, method, path) of every route each running service declares."""
    found = []
    for name in NAMES:
        document = httpx.get(f"{system[name].url}/openapi.json", timeout=15)
        assert document.status_code == 200, document.text
        for path, operations in document.json()["paths"].items():
            for method in operations:
                found.append((name, method.upper(), path))
    return found


def call(world: World, service: str, method: str, path: str, kind: str) -> httpx.Response:
    concrete = path
    for name, value in world.path_values.items():
        concrete = concrete.replace("{" + name + "}", value)
    body = BODIES.get(f"{method} {path}", {})
    url = f"{world.system[service].url}{concrete}"
    headers = world.headers[kind]
    if path.endswith("/documents/{kind}") and method == "PUT":
        png = documents.png()
        return httpx.put(url, headers=headers, files={"file": ("a.png", png, "image/png")}, timeout=15)
    if method == "GET":
        return httpx.get(url, headers=headers, timeout=15)
    return httpx.request(method, url, headers=headers, json=body, timeout=15)


def order(route: tuple[str, str, str]) -> tuple[int, str]:
    _, method, path = route
    last = path.endswith("/decision")
    return (2 if last else 0 if method == "GET" else 1, path)


def test_every_route_refuses_whom_it_must_and_serves_whom_it_may(world: World) -> None:
    declared = routes(world.system)
    unlisted = [r for r in declared if f"{r[1]} {r[2]}" not in UNGUARDED and (r[0], f"{r[1]} {r[2]}") not in POLICY]
    assert unlisted == [], f"routes without an owner and a role in POLICY: {unlisted}"
    wrong: list[str] = []
    for service, method, path in sorted(declared, key=order):
        key = f"{method} {path}"
        if key in UNGUARDED:
            continue
        allowed = POLICY[(service, key)]
        for kind in KINDS:
            answer = call(world, service, method, path, kind)
            status = answer.status_code
            assert status < 500, f"{service} {key} as {kind}: {status} {answer.text}"
            if allowed is PUBLIC:
                continue  # anyone may ask; credentials or a code in the body decide (a 401 of its own)
            credentials = status == 401 and answer.json().get("code") in BODY_CREDENTIALS
            if kind in allowed and status in (401, 403) and not credentials:
                wrong.append(f"{service} {key} as {kind}: refused {status} {answer.text[:160]}")
            if kind not in allowed and status not in (401, 403, 404):
                wrong.append(f"{service} {key} as {kind}: served {status} {answer.text[:160]}")
    assert wrong == [], "\n".join(wrong)


def test_a_token_minted_by_an_outsider_or_for_a_disabled_account_is_refused_everywhere(world: World) -> None:
    for name in NAMES:
        for kind, code in (("forged", ("invalid_token",)), ("disabled", ("account_disabled", "token_revoked"))):
            path = {"identity": f"/v1/users/{world.path_values['user_id']}", "enrollment": "/v1/applications",
                    "review": "/v1/cases", "payment": "/v1/refunds", "notify": "/v1/sms"}[name]  # fmt: skip
            answer = httpx.get(f"{world.system[name].url}{path}", headers=world.headers[kind], timeout=15)
            assert answer.status_code == 401, (name, kind, answer.text)
            assert answer.json()["code"] in code, (name, kind, answer.text)
