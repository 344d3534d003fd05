"""The applicant's pages (phone first): registration, the home page, real-name verification, the
notice, the tier choice, documents, check and submit, the status, the bills and paying for
another person, the guide's app flow (PART-1 … PART-8 and 二、缴费方式) over the services' APIs.

Every call carries the visitor's own token; every POST is CSRF-checked and answers 303, or the
same form again with the service's own Chinese words when it refused."""

import asyncio
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from contracts.documents import DOCUMENT_LABELS
from contracts.reference import DistrictDirectory, load_districts
from kernel.clock import today_in_changzhou
from kernel.web import correlation_id
from services.web import applicant_views as views
from services.web.apis import ApiRefused, Apis, ApiUnavailable
from services.web.pages import redirect, render
from services.web.session import CsrfChecked, CurrentVisitor, Visitor, open_session, signed_in

router = APIRouter(include_in_schema=False)
Applicant = Annotated[Visitor, signed_in("applicant")]
DISTRICTS: DistrictDirectory = load_districts()
# enrollment answers 503 verification_pending for a moment after identity verified the person
# (the fact travels through Kafka): the page asks again a few times before it says "try later".
PENDING_RETRIES = 4
PENDING_PAUSE_SECONDS = 0.75
# The upload form's route: its body is a document, larger than the 64 KiB of a form; app.py gives
# it WEB_UPLOAD_MAX_BYTES (kernel.web.declare_body_limit).
UPLOAD_PATH = "/me/applications/{application_id}/documents/{kind}"


def _apis(request: Request) -> Apis:
    apis: Apis = request.app.state.apis
    return apis


async def _call(request: Request, visitor: Visitor | None, service: str, method: str, path: str, **kw: Any) -> Any:
    token = visitor.bearer() if visitor else None
    return await _apis(request).json(service, method, path, token=token, correlation_id=correlation_id(request), **kw)


def _uid(visitor: Visitor) -> UUID:
    assert visitor.principal is not None  # signed_in guarantees it
    return visitor.principal.user_id


def _status_code(exc: ApiRefused) -> int:
    """A refused form is shown again with the service's own status (422, 409, 429…); a token that
    expired meanwhile (401) is not the form's fault: app.py sends the visitor to log in again."""
    if exc.status == 401:
        raise exc
    return exc.status if exc.status in (403, 404, 409, 413, 415, 422, 429) else 422


# --- registration (guide PART-2: 用户注册) ------------------------------------------------------


def _register_page(request: Request, visitor: Visitor, status: int = 200, **context: Any) -> Response:
    values = {"phone": "", "error": None, "sent": None, "code_step": False, **context}
    return render(request, visitor, "applicant/register.html", status_code=status, **values)


@router.get("/register")
async def register_page(request: Request, visitor: CurrentVisitor) -> Response:
    return _register_page(request, visitor)


@router.post("/register/code", dependencies=[CsrfChecked])
async def register_code(
    request: Request, visitor: CurrentVisitor, phone: Annotated[str, Form(max_length=32)]
) -> Response:
    """The same form again (not a redirect): the phone stays in the form, never in a URL."""
    try:
        sent = await _call(
            request, None, "identity", "POST", "/v1/phone-codes", json={"phone": phone, "purpose": "register"}
        )
    except ApiRefused as exc:
        return _register_page(request, visitor, _status_code(exc), phone=phone, error=exc.detail)
    minutes = max(1, int(sent.get("expires_in", 300)) // 60)
    sent_text = f"验证码已发送，{minutes}分钟内有效，请查收短信。"
    return _register_page(request, visitor, phone=phone, sent=sent_text, code_step=True)


@router.post("/register", dependencies=[CsrfChecked])
async def register(
    request: Request,
    visitor: CurrentVisitor,
    phone: Annotated[str, Form(max_length=32)],
    code: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=256)],
) -> Response:
    try:
        await _call(
            request, None, "identity", "POST", "/v1/users", json={"phone": phone, "password": password, "code": code}
        )
        session = await _call(
            request, None, "identity", "POST", "/v1/sessions", json={"phone": phone, "password": password}
        )
    except ApiRefused as exc:  # wrong or expired code, weak password, too many tries (429)
        return _register_page(request, visitor, _status_code(exc), phone=phone, error=exc.detail, code_step=True)
    answer = redirect(request, "/me")
    open_session(answer, session["access_token"], int(session["expires_in"]), request.app.state.settings.secure_cookies)
    return answer


