import pytest

from provarmor.lab.atomics.packages import ALLOWED_DEBIAN, install, requested_packages


def test_apt_installs_are_read_from_alternatives_for_several_systems():
    text = (
        "(which yum && yum -y install epel-release nmap)||(which apt-get && "
        "DEBIAN_FRONTEND=noninteractive apt-get install -y nmap)"
        "||(which pkg && pkg install -y nmap)"
    )
    request = requested_packages(text)
    assert request.debian == ("nmap",) and request.refused() == ()
    assert request.others == ("yum", "pkg")


def test_packages_outside_the_allow_list_are_refused():
    request = requested_packages("sudo apt-get -y install tor; sudo apt install -y emacs")
    assert request.debian == ("tor", "emacs") and request.refused() == ("tor", "emacs")


def test_pip_is_another_manager_never_installed():
    request = requested_packages("pip install requests")
    assert request.debian == () and request.others == ("pip",) and not request.empty


def test_text_without_installs_is_empty():
    assert requested_packages("echo 'Please install whois'; exit 1").empty


def test_install_refuses_packages_outside_the_allow_list_before_running_anything():
    with pytest.raises(ValueError, match="tor"):
        install(["nmap", "tor"])
    assert all(reason for reason in ALLOWED_DEBIAN.values())
