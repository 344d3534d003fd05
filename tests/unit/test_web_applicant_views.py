"""The applicant pages' pure parts (services/web/applicant_views.py), and their templates rendered
with answers shaped as the services give them (every variable a template uses must be passed)."""

from typing import Any

import pytest

from contracts.reference import load_districts
from services.web import applicant_views as views
from services.web.pages import ENVIRONMENT
from services.web.session import Visitor

APP = "6f1c1c9e-5a51-4c43-9a51-3c1f3f0b8e01"


def application(status: str, **fields: Any) -> dict[str, Any]:
    return {"application_id": APP, "status": status, "attempt": 1, "household_kind": "changzhou", "documents": [],
            **fields}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "label", "css"),
    [
        ("draft", "待提交", "muted"),
        ("submitted", "已提交，待受理", ""),
        ("under_review", "审核中", ""),
        ("approved", "审核通过", "ok"),
        ("rejected", "审核不通过", "bad"),
        ("active", "已参保（缴费成功）", "ok"),
        ("something_new", "处理中", ""),
    ],
)
def test_each_status_reads_in_chinese_with_its_colour(status: str, label: str, css: str) -> None:
    assert views.status_badge(status) == views.Badge(label, css)


def test_every_status_of_enrollment_has_its_own_label() -> None:
    from services.enrollment.status import ViewStatus

    statuses = set(ViewStatus.__args__)  # type: ignore[attr-defined]
    assert set(views.STATUS_BADGES) == statuses
    assert len({b.label for b in views.STATUS_BADGES.values()}) == len(statuses)


def test_bills_read_due_overdue_and_paid() -> None:
    assert [views.bill_badge(s).label for s in ("due", "overdue", "paid")] == ["待缴费", "已逾期", "已缴费"]
    assert views.bill_badge("overdue").css == "bad" and views.bill_badge("paid").css == "ok"


def test_the_timeline_is_newest_first_and_names_a_resubmission() -> None:
    entries: list[dict[str, Any]] = [
        {"kind": "verified", "at": "2026-03-01T01:00:00+00:00", "label": "完成实名认证", "attempt": None},
        {"kind": "submitted", "at": "2026-03-02T01:00:00+00:00", "label": "提交申报", "attempt": 1},
        {"kind": "rejected", "at": "2026-03-03T01:00:00+00:00", "label": "审核不通过", "attempt": 1},
        {"kind": "submitted", "at": "2026-03-04T01:00:00+00:00", "label": "提交申报", "attempt": 2},
    ]
    rows = views.timeline_rows(entries)
    assert [r.label for r in rows] == ["提交申报（第2次申报）", "审核不通过", "提交申报", "完成实名认证"]
    assert rows[0].at == "2026-03-04T01:00:00+00:00" and rows[1].css == "bad" and rows[3].css == ""
    assert views.timeline_rows([]) == []


@pytest.mark.parametrize(
    ("verified", "applications", "href", "action"),
    [
        (False, [], "/me/verify", "去实名认证"),
        (True, [], "/me/notice", "开始参保登记"),
        (True, [application("draft", documents=["id_card_front"])], f"/me/applications/{APP}/documents", "上传资料"),
        (
            True,
            [application("draft", documents=["id_card_front", "id_card_back", "hukou_first_page", "hukou_own_page"])],
            f"/me/applications/{APP}/check",
            "核对并提交",
        ),
        (True, [application("submitted")], f"/me/applications/{APP}", "查看办理进度"),
        (True, [application("under_review")], f"/me/applications/{APP}", "查看办理进度"),
        (True, [application("rejected")], f"/me/applications/{APP}", "查看原因并修改"),
        (True, [application("approved")], f"/me/applications/{APP}", "阅读须知"),
        (
            True,
            [application("approved", agency_notice_accepted_at="2026-03-05T00:00:00Z")],
            "/me/bills",
            "查看缴费账单",
        ),
        (True, [application("active", agency_notice_accepted_at="2026-03-05T00:00:00Z")], "/me/bills", "查看缴费账单"),
    ],
)
def test_the_next_step_follows_the_guide(
    verified: bool, applications: list[dict[str, Any]], href: str, action: str
) -> None:
    step = views.next_step(verified, applications)
    assert (step.href, step.action) == (href, action)


def test_the_next_step_is_about_the_open_application_not_an_older_one() -> None:
    older = {**application("approved"), "application_id": "old"}
    assert views.latest_application([older, application("rejected")]) == application("rejected")
    assert views.latest_application([application("rejected"), older]) == application("rejected")
    assert views.latest_application([older]) == older and views.latest_application([]) is None


def test_a_jiangsu_resident_needs_the_residence_permit_not_the_household_register() -> None:
    slots = views.document_slots("jiangsu_resident", ["id_card_back", "hukou_first_page"])
    assert [(s.kind, s.label, s.uploaded) for s in slots] == [
        ("id_card_front", "身份证正面", False),
        ("id_card_back", "身份证反面", True),
        ("residence_permit", "居住证", False),
    ]
    assert views.missing_labels("jiangsu_resident", ["id_card_back"]) == ["身份证正面", "居住证"]
    assert views.missing_labels("changzhou", ["hukou_own_page"]) == ["身份证正面", "身份证反面", "户口簿首页"]
    assert views.document_slots(None, []) == []


