"""Uploaded documents are judged by their content, never by their name or declared type.

What is stored is what was judged safe (issue 9, "Documents"):
- images (JPEG, PNG) are decoded and encoded again with Pillow, so the stored file is a clean
  image: no metadata (EXIF with its GPS position, comments, ICC profile, text chunks), no trailing
  bytes, nothing that does not decode; tiny or degenerate images are refused;
- PDFs are parsed (pypdf) and refused when they carry JavaScript, launch or other dangerous
  actions, or embedded files; one that does not parse, or is encrypted (so cannot be inspected),
  is refused too. A PDF is stored as uploaded once it passed.
"""

import io
from collections.abc import Iterator
from dataclasses import dataclass

import filetype  # type: ignore[import-untyped]
from PIL import Image, ImageOps, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, PdfObject

from kernel.problems import Problem

ACCEPTED_TYPES = frozenset({"image/jpeg", "image/png", "application/pdf"})
MIN_IMAGE_SIDE = 32  # pixels: a photo of an ID card or a register page is far larger
MAX_IMAGE_PIXELS = 50_000_000  # decoded size bound (a 12 MP phone photo is 12 M)
_PIL_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG"}
# Dictionary keys that carry script, embedded files or multimedia/forms that run code.
_FORBIDDEN_KEYS = frozenset({"/JS", "/JavaScript", "/EmbeddedFiles", "/EmbeddedFile", "/EF", "/RichMedia", "/XFA"})
# Action types (/S values) that run something or send data away.
_FORBIDDEN_ACTIONS = frozenset(
    {"/JavaScript", "/Launch", "/ImportData", "/SubmitForm", "/GoToE", "/RichMediaExecute", "/Rendition"}
)
_MAX_PDF_OBJECTS = 200_000


@dataclass(frozen=True)
class CleanDocument:
    data: bytes
    content_type: str


def sniff_content_type(head: bytes) -> str | None:
    """The media type the bytes' signature (magic number) says, if it is one we accept."""
    kind = filetype.guess(head)
    mime = getattr(kind, "mime", None)
    return mime if mime in ACCEPTED_TYPES else None


def check_document(data: bytes, max_bytes: int) -> str:
    """Return the content type an upload claims by its content, or refuse (413 / 415 / 422).
    Only the first look: `clean_document` is what decides."""
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    if not data:
        raise Problem("empty_document", "上传的文件为空，请重新选择。", 422)
    content_type = sniff_content_type(data[:8192])
    if content_type is None:
        raise Problem("unsupported_document_type", "仅支持上传JPEG、PNG图片或PDF文件。", 415)
    return content_type


def clean_document(data: bytes, max_bytes: int) -> CleanDocument:
    """The document to store: an image encoded again without metadata, or a PDF that passed."""
    content_type = check_document(data, max_bytes)
    if content_type == "application/pdf":
        check_pdf(data)
        return CleanDocument(data, content_type)
    return CleanDocument(reencode_image(data, content_type), content_type)


def invalid_document(reason: str) -> Problem:
    return Problem("invalid_document", "文件已损坏或内容不符合要求，请重新拍照或扫描后上传。", 422, reason=reason)


def reencode_image(data: bytes, content_type: str) -> bytes:
    fmt = _PIL_FORMAT[content_type]
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise invalid_document("too_many_pixels")
            if min(width, height) < MIN_IMAGE_SIDE:
                raise invalid_document("too_small")
            img.load()
            upright = ImageOps.exif_transpose(img)  # as the phone showed it; the EXIF goes below
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise invalid_document("does_not_decode") from exc
    mode = {"JPEG": ("RGB", "L"), "PNG": ("RGB", "RGBA", "L", "LA")}[fmt]
    clean = upright if upright.mode in mode else upright.convert("RGBA" if "A" in upright.getbands() else "RGB")
    clean.info = {}  # no EXIF, ICC profile, comments or text chunks carried over
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, "JPEG", quality=90, optimize=True)
    else:
        clean.save(out, "PNG", optimize=True)
    return out.getvalue()


def check_pdf(data: bytes) -> None:
    """Refuse a PDF with JavaScript, launch or similar actions, or embedded files, anywhere in it:
    every object is visited, reachable from the trailer or not."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise invalid_document("encrypted")
        if len(reader.pages) == 0:
            raise invalid_document("no_pages")
        for name in _names(reader):
            if name in _FORBIDDEN_KEYS:
                raise invalid_document("active_content" if name not in ("/EmbeddedFiles", "/EmbeddedFile", "/EF")
                                       else "embedded_file")  # fmt: skip
    except Problem:
        raise
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise invalid_document("does_not_parse") from exc


def _names(reader: PdfReader) -> Iterator[str]:
    """The dictionary keys of every object of the file, and the action type of every action
    dictionary mapped to a forbidden key (so `/S /Launch` counts as `/JS` does)."""
    seen: set[tuple[int, int]] = set()
    stack: list[PdfObject] = [reader.trailer]
    stack.extend(_all_objects(reader))
    visited = 0
    while stack:
        item = stack.pop()
        obj: PdfObject | None = item
        if isinstance(item, IndirectObject):
            ref = (item.idnum, item.generation)
            if ref in seen:
                continue
            seen.add(ref)
            obj = item.get_object()
        visited += 1
        if visited > _MAX_PDF_OBJECTS:
            raise invalid_document("too_complex")
        if isinstance(obj, DictionaryObject):
            for key, value in obj.items():
                yield str(key)
                if key == "/S" and isinstance(value, NameObject) and str(value) in _FORBIDDEN_ACTIONS:
                    yield "/JS"
                stack.append(value)
        elif isinstance(obj, ArrayObject):
            stack.extend(obj)


def _all_objects(reader: PdfReader) -> Iterator[IndirectObject]:
    """Every object the cross-reference sections list, including those in object streams."""
    numbers: set[tuple[int, int]] = set()
    for generation, table in reader.xref.items():
        numbers.update((idnum, generation) for idnum in table)
    numbers.update((idnum, 0) for idnum in reader.xref_objStm)
    for idnum, generation in sorted(numbers):
        if idnum > 0:
            yield IndirectObject(idnum, generation, reader)


def too_large(max_bytes: int) -> Problem:
    megabytes = max_bytes / (1024 * 1024)
    return Problem(
        "document_too_large", f"上传文件不能超过{megabytes:g}MB，请压缩后重新上传。", 413, max_bytes=max_bytes
    )
