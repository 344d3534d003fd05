"""The reviewer console in Debian's Chromium (desktop, and one look at 375 px), the five services
and web as processes on the real broker and database: the queue, a case with its documents,
approve, reject with reasons, two reviewers on one case, a late case, another agency's reviewer,
a reviewer's own application. Every outcome is checked again through enrollment's API."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.processes import ServiceProcess
from tests.support.web import chromium, desktop_context, phone_context, shoot, web_system
from tests.support.web_console import (
    StaffMember,
    case_of,
    log_in,
    make_overdue,
    staff_member,
    submitted_application,
    verified_person,
)

AGENCY = "320481"  # 溧阳市: its own queue, few other tests file cases there
System = dict[str, ServiceProcess]


@pytest.fixture(scope="module")
def system(e2e_env: dict[str, str], log_dir: Path) -> Iterator[System]:
    with web_system(e2e_env, log_dir, "web-console") as system:
        yield system


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def reviewer(system: System) -> StaffMember:
    return staff_member(system, "reviewer", AGENCY)


def desktop_page(browser: Browser, system: System, member: StaffMember) -> Page:
    page = desktop_context(browser, system["web"].url).new_page()
    log_in(page, member)
    return page


def at(path_and_query: str) -> re.Pattern[str]:
    """The page's address ends with exactly this (a glob would read `?` as a wildcard)."""
    return re.compile(re.escape(path_and_query) + "$")


def images_loaded(page: Page) -> None:
    page.wait_for_function(
        "() => { const all = [...document.querySelectorAll('figure.document img')];"
        " return all.length > 0 && all.every(i => i.complete && i.naturalWidth > 0); }"
    )


def test_a_reviewer_finds_the_case_sees_the_documents_and_approves(
    system: System, browser: Browser, reviewer: StaffMember
) -> None:
    submitted = submitted_application(system, verified_person(system, "周晓梅"), AGENCY)
    case_id = case_of(system, reviewer, submitted)
    page = desktop_page(browser, system, reviewer)

    row = page.locator(f'tr[data-case-id="{case_id}"]')
    expect(row).to_contain_text("周晓梅")
    expect(row).to_contain_text("待审核")
    expect(page.locator("h1")).to_contain_text("溧阳市")
    shoot(page, "console-queue")
    row.get_by_role("link", name="周晓梅").click()
    page.wait_for_url(f"**/console/cases/{case_id}")

    # Three images (PNG, two JPEGs) shown inline and loaded; the PDF previewed in a frame.
    expect(page.locator("figure.document img")).to_have_count(3)
    images_loaded(page)
    pdf = page.locator("figure.document iframe")
    expect(pdf).to_have_count(1)
    answer = page.request.get(str(pdf.get_attribute("src")))
    assert answer.status == 200 and answer.body().startswith(b"%PDF-")
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"].startswith("inline;")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "SAMEORIGIN"  # the preview frame may show it
    assert "frame-ancestors 'self'" in answer.headers["content-security-policy"]
    expect(page.locator("dl.facts").first).to_contain_text("天宁区（320402）")
    shoot(page, "console-case")

    page.get_by_role("button", name="审核通过").click()
    page.wait_for_url(at(f"/console/cases/{case_id}?notice=decided"))
    expect(page.locator("#decision")).to_have_text("审核通过")
    expect(page.locator("#decided-by")).to_have_text("您本人")
    expect(page.get_by_role("button", name="审核通过")).to_have_count(0)  # decided once
    assert submitted.person.wait_for_status(submitted.application_id, "approved")["status"] == "approved"


def test_a_rejection_with_two_reasons_and_a_note(system: System, browser: Browser, reviewer: StaffMember) -> None:
    submitted = submitted_application(system, verified_person(system, "吴丽华"), AGENCY)
    case_id = case_of(system, reviewer, submitted)
    page = desktop_page(browser, system, reviewer)
    page.goto(f"/console/cases/{case_id}")

    # 其他 needs words: the form comes back with the choice kept and says so; nothing was decided.
    page.get_by_label("证件照片不清晰").check()
    page.get_by_label("其他（须填写补充说明）").check()
    page.get_by_role("button", name="审核不通过").click()
    expect(page.locator("#decision-error")).to_contain_text("须填写补充说明")
    expect(page.get_by_label("其他（须填写补充说明）")).to_be_checked()

    page.get_by_role("textbox", name="补充说明").fill("身份证反面照片反光，请重新拍摄上传")
    page.get_by_role("button", name="审核不通过").click()
    page.wait_for_url(at(f"/console/cases/{case_id}?notice=decided"))
    expect(page.locator("#decision")).to_have_text("审核不通过")
    expect(page.locator("#decision-reasons li")).to_have_text(
        ["证件照片不清晰", "其他：身份证反面照片反光，请重新拍摄上传"]
    )

    view = submitted.person.wait_for_status(submitted.application_id, "rejected")
    assert [r["code"] for r in view["review_reasons"]] == ["documents_unreadable", "other"]
    assert view["review_reasons"][1]["text"] == "其他：身份证反面照片反光，请重新拍摄上传"


