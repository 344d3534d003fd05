"""identity's HTTP routes: thin, they validate shapes and call the service layer."""

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from contracts.events.base import mask_phone
from kernel.auth import CurrentPrincipal, Principal, issue_token
from kernel.problems import Forbidden
from kernel.web import PROBLEM_RESPONSES, StrictBody, correlation_id
from services.identity.service import IdentityService

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


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
    account = await svc.account(user_id)
    v = account.verified
    return UserView(
        user_id=account.user_id,
        phone_masked=mask_phone(account.phone),
        role=account.role,
        verified=v is not None,
        name=v.name if v else None,
        id_number_masked=v.id_number_masked if v else None,
        birth_date=v.birth_date if v else None,
        gender=v.gender if v else None,
    )
