"""The reviewer console (/console): the agency's queue, a case with its documents, the decision.

Reviewers decide; operators may look (review refuses them a decision, and the page offers none).
Everything comes from review and enrollment, called with the visitor's own token: a reviewer of
another agency gets what the APIs say (403 not_your_agency, the error page)."""

import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from contracts.documents import DOCUMENT_LABELS
from contracts.reference import load_districts
from kernel.asgi import CORRELATION_HEADER
from kernel.clock import today_in_changzhou
from kernel.web import correlation_id
from services.web import console_views as views
from services.web.apis import ApiRefused, Apis, ApiUnavailable
from services.web.pages import redirect, render
from services.web.session import CsrfChecked, Visitor, signed_in

router = APIRouter(prefix="/console")

Staff = Annotated[Visitor, signed_in("reviewer", "operator")]
Reviewer = Annotated[Visitor, signed_in("reviewer")]
DISTRICTS = load_districts()  # the system's one reference file: names of districts for the facts
# What the case page says after a redirect (?notice=…): a fixed list, never text from the address.
NOTICES = {
    "decided": ("ok", "审核结果已提交。"),
    "already_decided": ("notice", "该申报已由其他审核人员审核完毕，您的审核未提交。以下为已作出的审核结果。"),
}


def _apis(request: Request) -> Apis:
    apis: Apis = request.app.state.apis
    return apis


async def _review(request: Request, visitor: Visitor, method: str, path: str, **kwargs: Any) -> Any:
    return await _apis(request).json(
        "review", method, path, token=visitor.bearer(), correlation_id=correlation_id(request), **kwargs
    )


@router.get("", include_in_schema=False)
async def queue(
    request: Request,
    visitor: Staff,
    status: str | None = None,
    agency: str | None = None,
    size: str | None = None,
    offset: str | None = None,
) -> Response:
    query = views.parse_queue_query(status, agency, size, offset)
    params = {"status": query.status, "limit": query.size + 1, "offset": query.offset}
    if query.agency:
        params["agency"] = query.agency
    answer = await _review(request, visitor, "GET", "/v1/cases", params=params)
    city_wide = visitor.principal is not None and visitor.principal.scope is None
    agencies = await _review(request, visitor, "GET", "/v1/agencies") if city_wide else []
    today = date.fromisoformat(answer["today"])
    return render(
        request,
        visitor,
        "console/queue.html",
        query=query,
        rows=views.queue_rows(answer["cases"][: query.size], today),
        paging=views.paging(query, len(answer["cases"])),
        agencies=agencies,
        agency_name=_agency_name(answer["agency"]),
        statuses=views.STATUSES,
        page_sizes=views.PAGE_SIZES,
        today=today,
    )


def _agency_name(code: str | None) -> str:
    found = DISTRICTS.agency(code) if code else None
    return found.name if found else (code or "全部受理机构")


@router.get("/cases/{case_id}", include_in_schema=False)
async def case_page(request: Request, visitor: Staff, case_id: UUID, notice: str | None = None) -> Response:
    return await _case_page(request, visitor, case_id, notice=NOTICES.get(notice or ""))


async def _case_page(
    request: Request,
    visitor: Visitor,
    case_id: UUID,
    *,
    notice: tuple[str, str] | None = None,
    error: str | None = None,
    chosen: tuple[str, ...] = (),
    note: str = "",
    status_code: int = 200,
) -> Response:
    case = await _review(request, visitor, "GET", f"/v1/cases/{case_id}")
    codes = await _review(request, visitor, "GET", "/v1/reason-codes")
    today = today_in_changzhou()
    principal = visitor.principal
    return render(
        request,
        visitor,
        "console/case.html",
        status_code=status_code,
        case=case,
        facts=views.applicant_facts(case["applicant"], DISTRICTS),
        documents=views.document_views(case),
        deadline=views.case_deadline(case, today),
        reasons=views.reason_labels(case["reasons"], codes),
        codes=codes,
        decided_by_me=principal is not None and str(case.get("reviewer_id")) == str(principal.user_id),
        may_decide=principal is not None and principal.role == "reviewer" and case["status"] != "decided",
        decisions=views.DECISIONS,
        notice=notice,
        error=error,
        chosen=chosen,
        note=note,
    )


