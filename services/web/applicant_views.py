"""What the applicant's pages show, as pure functions of the services' answers: status labels,
the timeline, which step comes next, the tier choices, the documents still wanted, the bills and
the five ways to pay (guide 二、缴费方式). No I/O here: applicant_routes.py calls the APIs."""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.documents import DOCUMENT_LABELS, REQUIRED_DOCUMENTS
from contracts.reference import DistrictDirectory

# DOCUMENT_LABELS and REQUIRED_DOCUMENTS are the contract enrollment's submit refuses
# `documents_missing` by (contracts/documents.py): one table, so the pages and it cannot drift.


@dataclass(frozen=True)
class Badge:
    label: str
    css: str  # one of web.css's .ok .bad .muted, or "" for plain


STATUS_BADGES: Mapping[str, Badge] = {
    "draft": Badge("待提交", "muted"),
    "submitted": Badge("已提交，待受理", ""),
    "under_review": Badge("审核中", ""),
    "approved": Badge("审核通过", "ok"),
    "rejected": Badge("审核不通过", "bad"),
    "active": Badge("已参保（缴费成功）", "ok"),
}


def status_badge(status: str) -> Badge:
    """A status the page does not know yet (a newer service) still reads as something."""
    return STATUS_BADGES.get(status, Badge("处理中", ""))


BILL_BADGES: Mapping[str, Badge] = {
    "due": Badge("待缴费", ""),
    "overdue": Badge("已逾期", "bad"),
    "paid": Badge("已缴费", "ok"),
}


def bill_badge(status: str) -> Badge:
    return BILL_BADGES.get(status, Badge("处理中", ""))


INSURANCE_LABELS: Mapping[str, str] = {"pension": "养老保险", "medical": "医疗保险"}
TIER_NAMES: Mapping[int, str] = {1: "一档", 2: "二档", 3: "三档", 4: "四档", 5: "五档"}
HOUSEHOLD_LABELS: Mapping[str, str] = {
    "changzhou": "本市户籍",
    "jiangsu_resident": "居住地为本市的我省（江苏省）外市户籍",
}


def tier_label(tier: int | None) -> str:
    """Guide PART-5's words: 一档…五档, and 无 for an insurance not taken."""
    return "无" if tier is None else TIER_NAMES.get(tier, f"{tier}档")


@dataclass(frozen=True)
class TierOption:
    value: str  # the form's value: "" for 无, else the tier's number
    label: str
    amount_fen: int | None  # the month's amount when a tariff is known; None: not published here


def tier_options(tiers: Iterable[int], tariff: Mapping[int, int] | None = None) -> list[TierOption]:
    """无 first, then each tier with its monthly amount from `tariff` (integer fen: payment's
    GET /v1/tariffs/{year}); without one the amounts are None and the page says the bill will
    state them, rather than showing numbers it made up."""
    known = tariff or {}
    return [TierOption("", "无", None)] + [TierOption(str(t), tier_label(t), known.get(t)) for t in sorted(tiers)]


PENSION_TIERS = (1, 2, 3, 4, 5)
MEDICAL_TIERS = (5,)


def parse_tier(value: str, allowed: Collection[int]) -> int | None:
    """A radio's value: "" is 无; anything else must be one of `allowed` (else ValueError)."""
    if value == "":
        return None
    tier = int(value)
    if tier not in allowed:
        raise ValueError(f"tier {tier} not offered")
    return tier


@dataclass(frozen=True)
class TimelineRow:
    label: str
    at: str  # ISO 8601 as the API gave it; the template shows it in Beijing time
    css: str


_TIMELINE_CSS = {"approved": "ok", "rejected": "bad", "sms_failed": "bad", "payment_settled": "ok"}


def timeline_rows(entries: Sequence[Mapping[str, Any]]) -> list[TimelineRow]:
    """enrollment's timeline, newest first (what happened last is what the person looks for);
    a resubmission's steps say which submission they belong to."""
    rows = []
    for entry in entries:
        label = str(entry["label"])
        attempt = entry.get("attempt")
        if isinstance(attempt, int) and attempt > 1:
            label = f"{label}（第{attempt}次申报）"
        rows.append(TimelineRow(label, str(entry["at"]), _TIMELINE_CSS.get(str(entry["kind"]), "")))
    return list(reversed(rows))


@dataclass(frozen=True)
class DocumentSlot:
    kind: str
    label: str
    uploaded: bool


def document_slots(household_kind: str | None, uploaded: Collection[str]) -> list[DocumentSlot]:
    """What the household needs (guide PART-6 with Q2), in the guide's order, each marked."""
    kinds = REQUIRED_DOCUMENTS.get(household_kind or "", ())
    return [DocumentSlot(k, DOCUMENT_LABELS[k], k in uploaded) for k in kinds]


def missing_labels(household_kind: str | None, uploaded: Collection[str]) -> list[str]:
    return [s.label for s in document_slots(household_kind, uploaded) if not s.uploaded]


@dataclass(frozen=True)
class NextStep:
    text: str
    href: str
    action: str  # the button's words


