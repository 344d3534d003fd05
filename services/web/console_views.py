"""The reviewer console's pure parts: deadlines in working days, the queue's filters and paging,
the case's facts as people read them, the decision form's parsing, a document's real type.

No I/O here: the routes (console_routes.py) call the APIs and hand the answers to these functions."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from contracts.documents import DOCUMENT_LABELS
from contracts.reference import DistrictDirectory

SHANGHAI = ZoneInfo("Asia/Shanghai")

STATUSES = {"pending": "待审核", "decided": "已审核", "all": "全部"}
PAGE_SIZES = (10, 20, 50, 100)
DEFAULT_PAGE_SIZE = 20
MAX_OFFSET = 1_000_000  # review's own bound on `offset`
NOTE_MAX = 200  # review's bound on a reason's text (it goes into the SMS)

HOUSEHOLD_KINDS = {"changzhou": "本市户籍", "jiangsu_resident": "省内外市户籍、居住地为本市"}
GENDERS = {"male": "男", "female": "女"}
DECISIONS = {"approved": "审核通过", "rejected": "审核不通过"}


# ---- due dates (review counts the working days, with its calendar and its overrides) ------


@dataclass(frozen=True)
class Deadline:
    due_on: date
    allowed: int  # working days the agency was given after the submission day
    left: int  # working days after today up to the due date (on the due date: 0, "今日到期")
    overdue: bool
    late_by: int  # working days past the due date
    due_today: bool = False

    @property
    def words(self) -> str:
        """Said in words, never only by colour."""
        if self.overdue:
            return f"已超期{self.late_by}个工作日" if self.late_by else "已超期"
        if self.due_today:
            return "今日到期"
        return f"剩余{self.left}个工作日"


def case_deadline(case: Mapping[str, Any], today: date) -> Deadline:
    """What review says of the case's due date (`overdue` and the working-day counts are its own)."""
    due = date.fromisoformat(str(case["due_on"]))
    overdue = bool(case["overdue"]) and case["status"] != "decided"
    return Deadline(
        due,
        allowed=int(case["due_working_days"]),
        left=int(case["working_days_left"]),
        overdue=overdue,
        late_by=int(case["working_days_late"]),
        due_today=not overdue and today == due,
    )


@dataclass(frozen=True)
class QueueRow:
    case_id: str
    name: str
    id_number_masked: str
    agency_name: str
    submitted_at: str
    status: str
    pending: bool
    deadline: Deadline
    css: str


def queue_rows(cases: Sequence[Mapping[str, Any]], today: date) -> list[QueueRow]:
    return [
        QueueRow(
            case_id=str(c["case_id"]),
            name=str(c["applicant"]["name"]),
            id_number_masked=str(c["applicant"]["id_number_masked"]),
            agency_name=str(c["agency"]["name"]),
            submitted_at=str(c["submitted_at"]),
            status=DECISIONS.get(str(c.get("decision")), "") if c["status"] == "decided" else "待审核",
            pending=c["status"] != "decided",
            deadline=case_deadline(c, today),
            css=row_class(c),
        )
        for c in cases
    ]


def row_class(case: Mapping[str, Any]) -> str:
    """The queue row of a late pending case is highlighted (`tr.overdue`)."""
    return "overdue" if case.get("overdue") and case.get("status") != "decided" else ""


# ---- queue filters and paging -------------------------------------------------------------


@dataclass(frozen=True)
class QueueQuery:
    status: str = "pending"
    agency: str = ""
    size: int = DEFAULT_PAGE_SIZE
    offset: int = 0

    def params(self, **changes: Any) -> dict[str, str]:
        values = {"status": self.status, "agency": self.agency, "size": str(self.size), "offset": str(self.offset)}
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v and not (k == "offset" and v == "0")}

    def link(self, **changes: Any) -> str:
        return "/console?" + urlencode(self.params(**changes))


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and len(text) <= 7 else default


def parse_queue_query(status: str | None, agency: str | None, size: str | None, offset: str | None) -> QueueQuery:
    """Whatever the address bar says, a query review accepts: unknown values fall back."""
    chosen_size = _int(size, DEFAULT_PAGE_SIZE)
    code = (agency or "").strip()
    return QueueQuery(
        status=status if status in STATUSES else "pending",
        agency=code if code.isdigit() and len(code) == 6 else "",
        size=chosen_size if chosen_size in PAGE_SIZES else DEFAULT_PAGE_SIZE,
        offset=min(_int(offset, 0), MAX_OFFSET),
    )


@dataclass(frozen=True)
class Paging:
    previous: str | None
    next: str | None
    first_number: int  # 1-based position of the first row shown
    last_number: int


def paging(query: QueueQuery, fetched: int) -> Paging:
    """review gives no total: the page asks one row more than it shows, so `fetched` > size
    means there is a next page."""
    shown = min(fetched, query.size)
    previous = query.link(offset=max(query.offset - query.size, 0)) if query.offset > 0 else None
    following = query.link(offset=query.offset + query.size) if fetched > query.size else None
    return Paging(previous, following, query.offset + 1 if shown else 0, query.offset + shown)


