import msgspec
import pytest

from provarmor.model.actions import Action
from provarmor.testing.factories import make_event


def test_events_are_immutable():
    event = make_event(Action.EXEC)
    with pytest.raises(AttributeError):
        event.timestamp = 5  # type: ignore[misc]


def test_unset_optional_fields_are_omitted():
    data = msgspec.to_builtins(make_event(Action.EXIT))
    assert "file" not in data and "destination" not in data
    assert data["event"]["action"] == "exit"