def test_the_second_reviewer_sees_the_first_decision_with_a_notice(
    system: System, browser: Browser, reviewer: StaffMember
) -> None:
    submitted = submitted_application(system, verified_person(system, "郑美玲"), AGENCY)
    case_id = case_of(system, reviewer, submitted)
    first = desktop_page(browser, system, reviewer)
    second = desktop_page(browser, system, staff_member(system, "reviewer", AGENCY))
    for page in (first, second):
        page.goto(f"/console/cases/{case_id}")

    first.get_by_role("button", name="审核通过").click()
    first.wait_for_url(at(f"/console/cases/{case_id}?notice=decided"))
    second.get_by_label("材料与申报信息不一致").check()
    second.get_by_role("button", name="审核不通过").click()
    second.wait_for_url(at(f"/console/cases/{case_id}?notice=already_decided"))
    expect(second.locator("#notice")).to_contain_text("已由其他审核人员审核完毕")
    expect(second.locator("#decision")).to_have_text("审核通过")
    expect(second.locator("#decided-by")).to_contain_text("审核人员")

    view = submitted.person.wait_for_status(submitted.application_id, "approved")
    assert view["review_reasons"] == []
    assert submitted.person.status(submitted.application_id)["status"] == "approved"


def test_an_overdue_case_leads_the_queue_marked_in_words(
    system: System, browser: Browser, reviewer: StaffMember
) -> None:
    submitted = submitted_application(system, verified_person(system, "冯雅琴"), AGENCY)
    case_id = case_of(system, reviewer, submitted)
    make_overdue(system, case_id)
    page = desktop_page(browser, system, reviewer)

    late = page.locator("tbody tr").first  # pending cases come earliest-due first
    expect(late).to_have_attribute("data-case-id", case_id)
    expect(late).to_have_class("overdue")
    expect(late).to_contain_text("已超期")
    others = page.locator("tbody tr:not(.overdue)")
    expect(others.filter(has_text="已超期")).to_have_count(0)

    # Filters and paging are links: a page of 10, the status kept in the address.
    page.get_by_label("状态").select_option("all")
    page.get_by_label("每页条数").select_option("10")
    page.get_by_role("button", name="查询").click()
    page.wait_for_url(at("/console?status=all&size=10"))
    expect(page.get_by_label("状态")).to_have_value("all")
    page.go_back()
    page.wait_for_url(at("/console"))
    expect(page.get_by_label("状态")).to_have_value("pending")

    phone = phone_context(browser, system["web"].url).new_page()
    log_in(phone, reviewer)
    expect(phone.locator(f'tr[data-case-id="{case_id}"]')).to_contain_text("已超期")
    shoot(phone, "console-queue")
    phone.goto(f"/console/cases/{case_id}")
    images_loaded(phone)
    expect(phone.locator(".outcome")).to_contain_text("已超期")
    shoot(phone, "console-case")


def test_another_agencys_reviewer_is_refused_what_review_refuses(
    system: System, browser: Browser, reviewer: StaffMember
) -> None:
    submitted = submitted_application(system, verified_person(system, "王晓燕"), AGENCY)
    case_id = case_of(system, reviewer, submitted)
    page = desktop_page(browser, system, staff_member(system, "reviewer", "320402"))
    answer = page.goto(f"/console/cases/{case_id}")
    assert answer is not None and answer.status == 403
    expect(page.locator("p.error")).to_contain_text("不属于您所在的受理机构")
    document = page.request.get(f"/console/applications/{submitted.application_id}/documents/id_card_front")
    assert document.status == 403 and not document.body().startswith(b"\x89PNG")
    queue = page.goto(f"/console?agency={AGENCY}")
    assert queue is not None and queue.status == 403


def test_a_reviewer_may_not_decide_their_own_application(
    system: System, browser: Browser, reviewer: StaffMember
) -> None:
    person = verified_person(system, "钱秀英")
    submitted = submitted_application(system, person, AGENCY)
    case_id = case_of(system, reviewer, submitted)
    herself = staff_member(system, "reviewer", AGENCY, number=person.id_number)
    page = desktop_page(browser, system, herself)
    page.goto(f"/console/cases/{case_id}")
    page.get_by_role("button", name="审核通过").click()
    expect(page.locator("#decision-error")).to_contain_text("不能审核本人的申报")
    expect(page.locator(".outcome")).to_contain_text("待审核")
    assert person.status(submitted.application_id)["status"] in ("submitted", "under_review")


def test_an_operator_looks_at_every_agency_but_is_offered_no_decision(
    system: System, browser: Browser, reviewer: StaffMember
) -> None:
    submitted = submitted_application(system, verified_person(system, "孙桂英"), AGENCY)
    case_id = case_of(system, reviewer, submitted)
    page = desktop_context(browser, system["web"].url).new_page()
    log_in(page, staff_member(system, "operator"), then=f"/console?agency={AGENCY}")
    expect(page.get_by_label("受理机构")).to_have_value(AGENCY)  # the city-wide filter, from review's list
    row = page.locator(f'tr[data-case-id="{case_id}"]')
    expect(row).to_contain_text("溧阳市人力资源和社会保障局劳动就业管理中心")
    row.get_by_role("link", name="孙桂英").click()
    page.wait_for_url(f"**/console/cases/{case_id}")
    images_loaded(page)
    expect(page.get_by_role("button", name="审核通过")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("审核决定由受理机构的审核人员作出")
