"""The applicant's pages in Debian's Chromium at 375 px, the five services and web as real processes
over the real broker and database:

- a person registers (the texted code read from the phone's sink; a wrong code first, refused on
  the form), lands on /me, verifies their name and ID number, agrees to the notice, chooses tiers
  and household, uploads four documents (three with the progress script, one as a plain form with
  JavaScript off), checks and submits, and the status page says 已提交 / 审核中;
- a person pays for another: an approved applicant with an issued bill, a second person looks the
  bill up by ID number and name on /me/pay-for-another, the bill is settled by a signed WeChat Pay
  notification, and the insured person's /me/bills reads it paid, their application page reads
  已参保（缴费成功） after they read the agency notice and downloaded the registration form;
- /me for nobody redirects to log in, for a reviewer is the 403 page, and a POST without the CSRF
  field is refused 403 with nothing called (the person stays unverified)."""

import re
import tomllib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from kernel.clock import today_in_changzhou
from tests.support import documents
from tests.support.applicant import PASSWORD, Person, eventually, listed_bills, staff_phone, texted_code
from tests.support.payment import channel_env, issue_bills, make_keys, wechat
from tests.support.people import id_number
from tests.support.processes import ServiceProcess
from tests.support.web import PHONE, chromium, desktop_context, log_in, phone_context, shoot, web_system
from tests.support.web_applicant import (
    decided_person,
    notify_channel,
    registered_only,
    yuan,
)

TARIFFS = Path(__file__).resolve().parents[2] / "services" / "payment" / "tariffs"
KEYS = make_keys()  # payment trusts these: the test signs WeChat Pay's notification with them


