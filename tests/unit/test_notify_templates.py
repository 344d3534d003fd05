"""notify's SMS texts: the packaged templates, reasons in a rejection, a broken templates file."""

from pathlib import Path
from uuid import uuid4

import pytest

from services.notify.domain import intent_for_decision, sms_id_for
from services.notify.templates import TemplateError, join_reasons, load_templates
from tests.support.notify import decision

APPROVED_TEXT = (
    "【常州人社】您的灵活就业人员参保登记申请已审核通过。请登录“常州人社”APP阅读《劳动事务代理人员须知》，"
    "并可打印《常州市劳动事务代理申请登记表》。缴费方式：银行卡签约扣费、微信或支付宝搜索“江苏税务社保缴纳”。"
    "参保咨询12333，选档缴费咨询96888732。"
)


def test_approval_text_is_the_guide_s_next_steps_with_the_sign() -> None:
    templates = load_templates(None, "常州人社")
    intent = intent_for_decision(uuid4(), decision("approved"), templates)
    assert intent.template == "review_approved" and intent.params == {}
    assert intent.text == APPROVED_TEXT


def test_rejection_text_carries_every_reason_and_the_help_line() -> None:
    templates = load_templates(None, "常州人社")
    decided = decision("rejected", "身份证反面照片不清晰，请重新上传。", "  缺少户口簿本人页；")
    intent = intent_for_decision(uuid4(), decided, templates)
    assert intent.template == "review_rejected"
    assert intent.params == {"reasons": "身份证反面照片不清晰，请重新上传；缺少户口簿本人页"}
    assert intent.text.startswith("【常州人社】您的灵活就业人员参保登记申请审核不通过，原因：身份证反面照片不清晰")
    assert "如有疑问请致电12333" in intent.text
    assert intent.recipient_id == decided.applicant_id and intent.case_id == decided.case_id


def test_the_sms_id_is_derived_from_the_causing_event_and_stable() -> None:
    cause = uuid4()
    intent = intent_for_decision(cause, decision("approved"), load_templates(None, "常州人社"))
    assert intent.sms_id == sms_id_for(cause) == sms_id_for(cause)
    assert sms_id_for(uuid4()) != intent.sms_id


def test_join_reasons_drops_empty_and_trailing_punctuation() -> None:
    assert join_reasons(["材料不全。", "", "照片模糊."]) == "材料不全；照片模糊"


def test_a_templates_file_overrides_texts_and_aliyun_codes(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        '[review_approved]\ntext = "通过"\naliyun_template_code = "SMS_1"\n'
        '[review_rejected]\ntext = "不通过：${reasons}"\n'
        '[payment_receipt]\ntext = "已缴${period}${amount}元（${channel}）"\n'
        '[bill_overdue]\ntext = "逾期${period}${amount}元${due}"\n'
        '[withholding_failed]\ntext = "代扣失败${period}${amount}元${bank}${reason}"\n'
        '[one_time_code]\ntext = "验证码${code}，${minutes}分钟，${purpose}"\n'
        '[phone_registered]\ntext = "已注册"\n',
        encoding="utf-8",
    )
    templates = load_templates(path, "测试", {"review_rejected": "SMS_2"})
    assert templates.render("review_rejected", {"reasons": "甲"}) == "【测试】不通过：甲"
    assert templates.get("review_approved").aliyun_code == "SMS_1"
    assert templates.get("review_rejected").aliyun_code == "SMS_2"
    assert templates.get("review_rejected").placeholders == {"reasons"}


@pytest.mark.parametrize(
    "content",
    [
        '[review_approved]\ntext = "通过"\n',  # review_rejected missing
        '[review_approved]\ntext = "通过"\n[review_rejected]\ntext = "x"\n',  # payment_receipt missing
        '[review_approved]\ntext = ""\n[review_rejected]\ntext = "x"\n',  # empty text
        '[review_approved]\ntext = "${"\n[review_rejected]\ntext = "x"\n',  # malformed placeholder
        "not toml [",
    ],
)
def test_a_broken_templates_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TemplateError):
        load_templates(path, "常州人社")


def test_rendering_without_a_needed_parameter_is_an_error() -> None:
    with pytest.raises(TemplateError):
        load_templates(None, "常州人社").render("review_rejected", {})


@pytest.mark.parametrize(
    ("reason", "kept"),
    [
        ("请访问 http://evil.example/x?a=1 补充材料。", "请访问 补充材料"),
        ("详见www.evil.com/a后补充", "详见后补充"),
        ("登录evil。com领取补贴", "登录领取补贴"),  # an ideographic full stop as the dot
        ("请点ｅｖｉｌ．ｃｏｍ／ｐａｙ", "请点"),  # full-width letters
        ("联系10.0.0.1:8080/pay", "联系"),
        ("短链t.cn/A6xyz请点击", "短链请点击"),
        ("javascript:alert(1)", ""),
        ("身份证照片模糊，请重新上传。", "身份证照片模糊，请重新上传"),
        ("户口簿本人页缺失\u200b\u202e", "户口簿本人页缺失"),  # invisible and direction characters
    ],
)
def test_reasons_are_stripped_of_links(reason: str, kept: str) -> None:
    assert join_reasons([reason]) == kept


def test_reasons_are_bounded_each_and_together() -> None:
    one = join_reasons(["材料" * 100])
    assert len(one) == 60 and one.endswith("…") and one.startswith("材料材料")
    many = join_reasons(["照片模糊" * 20] * 6)
    assert len(many) == 200 and many.endswith("…")


def test_a_rejection_sms_carries_no_link(tmp_path: Path) -> None:
    from uuid import uuid4

    from services.notify.domain import intent_for_decision
    from tests.support.notify import decision

    templates = load_templates(None, "常州人社")
    intent = intent_for_decision(
        uuid4(), decision("rejected", "材料不全，详见 https://evil.example/pay", "x" * 300), templates
    )
    assert "evil" not in intent.text and "http" not in intent.text and "材料不全" in intent.text
    assert len(intent.params["reasons"]) <= 200
