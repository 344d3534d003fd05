"""enrollment's HTTP routes: thin, they validate shapes, check the principal and call the
service layer. Business refusals come from the domain as problem details."""

from collections.abc import AsyncGenerator
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, StrictInt
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from contracts.documents import DOCUMENT_KINDS
from contracts.http import DOCUMENT_PATH
from kernel.audit import client_of
from kernel.auth import CurrentPrincipal, Principal, require_role
from kernel.problems import Problem, Refused
from kernel.web import PROBLEM_RESPONSES, StrictBody, correlation_id, problem_responses
from services.enrollment.documents import too_large
from services.enrollment.reference import Notice
from services.enrollment.rules import Choices
from services.enrollment.service import EnrollmentService
from services.enrollment.status import StatusView
from services.enrollment.verification_check import VerificationCheck, pending

PREFIX = "/v1"
router = APIRouter(prefix=PREFIX, responses=PROBLEM_RESPONSES)
# The document route is the path review's console links to (contracts.http), under this prefix.
_DOCUMENT_ROUTE = DOCUMENT_PATH.removeprefix(PREFIX)

_REGION = r"^\d{6}$"
_MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file itself


class HelpLineView(BaseModel):
    number: str
    topic: str


class NoticeView(BaseModel):
    version: str
    title: str
    body: str
    help_lines: list[HelpLineView]


class ChoicesBody(StrictBody):
    pension_tier: StrictInt | None = Field(description="养老保险档次 1-5；null 表示“无”", examples=[3])
    medical_tier: StrictInt | None = Field(description="医疗保险档次，仅 5；null 表示“无”", examples=[5])
    household_kind: str = Field(max_length=40, description="changzhou 或 jiangsu_resident", examples=["changzhou"])
    household_region_code: str = Field(pattern=_REGION, description="户籍所在地行政区划代码", examples=["320402"])
    residence_district_code: str = Field(pattern=_REGION, description="居住地（常州市区县）代码", examples=["320411"])


class NewApplication(ChoicesBody):
    notice_version: str | None = Field(default=None, max_length=40, description="已同意的须知版本")


class AgencyNoticeAcceptance(StrictBody):
    version: str = Field(min_length=1, max_length=40, description="已阅读并同意的《劳动事务代理人员须知》版本")


class Correction(StrictBody):
    pension_tier: StrictInt | None = None
    medical_tier: StrictInt | None = None
    household_kind: str | None = Field(default=None, max_length=40)
    household_region_code: str | None = Field(default=None, pattern=_REGION)
    residence_district_code: str | None = Field(default=None, pattern=_REGION)


class Created(BaseModel):
    application_id: UUID


class DocumentView(BaseModel):
    kind: str
    sha256: str
    content_type: str
    size_bytes: int


def service(request: Request) -> EnrollmentService:
    svc: EnrollmentService = request.app.state.enrollment
    return svc


Service = Annotated[EnrollmentService, Depends(service)]
Applicant = Annotated[Principal, require_role("applicant")]


@router.get("/notice", summary="The current enrolment notice (参保登记须知) with the help lines")
async def get_notice(request: Request) -> NoticeView:
    return _notice_view(request.app.state.enrollment_config.notice)


def _notice_view(n: Notice) -> NoticeView:
    lines = [HelpLineView(number=h.number, topic=h.topic) for h in n.help_lines]
    return NoticeView(version=n.version, title=n.title, body=n.body, help_lines=lines)


@router.get(
    "/agency-notice", summary="The current labour-affairs agency notice (劳动事务代理人员须知), read after approval"
)
async def get_agency_notice(request: Request) -> NoticeView:
    return _notice_view(request.app.state.enrollment_config.agency_notice)


@router.post(
    "/applications",
    status_code=201,
    summary="Open an application: accept the notice, choose tiers",
    responses=problem_responses(503),
    description="503 verification_pending (with Retry-After): verified at identity, not yet known here.",
)
async def open_application(body: NewApplication, svc: Service, principal: Applicant, request: Request) -> Created:
    choices = Choices(**body.model_dump(exclude={"notice_version"}))
    try:
        application_id = await svc.open(principal, body.notice_version, choices, correlation_id(request))
    except Refused as refused:
        # Verified at identity, not yet heard of here (the broker slow or away): say so, retryably.
        check: VerificationCheck = request.app.state.verification_check
        authorization = request.headers.get("Authorization")
        if refused.code == "not_verified" and await check.verified_at_identity(principal.user_id, authorization):
            raise pending() from refused
        raise
    return Created(application_id=application_id)


@router.get("/applications", summary="The caller's own applications with their status")
async def my_applications(svc: Service, principal: CurrentPrincipal, mine: bool = True) -> list[StatusView]:
    if not mine:
        raise Refused("unsupported_filter", "目前仅支持查询本人的申请（mine=true）。")
    return await svc.mine(principal)


@router.get("/applications/{application_id}", summary="Status of an application, with its current review case")
async def get_application(application_id: UUID, svc: Service, principal: CurrentPrincipal) -> StatusView:
    return await svc.status(application_id, principal)