@router.post("/cases/{case_id}/decision", include_in_schema=False, dependencies=[CsrfChecked])
async def decide(
    request: Request,
    visitor: Reviewer,
    case_id: UUID,
    decision: Annotated[str, Form(max_length=16)] = "",
    reasons: Annotated[list[str] | None, Form()] = None,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    codes = await _review(request, visitor, "GET", "/v1/reason-codes")
    chosen = tuple(r[:64] for r in (reasons or [])[:20])  # review takes at most 10; it says so itself
    try:
        form = views.parse_decision(decision, chosen, note, codes)
    except views.FormError as exc:
        return await _case_page(request, visitor, case_id, error=str(exc), chosen=chosen, note=note, status_code=422)
    try:
        await _review(request, visitor, "POST", f"/v1/cases/{case_id}/decision", json=form.body(codes))
    except ApiRefused as exc:
        if exc.code == "already_decided":  # another reviewer was first: show theirs, not an error
            return redirect(request, f"/console/cases/{case_id}?notice=already_decided")
        if exc.status in (403, 404) and exc.code != "own_case":
            raise  # not this reviewer's agency, no such case: the error page says what review said
        # own_case and the reasons review refused: the case page with review's own words
        status = 403 if exc.status == 403 else 422
        return await _case_page(
            request, visitor, case_id, error=exc.detail, chosen=chosen, note=note, status_code=status
        )
    return redirect(request, f"/console/cases/{case_id}?notice=decided")


# ---- documents: enrollment's file, streamed through with the reviewer's own token ---------------


@router.get("/applications/{application_id}/documents/{kind}", include_in_schema=False)
async def document(
    request: Request, visitor: Staff, application_id: UUID, kind: str, download: bool = False
) -> Response:
    if kind not in DOCUMENT_LABELS:
        raise HTTPException(404)
    upstream = await _open_document(request, visitor, f"/v1/applications/{application_id}/documents/{kind}")
    chunks = upstream.aiter_bytes()
    try:
        head = await _first_chunk(chunks)
    except BaseException:
        await upstream.aclose()
        raise
    content_type = views.sniffed_type(head)
    if content_type is None or content_type != upstream.headers.get("content-type", "").split(";")[0].strip():
        await upstream.aclose()  # the bytes and enrollment disagree: show nothing rather than guess
        raise HTTPException(415)
    return StreamingResponse(
        _rest(head, chunks),
        media_type=content_type,
        headers=_document_headers(kind, content_type, download),
        background=BackgroundTask(upstream.aclose),
    )


async def _open_document(request: Request, visitor: Visitor, path: str) -> httpx.Response:
    client = _apis(request).client("enrollment")
    headers = {"Authorization": f"Bearer {visitor.bearer()}", CORRELATION_HEADER: correlation_id(request)}
    try:
        upstream = await client.send(client.build_request("GET", path, headers=headers), stream=True)
    except httpx.HTTPError as exc:
        raise ApiUnavailable(f"enrollment: {type(exc).__name__}") from exc
    if upstream.status_code < 400:
        return upstream
    body = await upstream.aread()
    await upstream.aclose()
    if upstream.status_code >= 500:
        raise ApiUnavailable(f"enrollment: {upstream.status_code}")
    try:
        problem = json.loads(body)
    except ValueError:
        problem = {}
    raise ApiRefused(upstream.status_code, problem if isinstance(problem, dict) else {})


async def _first_chunk(chunks: AsyncIterator[bytes]) -> bytes:
    """Enough bytes to tell the type by (the longest magic number is 8 bytes)."""
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= 8:
            break
    return head


async def _rest(head: bytes, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for chunk in chunks:
        yield chunk


_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}


def _document_headers(kind: str, content_type: str, download: bool) -> dict[str, str]:
    """Shown in the page (inline; saved with ?download=1), its type never guessed by the browser,
    framed only by this site, and not kept by any cache: a person's ID card. The file name is
    made here from the kind and the sniffed type, never the name the applicant uploaded."""
    disposition = "attachment" if download else "inline"
    return {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(f'{kind}.{_EXTENSIONS[content_type]}')}",
        "X-Content-Type-Options": "nosniff",
        # Framed by the case page only (the PDF preview): the shell's API default forbids any frame.
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
        "X-Frame-Options": "SAMEORIGIN",
        "Cache-Control": "private, no-store",
    }
