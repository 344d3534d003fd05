"""Real documents for tests, made here: images that decode, PDFs that parse, and the hostile ones
enrollment must refuse (services/enrollment/documents.py)."""

import io
from functools import cache

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

EXIF_MAKE = "SecretCam-GPS-31.78N"


@cache
def jpeg(width: int = 64, height: int = 48, exif: bool = True) -> bytes:
    """A real JPEG photo, with an EXIF block (camera make) that re-encoding must drop."""
    image = Image.new("RGB", (width, height), (180, 40, 40))
    out = io.BytesIO()
    if exif:
        tags = Image.Exif()
        tags[0x010F] = EXIF_MAKE  # Make
        image.save(out, "JPEG", exif=tags.tobytes(), comment=b"a comment")
    else:
        image.save(out, "JPEG")
    return out.getvalue()


@cache
def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 40, 180)).save(out, "PNG")
    return out.getvalue()


def _written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@cache
def pdf() -> bytes:
    """A plain one-page PDF."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    return _written(writer)


def pdf_with_open_action_javascript() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    _open_action(writer, "/JavaScript", NameObject("/JS"), TextStringObject("app.alert('hello');"))
    return _written(writer)


def pdf_with_embedded_file() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_attachment("payload.exe", b"MZ\x90\x00 not really")
    return _written(writer)


def pdf_with_launch_action() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    _open_action(writer, "/Launch", NameObject("/F"), TextStringObject("cmd.exe"))
    return _written(writer)


def _open_action(writer: PdfWriter, kind: str, key: NameObject, value: TextStringObject) -> None:
    """The catalogue's /OpenAction: an action of type `kind` run when the file is opened."""
    action = DictionaryObject(
        {NameObject("/Type"): NameObject("/Action"), NameObject("/S"): NameObject(kind), key: value}
    )
    writer.root_object[NameObject("/OpenAction")] = writer._add_object(action)


# A "JPEG" of 36 bytes: a JFIF signature and nothing that decodes.
FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 24
assert len(FAKE_JPEG) == 36
