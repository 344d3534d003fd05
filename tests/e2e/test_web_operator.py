"""The operators' pages and the dashboard in Chromium, on the five services and web as processes over
the real broker and database:

- three applications driven through the public APIs (one approved and paid by WeChat Pay after a
  notification with a wrong amount, one rejected, one waiting), then the dashboard shows the
  figures the stats APIs give, which moved by exactly what was done;
- /ops shows the dead letters of every service (as the broker's admin counts them) and the lag of
  the system's consumer groups; /ops/history lists the application's events across services in
  time order, with no phone number in clear; /ops/payments lists the exception in yuan;
- an applicant and a reviewer get the 403 page on /ops; the reviewer sees the dashboard;
- a web whose broker is away still answers /ops and /ops/history, with a notice."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from playwright.sync_api import Browser, Page

from contracts.topics import SERVICES, dlq_topic
from services.web.pages import yuan
from tests.support.applicant import Person, decide, eventually, pending_case, staff, upload_changzhou_documents
from tests.support.infra import topic
from tests.support.payment import channel_env, issue_bills, make_keys, wechat
from tests.support.processes import ServiceProcess, free_port
from tests.support.web import chromium, desktop_context, log_in, phone_context, shoot, web_system
from tests.support.web_operator import bearer, messages_on, staff_account, stats

KEYS = make_keys()
AGENCY = "320411"  # 新北区: where the three applicants live
CHANGZHOU = {"household_kind": "changzhou", "household_region_code": "320402", "residence_district_code": AGENCY}
REASON = {"code": "documents_unreadable", "text": "身份证反面照片模糊"}


@dataclass
class World:
    """What the test put in, and the stats before and after."""

    operator: str  # phone
    reviewer: str
    applicant: Person
    approved_id: str
    wrong_txn: str
    wrong_fen: int
    refund_txn: str
    paid_fen: int
    before: dict[str, Any]
    after: dict[str, Any]


@pytest.fixture(scope="module")
def system(e2e_env: dict[str, str], log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    with web_system({**e2e_env, **channel_env(KEYS)}, log_dir, "e2e-web-ops") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def submitted(system: dict[str, ServiceProcess], name: str, birth: date, male: bool) -> tuple[Person, str]:
    person = Person(system, name, birth, male=male)
    person.register_and_verify()
    application_id = person.apply(pension_tier=3, medical_tier=5, **CHANGZHOU)
    upload_changzhou_documents(person, application_id)
    person.submit(application_id)
    return person, application_id


def first_bill(system: dict[str, ServiceProcess], person: Person) -> dict[str, Any]:
    payment = httpx.Client(base_url=system["payment"].url, timeout=15)

    def listed() -> dict[str, Any] | None:
        answer = payment.get(f"/v1/insured/{person.user_id}/bills", headers=person.auth)
        if answer.status_code == 404:  # the account opens through Kafka
            return None
        assert answer.status_code == 200, answer.text
        bills: list[dict[str, Any]] = answer.json()["bills"]
        return bills[0] if bills else None

    return eventually(listed, "the first bill")


def notify_payment(system: dict[str, ServiceProcess], bill: dict[str, Any], amount_fen: int, txn: str) -> int:
    headers, body = wechat(KEYS, bill["bill_id"], amount_fen, txn)
    answer = httpx.post(
        f"{system['payment'].url}/v1/channels/wechat/notifications", headers=headers, content=body, timeout=15
    )
    return answer.status_code


def moved(before: dict[str, Any], now: dict[str, Any], paid_fen: int) -> bool:
    """The stats moved by what the fixture did: 3 submitted, 1 approved, 1 rejected, 1 paid (the
    overpayment is owed back, not a settlement)."""
    apps, decisions, money = now["applications"], now["decisions"], now["settlements"]
    return bool(
        apps["submitted"] == before["applications"]["submitted"] + 3
        and decisions["approved"] == before["decisions"]["approved"] + 1
        and decisions["rejected"] == before["decisions"]["rejected"] + 1
        and money["count"] == before["settlements"]["count"] + 1
        and money["amount_fen"] == before["settlements"]["amount_fen"] + paid_fen
    )


@pytest.fixture(scope="module")
def world(system: dict[str, ServiceProcess]) -> World:
    operator = staff_account(system, "operator")
    reviewer = staff_account(system, "reviewer", agency=AGENCY)
    before = stats(system, bearer(system, operator))
    deciding = staff(system, "reviewer", agency=AGENCY)

    applicant, approved_id = submitted(system, "陆晓峰", date(1986, 4, 9), male=True)
    _, rejected_id = submitted(system, "许静怡", date(1990, 8, 17), male=False)
    submitted(system, "蒋立新", date(1979, 2, 23), male=True)  # stays pending
    for application_id, body in ((approved_id, {"decision": "approved"}),
                                 (rejected_id, {"decision": "rejected", "reasons": [REASON]})):  # fmt: skip
        case = pending_case(system, deciding, application_id, attempt=1)
        decide(system, deciding, case["case_id"], body)

    issue_bills(system["payment"])
    bill = first_bill(system, applicant)
    wrong_txn = "4200007777" + uuid4().hex[:18]
    assert notify_payment(system, bill, bill["amount_fen"] + 1, wrong_txn) == 422  # an exception
    assert notify_payment(system, bill, bill["amount_fen"], "4200008888" + uuid4().hex[:18]) == 204
    refund_txn = "4200009999" + uuid4().hex[:18]  # paid again by another transaction: owed back
    assert notify_payment(system, bill, bill["amount_fen"], refund_txn) == 204
    applicant.wait_for_status(approved_id, "active")

    auth = bearer(system, operator)

    def counted() -> dict[str, Any] | None:
        now = stats(system, auth)
        return now if moved(before, now, bill["amount_fen"]) else None

    after = eventually(counted, "the stats to count what was done")
    return World(
        operator,
        reviewer,
        applicant,
        approved_id,
        wrong_txn,
        bill["amount_fen"] + 1,
        refund_txn,
        bill["amount_fen"],
        before,
        after,
    )


def operator_page(browser: Browser, system: dict[str, ServiceProcess], world: World, phone: bool = False) -> Page:
    context = (phone_context if phone else desktop_context)(browser, system["web"].url)
    page = context.new_page()
    log_in(page, world.operator)
    return page


def cells(page: Page, selector: str) -> list[str]:
    """The text of every match, shown or not (the tables sit in closed <details>)."""
    return [text.strip() for text in page.locator(selector).all_text_contents()]


# --- the dashboard ---------------------------------------------------------------------------------


def test_the_dashboard_draws_the_figures_that_were_put_in(
    browser: Browser, system: dict[str, ServiceProcess], world: World
) -> None:
    page = operator_page(browser, system, world)
    assert page.url.endswith("/dashboard")  # an operator's home
    after = world.after
    apps, decisions, money = after["applications"], after["decisions"], after["settlements"]

    assert page.locator("#kpi-submitted .kpi-value").inner_text() == str(apps["submitted"])
    assert page.locator("#kpi-approved .kpi-value").inner_text() == str(decisions["approved"])
    assert page.locator("#kpi-rejected .kpi-value").inner_text() == str(decisions["rejected"])
    assert page.locator("#kpi-settled .kpi-value").inner_text() == str(money["count"])
    assert page.locator("#kpi-amount .kpi-value").inner_text() == yuan(money["amount_fen"])

    # Every chart is an SVG a screen reader hears as one image with its figures, and a table.
    for key in ("applications", "decisions", "reasons", "overdue", "settled-count", "settled-amount"):
        svg = page.locator(f"#{key}-chart")
        assert svg.get_attribute("role") == "img" and svg.get_attribute("aria-label")
        assert page.locator(f"#{key}-table").count() == 1
    applications_label = page.locator("#applications-chart").get_attribute("aria-label") or ""
    assert f"合计 {apps['submitted']}件" in applications_label
    assert page.locator("#applications-chart rect.bar").count() > 0  # bars drawn, not "暂无数据"

    # The tables' totals: the figures of the APIs, which moved by what the fixture did.
    assert cells(page, "#decisions-table tfoot td") == [
        str(decisions["approved"]), str(decisions["rejected"]), str(decisions["approved"] + decisions["rejected"])
    ]  # fmt: skip
    unreadable = next(r for r in decisions["rejection_reasons"] if r["code"] == REASON["code"])
    before_unreadable = next(r for r in world.before["decisions"]["rejection_reasons"] if r["code"] == REASON["code"])
    assert unreadable["count"] == before_unreadable["count"] + 1
    assert cells(page, f"#reasons-table tbody tr:has(th:text-is('{unreadable['label']}')) td") == [
        str(unreadable["count"])
    ]
    xinbei = next(q for q in decisions["overdue"] if q["agency_code"] == AGENCY)
    assert cells(page, "#overdue-table tbody tr:has(th:text-is('新北区')) td") == [
        str(xinbei["overdue"]), str(xinbei["pending"])
    ]  # fmt: skip
    assert cells(page, "#settled-amount-table tfoot td")[-1] == yuan(money["amount_fen"])
    assert cells(page, "#settled-count-table tfoot td")[-1] == str(money["count"])
    wechat_before = next(t for t in world.before["settlements"]["totals"] if t["channel"] == "wechat")
    wechat_after = next(t for t in money["totals"] if t["channel"] == "wechat")
    assert wechat_after["amount_fen"] == wechat_before["amount_fen"] + world.paid_fen
    shoot(page, "dashboard")

    small = operator_page(browser, system, world, phone=True)
    small.goto("/dashboard")
    assert small.locator("#kpi-submitted .kpi-value").inner_text() == str(apps["submitted"])
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the dashboard scrolls sideways on a phone: {width} px"
    shoot(small, "dashboard")


# --- /ops ------------------------------------------------------------------------------------------


def test_ops_shows_dead_letters_and_the_lag_of_the_system_s_groups(
    browser: Browser, system: dict[str, ServiceProcess], world: World
) -> None:
    page = operator_page(browser, system, world)
    answer = page.goto("/ops")
    assert answer is not None and answer.status == 200
    assert page.locator("#broker-away").count() == 0
    for service in SERVICES:
        row = page.locator(f"#dlq tr[data-service='{service}']")
        assert row.locator("code").inner_text() == topic(dlq_topic(service))
        assert row.locator("td.num").inner_text().split()[0] == str(messages_on(topic(dlq_topic(service))))
    # This system's groups only (named without the prefix the page states), each service's.
    prefix = system["identity"].env["CONSUMER_GROUP_PREFIX"]
    assert prefix in page.locator("#lag-title + p").inner_text()
    groups = set(cells(page, "#lag tbody th code"))
    assert {g.split(".")[0] for g in groups} == {"enrollment", "review", "notify", "payment"}, groups
    assert set(cells(page, "#lag tbody td:nth-child(2) code")) <= {f"{s}.events" for s in SERVICES}
    lagging = page.locator("#lag tr.lagging").count()
    summary = page.locator("#lag-summary").inner_text()
    assert (f"{lagging} 个消费组/主题有延迟" in summary) if lagging else ("全部消费组已处理到最新" in summary)
    shoot(page, "ops")


def test_a_group_that_lags_is_highlighted(browser: Browser, system: dict[str, ServiceProcess], world: World) -> None:
    page = operator_page(browser, system, world)
    system["review"].stop()  # its groups keep their offsets while new events arrive
    try:
        Person(system, "韩冬梅", date(1992, 3, 5), male=False).register_and_verify()  # on identity.events

        def lagging() -> list[str] | None:
            page.goto("/ops")
            rows = cells(page, "#lag tr.lagging th code")
            return rows if "review.people" in rows else None

        eventually(lagging, "review.people to lag behind identity.events")
        row = page.locator("#lag tr.lagging:has(th code:text-is('review.people'))")
        assert "延迟" in row.locator("td.num .badge").first.inner_text()  # said in words, not by colour only
        assert int(row.locator("td.num").last.inner_text().split()[0]) >= 1
        assert "有延迟" in page.locator("#lag-summary").inner_text()
    finally:
        system["review"].start()


def test_history_lists_the_application_s_events_across_services_in_time_order(
    browser: Browser, system: dict[str, ServiceProcess], world: World
) -> None:
    page = operator_page(browser, system, world)
    page.goto("/ops/history")
    page.get_by_label("申请编号").fill(world.approved_id)
    page.get_by_role("button", name="查询").click()
    page.wait_for_selector("#history")
    events = cells(page, "#history td.event-type")
    times = cells(page, "#history tbody td:first-child")
    order = ["EnrollmentSubmitted", "ReviewCaseOpened", "ReviewDecided", "ApplicationApproved", "PaymentSettled"]
    positions = [events.index(e) for e in order]
    assert positions == sorted(positions), events
    assert times == sorted(times) and "UserVerified" in events  # the applicant's identity events too
    text = page.locator("main").inner_text()
    assert world.applicant.phone not in text and world.applicant.id_number not in text
    assert set(cells(page, "#history tbody td:nth-child(2) code")) <= {f"{s}.events" for s in SERVICES}
    shoot(page, "ops-history")

    answer = page.goto("/ops/history?application_id=not-an-id")
    assert answer is not None and answer.status == 422
    assert "申请编号格式不正确" in page.locator("#application_id-error").inner_text()
    page.goto(f"/ops/history?application_id={uuid4()}")
    assert page.locator("#no-events").is_visible()


def test_payments_list_the_exception_in_yuan(browser: Browser, system: dict[str, ServiceProcess], world: World) -> None:
    page = operator_page(browser, system, world)
    answer = page.goto("/ops/payments")
    assert answer is not None and answer.status == 200
    row = page.locator(f"#exceptions tr:has(code:text-is('{world.wrong_txn}'))")
    assert row.count() == 1
    figures = cells(page, f"#exceptions tr:has(code:text-is('{world.wrong_txn}')) td.num")
    assert figures == [yuan(world.paid_fen), yuan(world.wrong_fen)]
    assert "金额不符" in row.inner_text() and "微信支付" in row.inner_text()
    refund = f"#refunds tr:has(code:text-is('{world.refund_txn}'))"
    assert cells(page, f"{refund} td.num") == [yuan(world.paid_fen)]  # the overpayment, not a settlement
    shoot(page, "ops-payments")


# --- who may --------------------------------------------------------------------------------------


def test_an_applicant_and_a_reviewer_are_refused_ops(
    browser: Browser, system: dict[str, ServiceProcess], world: World
) -> None:
    for phone in (world.applicant.phone, world.reviewer):
        page = desktop_context(browser, system["web"].url).new_page()
        log_in(page, phone)
        for path in ("/ops", "/ops/history", "/ops/payments"):
            answer = page.goto(path)
            assert answer is not None and answer.status == 403, path
            assert page.get_by_role("heading", name="无权访问").is_visible()
            assert page.locator("#dlq, #history, #exceptions").count() == 0
    answer = page.goto("/dashboard")  # the reviewer's figures: those of the reviewer's agency
    assert answer is not None and answer.status == 200
    assert page.locator("#overdue-table tbody tr").count() == 1
    # Money is the operators' business: no settlement figures for a reviewer, and the section says why.
    assert page.locator("#settled-count-table").count() == 0
    assert page.get_by_text("缴费统计仅向运维人员开放").count() == 1


def test_with_the_broker_away_the_ops_pages_answer_with_a_notice(
    browser: Browser, system: dict[str, ServiceProcess], world: World, log_dir: Path
) -> None:
    web = system["web"]
    away = ServiceProcess("web", {**web.env, "KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}, log_dir)
    away.start()
    try:
        page = desktop_context(browser, away.url).new_page()
        log_in(page, world.operator)
        for path in ("/ops", f"/ops/history?application_id={world.approved_id}"):
            answer = page.goto(path)
            assert answer is not None and answer.status == 200, path
            assert "暂时无法连接消息队列" in page.locator("#broker-away").inner_text()
        answer = page.goto("/ops/payments")  # no broker needed
        assert answer is not None and answer.status == 200
    finally:
        away.stop()
