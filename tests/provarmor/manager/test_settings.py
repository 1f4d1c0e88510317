"""Manager settings refuse what cannot work, naming the setting."""

import pytest

from provarmor.manager.settings import ManagerSettings
from provarmor.model.errors import ConfigError


@pytest.mark.parametrize("seconds", [0, -1.0])
def test_the_sweep_interval_must_be_positive(seconds):
    with pytest.raises(ConfigError) as caught:
        ManagerSettings(sweep_seconds=seconds)
    assert caught.value.location == "manager.sweep_seconds"
    assert ManagerSettings(sweep_seconds=0.5).sweep_seconds == 0.5
