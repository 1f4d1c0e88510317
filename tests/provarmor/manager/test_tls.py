"""The manager's certificates: a CA, a server certificate it signs for the given names and
addresses, private keys readable by the owner only, and a handshake agents can verify."""

import datetime
import ipaddress
import socket
import ssl
import stat
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provarmor.manager.tls import (
    check_plain_http,
    make_ca,
    make_server_certificate,
    write_certificates,
)
from provarmor.model.errors import ConfigError

NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)


def test_ca_is_a_self_signed_p256_signing_authority():
    key, cert = make_ca(now=NOW)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "ProvArmor manager CA"
    )
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert cert.not_valid_before_utc == NOW - datetime.timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=3650)
    cert.verify_directly_issued_by(cert)


def test_server_certificate_names_every_host_and_is_signed_by_the_ca():
    ca_key, ca_cert = make_ca(now=NOW)
    hosts = ["manager.lab", "127.0.0.1", "::1"]
    _, cert = make_server_certificate(ca_key, ca_cert, hosts=hosts, now=NOW)
    cert.verify_directly_issued_by(ca_cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "manager.lab"
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["manager.lab"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=825)


def test_server_certificate_needs_a_host():
    ca_key, ca_cert = make_ca(now=NOW)
    with pytest.raises(ValueError, match="at least one host"):
        make_server_certificate(ca_key, ca_cert, hosts=[], now=NOW)


def test_written_files_keep_keys_private(tmp_path):
    files = write_certificates(tmp_path / "tls", hosts=["127.0.0.1"])
    assert [p.name for p in (files.ca_cert, files.ca_key, files.server_cert, files.server_key)] == [
        "ca.pem",
        "ca-key.pem",
        "server.pem",
        "server-key.pem",
    ]
    assert stat.S_IMODE(files.ca_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.ca_cert.stat().st_mode) & 0o044 == 0o044
    assert files.ca_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(files.server_cert.read_bytes()).verify_directly_issued_by(ca)


def test_agent_trusting_ca_pem_completes_a_handshake(tmp_path):
    files = write_certificates(tmp_path, hosts=["127.0.0.1"])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.server_cert, files.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with server_context.wrap_socket(connection, server_side=True) as tls:
            tls.sendall(b"hello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(files.ca_cert))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.recv(5) == b"hello"
    thread.join(timeout=5)
    listener.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "localhost"])
def test_plain_http_on_loopback_is_fine(host):
    assert check_plain_http(host, tls=False, insecure=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.1.2.3", "manager.example"])
def test_plain_http_elsewhere_is_refused_unless_forced(host):
    assert check_plain_http(host, tls=True, insecure=False) is None
    with pytest.raises(ConfigError, match="--insecure-no-tls") as refused:
        check_plain_http(host, tls=False, insecure=False)
    assert refused.value.location == "--listen"
    warning = check_plain_http(host, tls=False, insecure=True)
    assert warning is not None
    assert "without TLS" in warning
