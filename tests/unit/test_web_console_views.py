"""The reviewer console's pure parts (services/web/console_views.py) and its two templates rendered
with answers shaped as review gives them."""

from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import pytest

from contracts.reference import load_districts
from kernel.auth import Principal
from services.web import console_views as views
from services.web.pages import ENVIRONMENT
from services.web.session import Visitor

CODES: list[dict[str, Any]] = [
    {"code": "documents_unreadable", "label": "证件照片不清晰", "text_required": False},
    {"code": "documents_mismatch", "label": "材料与申报信息不一致", "text_required": False},
    {"code": "other", "label": "其他", "text_required": True},
]


# ---- due dates: review's counts, said in words --------------------------------------------


def test_the_deadline_says_the_working_days_left_in_words() -> None:
    fresh = views.case_deadline(case(False, working_days_left=2), date(2026, 3, 6))
    assert (fresh.allowed, fresh.left, fresh.words) == (2, 2, "剩余2个工作日")
    one = views.case_deadline(case(False, working_days_left=1), date(2026, 3, 9))
    assert one.words == "剩余1个工作日"
    on_the_day = views.case_deadline(case(False, working_days_left=0), date(2026, 3, 10))
    assert on_the_day.due_today and on_the_day.words == "今日到期"


def test_an_overdue_deadline_says_so_in_words_with_how_late() -> None:
    late = views.case_deadline(case(True, working_days_late=2), date(2026, 3, 12))
    assert late.overdue and late.left == 0 and late.late_by == 2 and late.words == "已超期2个工作日"
    over_the_weekend = views.case_deadline(case(True, working_days_late=0), date(2026, 3, 14))
    assert over_the_weekend.words == "已超期"
    decided = views.case_deadline(case(True, status="decided", working_days_late=2), date(2026, 3, 12))
    assert not decided.overdue  # a decided case is late for nobody


def case(overdue: bool, status: str = "pending", **extra: Any) -> dict[str, Any]:
    return {
        "case_id": str(uuid4()),
        "application_id": str(uuid4()),
        "attempt": 1,
        "status": status,
        "agency": {"code": "320481", "name": "溧阳市人力资源和社会保障局劳动就业管理中心"},
        "submitted_at": "2026-03-05T17:30:00+00:00",  # 6 March in Changzhou
        "opened_at": "2026-03-05T17:30:01+00:00",
        "due_on": "2026-03-10",
        "overdue": overdue,
        "due_working_days": 2,
        "working_days_left": 0 if overdue else 2,
        "working_days_late": 2 if overdue else 0,
        "applicant": {
            "applicant_id": str(uuid4()),
            "name": "陈静",
            "personal_data_erased": False,
            "id_number_masked": "320402********0021",
            "gender": "female",
            "birth_date": "1990-05-20",
            "age_at_submission": 35,
            "phone_masked": "139****1234",
            "household_kind": "changzhou",
            "household_region_code": "320402",
            "residence_district_code": "320481",
            "pension_tier": 3,
            "medical_tier": None,
        },
        "documents": [
            {"kind": "id_card_front", "content_type": "image/png", "sha256": "a" * 64, "url": "x"},
            {"kind": "hukou_first_page", "content_type": "application/pdf", "sha256": "b" * 64, "url": "y"},
        ],
        "decision": None,
        "reasons": [],
        "reviewer_id": None,
        "decided_at": None,
        **extra,
    }


def test_overdue_flag_highlights_only_pending_late_cases() -> None:
    assert views.row_class(case(True)) == "overdue"
    assert views.row_class(case(False)) == ""
    assert views.row_class(case(True, status="decided")) == ""


def test_queue_rows_use_the_changzhou_day_of_the_submission() -> None:
    [late, on_time] = views.queue_rows([case(True), case(False)], date(2026, 3, 12))
    assert late.css == "overdue" and late.deadline.words == "已超期2个工作日"
    assert on_time.css == "" and on_time.deadline.allowed == 2 and on_time.status == "待审核"


# ---- queue query and paging -------------------------------------------------------------------


def test_queue_query_falls_back_on_anything_review_would_refuse() -> None:
    assert views.parse_queue_query("nonsense", "32048'", "7", "-3") == views.QueueQuery()
    assert views.parse_queue_query("all", "320481", "50", "100") == views.QueueQuery("all", "320481", 50, 100)
    assert views.parse_queue_query(None, None, None, "99999999").offset == 0


def query_of(link: str | None) -> dict[str, list[str]]:
    assert link is not None
    parts = urlsplit(link)
    assert parts.path == "/console"
    return parse_qs(parts.query)


def test_paging_links_keep_the_filters_and_move_by_a_page() -> None:
    query = views.QueueQuery("all", "320481", 20, 20)
    page = views.paging(query, 21)  # one more than shown: there is a next page
    assert query_of(page.previous) == {"status": ["all"], "agency": ["320481"], "size": ["20"]}
    assert query_of(page.next) == {"status": ["all"], "agency": ["320481"], "size": ["20"], "offset": ["40"]}
    assert (page.first_number, page.last_number) == (21, 40)


def test_paging_offers_no_next_on_the_last_page_nor_previous_on_the_first() -> None:
    page = views.paging(views.QueueQuery(size=10), 10)
    assert page.previous is None and page.next is None and page.last_number == 10
    assert views.paging(views.QueueQuery(size=10), 0).first_number == 0


# ---- the decision form --------------------------------------------------------------------------


