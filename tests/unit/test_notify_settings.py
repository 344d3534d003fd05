"""notify's settings follow docs/service-anatomy.md: own knobs are `notify_<knob>` fields read from
NOTIFY_<KNOB>, with no aliases; the shared ones stay unprefixed."""

import pytest
from pydantic import ValidationError

from kernel.settings import ServiceSettings
from services.notify.settings import NotifySettings


def test_every_own_field_carries_the_prefix_and_no_alias() -> None:
    own = set(NotifySettings.model_fields) - set(ServiceSettings.model_fields)
    assert own and all(name.startswith("notify_") for name in own), sorted(own)
    assert all(NotifySettings.model_fields[name].validation_alias is None for name in own)


def test_the_variables_keep_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SENDER_BATCH", "7")
    monkeypatch.setenv("NOTIFY_SEND_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("NOTIFY_SENDING_LEASE_SECONDS", "6")
    monkeypatch.setenv("DATABASE_URL", "postgresql://somebody@db/flexenroll")
    settings = NotifySettings()
    assert (settings.notify_sender_batch, settings.notify_sending_lease_seconds) == (7, 6)
    assert settings.database_url == "postgresql://somebody@db/flexenroll"


def test_the_lease_must_outlast_a_lookup_and_a_send(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SEND_TIMEOUT_SECONDS", "30")
    with pytest.raises(ValidationError, match="NOTIFY_SENDING_LEASE_SECONDS"):
        NotifySettings()