@pytest.fixture(scope="module")
def system(e2e_env: dict[str, str], log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    with web_system({**e2e_env, **channel_env(KEYS)}, log_dir, "e2e-web-applicant") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture
def phone(browser: Browser, system: dict[str, ServiceProcess]) -> Iterator[BrowserContext]:
    context = phone_context(browser, system["web"].url)
    yield context
    context.close()


def _register(page: Page, system: dict[str, ServiceProcess], number: str) -> None:
    page.goto("/register")
    shoot(page, "applicant-register")
    page.get_by_label("手机号码").fill(number)
    page.get_by_role("button", name="获取验证码").click()
    expect(page.get_by_role("status")).to_contain_text("验证码已发送")
    code = texted_code(system, number)
    wrong = "000000" if code != "000000" else "111111"
    page.get_by_label("短信验证码").fill(wrong)
    page.get_by_label("设置密码").fill(PASSWORD)
    page.get_by_role("button", name="注册并登录").click()
    expect(page.get_by_role("alert")).to_contain_text("验证码")  # identity's own words, on the form
    expect(page.get_by_label("手机号码")).to_have_value(number)
    page.get_by_label("短信验证码").fill(code)
    page.get_by_label("设置密码").fill(PASSWORD)
    page.get_by_label("设置密码").press("Enter")  # by keyboard: Enter registers, it asks no new code
    expect(page).to_have_url(re.compile(r"/me$"))


def _upload(page: Page, kind: str, name: str, content: bytes, mime: str) -> None:
    form = page.locator(f"#{kind} form")
    form.locator("input[type=file]").set_input_files({"name": name, "mimeType": mime, "buffer": content})
    with page.expect_navigation():  # the script reloads the page once the upload is in; a plain post redirects
        form.locator("button[type=submit]").click()
    expect(page.locator(f"#{kind} .badge")).to_have_text("已上传")


def test_an_applicant_submits_through_the_pages_and_a_reviewer_approves_in_the_console(
    system: dict[str, ServiceProcess], phone: BrowserContext, browser: Browser
) -> None:
    page = phone.new_page()
    _register(page, system, f"139{uuid4().int % 10**8:08d}")
    expect(page.get_by_text("未认证")).to_be_visible()
    shoot(page, "applicant-home")

    page.get_by_role("link", name="去实名认证").click()
    expect(page).to_have_url(re.compile(r"/me/verify$"))
    shoot(page, "applicant-verify")
    page.get_by_label("姓名").fill("王灵活")
    page.get_by_label("身份证号码").fill(id_number(date(1990, 5, 17), male=True, seq=uuid4().int % 400))
    page.get_by_role("button", name="提交认证").click()
    expect(page).to_have_url(re.compile(r"/me$"))
    expect(page.get_by_text("已认证")).to_be_visible()

    page.get_by_role("link", name="开始参保登记").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("灵活就业人员参保登记须知")
    expect(page.get_by_text("96888732").first).to_be_visible()
    shoot(page, "applicant-notice")
    page.get_by_role("button", name="同意并继续").click()  # not ticked: the browser keeps the page
    expect(page).to_have_url(re.compile(r"/me/notice$"))
    page.get_by_label("我已仔细阅读并同意").check()
    page.get_by_role("button", name="同意并继续").click()
    expect(page).to_have_url(re.compile(r"/me/apply\?notice="))

    # Each tier with its monthly amount from the year's tariff file (payment GET /v1/tariffs/{year}).
    tariff = tomllib.loads((TARIFFS / f"{today_in_changzhou().year}.toml").read_text(encoding="utf-8"))
    expect(page.locator("label[for=pension_tier-3]")).to_contain_text(f"每月 {yuan(tariff['pension']['3'])}")
    expect(page.locator("label[for=medical_tier-5]")).to_contain_text(f"每月 {yuan(tariff['medical']['5'])}")
    page.locator("#pension_tier-3").check()
    page.locator("#medical_tier-5").check()
    page.get_by_label("本市户籍", exact=True).check()
    page.get_by_label("户籍所在地行政区划代码").fill("320402")
    page.get_by_label("居住地（常州市区县）").select_option("320411")
    shoot(page, "applicant-apply")
    page.get_by_role("button", name="下一步：上传资料").click()
    expect(page).to_have_url(re.compile(r"/me/applications/[0-9a-f-]{36}/documents$"), timeout=15_000)
    application_id = page.url.split("/")[-2]

    _upload(page, "id_card_front", "front.png", documents.png(), "image/png")
    _upload(page, "id_card_back", "back.jpg", documents.jpeg(), "image/jpeg")
    _upload(page, "hukou_first_page", "hukou1.pdf", documents.pdf(), "application/pdf")
    refused = page.locator("#hukou_own_page form")
    refused.locator("input[type=file]").set_input_files({"name": "x.jpg", "mimeType": "image/jpeg", "buffer": b"no"})
    refused.locator("button[type=submit]").click()
    expect(refused.locator(".upload-status .error")).not_to_be_empty()  # enrollment's refusal, in place
    expect(page.locator("#hukou_own_page .badge")).to_have_text("未上传")

    # The last one as a plain form post, JavaScript off: the same route answers 303 to the page.
    plain = browser.new_context(
        viewport=PHONE, base_url=system["web"].url, java_script_enabled=False, storage_state=phone.storage_state()
    )
    plain_page = plain.new_page()
    plain_page.goto(f"/me/applications/{application_id}/documents")
    _upload(plain_page, "hukou_own_page", "hukou2.jpg", documents.jpeg(), "image/jpeg")
    plain.close()

    page.reload()
    expect(page.locator(".documents .badge.ok")).to_have_count(4)
    expect(page.locator("#id_card_front img.preview").first).to_be_visible()
    shoot(page, "applicant-documents")
    page.get_by_role("link", name="下一步：核对并提交").click()
    expect(page.get_by_text("三档")).to_be_visible()
    shoot(page, "applicant-check")
    page.get_by_role("button", name="提交申报").click()
    expect(page).to_have_url(re.compile(rf"/me/applications/{application_id}$"))
    expect(page.locator("[data-status]")).to_have_text(re.compile("已提交，待受理|审核中"))
    expect(page.locator("ol.timeline")).to_contain_text("提交申报")
    shoot(page, "applicant-status")
    page.goto("/me")
    expect(page.locator("ul.applications .badge")).to_have_text(re.compile("已提交，待受理|审核中"))

    # A reviewer approves it in the console, at a desk ...
    desk = desktop_context(browser, system["web"].url)
    console = desk.new_page()
    log_in(console, staff_phone(system, "reviewer"), next_path="/console")

    def queued() -> bool:
        console.reload()
        return console.locator("tr", has_text="王灵活").count() == 1

    eventually(queued, "the case in the reviewer's queue")
    console.locator("tr", has_text="王灵活").get_by_role("link", name="王灵活").click()
    console.get_by_role("button", name="审核通过").click()
    expect(console.locator("#decision")).to_have_text("审核通过")
    desk.close()

    # ... and the applicant's page then says so and offers the registration form.
    page.goto(f"/me/applications/{application_id}")

    def approved() -> bool:
        page.reload()
        return page.locator("[data-status]").get_attribute("data-status") == "approved"

    eventually(approved, "the application approved on the applicant's page")
    expect(page.locator("#after")).to_have_text("审核通过")
    page.get_by_label("我已仔细阅读").check()
    page.get_by_role("button", name="确认已阅读").click()
    expect(page.get_by_role("link", name="下载《常州市劳动事务代理申请登记表》")).to_be_visible()
    shoot(page, "applicant-approved")


def test_a_person_pays_for_another_whose_bill_then_reads_paid(
    system: dict[str, ServiceProcess], browser: Browser
) -> None:
    insured, application_id = decided_person(system, "孙丽华", date(1988, 6, 21), False, {"decision": "approved"})
    issue_bills(system["payment"])
    [bill] = listed_bills(system, insured, 1)["bills"]
    payer = Person(system, "周代缴", date(1985, 3, 3), male=True)
    payer.register_and_verify()

    paying = phone_context(browser, system["web"].url)
    page = paying.new_page()
    log_in(page, payer.phone)
    page.goto("/me/pay-for-another")
    page.get_by_label("参保人身份证号码").fill(insured.id_number)
    page.get_by_label("参保人姓名").fill("孙丽")  # not the name: payment's one answer for every miss
    page.get_by_role("button", name="查询待缴账单").click()
    expect(page.get_by_role("alert")).to_contain_text("未找到")
    page.get_by_label("参保人身份证号码").fill(insured.id_number)
    page.get_by_label("参保人姓名").fill(insured.name)
    page.get_by_role("button", name="查询待缴账单").click()
    result = page.locator("section[aria-labelledby=result]")
    expect(result).to_contain_text(yuan(bill["amount_fen"]))
    expect(result).to_contain_text("待缴费")
    expect(result).not_to_contain_text(insured.id_number)  # read back masked
    shoot(page, "applicant-pay-for-another")
    paying.close()

    # The payer paid in WeChat's 代人缴费; WeChat Pay tells payment, signed, as it does.
    notification = wechat(KEYS, bill["bill_id"], bill["amount_fen"], "4200007777" + uuid4().hex[:18])
    assert notify_channel(system, "wechat", notification) == 204

    own = phone_context(browser, system["web"].url)
    page = own.new_page()
    log_in(page, insured.phone)
    page.goto("/me/bills")
    card = page.locator(f"[data-bill='{bill['bill_id']}']")
    expect(card.locator(".badge")).to_have_text("已缴费")
    expect(card).to_contain_text(yuan(bill["amount_fen"]))
    expect(page.locator(".summary .total")).to_have_text(yuan(0))
    expect(page.locator("details.channel")).to_have_count(5)
    shoot(page, "applicant-bills")

    page.goto(f"/me/applications/{application_id}")
    page.get_by_label("我已仔细阅读").check()
    page.get_by_role("button", name="确认已阅读").click()
    with page.expect_download() as downloading:
        page.get_by_role("link", name="下载《常州市劳动事务代理申请登记表》").click()
    form = Path(downloading.value.path())
    assert form.read_bytes().startswith(b"%PDF")

    def active() -> bool:
        page.reload()
        return page.locator("[data-status]").get_attribute("data-status") == "active"

    eventually(active, "the application active on its page")
    expect(page.locator("[data-status]")).to_have_text("已参保（缴费成功）")
    expect(page.locator("ol.timeline")).to_contain_text("缴费成功")
    shoot(page, "applicant-status-active")
    own.close()


def test_a_rejected_applicant_reads_the_reasons_corrects_and_resubmits(
    system: dict[str, ServiceProcess], phone: BrowserContext
) -> None:
    reason = {"code": "documents_unreadable", "text": "身份证反面照片模糊"}
    person, application_id = decided_person(
        system, "周强", date(1985, 11, 2), True, {"decision": "rejected", "reasons": [reason]}
    )
    page = phone.new_page()
    log_in(page, person.phone)
    expect(page.locator("ul.applications .badge")).to_have_text("审核不通过")
    page.get_by_role("link", name="查看原因并修改").click()
    expect(page.locator("[data-status]")).to_have_text("审核不通过")
    expect(page.locator("section.rejected")).to_contain_text("身份证反面照片模糊")
    shoot(page, "applicant-status-rejected")
    page.get_by_role("link", name="修改资料").click()
    _upload(page, "id_card_back", "back-again.jpg", documents.jpeg(width=80, height=60), "image/jpeg")
    page.get_by_role("link", name="下一步：核对并提交").click()
    page.get_by_role("button", name="提交申报").click()
    expect(page).to_have_url(re.compile(rf"/me/applications/{application_id}$"))
    expect(page.locator("[data-status]")).to_have_text(re.compile("已提交，待受理|审核中"))
    expect(page.locator("ol.timeline")).to_contain_text("提交申报（第2次申报）")


def test_me_is_for_signed_in_applicants_and_a_form_without_its_csrf_field_calls_nothing(
    system: dict[str, ServiceProcess], browser: Browser
) -> None:
    anonymous = phone_context(browser, system["web"].url)
    page = anonymous.new_page()
    page.goto("/me")
    assert page.url.endswith("/login?next=%2Fme"), page.url
    anonymous.close()

    reviewer = phone_context(browser, system["web"].url)
    page = reviewer.new_page()
    log_in(page, staff_phone(system, "reviewer", agency="320411"))
    answer = page.goto("/me")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("无权访问")
    reviewer.close()

    applicant = phone_context(browser, system["web"].url)
    page = applicant.new_page()
    number, user_id = registered_only(system)
    log_in(page, number)
    form: dict[str, str | float | bool] = {
        "name": "王灵活",
        "id_number": id_number(date(1991, 2, 3), seq=uuid4().int % 400),
    }
    refused = page.request.post("/me/verify", form=form)
    assert refused.status == 403 and "页面已过期" in refused.text()
    token = httpx.post(
        f"{system['identity'].url}/v1/sessions", json={"phone": number, "password": PASSWORD}, timeout=15
    ).json()["access_token"]
    profile = httpx.get(
        f"{system['identity'].url}/v1/users/{user_id}", headers={"Authorization": f"Bearer {token}"}, timeout=15
    )
    assert profile.status_code == 200 and profile.json()["verified"] is False, profile.text
    applicant.close()