@router.patch("/applications/{application_id}", summary="Correct a draft or a rejected application")
async def correct_application(
    application_id: UUID, body: Correction, svc: Service, principal: CurrentPrincipal
) -> StatusView:
    # null means 无 for a tier; for the household fields it means "unchanged"
    changes: dict[str, Any] = {
        k: v for k, v in body.model_dump(include=body.model_fields_set).items() if v is not None or k.endswith("_tier")
    }
    if changes:
        await svc.correct(application_id, principal, changes)
    return await svc.status(application_id, principal)


def _kind(kind: str) -> str:
    if kind not in DOCUMENT_KINDS:
        raise Refused("unknown_document_kind", "资料类型不正确。", allowed=list(DOCUMENT_KINDS))
    return kind


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.put(
    _DOCUMENT_ROUTE,
    summary="Upload a document (JPEG, PNG or PDF, judged by content); replaces one of the same kind",
    openapi_extra=_UPLOAD_BODY,
    responses=problem_responses(413, 415),
)
async def put_document(
    application_id: UUID, kind: str, svc: Service, principal: CurrentPrincipal, request: Request
) -> DocumentView:
    """The body is read here, by the handler itself, and only after the checks that need none of
    it: the kind, the caller's ownership and the application's state (a stranger's or a submitted
    application's upload is refused having read nothing), then the declared length; it is read
    as a stream that stops at the limit, so a chunked body is bounded as well."""
    _kind(kind)
    await svc.check_upload(application_id, principal)
    limit = svc.config.document_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _MULTIPART_SLACK:  # refuse before reading it
        raise too_large(limit)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise Refused("file_missing", "请选择要上传的文件（表单字段 file）。")
    parser = MultiPartParser(
        request.headers, _bounded(request, limit + _MULTIPART_SLACK, limit), max_files=1, max_fields=5
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise Problem("bad_request", "上传内容格式不正确，请重新上传。", 400) from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Refused("file_missing", "请选择要上传的文件（表单字段 file）。")
        data = await upload.read(limit + 1)
    finally:
        await form.close()
    event = await svc.upload(application_id, principal, kind, data)
    return DocumentView(
        kind=event.kind, sha256=event.sha256, content_type=event.content_type, size_bytes=event.size_bytes
    )


async def _bounded(request: Request, cap: int, limit: int) -> AsyncGenerator[bytes, None]:
    """The request's body, refused (413) as soon as more than `cap` bytes arrived."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > cap:
            raise too_large(limit)
        yield chunk


_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}


def download_headers(filename: str) -> dict[str, str]:
    """A person's file, handed out to be saved, never rendered in the service's origin: a
    download (attachment), sandboxed should a browser render it all the same (no script, no
    same-origin access), its type not guessed, and not kept by any cache."""
    return {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        "Content-Security-Policy": "sandbox",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }


@router.get(
    _DOCUMENT_ROUTE,
    summary="Download a document (its owner; staff once submitted, reviewers of its agency); staff reads are audited",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "application/pdf": {}}}},
)
async def get_document(
    application_id: UUID, kind: str, svc: Service, principal: CurrentPrincipal, request: Request
) -> Response:
    data, content_type = await svc.document(application_id, principal, _kind(kind), client=client_of(request))
    filename = f"{kind}.{_EXTENSIONS.get(content_type, 'bin')}"
    return Response(data, media_type=content_type, headers=download_headers(filename))


@router.post(
    "/applications/{application_id}/submit",
    summary="Submit for review (提交申报); the applicant's name, birth date and phone travel sealed",
    responses=problem_responses(503),
)
async def submit_application(application_id: UUID, svc: Service, principal: CurrentPrincipal) -> StatusView:
    await svc.submit(application_id, principal)
    return await svc.status(application_id, principal)


@router.post(
    "/applications/{application_id}/agency-notice",
    summary="Accept the labour-affairs agency notice (劳动事务代理人员须知) after approval; idempotent",
)
async def accept_agency_notice(
    application_id: UUID, body: AgencyNoticeAcceptance, svc: Service, principal: CurrentPrincipal
) -> StatusView:
    await svc.accept_agency_notice(application_id, principal, body.version)
    return await svc.status(application_id, principal)


@router.get(
    "/applications/{application_id}/registration-form.pdf",
    summary="常州市劳动事务代理申请登记表 as PDF (after approval and the agency notice); 410 once the "
    "applicant's data was erased",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **problem_responses(410, 503)},
)
async def registration_form(
    application_id: UUID, svc: Service, principal: CurrentPrincipal, request: Request
) -> Response:
    pdf = await svc.registration_form(application_id, principal, client=client_of(request))
    return Response(pdf, media_type="application/pdf", headers=download_headers("常州市劳动事务代理申请登记表.pdf"))


_COUNTER_ONLY = (
    "手机APP只能办理正常参保登记和缴费；{what}须由本人携带有效身份证件，"
    "至本人所委托代理的劳动就业管理机构窗口办理。如需咨询，请致电12333。"
)


@router.post("/back-payments", summary="Back-payment (补缴): not possible in the app (guide Q7)")
async def back_payment(principal: CurrentPrincipal) -> None:
    raise Refused("counter_only", _COUNTER_ONLY.format(what="社保补缴"))


@router.post("/suspensions", summary="Suspension (停保): not possible in the app (guide Q7)")
async def suspension(principal: CurrentPrincipal) -> None:
    raise Refused("counter_only", _COUNTER_ONLY.format(what="停保"))
