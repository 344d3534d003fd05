"""What enrollment stores of an upload (services/enrollment/documents.py, issue 9 "Documents"):
images decoded and encoded again without their metadata, PDFs with active content or embedded
files refused, anything that does not decode refused."""

import io

import pytest
from PIL import Image

from kernel.problems import Problem
from services.enrollment.documents import clean_document
from tests.support import documents

LIMIT = 10 * 1024 * 1024


def refused(data: bytes) -> Problem:
    with pytest.raises(Problem) as caught:
        clean_document(data, LIMIT)
    return caught.value


def test_a_36_byte_jpeg_is_refused_as_an_invalid_document() -> None:
    problem = refused(documents.FAKE_JPEG)
    assert (problem.status, problem.code) == (422, "invalid_document")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (documents.pdf_with_open_action_javascript(), "active_content"),
        (documents.pdf_with_launch_action(), "active_content"),
        (documents.pdf_with_embedded_file(), "embedded_file"),
        (b"%PDF-1.4\n" + b"0" * 200, "does_not_parse"),
    ],
    ids=["open-action-javascript", "launch-action", "embedded-file", "garbage-after-the-signature"],
)
def test_hostile_or_broken_pdfs_are_refused(data: bytes, reason: str) -> None:
    problem = refused(data)
    assert (problem.status, problem.code, problem.body()["reason"]) == (422, "invalid_document", reason)


def test_a_javascript_name_spelled_with_hex_escapes_is_found_all_the_same() -> None:
    data = documents.pdf_with_open_action_javascript().replace(b"/JavaScript", b"/Java#53cript")
    data = data.replace(b"/JS (", b"/J#53 (")
    assert b"/JavaScript" not in data and b"/JS" not in data
    assert refused(data).code == "invalid_document"


def test_a_plain_pdf_is_stored_as_uploaded() -> None:
    clean = clean_document(documents.pdf(), LIMIT)
    assert (clean.content_type, clean.data) == ("application/pdf", documents.pdf())


def test_a_jpeg_is_encoded_again_without_its_exif_and_comment() -> None:
    original = documents.jpeg()
    assert documents.EXIF_MAKE.encode() in original and b"a comment" in original
    clean = clean_document(original, LIMIT)
    assert clean.content_type == "image/jpeg"
    assert documents.EXIF_MAKE.encode() not in clean.data and b"Exif" not in clean.data
    assert b"a comment" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as image:
        assert (image.format, image.size) == ("JPEG", (64, 48))
        assert not image.getexif()


def test_bytes_after_the_image_are_not_kept() -> None:
    clean = clean_document(documents.png() + b"<script>alert(1)</script>", LIMIT)
    assert clean.content_type == "image/png" and b"<script>" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.format == "PNG" and image.size == (64, 48)


def test_a_png_loses_its_text_chunks() -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "secret-location")
    out = io.BytesIO()
    Image.new("RGB", (64, 64)).save(out, "PNG", pnginfo=info)
    assert b"secret-location" in out.getvalue()
    assert b"secret-location" not in clean_document(out.getvalue(), LIMIT).data


def test_a_degenerate_image_is_refused() -> None:
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "JPEG")
    problem = refused(out.getvalue())
    assert (problem.code, problem.body()["reason"]) == ("invalid_document", "too_small")
