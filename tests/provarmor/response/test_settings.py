"""Response settings: the network namespace whose firewall response manages; the
persistence files are absolute paths or ~/paths."""

import pytest

from provarmor.model.errors import ConfigError
from provarmor.response.settings import ResponseSettings


def test_the_firewall_is_the_hosts_unless_a_namespace_is_named():
    assert ResponseSettings().firewall_command == ("nft",)
    inside = ResponseSettings(network_namespace="provarmor-lab-vab12")
    assert inside.firewall_command == ("ip", "netns", "exec", "provarmor-lab-vab12", "nft")


@pytest.mark.parametrize("name", ["../etc", "a b", "..", "x" * 65, "ns;rm"])
def test_a_namespace_name_that_is_not_one_is_refused_naming_the_setting(name):
    with pytest.raises(ConfigError) as caught:
        ResponseSettings(network_namespace=name)
    assert caught.value.location == "response.network_namespace"


def test_the_baseline_keeps_at_least_one_version():
    with pytest.raises(ConfigError) as caught:
        ResponseSettings(baseline_versions=0)
    assert caught.value.location == "response.baseline_versions"


@pytest.mark.parametrize("pattern", ["relative/.bashrc", "~user/.bashrc", "/etc/../shadow", ""])
def test_a_persistence_file_that_is_not_an_absolute_path_is_refused(pattern):
    with pytest.raises(ConfigError) as caught:
        ResponseSettings(persistence_files=("~/.bashrc", pattern))
    assert caught.value.location == "response.persistence_files"
