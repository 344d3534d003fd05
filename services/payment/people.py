"""payment's client of identity's match question (docs/personal-data.md, "Who gets the key"), for
paying for another person (services/payment/README.md, "Paying for another person").

payment keeps no ID numbers and no names: it asks identity whether an ID number and a name are one
verified person's, and identity answers that person's user_id or "no". The ID number's shape is
checked here first (python-stdnum), so that a mistyped number is told as such without asking.
"""

from uuid import UUID

import httpx
from stdnum.cn import ric
from stdnum.exceptions import InvalidComponent, ValidationError

from kernel.logging import get_logger
from kernel.personal import IdentityUnavailable
from services.payment.settings import PaymentSettings

log = get_logger(__name__)

MATCH_PATH = "/v1/people/match"


def resident_id_shape(raw: str) -> str | None:
    """The compact 18-character resident ID number (GB 11643), or None when it is malformed.

    A region code unknown in the birth year is accepted when the check character holds: people
    born before a district existed carry its code (services/identity/resident_id.py); identity
    decides whether the number is anyone's."""
    try:
        number: str = ric.validate(raw)
        return number
    except InvalidComponent:
        number = ric.compact(raw)
        if len(number) == 18 and number[:17].isdigit() and ric.calc_check_digit(number) == number[17]:
            return number
        return None
    except ValidationError:
        return None


class PeopleDirectory:
    """Asks identity's POST /v1/people/match with payment's own token
    (PAYMENT_IDENTITY_MATCH_TOKEN). `transport` binds it to an in-process identity in tests
    (httpx.ASGITransport), like kernel.personal.PersonKeys. Nothing is cached: a person erased at
    identity is not found from the next question on."""

    def __init__(
        self,
        settings: PaymentSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=settings.identity_url,
            transport=transport,
            timeout=timeout_seconds,
            headers={"Authorization": f"Bearer {settings.payment_identity_match_token.get_secret_value()}"},
        )

    def __repr__(self) -> str:
        return f"PeopleDirectory({self._client.base_url})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def match(self, id_number: str, name: str) -> UUID | None:
        """The verified person's user_id, or None when identity knows no such person (an unknown
        number and another name alike). Raises IdentityUnavailable when identity cannot say
        (unreachable, 5xx, refused our token, an unusable answer)."""
        try:
            response = await self._client.post(MATCH_PATH, json={"id_number": id_number, "name": name})
        except httpx.TransportError as exc:
            raise IdentityUnavailable(f"identity unreachable for a person match: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise IdentityUnavailable(
                f"identity refused payment's match token ({response.status_code}): check "
                "PAYMENT_IDENTITY_MATCH_TOKEN here and IDENTITY_MATCH_READERS at identity"
            )
        if response.status_code != 200:
            raise IdentityUnavailable(f"identity answered {response.status_code} to a person match")
        try:
            return UUID(str(response.json()["user_id"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise IdentityUnavailable("identity answered a person match with an unusable body") from exc