# --- home (我的参保) ----------------------------------------------------------------------------


async def _profile(request: Request, visitor: Visitor) -> dict[str, Any]:
    profile: dict[str, Any] = await _call(request, visitor, "identity", "GET", f"/v1/users/{_uid(visitor)}")
    return profile


async def _applications(request: Request, visitor: Visitor) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await _call(request, visitor, "enrollment", "GET", "/v1/applications")
    return found


@router.get("/me")
async def home(request: Request, visitor: Applicant) -> Response:
    profile, applications = await asyncio.gather(_profile(request, visitor), _applications(request, visitor))
    rows = [(a, views.status_badge(str(a["status"]))) for a in reversed(applications)]
    step = views.next_step(bool(profile["verified"]), applications)
    return render(request, visitor, "applicant/home.html", profile=profile, rows=rows, step=step)


# --- real-name verification (实名认证) ----------------------------------------------------------


@router.get("/me/verify")
async def verify_page(request: Request, visitor: Applicant) -> Response:
    profile = await _profile(request, visitor)
    return render(request, visitor, "applicant/verify.html", profile=profile, name="", error=None)


@router.post("/me/verify", dependencies=[CsrfChecked])
async def verify(
    request: Request,
    visitor: Applicant,
    name: Annotated[str, Form(max_length=30)],
    id_number: Annotated[str, Form(max_length=32)],
) -> Response:
    path = f"/v1/users/{_uid(visitor)}/verification"
    try:
        await _call(
            request, visitor, "identity", "POST", path, json={"name": name.strip(), "id_number": id_number.strip()}
        )
    except ApiRefused as exc:  # the number does not check, already verified, too many tries
        profile = await _profile(request, visitor)
        context = {"profile": profile, "name": name, "error": exc.detail}
        return render(request, visitor, "applicant/verify.html", status_code=_status_code(exc), **context)
    return redirect(request, "/me")


# --- the notice (guide PART-4) and the tier choice (PART-5) -------------------------------------


async def _notice(request: Request) -> dict[str, Any]:
    notice: dict[str, Any] = await _call(request, None, "enrollment", "GET", "/v1/notice")
    return notice


@router.get("/me/notice")
async def notice_page(request: Request, visitor: Applicant) -> Response:
    return render(request, visitor, "applicant/notice.html", notice=await _notice(request), error=None)


