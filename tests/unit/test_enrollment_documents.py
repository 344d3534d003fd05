"""Documents judged by content, the content-addressed blob store, reference data, the form."""

import io
from datetime import date
from pathlib import Path

import httpx
import pypdf
import pytest

from kernel.problems import Problem
from services.enrollment.app import build
from services.enrollment.blobs import BlobNotFound, LocalFolderBlobStore, sha256_hex
from services.enrollment.documents import check_document, sniff_content_type
from services.enrollment.form import RegistrationForm, render, tier_label
from services.enrollment.reference import load_notice, region_name
from services.enrollment.settings import PACKAGE_DIR, EnrollmentSettings

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"0" * 64


@pytest.mark.parametrize(("data", "mime"), [(JPEG, "image/jpeg"), (PNG, "image/png"), (PDF, "application/pdf")])
def test_accepted_types_are_recognised_by_their_signature(data: bytes, mime: str) -> None:
    assert sniff_content_type(data) == mime
    assert check_document(data, 1024) == mime


@pytest.mark.parametrize("data", [b"GIF89a" + b"0" * 40, b"PK\x03\x04" + b"0" * 40, "身份证.jpg".encode()])
def test_other_content_is_refused_whatever_its_name(data: bytes) -> None:
    with pytest.raises(Problem) as refused:
        check_document(data, 1024)
    assert (refused.value.status, refused.value.code) == (415, "unsupported_document_type")


def test_size_limit_and_empty_files() -> None:
    with pytest.raises(Problem) as large:
        check_document(JPEG, len(JPEG) - 1)
    assert (large.value.status, large.value.code) == (413, "document_too_large")
    with pytest.raises(Problem) as empty:
        check_document(b"", 10)
    assert empty.value.code == "empty_document"


def files_in(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.is_file()]


async def test_the_blob_store_is_content_addressed_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalFolderBlobStore(tmp_path)
    ref = await store.put(PNG)
    assert ref == f"sha256/{sha256_hex(PNG)}" and await store.put(PNG) == ref
    assert await store.get(ref) == PNG
    assert files_in(tmp_path) == [sha256_hex(PNG)]
    for bad in ("sha256/" + "0" * 64, "../../etc/passwd"):
        with pytest.raises(BlobNotFound):
            await store.get(bad)


def test_reference_data() -> None:
    notice = load_notice(PACKAGE_DIR / "notice.toml")
    assert notice.version and "12333" in {h.number for h in notice.help_lines}
    agency_notice = load_notice(PACKAGE_DIR / "agency_notice.toml")
    assert agency_notice.title == "劳动事务代理人员须知" and "补缴、停保" in agency_notice.body
    assert {h.number for h in agency_notice.help_lines} == {"12333", "96888732"}


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("320106", "江苏省南京市鼓楼区"),
        ("320302", "江苏省徐州市鼓楼区"),  # the same district name in another city prints differently
        ("320402", "江苏省常州市天宁区"),
        ("320481", "江苏省常州市溧阳市"),  # a county-level city under Changzhou
        ("320583", "江苏省苏州市昆山市"),
        ("320405", "江苏省常州市戚墅堰区"),  # merged in 2015; households may still carry it
        ("320100", "江苏省南京市"),
        ("329999", "329999"),  # unknown: the code itself
    ],
)
def test_region_names_give_province_city_and_county(code: str, name: str) -> None:
    assert region_name(code) == name


def test_the_registration_form_is_a_pdf_with_chinese_text() -> None:
    form = RegistrationForm(
        application_id="a-1", name="孙八", id_number_masked="3204**********1234", gender="female",
        birth_date=date(1988, 6, 15), phone_masked="+86139****5678", household_kind="jiangsu_resident",
        household_region="江苏省昆山市", residence_district="常州市钟楼区", pension_tier=None, medical_tier=5,
        agency="钟楼区劳动就业管理机构", approved_on=date(2025, 3, 3), agency_notice_version="2020-12",
    )  # fmt: skip
    pdf = render(form, EnrollmentSettings().enrollment_pdf_font)
    assert pdf.startswith(b"%PDF")
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for expected in (
        "孙八",
        "常州市劳动事务代理申请登记表",
        "五档",
        "省内外市户籍",
        "申请人签名",
        "2025年03月03日",
        "劳动事务代理人员须知",
        "版本：2020-12",
    ):
        assert expected in text
    assert tier_label(None) == "无"


async def test_the_app_publishes_its_api_and_the_notice_without_infrastructure() -> None:
    app, _ = build(EnrollmentSettings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://e") as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
        notice = (await http.get("/v1/notice")).json()
        agency_notice = (await http.get("/v1/agency-notice")).json()
    assert {
        "/v1/applications/{application_id}/submit",
        "/v1/applications/{application_id}/agency-notice",
        "/v1/back-payments",
        "/v1/suspensions",
    } <= set(paths)
    assert (
        "multipart/form-data"
        in paths["/v1/applications/{application_id}/documents/{kind}"]["put"]["requestBody"]["content"]
    )
    assert notice["title"] == "灵活就业人员参保登记须知"
    assert agency_notice["title"] == "劳动事务代理人员须知" and agency_notice["version"]


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENROLLMENT_BLOB_ROOT", "/tmp/somewhere")
    monkeypatch.setenv("ENROLLMENT_RETIREMENT_AGE_MODE", "gradual_2025")
    monkeypatch.setenv("DISTRICTS_FILE", "/tmp/districts.toml")
    settings = EnrollmentSettings()
    assert settings.enrollment_blob_root == Path("/tmp/somewhere")
    assert settings.enrollment_retirement_age_mode == "gradual_2025"
    assert settings.districts_file == Path("/tmp/districts.toml")
    assert settings.http_port() in (8002, settings.port) and settings.enrollment_minimum_age == 16
