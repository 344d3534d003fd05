"""The operators' dashboard (issue 12): enrollment, review and payment each answer aggregates of
their own read model, in-process on the real database. Known rows go in, exact counts come out:
zero-filled days and months, Asia/Shanghai day and month boundaries (a second before local
midnight is the day before), staff only (an applicant 403, no token 401), 422 problems for bad
windows. "Today" is pinned, so the boundaries are exact whatever the clock says."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.enrollment import (
    ApplicationApproved,
    ApplicationDrafted,
    ApplicationRejected,
    ApplicationUnderReview,
    EnrollmentSubmitted,
)
from contracts.events.payment import PaymentSettled
from kernel.problems import PROBLEM_MEDIA_TYPE
from kernel.runtime import ServiceRuntime
from services.enrollment import projections
from services.enrollment import stats_routes as enrollment_stats
from services.enrollment.app import build as build_enrollment
from services.enrollment.reference import region_name
from services.enrollment.settings import EnrollmentSettings
from services.enrollment.stats import STATUSES
from services.enrollment.status import fold
from services.payment import stats_routes as payment_stats
from services.review import stats_routes as review_stats
from services.review.app import build as build_review
from services.review.settings import ReviewSettings
from tests.support.apps import isolated, running
from tests.support.payment import Payment
from tests.support.tokens import as_role

TODAY = date(2026, 3, 10)  # a Tuesday; local midnight starting it is 2026-03-09T16:00:00Z


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Running:
    http: httpx.AsyncClient
    runtime: ServiceRuntime


@pytest.fixture
def pinned_today(monkeypatch: pytest.MonkeyPatch) -> date:
    for module in (enrollment_stats, review_stats, payment_stats):
        monkeypatch.setattr(module, "today_in_changzhou", lambda: TODAY)
    return TODAY


async def refusals(http: httpx.AsyncClient, path: str, bad: str, applicant_code: str = "wrong_role") -> None:
    """No token 401; an applicant 403 wrong_role (or 401 invalid_token where an applicant's token is
    not meant for the service at all: review, kernel.auth.AUDIENCES); a window out of range 422
    invalid_request (problem details)."""
    anonymous = await http.get(path)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert anonymous.json()["code"] == "authentication_required"
    applicant = await http.get(path, headers=as_role("applicant"))
    assert applicant.status_code == (403 if applicant_code == "wrong_role" else 401), applicant.text
    assert applicant.json()["code"] == applicant_code
    for query in (f"{bad}=0", f"{bad}=-1", f"{bad}=abc", f"{bad}=100000"):
        answer = await http.get(f"{path}?{query}", headers=as_role("operator"))
        assert answer.status_code == 422, (query, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
        assert answer.json()["code"] == "invalid_request"


# --- enrollment: applications per day and district, by status -------------------------------


@pytest.fixture
async def enrollment(tmp_path: Path) -> AsyncIterator[Running]:
    settings = EnrollmentSettings(**isolated("enrollment"), enrollment_blob_root=tmp_path / "blobs")  # type: ignore[arg-type]
    app, runtime = build_enrollment(settings)
    async with running(app, runtime) as http:
        yield Running(http, runtime)


def fact(cls: type[Event], application_id: UUID, applicant_id: UUID, version: int, **changes: Any) -> Envelope:
    """An enrollment fact of `cls` (its schema example) for the given application."""
    example = cls.model_json_schema()["examples"][0]
    ids: dict[str, Any] = {"application_id": str(application_id), "applicant_id": str(applicant_id)}
    if "personal" in example:  # sealed under the applicant's key (never opened here)
        ids["personal"] = {**example["personal"], "key_id": str(applicant_id)}
    event = cls.model_validate({**example, **ids, **changes})
    return Envelope.wrap(
        event,
        stream_id=f"application-{application_id}",
        stream_version=version,
        producer="enrollment",
        correlation_id=f"corr-{application_id}",
    )


class Applications:
    """Builds the facts of applications as enrollment records them."""

    def __init__(self) -> None:
        self.facts: list[Envelope] = []

    def drafted(self, district: str = "320411") -> tuple[UUID, UUID]:
        application_id, applicant_id = uuid4(), uuid4()
        self.facts.append(fact(ApplicationDrafted, application_id, applicant_id, 1, residence_district_code=district))
        return application_id, applicant_id

    def submitted(
        self, at: str, district: str, attempt: int = 1, ids: tuple[UUID, UUID] | None = None
    ) -> tuple[UUID, UUID]:
        application_id, applicant_id = ids or self.drafted(district)
        self.facts.append(
            fact(
                EnrollmentSubmitted,
                application_id,
                applicant_id,
                attempt * 10,
                attempt=attempt,
                submitted_at=at,
                residence_district_code=district,
            )
        )
        return application_id, applicant_id

    def opened(self, ids: tuple[UUID, UUID], attempt: int = 1) -> None:
        self.facts.append(fact(ApplicationUnderReview, *ids, attempt * 10 + 1, attempt=attempt, case_id=str(uuid4())))

    def decided(self, ids: tuple[UUID, UUID], approved: bool, attempt: int = 1) -> None:
        self.opened(ids, attempt)
        cls = ApplicationApproved if approved else ApplicationRejected
        self.facts.append(fact(cls, *ids, attempt * 10 + 2, attempt=attempt, case_id=str(uuid4())))

    def paid(self, applicant_id: UUID) -> None:
        example = PaymentSettled.model_json_schema()["examples"][0]
        event = PaymentSettled.model_validate({**example, "insured_person_id": str(applicant_id)})
        self.facts.append(
            Envelope.wrap(event, stream_id="bill-x", stream_version=2, producer="payment", correlation_id="corr-pay")
        )


async def test_applications_per_day_and_district_count_first_submissions_on_shanghai_days(
    enrollment: Running, pinned_today: date
) -> None:
    a = Applications()
    # 2026-03-09 23:59:59 in Changzhou: the day before today; a resident of 天宁区, not yet opened
    a.submitted("2026-03-09T15:59:59Z", "320402")
    # today 00:00:00 in Changzhou; rejected, then corrected and submitted again today: counted once
    b = a.submitted("2026-03-09T16:00:00Z", "320411")
    a.decided(b, approved=False)
    a.submitted("2026-03-10T03:00:00Z", "320411", attempt=2, ids=b)
    # 2026-03-07 23:59:59 in Changzhou: before a 3-day window; approved
    c = a.submitted("2026-03-07T15:59:59Z", "320412")
    a.decided(c, approved=True)
    # a district the reference file no longer has (戚墅堰区, merged in 2015): still counted, named
    d = a.submitted("2026-03-08T01:00:00Z", "320405")
    a.opened(d)
    a.drafted()  # a draft: no submission
    f = a.submitted("2026-03-10T02:00:00Z", "320402")  # approved and paid: active
    a.decided(f, approved=True)
    a.paid(f[1])
    g = a.submitted("2026-03-08T00:30:00Z", "320404")  # rejected
    a.decided(g, approved=False)
    async with enrollment.runtime.pool.acquire() as conn:
        await projections.record_facts(conn, a.facts)
        await projections.record_facts(conn, a.facts)  # a redelivery changes nothing

    for role in ("operator", "reviewer"):
        answer = await enrollment.http.get("/v1/stats/applications?days=3", headers=as_role(role))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["time_zone"], body["first_day"], body["last_day"]) == ("Asia/Shanghai", "2026-03-08", "2026-03-10")
        codes = [d["code"] for d in body["districts"]]
        assert codes == ["320402", "320404", "320411", "320412", "320413", "320481", "320405"]
        assert body["districts"][0] == {"code": "320402", "name": "天宁区"}
        assert body["districts"][-1] == {"code": "320405", "name": region_name("320405")}
        per_day = {d["day"]: (d["total"], {c["code"]: c["count"] for c in d["districts"]}) for d in body["days"]}
        zero = dict.fromkeys(codes, 0)
        assert per_day == {
            "2026-03-08": (2, {**zero, "320405": 1, "320404": 1}),
            "2026-03-09": (1, {**zero, "320402": 1}),
            "2026-03-10": (2, {**zero, "320411": 1, "320402": 1}),
        }
        assert [[c["code"] for c in d["districts"]] for d in body["days"]] == [codes] * 3
        assert body["submitted"] == 5
        assert body["by_status"] == [
            {"status": "draft", "count": 1},
            {"status": "submitted", "count": 2},
            {"status": "under_review", "count": 1},
            {"status": "approved", "count": 1},
            {"status": "rejected", "count": 1},
            {"status": "active", "count": 1},
        ]
        assert "applicant" not in answer.text and str(b[0]) not in answer.text  # aggregates only
    # the SQL follows the status view's own rules: the same counts as folding each application
    pool = enrollment.runtime.pool
    ids = {UUID(e.data["application_id"]) for e in a.facts if "application_id" in e.data}
    folded = [view.status for i in ids if (view := fold(i, await projections.facts_of(pool, i)))]
    assert {s["status"]: s["count"] for s in body["by_status"]} == {s: folded.count(s) for s in STATUSES}

    default = (await enrollment.http.get("/v1/stats/applications", headers=as_role("operator"))).json()
    assert len(default["days"]) == 30 and default["first_day"] == str(TODAY - timedelta(days=29))
    assert default["submitted"] == 6  # c too: 2026-03-07 is within 30 days
    assert [d["day"] for d in default["days"]] == [str(TODAY - timedelta(days=29 - i)) for i in range(30)]
    longest = await enrollment.http.get("/v1/stats/applications?days=366", headers=as_role("operator"))
    assert longest.status_code == 200 and len(longest.json()["days"]) == 366
    await refusals(enrollment.http, "/v1/stats/applications", "days")


async def test_applications_stats_of_an_empty_projection_are_all_zero(enrollment: Running, pinned_today: date) -> None:
    body = (await enrollment.http.get("/v1/stats/applications?days=1", headers=as_role("reviewer"))).json()
    assert [d["day"] for d in body["days"]] == ["2026-03-10"]
    assert body["days"][0]["total"] == 0 and all(c["count"] == 0 for c in body["days"][0]["districts"])
    assert len(body["districts"]) == 6
    assert {s["count"] for s in body["by_status"]} == {0} and len(body["by_status"]) == 6


# --- review: decisions per day, reasons, overdue per agency -----------------------------------


@pytest.fixture
async def review() -> AsyncIterator[Running]:
    settings = ReviewSettings(**isolated("review"))  # type: ignore[arg-type]
    app, runtime = build_review(settings)
    async with running(app, runtime) as http:
        yield Running(http, runtime)


async def add_case(
    review: Running,
    agency: str,
    due_on: date,
    decision: str | None = None,
    decided_at: str | None = None,
    reasons: list[str] | None = None,
) -> None:
    now = utc("2026-03-01T00:00:00")
    await review.runtime.pool.execute(
        """
        INSERT INTO cases (case_id, application_id, attempt, applicant_id, agency_code, due_on, opened_at,
                           submitted_at, applicant_name, id_number_masked, gender, birth_date, phone_masked,
                           household_kind, household_region_code, residence_district_code, pension_tier,
                           medical_tier, documents, status, decision, reasons, reviewer_id, decided_at)
        VALUES ($1, $2, 1, $3, $4, $5, $6, $6, '张三', '3204**********1234', 'male', '1990-03-07',
                '138****8000', 'changzhou', '320402', $4, 3, 5, '[]'::jsonb, $7, $8, $9, $10, $11)
        """,
        uuid4(),
        uuid4(),
        uuid4(),
        agency,
        due_on,
        now,
        "pending" if decision is None else "decided",
        decision,
        [{"code": code, "text": "说明"} for code in reasons or []],
        None if decision is None else uuid4(),
        None if decided_at is None else utc(decided_at),
    )


async def test_decisions_per_day_reasons_and_overdue_per_agency(review: Running, pinned_today: date) -> None:
    await add_case(review, "320402", date(2026, 3, 11), "approved", "2026-03-09T15:59:59")  # 03-09 local
    await add_case(review, "320411", date(2026, 3, 11), "approved", "2026-03-09T16:00:00")  # 03-10 local
    await add_case(
        review, "320402", date(2026, 3, 11), "rejected", "2026-03-10T02:00:00", ["documents_unreadable", "other"]
    )
    # a code twice counts once for its case; a code retired from the file still counts, labelled by itself
    await add_case(
        review, "320411", date(2026, 3, 9), "rejected", "2026-03-08T01:00:00",
        ["documents_unreadable", "documents_unreadable", "retired_code"],
    )  # fmt: skip
    await add_case(
        review, "320402", date(2026, 3, 9), "rejected", "2026-03-07T15:00:00", ["identity_mismatch"]
    )  # 03-07
    await add_case(review, "320402", date(2026, 3, 9))  # pending, due yesterday: overdue
    await add_case(review, "320402", date(2026, 3, 10))  # pending, due today: still in time
    await add_case(review, "320413", date(2026, 3, 5))  # overdue
    await add_case(review, "320499", date(2026, 3, 1))  # an agency no longer in the file: overdue

    for headers in (as_role("operator"), as_role("reviewer")):  # a city-level reviewer sees every agency's
        answer = await review.http.get("/v1/stats/decisions?days=3", headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["first_day"], body["last_day"], body["today"], body["agency"]) == (
            "2026-03-08", "2026-03-10", "2026-03-10", None
        )  # fmt: skip
        assert body["days"] == [
            {"day": "2026-03-08", "approved": 0, "rejected": 1},
            {"day": "2026-03-09", "approved": 1, "rejected": 0},
            {"day": "2026-03-10", "approved": 1, "rejected": 1},
        ]
        assert (body["approved"], body["rejected"]) == (2, 2)
        assert body["rejection_reasons"] == [
            {"code": "documents_unreadable", "label": "证件照片不清晰", "count": 2},
            {"code": "documents_mismatch", "label": "材料与申报信息不一致", "count": 0},
            {"code": "household_not_eligible", "label": "户籍或居住地不符合条件", "count": 0},
            {"code": "identity_mismatch", "label": "身份信息不一致", "count": 0},
            {"code": "other", "label": "其他", "count": 1},
            {"code": "retired_code", "label": "retired_code", "count": 1},
        ]
        queues = {q["agency_code"]: (q["pending"], q["overdue"]) for q in body["overdue"]}
        assert [q["agency_code"] for q in body["overdue"]] == [
            "320400", "320402", "320404", "320411", "320412", "320413", "320481", "320499"
        ]  # fmt: skip
        assert queues == {
            "320400": (0, 0), "320402": (2, 1), "320404": (0, 0), "320411": (0, 0),
            "320412": (0, 0), "320413": (1, 1), "320481": (0, 0), "320499": (1, 1),
        }  # fmt: skip
        names = {q["agency_code"]: q["agency_name"] for q in body["overdue"]}
        assert names["320402"] == "常州市天宁区人力资源和社会保障局劳动就业管理中心"
        assert names["320499"] == "320499"
        assert "张三" not in answer.text and "说明" not in answer.text  # aggregates only

    # a reviewer bound to an agency gets that agency's figures, as their queue shows only its cases
    bound = (await review.http.get("/v1/stats/decisions?days=3", headers=as_role("reviewer", scope="320402"))).json()
    assert bound["agency"] == "320402"
    assert [(d["approved"], d["rejected"]) for d in bound["days"]] == [(0, 0), (1, 0), (0, 1)]
    assert {r["code"]: r["count"] for r in bound["rejection_reasons"] if r["count"]} == {
        "documents_unreadable": 1,
        "other": 1,
    }
    assert [(q["agency_code"], q["pending"], q["overdue"]) for q in bound["overdue"]] == [("320402", 2, 1)]

    default = (await review.http.get("/v1/stats/decisions", headers=as_role("operator"))).json()
    assert len(default["days"]) == 30 and default["rejected"] == 3  # 2026-03-07 too
    assert default["days"][-3:] == body["days"] and {d["approved"] for d in default["days"][:-3]} == {0}
    await refusals(review.http, "/v1/stats/decisions", "days", applicant_code="invalid_token")


# --- payment: settlements per channel and month ------------------------------------------------


async def add_payment(payment: Payment, channel: str, amount_fen: int, paid_at: str, kind: str = "settlement") -> None:
    await payment.runtime.pool.execute(
        "INSERT INTO payments (payment_id, kind, bill_id, account_id, insured_person_id, payer_id, "
        "payer_name_masked, channel, channel_txn_id, amount_fen, paid_at) "
        "VALUES ($1, $2, $3, $4, $5, 'payer-1', '李*', $6, $7, $8, $9)",
        uuid4(),
        kind,
        uuid4(),
        uuid4(),
        uuid4(),
        channel,
        uuid4().hex,
        amount_fen,
        utc(paid_at),
    )


async def test_settlements_per_channel_and_shanghai_month_in_integer_fen(payment: Payment, pinned_today: date) -> None:
    await add_payment(payment, "wechat", 170000, "2026-02-28T16:00:00")  # 2026-03-01 00:00 local: March
    await add_payment(payment, "wechat", 100, "2026-02-28T15:59:59")  # 23:59:59 local: February
    await add_payment(payment, "alipay", 250000, "2026-01-15T03:00:00")
    await add_payment(payment, "bank_counter", 3_000_000_000, "2026-01-02T03:00:00")  # beyond 32 bits
    await add_payment(payment, "bank_withholding", 300, "2026-03-05T03:00:00")
    await add_payment(payment, "wechat", 999, "2026-03-05T03:00:00", kind="overpayment")  # owed back: not counted
    await add_payment(payment, "unionpay_pos", 5000, "2025-12-31T15:59:59")  # 2025-12-31 local: before the window

    # The route admits reviewers too, but a reviewer's token is not meant for payment at all
    # (kernel.auth.AUDIENCES gives reviewers no `payment` audience): 401 before the route is asked.
    reviewer = await payment.http.get("/v1/stats/settlements?months=3", headers=as_role("reviewer"))
    assert reviewer.status_code == 401 and reviewer.json()["code"] == "invalid_token", reviewer.text
    for role in ("operator",):
        answer = await payment.http.get("/v1/stats/settlements?months=3", headers=as_role(role))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        channels = ["wechat", "alipay", "unionpay_pos", "bank_counter", "bank_withholding"]
        assert body["channels"] == channels
        assert (body["time_zone"], body["first_month"], body["last_month"]) == ("Asia/Shanghai", "2026-01", "2026-03")
        figures = {
            m["month"]: (
                m["count"],
                m["amount_fen"],
                {c["channel"]: (c["count"], c["amount_fen"]) for c in m["channels"]},
            )
            for m in body["months"]
        }
        zero = dict.fromkeys(channels, (0, 0))
        assert figures == {
            "2026-01": (2, 3_000_250_000, {**zero, "alipay": (1, 250000), "bank_counter": (1, 3_000_000_000)}),
            "2026-02": (1, 100, {**zero, "wechat": (1, 100)}),
            "2026-03": (2, 170300, {**zero, "wechat": (1, 170000), "bank_withholding": (1, 300)}),
        }
        assert [m["month"] for m in body["months"]] == ["2026-01", "2026-02", "2026-03"]
        assert [[c["channel"] for c in m["channels"]] for m in body["months"]] == [channels] * 3
        assert body["totals"] == [
            {"channel": "wechat", "count": 2, "amount_fen": 170100},
            {"channel": "alipay", "count": 1, "amount_fen": 250000},
            {"channel": "unionpay_pos", "count": 0, "amount_fen": 0},
            {"channel": "bank_counter", "count": 1, "amount_fen": 3_000_000_000},
            {"channel": "bank_withholding", "count": 1, "amount_fen": 300},
        ]
        assert (body["count"], body["amount_fen"]) == (5, 3_000_420_400)
        assert isinstance(body["amount_fen"], int) and "李*" not in answer.text and "payer" not in answer.text

    default = (await payment.http.get("/v1/stats/settlements", headers=as_role("operator"))).json()
    assert [m["month"] for m in default["months"]][:2] == ["2025-04", "2025-05"] and len(default["months"]) == 12
    assert default["count"] == 6  # December 2025 too
    await refusals(payment.http, "/v1/stats/settlements", "months")
