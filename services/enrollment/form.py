"""常州市劳动事务代理申请登记表 (guide PART-8: printable after approval, once the applicant
accepted 《劳动事务代理人员须知》; the form states the accepted version) as a PDF.

fpdf2 embeds a CJK TrueType font (default: WenQuanYi Micro Hei from Debian's
fonts-wqy-microhei), so the Chinese text is real text that can be searched and copied.
"""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

_TIERS = {1: "一档", 2: "二档", 3: "三档", 4: "四档", 5: "五档"}
_HOUSEHOLD = {"changzhou": "本市户籍", "jiangsu_resident": "省内外市户籍，居住地为本市"}
_GENDER = {"male": "男", "female": "女"}


@dataclass(frozen=True)
class RegistrationForm:
    application_id: str
    name: str
    id_number_masked: str
    gender: str
    birth_date: date
    phone_masked: str
    household_kind: str
    household_region: str
    residence_district: str
    pension_tier: int | None
    medical_tier: int | None
    agency: str
    approved_on: date
    agency_notice_version: str


def tier_label(tier: int | None) -> str:
    return _TIERS.get(tier, "无") if tier is not None else "无"


def _rows(form: RegistrationForm) -> list[tuple[str, str]]:
    return [
        ("姓名", form.name),
        ("公民身份号码", form.id_number_masked),
        ("性别", _GENDER.get(form.gender, form.gender)),
        ("出生日期", f"{form.birth_date:%Y年%m月%d日}"),
        ("联系电话", form.phone_masked),
        ("户籍性质", _HOUSEHOLD.get(form.household_kind, form.household_kind)),
        ("户籍所在地", form.household_region),
        ("居住地", form.residence_district),
        ("养老保险缴费档次", tier_label(form.pension_tier)),
        ("医疗保险缴费档次", tier_label(form.medical_tier)),
        ("受理机构", form.agency),
        ("审核通过日期", f"{form.approved_on:%Y年%m月%d日}"),
        ("申请编号", form.application_id),
    ]


def render(form: RegistrationForm, font_path: Path) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title("常州市劳动事务代理申请登记表")
    pdf.set_creator("flexenroll")
    pdf.add_font("cjk", fname=str(font_path))
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 14, "常州市劳动事务代理申请登记表", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("cjk", size=11)
    pdf.cell(0, 8, "（灵活就业人员参保登记）", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    with pdf.table(col_widths=(45, 125), line_height=9, first_row_as_headings=False) as table:
        for label, value in _rows(form):
            row = table.row()
            row.cell(label)
            row.cell(value)
    pdf.ln(8)
    pdf.multi_cell(
        0,
        7,
        (
            "本人承诺以上信息真实有效，已阅读并同意《劳动事务代理人员须知》"
            f"（版本：{form.agency_notice_version}），自愿委托办理劳动事务代理。"
        ),
    )
    pdf.ln(14)
    pdf.cell(95, 8, "申请人签名：____________________")
    pdf.cell(0, 8, "日期：______年____月____日", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    pdf.set_font("cjk", size=9)
    pdf.multi_cell(0, 6, "参保登记咨询电话：12333；选档缴费咨询电话：96888732。")
    return bytes(pdf.output())
