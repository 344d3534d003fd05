"""The guide's eligibility rules (Q2, PART-5, PART-6) as pure checks that refuse with a code.

Each refusal is a `kernel.problems.Refused` with a stable machine code and a Chinese detail.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from stdnum import numdb

from contracts.documents import DOCUMENT_LABELS, REQUIRED_DOCUMENTS
from contracts.events.base import CHANGZHOU_PREFIX, JIANGSU_PREFIX
from contracts.reference import DistrictDirectory
from kernel.problems import Refused
from services.enrollment.ages import Gender, Mode, has_reached, upper_limit

PENSION_TIERS = frozenset({1, 2, 3, 4, 5})
MEDICAL_TIERS = frozenset({5})
HOUSEHOLD_KINDS = ("changzhou", "jiangsu_resident")


@dataclass(frozen=True)
class Choices:
    """What the applicant chose on the registration page (guide PART-5) and declared."""

    pension_tier: int | None
    medical_tier: int | None
    household_kind: str
    household_region_code: str
    residence_district_code: str


@dataclass(frozen=True)
class AgePolicy:
    minimum_age: int = 16
    mode: Mode = "guide"


def check_tiers(pension_tier: int | None, medical_tier: int | None) -> None:
    if pension_tier is not None and pension_tier not in PENSION_TIERS:
        raise Refused("invalid_tier", "养老保险缴费档次只能选择一档至五档，或选择“无”。", field="pension_tier")
    if medical_tier is not None and medical_tier not in MEDICAL_TIERS:
        raise Refused("invalid_tier", "医疗保险仅有第五档，或选择“无”。", field="medical_tier")
    if pension_tier is None and medical_tier is None:
        raise Refused("nothing_to_enrol", "养老保险和医疗保险不能同时选择“无”，请至少参加一项。")


def _known_region(code: str) -> bool:
    """Any GB/T 2260 code known at some time (households keep codes of merged districts)."""
    return len(code) == 6 and code.isdigit() and any(props for _, props in numdb.get("cn/loc").info(code)[1:])


def check_household(choices: Choices, districts: DistrictDirectory) -> None:
    """Guide Q2: "为本市户籍或居住地为本市的我省户籍人员". The declared household code is what the
    reviewer checks against the documents (the ID number's region is where it was first issued)."""
    kind, household, residence = choices.household_kind, choices.household_region_code, choices.residence_district_code
    if kind not in HOUSEHOLD_KINDS:
        raise Refused("not_eligible_household", "户籍类型只能是本市户籍或居住地为本市的我省户籍。")
    if not _known_region(household):
        raise Refused(
            "invalid_region_code", "户籍所在地行政区划代码不正确，请重新选择。", field="household_region_code"
        )
    if kind == "changzhou" and not household.startswith(CHANGZHOU_PREFIX):
        raise Refused("not_eligible_household", "选择“本市户籍”时，户籍所在地须为常州市。")
    if kind == "jiangsu_resident":
        if not household.startswith(JIANGSU_PREFIX) or household.startswith(CHANGZHOU_PREFIX):
            raise Refused(
                "not_eligible_household",
                "仅本市户籍或居住地为本市的我省（江苏省）户籍人员可通过手机APP申报；外省户籍人员请至窗口咨询。",
            )
        if not residence.startswith(CHANGZHOU_PREFIX):
            raise Refused("not_eligible_household", "外市户籍人员须居住在常州市方可申报。")
    if residence not in districts:
        raise Refused("unknown_district", "请选择常州市的居住区（市）。", field="residence_district_code")


def check_choices(choices: Choices, districts: DistrictDirectory) -> None:
    check_tiers(choices.pension_tier, choices.medical_tier)
    check_household(choices, districts)


def check_age(birth: date, gender: Gender, today: date, policy: AgePolicy) -> None:
    """Guide Q2 on the submission date: reached 16 (on the birthday counts); not yet at the
    upper limit (on the 60th/55th birthday, or the delayed date, is too late)."""
    if not has_reached(birth, today, policy.minimum_age):
        raise Refused("not_eligible_age", f"申报人须年满{policy.minimum_age}周岁。", minimum_age=policy.minimum_age)
    limit = upper_limit(birth, gender, policy.mode)
    if has_reached(birth, today, limit.years, limit.months):
        who = "男性" if gender == "male" else "女性"
        raise Refused(
            "not_eligible_age",
            f"{who}申报人须未满{limit.label()}（已达到法定退休年龄），无法通过手机APP办理灵活就业参保登记。",
            maximum_age=limit.label(),
        )


_WHO = {"changzhou": "本市户籍人员", "jiangsu_resident": "居住地为本市的我省外市户籍人员"}


def missing_documents(household_kind: str, present: Collection[str]) -> list[str]:
    """The kinds `household_kind` needs that are not in `present`, in the guide's order."""
    return [k for k in REQUIRED_DOCUMENTS[household_kind] if k not in present]


def check_documents(household_kind: str, present: Collection[str]) -> None:
    missing = missing_documents(household_kind, present)
    if not missing:
        return
    needed = "、".join(DOCUMENT_LABELS[k] for k in REQUIRED_DOCUMENTS[household_kind])
    labels = "、".join(DOCUMENT_LABELS[k] for k in missing)
    raise Refused(
        "documents_missing",
        f"{_WHO[household_kind]}须上传{needed}。请先上传：{labels}。",
        missing=missing,
    )
