"""identity's HTTP routes: thin, they validate shapes and call the service layer."""

import base64
from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from kernel.auth import CurrentPrincipal, Principal, issue_token, service_caller
from kernel.logging import get_logger
from kernel.problems import Forbidden, NotFound, Refused, Unauthorized
from kernel.throttle import client_address
from kernel.web import PROBLEM_RESPONSES, StrictBody, correlation_id, problem_responses
from services.identity.passwords import Password
from services.identity.phone_codes import Code, register_with_code
from services.identity.service import IdentityService
from services.identity.throttling import guard_of, login_key

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)
# Outside /v1: where JWKS clients look for a token issuer's keys (RFC 8414 style well-known path).
well_known = APIRouter()
log = get_logger(__name__)


class NewUser(StrictBody):
    phone: str = Field(min_length=1, max_length=32, examples=["13800138000"])
    password: Password  # as typed: never trimmed (services/identity/passwords.py)
    code: Code  # from POST /v1/phone-codes (services/identity/phone_codes.py)


class UserCreated(BaseModel):
    user_id: UUID


class Credentials(StrictBody):
    phone: str = Field(min_length=1, max_length=32)
    password: Password  # as typed: never trimmed


class Session(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user_id: UUID
    role: str
    agency_code: str | None = Field(
        default=None, description="A reviewer's accepting agency (受理机构); absent for everyone else."
    )


class VerificationRequest(StrictBody):
    name: str = Field(min_length=1, max_length=30, examples=["张三"])
    id_number: str = Field(min_length=1, max_length=32, examples=["320402199001010017"])


class UserView(BaseModel):
    user_id: UUID
    phone_masked: str
    role: str
    verified: bool
    name: str | None = None
    id_number_masked: str | None = None
    birth_date: date | None = None
    gender: str | None = None


def service(request: Request) -> IdentityService:
    svc: IdentityService = request.app.state.identity
    return svc


Service = Annotated[IdentityService, Depends(service)]


def _own_or_operator(principal: Principal, user_id: UUID) -> None:
    if principal.user_id != user_id and principal.role != "operator":
        raise Forbidden("not_your_account", "只能查看或办理本人的账户业务。")


def _own(principal: Principal, user_id: UUID) -> None:
    """Real-name verification binds an ID number to the account: the person alone does it (an
    operator who could would bind anyone's number to any account)."""
    if principal.user_id != user_id:
        raise Forbidden("not_your_account", "实名认证只能由本人办理。")


@router.post(
    "/users", status_code=201, summary="Register an applicant account (用户注册)", responses=problem_responses(429)
)
async def register_user(body: NewUser, svc: Service, request: Request) -> UserCreated:
    # Throttled per client address; the phone proven by its one-time code (services/identity/phone_codes.py).
    e164 = await register_with_code(request, body.phone, body.password, body.code)
    user_id = await svc.register(e164, body.password, "applicant", correlation_id(request))
    return UserCreated(user_id=user_id)


@router.post(
    "/sessions",
    status_code=201,
    summary="Log in: a bearer token for the other services",
    responses=problem_responses(429),
)
async def open_session(body: Credentials, svc: Service, request: Request) -> Session:
    guard, address, account = guard_of(request), client_address(request), login_key(body.phone)
    await guard.before_login(account, address)  # 429 too_many_attempts while locked out (throttling.py)
    try:
        principal = await svc.login(body.phone, body.password)
    except Unauthorized as exc:
        await guard.login_failed(account, address, exc.code)
        raise
    await guard.login_succeeded(account)
    version = await svc.token_version_for(principal)  # a disabled account: 401 account_disabled
    ttl = request.app.state.jwt_ttl_seconds
    token = issue_token(principal, request.app.state.token_signing_key, ttl, version=version)
    return Session(
        access_token=token,
        expires_in=ttl,
        user_id=principal.user_id,
        role=principal.role,
        agency_code=principal.scope,  # a reviewer's scope is their agency (see service.register)
    )


@router.post(
    "/users/{user_id}/verification",
    status_code=201,
    summary="Real-name verification (实名认证)",
    responses=problem_responses(429),
)
async def verify_user(
    user_id: UUID, body: VerificationRequest, svc: Service, principal: CurrentPrincipal, request: Request
) -> UserView:
    _own(principal, user_id)
    guard, address = guard_of(request), client_address(request)
    await guard.before_verification(user_id, address)  # 429 too_many_attempts (throttling.py)
    try:
        await svc.verify(user_id, body.name, body.id_number, correlation_id(request))
    except Refused as exc:
        await guard.verification_failed(user_id, address, exc)
        raise
    return await get_user(user_id, svc, principal)


@router.get("/users/{user_id}", summary="An account and its verification state")
async def get_user(user_id: UUID, svc: Service, principal: CurrentPrincipal) -> UserView:
    _own_or_operator(principal, user_id)
    p = await svc.profile(user_id)
    return UserView(
        user_id=p.user_id,
        phone_masked=p.phone_masked,
        role=p.role,
        verified=p.verified,
        name=p.name,
        id_number_masked=p.id_number_masked,
        birth_date=p.birth_date,
        gender=p.gender,
    )


class PersonKey(BaseModel):
    user_id: UUID
    key: str = Field(description="The person's 32-byte data key, base64.")


_bearer = HTTPBearer(auto_error=False)


def key_reader(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """Which reading service asks (docs/personal-data.md, "Who gets the key"): its token must be
    one of IDENTITY_KEY_READERS. Every token is compared, in constant time, so that timing tells
    neither which reader nor how much of a token matched."""
    return service_caller(credentials, request.app.state.key_readers, "读取个人数据密钥")


@router.get(
    "/person-keys/{user_id}",
    summary="A person's data key, for the services that open sealed personal data",
    response_model=PersonKey,
)
async def get_person_key(
    user_id: UUID, svc: Service, reader: Annotated[str, Depends(key_reader)], response: Response
) -> PersonKey:
    key = await svc.person_key(user_id)
    log.info("person_key_read", reader=reader, user_id=str(user_id))  # who read whose key; never the key
    response.headers["Cache-Control"] = "no-store"
    return PersonKey(user_id=user_id, key=base64.b64encode(key).decode())


class PersonMatchRequest(StrictBody):
    id_number: str = Field(min_length=1, max_length=32, examples=["320402199001010017"])
    name: str = Field(min_length=1, max_length=30, examples=["张三"])


class PersonMatch(BaseModel):
    user_id: UUID


def match_reader(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """Which service asks the match question: its token must be one of IDENTITY_MATCH_READERS
    (payment only), compared in constant time like the key readers' tokens."""
    return service_caller(credentials, request.app.state.match_readers, "核对人员身份")


@router.post(
    "/people/match",
    summary="Whether an ID number and a name are one verified person's (payment's lookup, 代人缴费)",
    description="200 with the person's user_id; 404 person_not_found alike for an unknown number, "
    "another name, an unverified or an erased person; 401 authentication_required, invalid_token.",
    response_model=PersonMatch,
)
async def match_person(
    body: PersonMatchRequest, svc: Service, reader: Annotated[str, Depends(match_reader)], response: Response
) -> PersonMatch:
    try:
        user_id = await svc.match_person(body.id_number, body.name)
    except NotFound:
        log.info("person_match_asked", reader=reader, matched=False)  # never the number or the name
        raise
    log.info("person_match_asked", reader=reader, matched=True, user_id=str(user_id))
    response.headers["Cache-Control"] = "no-store"
    return PersonMatch(user_id=user_id)


# --- tokens: public keys, revocations, separation of duties (services/identity/README.md) -----


@well_known.get("/.well-known/jwks.json", summary="The public keys identity's tokens are verified with (JWKS)")
async def jwks(request: Request, response: Response) -> dict[str, list[dict[str, str]]]:
    response.headers["Cache-Control"] = "public, max-age=300"
    keys: dict[str, list[dict[str, str]]] = request.app.state.token_keys.jwks()
    return keys


class RevocationView(BaseModel):
    user_id: UUID
    min_version: int = Field(description="Tokens with a lower `ver` are refused (401 token_revoked).")
    disabled: bool = Field(description="Every token of the account is refused (401 account_disabled).")


class RevocationList(BaseModel):
    revocations: list[RevocationView]


@router.get(
    "/token-revocations",
    summary="Accounts whose tokens are refused: every service polls it (kernel.revocation)",
    description="Only accounts ever disabled or whose tokens were revoked; ids and versions, no personal data.",
)
async def token_revocations(svc: Service, response: Response) -> RevocationList:
    response.headers["Cache-Control"] = "no-store"
    rows = await svc.revocations()
    return RevocationList(revocations=[RevocationView(user_id=u, min_version=v, disabled=d) for u, v, d in rows])


class SamePerson(BaseModel):
    linked: bool = Field(description="The staff account is linked to its holder's ID number.")
    same_person: bool = Field(description="The applicant's verified ID number is the staff member's own.")


@router.get(
    "/staff/me/same-person/{applicant_id}",
    summary="Whether an applicant is the calling staff member themself (review's own_case check)",
    description="Asked by review with the deciding reviewer's own token; staff only (403 wrong_role).",
)
async def same_person(applicant_id: UUID, svc: Service, principal: CurrentPrincipal, response: Response) -> SamePerson:
    if not principal.is_staff:
        raise Forbidden("wrong_role", "您没有办理此项业务的权限。")
    response.headers["Cache-Control"] = "no-store"
    same = await svc.same_person(principal.user_id, applicant_id)
    return SamePerson(linked=same is not None, same_person=bool(same))
