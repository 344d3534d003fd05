"""Uploaded documents are judged by their content, never by their name or declared type."""

import filetype  # type: ignore[import-untyped]

from kernel.problems import Problem

ACCEPTED_TYPES = frozenset({"image/jpeg", "image/png", "application/pdf"})


def sniff_content_type(head: bytes) -> str | None:
    """The media type the bytes' signature (magic number) says, if it is one we accept."""
    kind = filetype.guess(head)
    mime = getattr(kind, "mime", None)
    return mime if mime in ACCEPTED_TYPES else None


def check_document(data: bytes, max_bytes: int) -> str:
    """Return the content type of an acceptable document, or refuse (413 / 415 / 422)."""
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    if not data:
        raise Problem("empty_document", "上传的文件为空，请重新选择。", 422)
    content_type = sniff_content_type(data[:8192])
    if content_type is None:
        raise Problem("unsupported_document_type", "仅支持上传JPEG、PNG图片或PDF文件。", 415)
    return content_type


def too_large(max_bytes: int) -> Problem:
    megabytes = max_bytes / (1024 * 1024)
    return Problem(
        "document_too_large", f"上传文件不能超过{megabytes:g}MB，请压缩后重新上传。", 413, max_bytes=max_bytes
    )