def test_tiers_offer_none_first_and_amounts_only_when_a_tariff_gives_them() -> None:
    options = views.tier_options(views.PENSION_TIERS)
    assert [(o.value, o.label) for o in options] == [
        ("", "无"), ("1", "一档"), ("2", "二档"), ("3", "三档"), ("4", "四档"), ("5", "五档")
    ]  # fmt: skip
    assert all(o.amount_fen is None for o in options)  # never a made-up amount
    priced = views.tier_options(views.MEDICAL_TIERS, {5: 57000})
    assert [(o.label, o.amount_fen) for o in priced] == [("无", None), ("五档", 57000)]


def test_a_tier_from_the_form_is_one_offered_or_none() -> None:
    assert views.parse_tier("", views.PENSION_TIERS) is None
    assert views.parse_tier("3", views.PENSION_TIERS) == 3
    with pytest.raises(ValueError):
        views.parse_tier("3", views.MEDICAL_TIERS)
    with pytest.raises(ValueError):
        views.parse_tier("x", views.PENSION_TIERS)


def test_the_choices_read_back_as_the_guide_names_them() -> None:
    facts = views.choice_facts(
        application("draft", pension_tier=None, medical_tier=5, household_region_code="320402",
                    residence_district_code="320411"),
        load_districts(),
    )  # fmt: skip
    assert (facts.pension, facts.medical, facts.household) == ("无", "五档", "本市户籍")
    assert facts.residence == "新北区（320411）" and facts.household_region_code == "320402"


def test_bill_lines_and_months_read_in_chinese_in_integer_fen() -> None:
    items = [{"insurance": "pension", "tier": 3, "amount_fen": 138000}, {"insurance": "medical", "tier": 5,
             "amount_fen": 57000}]  # fmt: skip
    assert views.bill_items(items) == [
        views.BillItemRow("养老保险（三档）", 138000),
        views.BillItemRow("医疗保险（五档）", 57000),
    ]
    assert views.period_label("2026-03") == "2026年3月" and views.period_label("2026-12") == "2026年12月"


def test_the_five_channels_are_explained_and_two_say_how_to_pay_for_another() -> None:
    codes = [c.code for c in views.PAY_CHANNELS]
    assert sorted(codes) == sorted(["wechat", "alipay", "unionpay_pos", "bank_counter", "bank_withholding"])
    assert codes[0] == "bank_withholding"  # the guide's main way
    by_code = {c.code: c for c in views.PAY_CHANNELS}
    assert "代人缴费" in by_code["wechat"].for_another and "为他人缴费" in by_code["alipay"].for_another
    assert all(c.steps for c in views.PAY_CHANNELS)


def test_an_id_number_is_read_back_masked() -> None:
    assert views.mask_id_number(" 320402199001010017 ") == "3204**********0017"
    assert views.mask_id_number("1234") == "****"


def test_uploads_are_taken_for_drafts_and_corrections_only() -> None:
    assert [s for s in views.STATUS_BADGES if views.can_upload(s)] == ["draft", "rejected"]


# --- the templates, with answers shaped as the services give them --------------------------------


class FakeRequest:
    """What the templates read of the request: nothing but its presence."""


VISITOR = Visitor(token="t", principal=None, csrf="c" * 64)


def page(template: str, **context: Any) -> str:
    return ENVIRONMENT.get_template(f"applicant/{template}").render(request=FakeRequest(), visitor=VISITOR, **context)


def test_the_status_page_shows_the_reasons_of_a_rejection() -> None:
    rejected = application(
        "rejected", review_reasons=[{"code": "documents_unreadable", "text": "身份证反面照片模糊"}],
        decided_at="2026-03-03T01:00:00+00:00", notified=True, notified_at="2026-03-03T01:01:00+00:00",
        agency_name=None, review_due_on=None, active_since=None, agency_notice_accepted_at=None, attempt=1,
    )  # fmt: skip
    html = page(
        "status.html", application=rejected, badge=views.status_badge("rejected"), rows=[],
        facts=views.choice_facts(rejected, load_districts()), agency_notice=None, error=None,
    )  # fmt: skip
    assert "身份证反面照片模糊" in html and "审核不通过" in html
    assert f"/me/applications/{APP}/documents" in html and "2026-03-03 09:01" in html  # Beijing time


def test_the_bills_page_shows_amounts_as_yuan_and_every_form_carries_the_csrf_field() -> None:
    bill = {"bill_id": "b1", "period": "2026-03", "amount_fen": 195000, "due_on": "2026-04-15", "status": "overdue",
            "paid_at": None, "items": []}  # fmt: skip
    view = {"today": "2026-04-20", "amount_due_fen": 195000, "bills": [bill]}
    html = page(
        "bills.html", view=view, bills=[(bill, views.bill_badge("overdue"), [])], agreements=[],
        channels=views.PAY_CHANNELS, period_label=views.period_label,
    )  # fmt: skip
    assert "1,950.00 元" in html and "已逾期" in html and "2026年3月" in html
    apply = page(
        "apply.html", notice_version="2020-12", tariff=None, pension_options=views.tier_options(views.PENSION_TIERS),
        medical_options=views.tier_options(views.MEDICAL_TIERS), households=views.HOUSEHOLD_LABELS,
        districts=load_districts().districts, error=None,
        chosen={"pension_tier": "3", "medical_tier": "5", "household_kind": "changzhou",
                "household_region_code": "", "residence_district_code": ""},
    )  # fmt: skip
    assert (
        apply.count('name="csrf" value="' + "c" * 64) == 1
        and 'id="pension_tier-3" name="pension_tier" value="3" checked' in apply
    )