@router.post("/me/notice", dependencies=[CsrfChecked])
async def agree_to_notice(
    request: Request,
    visitor: Applicant,
    version: Annotated[str, Form(max_length=40)],
    agree: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    if agree != "yes":
        notice = await _notice(request)
        error = "请阅读须知并勾选“我已阅读并同意”后继续。"
        return render(request, visitor, "applicant/notice.html", status_code=422, notice=notice, error=error)
    # enrollment records the agreement with the application it opens (notice_version), and
    # refuses a version that is no longer the current one.
    return redirect(request, f"/me/apply?notice={quote(version, safe='')}")


async def _tariff(request: Request, visitor: Visitor) -> dict[str, Any] | None:
    """This year's tariff from payment (GET /v1/tariffs/{year}); None when the operator has not
    set it or payment does not answer: the page then promises the amounts on the bill instead."""
    year = today_in_changzhou().year
    try:
        tariff: dict[str, Any] = await _call(request, visitor, "payment", "GET", f"/v1/tariffs/{year}")
    except (ApiRefused, ApiUnavailable):
        return None
    return tariff


def _amounts(tariff: dict[str, Any] | None, insurance: str) -> dict[int, int] | None:
    return {int(t["tier"]): int(t["monthly_fen"]) for t in tariff[insurance]} if tariff else None


async def _apply_page(request: Request, visitor: Visitor, notice: str, status: int = 200, **context: Any) -> Response:
    tariff = await _tariff(request, visitor)
    values: dict[str, Any] = {
        "notice_version": notice,
        "tariff": tariff,
        "pension_options": views.tier_options(views.PENSION_TIERS, _amounts(tariff, "pension")),
        "medical_options": views.tier_options(views.MEDICAL_TIERS, _amounts(tariff, "medical")),
        "households": views.HOUSEHOLD_LABELS,
        "districts": DISTRICTS.districts,
        "chosen": {"pension_tier": "3", "medical_tier": "5", "household_kind": "changzhou",
                   "household_region_code": "", "residence_district_code": ""},
        "error": None,
        **context,
    }  # fmt: skip
    return render(request, visitor, "applicant/apply.html", status_code=status, **values)


@router.get("/me/apply")
async def apply_page(request: Request, visitor: Applicant, notice: str = "") -> Response:
    if not notice:  # PART-4 comes first: the notice, agreed to
        return redirect(request, "/me/notice")
    return await _apply_page(request, visitor, notice[:40])


@router.post("/me/apply", dependencies=[CsrfChecked])
async def apply(
    request: Request,
    visitor: Applicant,
    notice_version: Annotated[str, Form(max_length=40)],
    household_kind: Annotated[str, Form(max_length=40)],
    household_region_code: Annotated[str, Form(max_length=6)],
    residence_district_code: Annotated[str, Form(max_length=6)],
    pension_tier: Annotated[str, Form(max_length=2)] = "",
    medical_tier: Annotated[str, Form(max_length=2)] = "",
) -> Response:
    chosen = {"pension_tier": pension_tier, "medical_tier": medical_tier, "household_kind": household_kind,
              "household_region_code": household_region_code.strip(),
              "residence_district_code": residence_district_code}  # fmt: skip
    try:
        body = {
            "notice_version": notice_version,
            "pension_tier": views.parse_tier(pension_tier, views.PENSION_TIERS),
            "medical_tier": views.parse_tier(medical_tier, views.MEDICAL_TIERS),
            "household_kind": household_kind,
            "household_region_code": chosen["household_region_code"],
            "residence_district_code": residence_district_code,
        }
    except ValueError:
        return await _apply_page(request, visitor, notice_version, 422, chosen=chosen, error="请选择有效的缴费档次。")
    try:
        created = await _open_application(request, visitor, body)
    except ApiRefused as exc:
        return await _apply_page(request, visitor, notice_version, _status_code(exc), chosen=chosen, error=exc.detail)
    except ApiUnavailable:
        error = "实名认证信息正在同步或系统繁忙，请稍后再次提交。"
        return await _apply_page(request, visitor, notice_version, 503, chosen=chosen, error=error)
    return redirect(request, f"/me/applications/{created['application_id']}/documents")


async def _open_application(request: Request, visitor: Visitor, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/applications, asked again while enrollment has not yet heard of the verification
    (503 verification_pending), a few times only; any other failure is not asked again."""
    for attempt in range(PENDING_RETRIES):
        try:
            created: dict[str, Any] = await _call(request, visitor, "enrollment", "POST", "/v1/applications", json=body)
            return created
        except ApiUnavailable as exc:
            if exc.code != "verification_pending" or attempt == PENDING_RETRIES - 1:
                raise
            await asyncio.sleep(PENDING_PAUSE_SECONDS)
    raise AssertionError("unreachable")


# --- documents (guide PART-6) ------------------------------------------------------------------


async def _application(request: Request, visitor: Visitor, application_id: UUID) -> dict[str, Any]:
    found: dict[str, Any] = await _call(request, visitor, "enrollment", "GET", f"/v1/applications/{application_id}")
    return found


def _documents_page(
    request: Request, visitor: Visitor, application: dict[str, Any], status: int = 200, **context: Any
) -> Response:
    slots = views.document_slots(application.get("household_kind"), application.get("documents") or [])
    values = {"failed_kind": None, "error": None, **context}
    return render(
        request,
        visitor,
        "applicant/documents.html",
        status_code=status,
        application=application,
        slots=slots,
        editable=views.can_upload(str(application["status"])),
        complete=all(s.uploaded for s in slots),
        **values,
    )


@router.get("/me/applications/{application_id}/documents")
async def documents_page(request: Request, visitor: Applicant, application_id: UUID) -> Response:
    return _documents_page(request, visitor, await _application(request, visitor, application_id))


@router.post(UPLOAD_PATH, dependencies=[CsrfChecked])
async def upload_document(request: Request, visitor: Applicant, application_id: UUID, kind: str) -> Response:
    """The file goes on to enrollment as it came (multipart field `file`): enrollment judges it by
    content, cleans it and keeps it; nothing of it stays here."""
    form = await request.form()  # already parsed by the CSRF check
    upload = form.get("file")
    error = None
    if kind not in DOCUMENT_LABELS:
        error = "资料类型不正确。"
    elif not isinstance(upload, UploadFile) or not upload.filename:
        error = "请选择要上传的文件。"
    if error is None:
        assert isinstance(upload, UploadFile)
        data = await upload.read()
        files = {"file": (upload.filename, data, upload.content_type or "application/octet-stream")}
        path = f"/v1/applications/{application_id}/documents/{kind}"
        try:
            await _call(request, visitor, "enrollment", "PUT", path, files=files)
        except ApiRefused as exc:  # not an image or PDF, too large, the application submitted
            application = await _application(request, visitor, application_id)
            return _documents_page(request, visitor, application, _status_code(exc), failed_kind=kind, error=exc.detail)
        return redirect(request, f"/me/applications/{application_id}/documents#{kind}")
    application = await _application(request, visitor, application_id)
    return _documents_page(request, visitor, application, 422, failed_kind=kind, error=error)


@router.get("/me/applications/{application_id}/documents/{kind}/file")
async def document_file(request: Request, visitor: Applicant, application_id: UUID, kind: str) -> Response:
    """The stored (cleaned) file, for the page's preview: passed through with enrollment's own
    headers (attachment, sandbox, nosniff, no-store)."""
    if kind not in DOCUMENT_LABELS:
        return redirect(request, f"/me/applications/{application_id}/documents")
    return await _passed_through(request, visitor, f"/v1/applications/{application_id}/documents/{kind}")


_PASSED_HEADERS = ("content-type", "content-disposition", "content-security-policy", "x-content-type-options",
                   "cache-control")  # fmt: skip


async def _passed_through(request: Request, visitor: Visitor, path: str) -> Response:
    answer = await _apis(request).call(
        "enrollment", "GET", path, token=visitor.bearer(), correlation_id=correlation_id(request)
    )
    headers = {h: answer.headers[h] for h in _PASSED_HEADERS if h in answer.headers and h != "content-type"}
    return Response(answer.content, media_type=answer.headers.get("content-type"), headers=headers)


# --- check and submit (guide PART-7) -------------------------------------------------------------


def _check_page(
    request: Request, visitor: Visitor, application: dict[str, Any], status: int = 200, error: str | None = None
) -> Response:
    uploaded = application.get("documents") or []
    return render(
        request,
        visitor,
        "applicant/check.html",
        status_code=status,
        application=application,
        facts=views.choice_facts(application, DISTRICTS),
        slots=views.document_slots(application.get("household_kind"), uploaded),
        missing=views.missing_labels(application.get("household_kind"), uploaded),
        submittable=views.can_upload(str(application["status"])),
        error=error,
    )


@router.get("/me/applications/{application_id}/check")
async def check_page(request: Request, visitor: Applicant, application_id: UUID) -> Response:
    return _check_page(request, visitor, await _application(request, visitor, application_id))


@router.post("/me/applications/{application_id}/submit", dependencies=[CsrfChecked])
async def submit(request: Request, visitor: Applicant, application_id: UUID) -> Response:
    try:
        await _call(request, visitor, "enrollment", "POST", f"/v1/applications/{application_id}/submit")
    except ApiRefused as exc:  # documents missing, age, already submitted
        application = await _application(request, visitor, application_id)
        return _check_page(request, visitor, application, _status_code(exc), exc.detail)
    return redirect(request, f"/me/applications/{application_id}")


# --- status (guide PART-8) ----------------------------------------------------------------------


@router.get("/me/applications/{application_id}")
async def status_page(request: Request, visitor: Applicant, application_id: UUID) -> Response:
    application = await _application(request, visitor, application_id)
    status = str(application["status"])
    agency_notice = None
    if status in ("approved", "active") and not application.get("agency_notice_accepted_at"):
        agency_notice = await _call(request, None, "enrollment", "GET", "/v1/agency-notice")
    return render(
        request,
        visitor,
        "applicant/status.html",
        application=application,
        badge=views.status_badge(status),
        rows=views.timeline_rows(application.get("timeline") or []),
        facts=views.choice_facts(application, DISTRICTS),
        agency_notice=agency_notice,
        error=None,
    )


@router.post("/me/applications/{application_id}/agency-notice", dependencies=[CsrfChecked])
async def accept_agency_notice(
    request: Request,
    visitor: Applicant,
    application_id: UUID,
    version: Annotated[str, Form(max_length=40)],
    agree: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    if agree == "yes":
        path = f"/v1/applications/{application_id}/agency-notice"
        await _call(request, visitor, "enrollment", "POST", path, json={"version": version})
    return redirect(request, f"/me/applications/{application_id}")


@router.get("/me/applications/{application_id}/registration-form.pdf")
async def registration_form(request: Request, visitor: Applicant, application_id: UUID) -> Response:
    """常州市劳动事务代理申请登记表, streamed from enrollment with the visitor's token."""
    return await _passed_through(request, visitor, f"/v1/applications/{application_id}/registration-form.pdf")


# --- bills and paying (guide 二、缴费方式) -------------------------------------------------------


@router.get("/me/bills")
async def bills_page(request: Request, visitor: Applicant) -> Response:
    uid = _uid(visitor)
    try:
        view: dict[str, Any] | None = await _call(request, visitor, "payment", "GET", f"/v1/insured/{uid}/bills")
    except ApiRefused as exc:
        if exc.status != 404:  # 404 account_not_found: not approved yet, no account
            raise
        view = None
    agreements: list[dict[str, Any]] = []
    if view is not None:
        found = await _call(request, visitor, "payment", "GET", f"/v1/insured/{uid}/withholding-agreements")
        agreements = found["agreements"]
    bills = [
        (b, views.bill_badge(str(b["status"])), views.bill_items(b["items"])) for b in (view or {}).get("bills", [])
    ]
    return render(
        request,
        visitor,
        "applicant/bills.html",
        view=view,
        bills=list(reversed(bills)),
        agreements=agreements,
        channels=views.PAY_CHANNELS,
        period_label=views.period_label,
    )


def _pay_for_another_page(request: Request, visitor: Visitor, status: int = 200, **context: Any) -> Response:
    values: dict[str, Any] = {"found": None, "masked": "", "name": "", "error": None, **context}
    return render(
        request,
        visitor,
        "applicant/pay_for_another.html",
        status_code=status,
        channels=[c for c in views.PAY_CHANNELS if c.for_another],
        period_label=views.period_label,
        badge=views.bill_badge,
        **values,
    )


@router.get("/me/pay-for-another")
async def pay_for_another_page(request: Request, visitor: Applicant) -> Response:
    return _pay_for_another_page(request, visitor)


@router.post("/me/pay-for-another", dependencies=[CsrfChecked])
async def pay_for_another(
    request: Request,
    visitor: Applicant,
    id_number: Annotated[str, Form(max_length=32)],
    name: Annotated[str, Form(max_length=30)],
) -> Response:
    """The answer on the POST itself: the other person's ID number never goes into a URL."""
    body = {"id_number": id_number.strip(), "name": name.strip()}
    try:
        found = await _call(request, visitor, "payment", "POST", "/v1/bills/lookup", json=body)
    except ApiRefused as exc:  # no such person (one answer for every miss), malformed number
        return _pay_for_another_page(request, visitor, _status_code(exc), name=name, error=exc.detail)
    masked = views.mask_id_number(id_number)
    return _pay_for_another_page(request, visitor, found=found, masked=masked, name=name)