def test_approval_sends_no_reasons_and_refuses_ticked_ones() -> None:
    assert views.parse_decision("approved", [], "", CODES).body(CODES) == {"decision": "approved"}
    with pytest.raises(views.FormError, match="审核通过时无需"):
        views.parse_decision("approved", ["documents_unreadable"], "", CODES)


def test_rejection_needs_a_known_reason_and_keeps_their_order_once() -> None:
    with pytest.raises(views.FormError, match="至少选择一项"):
        views.parse_decision("rejected", [], "看不清", CODES)
    with pytest.raises(views.FormError, match="不在规定的原因列表"):
        views.parse_decision("rejected", ["made_up"], "", CODES)
    form = views.parse_decision(
        "rejected", ["documents_mismatch", "documents_unreadable", "documents_mismatch"], "", CODES
    )
    assert form.reasons == ("documents_mismatch", "documents_unreadable")
    assert form.body(CODES)["reasons"] == [{"code": "documents_mismatch"}, {"code": "documents_unreadable"}]


def test_the_note_goes_once_with_the_reason_that_needs_words_else_with_the_first() -> None:
    with pytest.raises(views.FormError, match="须填写补充说明"):
        views.parse_decision("rejected", ["other"], "  ", CODES)
    form = views.parse_decision("rejected", ["documents_unreadable", "other"], " 请重拍反面 ", CODES)
    assert form.body(CODES)["reasons"] == [{"code": "documents_unreadable"}, {"code": "other", "text": "请重拍反面"}]
    first = views.parse_decision("rejected", ["documents_unreadable", "documents_mismatch"], "反面模糊", CODES)
    assert first.body(CODES)["reasons"][0] == {"code": "documents_unreadable", "text": "反面模糊"}


def test_a_decision_must_be_one_of_the_two_and_the_note_short() -> None:
    with pytest.raises(views.FormError, match="请选择"):
        views.parse_decision("maybe", [], "", CODES)
    with pytest.raises(views.FormError, match="200"):
        views.parse_decision("rejected", ["documents_unreadable"], "字" * 201, CODES)


# ---- facts, documents, types ----------------------------------------------------------------------


def test_facts_name_the_districts_and_keep_masked_fields_masked() -> None:
    facts = dict(views.applicant_facts(case(False)["applicant"], load_districts()))
    assert facts["公民身份号码"] == "320402********0021" and facts["手机号码"] == "139****1234"
    assert facts["居住地"] == "溧阳市（320481）" and facts["户籍地"] == "天宁区（320402）"
    assert facts["养老保险档次"] == "第3档" and facts["医疗保险档次"] == "无" and facts["申报时年龄"] == "35周岁"


def test_documents_go_through_webs_own_route() -> None:
    shown = case(False)
    image, pdf = views.document_views(shown)
    assert image.src == f"/console/applications/{shown['application_id']}/documents/id_card_front"
    assert not image.is_pdf and pdf.is_pdf and pdf.label == "户口簿首页"


def test_the_type_comes_from_the_bytes() -> None:
    assert views.sniffed_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert views.sniffed_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert views.sniffed_type(b"%PDF-1.7") == "application/pdf"
    assert views.sniffed_type(b"<html><script>") is None


def test_reasons_read_as_review_stored_them() -> None:
    stored = [{"code": "documents_unreadable", "text": "证件照片不清晰：反面模糊"}, {"code": "other", "text": ""}]
    assert views.reason_labels(stored, CODES) == ["证件照片不清晰：反面模糊", "其他"]


# ---- the templates ----------------------------------------------------------------------------------


class FakeRequest:
    """The templates never read the request; render() passes it along."""


def reviewer() -> Visitor:
    return Visitor("token", Principal(user_id=uuid4(), role="reviewer", scope="320481"), "csrf-token")


def test_queue_template_marks_overdue_rows_in_words() -> None:
    query = views.QueueQuery()
    html = ENVIRONMENT.get_template("console/queue.html").render(
        request=FakeRequest(),
        visitor=reviewer(),
        query=query,
        rows=views.queue_rows([case(True), case(False)], date(2026, 3, 12)),
        paging=views.paging(query, 2),
        agencies=[],
        agency_name="溧阳市人力资源和社会保障局劳动就业管理中心",
        statuses=views.STATUSES,
        page_sizes=views.PAGE_SIZES,
        today=date(2026, 3, 12),
    )
    assert html.count('class="overdue"') == 1 and "已超期2个工作日" in html
    assert html.count('<span class="badge bad">已超期</span>') == 1
    assert "2026-03-06" in html  # the submission day in Changzhou, not UTC's 5 March


def test_case_template_shows_documents_and_the_form_with_its_token() -> None:
    shown = case(False)
    html = ENVIRONMENT.get_template("console/case.html").render(
        request=FakeRequest(),
        visitor=reviewer(),
        case=shown,
        facts=views.applicant_facts(shown["applicant"], load_districts()),
        documents=views.document_views(shown),
        deadline=views.case_deadline(shown, date(2026, 3, 6)),
        reasons=[],
        codes=CODES,
        decided_by_me=False,
        may_decide=True,
        decisions=views.DECISIONS,
        notice=None,
        error=None,
        chosen=("other",),
        note="",
    )
    assert '<img src="/console/applications/' in html and "<iframe" in html
    assert 'name="csrf" value="csrf-token"' in html and 'value="other" checked' in html
    assert "剩余2个工作日" in html
