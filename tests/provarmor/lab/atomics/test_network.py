import pytest

from provarmor.lab.atomics.network import destinations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ping -c 4 8.8.8.8", "8.8.8.8"),
        ("curl -s -A 'HttpBrowser/1.0' -m3 www.google.com", "www.google.com"),
        ("curl https://ipinfo.io/", "https://ipinfo.io/"),
        ("ssh target.example.com 'tar c /etc'", "target.example.com"),
        ("rsync -r /tmp/x victim@victim-host:/tmp/y", "victim-host"),
        ("scp adversary@adversary-host:/tmp/a /tmp/b", "adversary-host"),
        ("echo quit | telnet google.com 8081", "google.com"),
        ("ldapsearch -H ldap://example.test:389 -x", "ldap://example.test:389"),
        ("curl http://3232235777/x", "http://3232235777/x"),
        ("sudo nmap -sS 192.168.1.0/24 -p 80", "192.168.1.0"),
    ],
)
def test_non_loopback_destinations_are_found(text, expected):
    assert expected in destinations(text)


def test_name_lookups_need_the_resolver_unless_sent_to_loopback():
    assert destinations("dig +short example")[0].startswith("the DNS resolver (dig")
    assert destinations("dig @127.0.0.1 -p 5353 lab") == []
    assert destinations("whois -h localhost -p 8443 query") == []


@pytest.mark.parametrize(
    "text",
    [
        "curl -sS http://127.0.0.1:28080/T1059.004/src/echo-art-fish.sh | bash",
        "ssh -o StrictHostKeyChecking=no art@localhost -T hostname",
        "ping -c 1 127.0.0.1",
        "cp T1027-004-test.cc /tmp/x.cc && gcc /tmp/x.c -o a.out",
        "python3 -m http.server 9090",
        "sh /tmp/art.sh; cat report.pdf.sh",
    ],
)
def test_loopback_and_file_names_are_not_destinations(text):
    assert destinations(text) == []


def test_data_files_are_read_for_urls_and_addresses_only():
    text = "user:pass@hp.com\nADMIN:admin\nsee https://example.com/x 10.0.0.1"
    assert destinations(text, shell=False) == ["https://example.com/x", "10.0.0.1"]