def next_step(verified: bool, applications: Sequence[Mapping[str, Any]]) -> NextStep:
    """The one thing the person should do now, from the guide's order of things."""
    if not verified:
        return NextStep("办理参保登记前，请先完成实名认证。", "/me/verify", "去实名认证")
    current = latest_application(applications)
    if current is None:
        return NextStep("请阅读参保登记须知，选择参保险种及缴费档次。", "/me/notice", "开始参保登记")
    base, status = f"/me/applications/{current['application_id']}", str(current["status"])
    if status == "draft":
        if missing_labels(current.get("household_kind"), current.get("documents") or []):
            return NextStep("请上传申报资料。", f"{base}/documents", "上传资料")
        return NextStep("资料已上传齐全，请核对申请信息后提交申报。", f"{base}/check", "核对并提交")
    if status == "rejected":
        return NextStep("审核不通过：请按原因修改资料后重新提交。", base, "查看原因并修改")
    if status == "approved" and not current.get("agency_notice_accepted_at"):
        return NextStep("审核通过：请阅读《劳动事务代理人员须知》。", base, "阅读须知")
    if status in ("approved", "active"):
        return NextStep("请按月缴纳社保费。", "/me/bills", "查看缴费账单")
    return NextStep("受理机构将在1-2个工作日内审核，并以短信告知结果。", base, "查看办理进度")


def latest_application(applications: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The application that matters now: an open one before a closed one; enrollment keeps one
    open per person, so the last listed of the preferred kind."""
    if not applications:
        return None
    open_ones = [a for a in applications if a.get("status") in ("draft", "submitted", "under_review", "rejected")]
    return (open_ones or list(applications))[-1]


@dataclass(frozen=True)
class ChoiceFacts:
    pension: str
    medical: str
    household: str
    household_region_code: str
    residence: str


def choice_facts(application: Mapping[str, Any], districts: DistrictDirectory) -> ChoiceFacts:
    """The choices as the check page reads them back (guide PART-7: 查看核对申请信息)."""
    residence_code = str(application.get("residence_district_code") or "")
    district = districts.district(residence_code)
    return ChoiceFacts(
        pension=tier_label(application.get("pension_tier")),
        medical=tier_label(application.get("medical_tier")),
        household=HOUSEHOLD_LABELS.get(str(application.get("household_kind")), "—"),
        household_region_code=str(application.get("household_region_code") or "—"),
        residence=f"{district.name}（{residence_code}）" if district else residence_code or "—",
    )


def can_upload(status: str) -> bool:
    """enrollment takes documents for a draft and for a rejected application (a correction)."""
    return status in ("draft", "rejected")


@dataclass(frozen=True)
class BillItemRow:
    label: str
    amount_fen: int


def bill_items(items: Sequence[Mapping[str, Any]]) -> list[BillItemRow]:
    """A bill's lines: 养老保险（三档） 1,380.00 元."""
    return [
        BillItemRow(
            f"{INSURANCE_LABELS.get(str(i['insurance']), str(i['insurance']))}（{tier_label(int(i['tier']))}）",
            int(i["amount_fen"]),
        )
        for i in items
    ]


def period_label(period: str) -> str:
    """2026-03 → 2026年3月."""
    year, _, month = period.partition("-")
    return f"{year}年{int(month)}月" if month.isdigit() else period


@dataclass(frozen=True)
class PayChannel:
    code: str  # payment's channel name
    name: str
    steps: tuple[str, ...]
    for_another: str  # how someone else pays through it; "" where the guide says nothing


# Guide 二、缴费方式 (一)…(五), and services/payment/README.md: how each channel is used by the person.
PAY_CHANNELS: tuple[PayChannel, ...] = (
    PayChannel(
        "bank_withholding",
        "银行卡签约扣费（主要方式）",
        (
            "及时领取江苏省社会保障卡，携带身份证原件和银行卡，前往对应银行网点办理金融功能激活、签订扣缴协议；",
            "签约后每月账单由银行从卡内自动扣缴，无需另行操作；原已签订协议的不用重复签订；",
            "扣款失败时会收到短信提醒，请保持卡内余额充足，下月将再次扣缴。",
        ),
        "",
    ),
    PayChannel(
        "wechat",
        "微信缴费",
        (
            "在微信小程序中搜索“江苏税务社保缴纳”，点击“立即授权”；",
            "点击“实名认证”，输入姓名、手机号码和身份证号码，完成人脸核验；",
            "点击“缴费”，勾选缴费项目，点击“一键缴费”，支付成功后提示“缴费成功”。",
        ),
        "点击“切换缴费人”→“添加他人身份信息”，录入对方信息后点击“代人缴费”，勾选缴费项目并“一键缴费”。",
    ),
    PayChannel(
        "alipay",
        "支付宝缴费",
        (
            "在支付宝首页搜索“江苏税务社保缴纳”，进入小程序并点击“同意”授权；",
            "点击“身份证号码”进入缴费界面；",
            "选中待缴纳的社保费，点击“去支付”完成缴费。",
        ),
        "点击“为他人缴费”，输入对方正确的身份信息并确认，再选中待缴纳的社保费点击“去支付”。",
    ),
    PayChannel(
        "unionpay_pos",
        "银联POS机刷卡",
        ("持银联卡至税务部门设立在各级劳动（人事）事务代理机构或办税服务大厅的窗口，用POS机刷卡缴费。",),
        "",
    ),
    PayChannel(
        "bank_counter",
        "银行柜面缴费",
        (
            "持本人身份证到银行网点查询并缴费；",
            "中国银行、农业银行、工商银行、建设银行、交通银行、江苏银行、江南银行、邮储银行各网点均支持现金缴费。",
        ),
        "",
    ),
)


def mask_id_number(number: str) -> str:
    """An ID number typed on the pay-for-another page, read back masked (3204**********0017)."""
    clean = number.strip()
    return clean[:4] + "*" * max(0, len(clean) - 8) + clean[-4:] if len(clean) > 8 else "*" * len(clean)
