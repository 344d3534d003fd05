"""identity's HTTP routes: thin, they validate shapes and call the service layer."""

import base64
import hmac
from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from kernel.auth import CurrentPrincipal, Principal, issue_token
from kernel.logging import get_logger
from kernel.problems import Forbidden, NotFound, Unauthorized
from kernel.web import PROBLEM_RESPONSES, StrictBody, correlation_id
from services.identity.service import IdentityService

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)
log = get_logger(__name__)


class NewUser(StrictBody):
    phone: str = Field(min_length=1, max_length=32, examples=["13800138000"])
    password: str = Field(min_length=1, max_length=128)


class UserCreated(BaseModel):
    user_id: UUID


class Credentials(StrictBody):
    phone: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=128)


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


@router.post("/users", status_code=201, summary="Register an applicant account (用户注册)")
async def register_user(body: NewUser, svc: Service, request: Request) -> UserCreated:
    user_id = await svc.register(body.phone, body.password, "applicant", correlation_id(request))
    return UserCreated(user_id=user_id)


@router.post("/sessions", status_code=201, summary="Log in: a bearer token for the other services")
async def open_session(body: Credentials, svc: Service, request: Request) -> Session:
    principal = await svc.login(body.phone, body.password)
    ttl = request.app.state.jwt_ttl_seconds
    token = issue_token(principal, request.app.state.jwt_secret, ttl)
    return Session(
        access_token=token,
        expires_in=ttl,
        user_id=principal.user_id,
        role=principal.role,
        agency_code=principal.scope,  # a reviewer's scope is their agency (see service.register)
    )


@router.post("/users/{user_id}/verification", status_code=201, summary="Real-name verification (实名认证)")
async def verify_user(
    user_id: UUID, body: VerificationRequest, svc: Service, principal: CurrentPrincipal, request: Request
) -> UserView:
    _own_or_operator(principal, user_id)
    await svc.verify(user_id, body.name, body.id_number, correlation_id(request))
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
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("authentication_required", "请提供读取个人数据密钥的服务令牌。")
    given = credentials.credentials.encode()
    readers: dict[str, bytes] = request.app.state.key_readers
    matched = [name for name, token in readers.items() if hmac.compare_digest(given, token)]
    if not matched:
        raise Unauthorized("invalid_token", "服务令牌无效，无权读取个人数据密钥。")
    return matched[0]


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
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("authentication_required", "请提供核对人员身份的服务令牌。")
    given = credentials.credentials.encode()
    readers: dict[str, bytes] = request.app.state.match_readers
    matched = [name for name, token in readers.items() if hmac.compare_digest(given, token)]
    if not matched:
        raise Unauthorized("invalid_token", "服务令牌无效，无权核对人员身份。")
    return matched[0]


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