# ---- the case -----------------------------------------------------------------------------


def tier(value: int | None) -> str:
    return "无" if value is None else f"第{value}档"


def place(code: str, districts: DistrictDirectory) -> str:
    district = districts.district(code)
    return f"{district.name}（{code}）" if district else code


def applicant_facts(applicant: Mapping[str, Any], districts: DistrictDirectory) -> list[tuple[str, str]]:
    """What review gives of the applicant, as (label, value); masked fields stay as given."""
    age = applicant.get("age_at_submission")
    facts = [
        ("姓名", str(applicant["name"])),
        ("公民身份号码", str(applicant["id_number_masked"])),
        ("性别", GENDERS.get(str(applicant["gender"]), str(applicant["gender"]))),
        ("出生日期", str(applicant.get("birth_date") or "—")),
        ("申报时年龄", f"{age}周岁" if age is not None else "—"),
        ("手机号码", str(applicant.get("phone_masked") or "—")),
        ("户籍类型", HOUSEHOLD_KINDS.get(str(applicant["household_kind"]), str(applicant["household_kind"]))),
        ("户籍地", place(str(applicant["household_region_code"]), districts)),
        ("居住地", place(str(applicant["residence_district_code"]), districts)),
        ("养老保险档次", tier(applicant.get("pension_tier"))),
        ("医疗保险档次", tier(applicant.get("medical_tier"))),
    ]
    return facts


@dataclass(frozen=True)
class DocumentView:
    kind: str
    label: str
    is_pdf: bool
    src: str


def document_views(case: Mapping[str, Any]) -> list[DocumentView]:
    """Each document through web's own route (the reviewer's token stays on the server)."""
    return [
        DocumentView(
            kind=str(d["kind"]),
            label=DOCUMENT_LABELS.get(str(d["kind"]), str(d["kind"])),
            is_pdf=d["content_type"] == "application/pdf",
            src=f"/console/applications/{case['application_id']}/documents/{d['kind']}",
        )
        for d in case["documents"]
    ]


def reason_labels(reasons: Sequence[Mapping[str, Any]], codes: Sequence[Mapping[str, Any]]) -> list[str]:
    """A decision's reasons as the applicant's SMS says them (review stores `label：note`)."""
    known = {str(c["code"]): str(c["label"]) for c in codes}
    return [str(r.get("text") or known.get(str(r["code"]), r["code"])) for r in reasons]


# ---- the decision form --------------------------------------------------------------------


class FormError(ValueError):
    """The form cannot be sent as it is: the message says why, in Chinese."""


@dataclass(frozen=True)
class DecisionForm:
    decision: str
    reasons: tuple[str, ...] = ()
    note: str = ""

    def body(self, codes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """review's decision body. One note: it goes with the reason that requires words (e.g.
        其他), else with the first reason chosen, so the SMS says it once."""
        if self.decision == "approved":
            return {"decision": "approved"}
        needs_words = {str(c["code"]) for c in codes if c.get("text_required")}
        holder = next((r for r in self.reasons if r in needs_words), self.reasons[0])
        reasons = [{"code": r, "text": self.note} if r == holder and self.note else {"code": r} for r in self.reasons]
        return {"decision": "rejected", "reasons": reasons}


def parse_decision(
    decision: str, reasons: Sequence[str], note: str, codes: Sequence[Mapping[str, Any]]
) -> DecisionForm:
    """The reviewer's choice, checked before review is asked (review checks it again)."""
    known = {str(c["code"]): c for c in codes}
    chosen = tuple(dict.fromkeys(r for r in reasons if r))  # order kept, repeats dropped
    words = note.strip()
    if decision not in DECISIONS:
        raise FormError("请选择审核通过或审核不通过。")
    if any(r not in known for r in chosen):
        raise FormError("所选原因不在规定的原因列表中，请刷新页面后重新选择。")
    if len(words) > NOTE_MAX:
        raise FormError(f"补充说明不能超过{NOTE_MAX}个字。")
    if decision == "approved":
        if chosen:
            raise FormError("审核通过时无需选择不通过原因；如要审核不通过，请点击“审核不通过”。")
        return DecisionForm("approved")
    if not chosen:
        raise FormError("审核不通过时须至少选择一项原因。")
    if any(known[r].get("text_required") for r in chosen) and not words:
        labels = "、".join(str(known[r]["label"]) for r in chosen if known[r].get("text_required"))
        raise FormError(f"选择“{labels}”时须填写补充说明。")
    return DecisionForm("rejected", chosen, words)


# ---- a document's real type ---------------------------------------------------------------

_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"%PDF-", "application/pdf"))


def sniffed_type(head: bytes) -> str | None:
    """The type the bytes themselves say (never the stored name, nor a header alone); None: none of
    the three kinds enrollment accepts."""
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
