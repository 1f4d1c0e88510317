"""Certificates for the manager's HTTPS: a private CA, a server certificate signed by it, and
the CA certificate agents trust (``ca.pem``). ECDSA P-256 keys, written with mode 0600.

Also the rule for plain HTTP: tokens and events cross the network in clear, so a listen
address other than loopback needs TLS unless the operator explicitly forces it."""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provarmor.model.errors import ConfigError

CA_DAYS = 3650
SERVER_DAYS = 825


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateFiles:
    ca_cert: Path
    """What agents trust (``--ca-file``)."""
    ca_key: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ProvArmor"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _alternative_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_ca(*, now: datetime.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("ProvArmor manager CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    hosts: Sequence[str],
    now: datetime.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    if not hosts:
        raise ValueError("a server certificate needs at least one host name or address")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_alternative_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _write(path: Path, data: bytes, *, private: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    descriptor = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_certificates(directory: Path, *, hosts: Sequence[str]) -> CertificateFiles:
    """Make a CA and a server certificate for ``hosts`` (names or IP addresses) in
    ``directory``: ``ca.pem``, ``ca-key.pem``, ``server.pem``, ``server-key.pem``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, ca_cert = make_ca(now=now)
    server_key, server_cert = make_server_certificate(ca_key, ca_cert, hosts=hosts, now=now)
    files = CertificateFiles(
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca-key.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
    )
    _write(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(files.ca_key, _key_pem(ca_key), private=True)
    _write(files.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(files.server_key, _key_pem(server_key), private=True)
    return files


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address or ``localhost``) is reachable from this machine only."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another name may resolve to anything


def check_plain_http(host: str, *, tls: bool, insecure: bool) -> str | None:
    """Refuse (:class:`ConfigError`) plain HTTP on a non-loopback ``host`` unless ``insecure``;
    the warning to print when it was forced, else ``None``."""
    if tls or is_loopback(host):
        return None
    exposed = f"listening on {host or 'every address'} without TLS"
    if not insecure:
        raise ConfigError(
            f"{exposed} would send tokens and events in clear: give --tls-cert and --tls-key "
            "(`provarmor server certs` makes them), listen on 127.0.0.1, or force it with "
            "--insecure-no-tls",
            location="--listen",
        )
    return f"warning: {exposed} (--insecure-no-tls): tokens and events cross the network in clear"
