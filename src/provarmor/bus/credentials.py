"""Who may do what on the bus: NATS decentralised authentication (operator, account, user
JWTs signed with Ed25519 "nkeys").

The cluster makes one operator, one system account and one account (``PROVARMOR``, with
JetStream) whose users are signed by an account *signing key*. nats-server trusts the
operator and knows the two accounts (``resolver: MEMORY``), so it checks a user's JWT and
its permissions by signature alone: the manager, which holds the signing key, issues an
agent's credentials at enrolment without touching the server's configuration.

Keys and JWTs are NATS's (:mod:`provarmor.bus.nkeys`); a credentials file (``.creds``)
holds a user's JWT and seed between NATS's armour lines.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provarmor.bus.message import SUBJECT_PREFIX, host_token
from provarmor.bus.nkeys import ACCOUNT, OPERATOR, USER, NKey, encode_jwt, jwt_claims
from provarmor.model.errors import ConfigError

COMMANDS_PREFIX = "provarmor.commands"
"""Commands to an agent: ``provarmor.commands.<agent id>`` (the agent subscribes)."""
RESULTS_PREFIX = "provarmor.results"
"""What came of them: ``provarmor.results.<agent id>`` (the agent publishes)."""
INBOX_PREFIX = "_INBOX"
COMMAND_STREAM = "PROVARMOR_COMMANDS"
"""The stream of commands (see :mod:`provarmor.bus.commands`)."""
MANAGER_INBOX = "_INBOX_MANAGER"
"""The manager's reply subjects (agents' are ``_INBOX.<agent id>``)."""
_JS_API = "$JS.API"


@dataclass(frozen=True, slots=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def command_consumer(agent_id: str) -> str:
    """The durable consumer of one agent's commands (the manager makes it)."""
    return f"agent-{agent_id}"


def agent_permissions(agent_id: str, host_id: str) -> Permissions:
    """An agent publishes its host's events and its command results, and reads its own
    commands and the answers to its own requests (its inbox); nothing else. Of the
    JetStream API it may check the event stream, and look up, pull from and acknowledge on
    its own command consumer (not make one, nor touch another agent's)."""
    consumer = f"{COMMAND_STREAM}.{command_consumer(agent_id)}"
    return Permissions(
        publish=(
            f"{SUBJECT_PREFIX}.{host_token(host_id)}",
            f"{RESULTS_PREFIX}.{agent_id}",
            f"{_JS_API}.STREAM.INFO.PROVARMOR_EVENTS",
            f"{_JS_API}.CONSUMER.INFO.{consumer}",
            f"{_JS_API}.CONSUMER.MSG.NEXT.{consumer}",
            f"$JS.ACK.{consumer}.>",
        ),
        subscribe=(f"{COMMANDS_PREFIX}.{agent_id}", f"{agent_inbox(agent_id)}.>"),
    )


def manager_permissions() -> Permissions:
    """The manager publishes commands to any agent, makes the command stream and each
    agent's consumer, and reads the answers to its own requests; nothing of the events."""
    return Permissions(
        publish=(
            f"{COMMANDS_PREFIX}.*",
            f"{_JS_API}.STREAM.INFO.{COMMAND_STREAM}",
            f"{_JS_API}.STREAM.CREATE.{COMMAND_STREAM}",
            f"{_JS_API}.CONSUMER.CREATE.{COMMAND_STREAM}.>",
            f"{_JS_API}.CONSUMER.DURABLE.CREATE.{COMMAND_STREAM}.*",
        ),
        subscribe=(f"{MANAGER_INBOX}.>",),
    )


def agent_inbox(agent_id: str) -> str:
    """The inbox prefix an agent's connection uses (its permissions allow only this one)."""
    return f"{INBOX_PREFIX}.{agent_id}"


SERVICE_PERMISSIONS = Permissions(publish=(">",), subscribe=(">",))
"""Workers: the whole account (streams, consumers, leases)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """A bus user: its JWT and seed, and the inbox prefix its permissions allow."""

    jwt: str
    seed: str
    inbox: str = INBOX_PREFIX

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``nats.connect`` that log in as this user."""
        key = NKey.from_seed(self.seed)
        token = self.jwt.encode()

        def user_jwt() -> bytes:
            return token

        def sign(nonce: str) -> bytes:
            return base64.b64encode(key.sign(nonce.encode()))

        return {"user_jwt_cb": user_jwt, "signature_cb": sign, "inbox_prefix": self.inbox}

    def to_creds(self) -> str:
        """The standard NATS ``.creds`` text."""
        return (
            f"-----BEGIN NATS USER JWT-----\n{self.jwt}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{self.seed}\n------END USER NKEY SEED------\n"
        )

    @classmethod
    def from_creds(cls, text: str, *, location: str) -> Credentials:
        blocks = re.findall(r"-{3,}BEGIN [^\n]*-{3,}\s*\n\s*(\S+)\s*\n\s*-{3,}END", text)
        if len(blocks) != 2:
            raise ConfigError("not a NATS credentials file (JWT and seed)", location=location)
        jwt, seed = blocks
        NKey.from_seed(seed, location=location)
        inbox = str(jwt_claims(jwt).get("nats", {}).get("provarmor_inbox", INBOX_PREFIX))
        return cls(jwt=jwt, seed=seed, inbox=inbox)

    @classmethod
    def load(cls, path: Path) -> Credentials:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read bus credentials: {exc}", location=str(path)) from None
        return cls.from_creds(text, location=str(path))


def user_credentials(
    name: str, permissions: Permissions, *, signing_key: NKey, account: str, inbox: str = ""
) -> Credentials:
    """A new user of ``account`` with ``permissions``, signed by the account's signing key.
    ``inbox`` (the prefix of its reply subjects) is kept in the JWT for the user to find."""
    user = NKey.generate(USER)
    nats_claims: dict[str, Any] = {
        "pub": {"allow": list(permissions.publish)},
        "sub": {"allow": list(permissions.subscribe)},
        "subs": -1,
        "data": -1,
        "payload": -1,
        "issuer_account": account,
        "type": "user",
        "version": 2,
    }
    if inbox:
        nats_claims["provarmor_inbox"] = inbox
    jwt = encode_jwt({"name": name, "sub": user.public, "nats": nats_claims}, signing_key)
    return Credentials(jwt=jwt, seed=user.seed, inbox=inbox or INBOX_PREFIX)


_UNLIMITED = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Trust:
    """The operator and accounts one bus trusts; :meth:`server_config` says so to nats-server,
    ``signing_key`` signs users of ``account``."""

    operator: NKey
    system: NKey
    account: NKey
    signing_key: NKey

    @classmethod
    def generate(cls) -> Trust:
        return cls(
            operator=NKey.generate(OPERATOR),
            system=NKey.generate(ACCOUNT),
            account=NKey.generate(ACCOUNT),
            signing_key=NKey.generate(ACCOUNT),
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "version": "1",
            "operator": self.operator.seed,
            "system": self.system.seed,
            "account": self.account.seed,
            "signing_key": self.signing_key.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str], *, location: str) -> Trust:
        if data.get("version") != "1":
            raise ConfigError(
                f"bus keys version {data.get('version')!r} is not 1", location=location
            )
        try:
            return cls(
                operator=NKey.from_seed(data["operator"], location=location),
                system=NKey.from_seed(data["system"], location=location),
                account=NKey.from_seed(data["account"], location=location),
                signing_key=NKey.from_seed(data["signing_key"], location=location),
            )
        except KeyError as exc:
            raise ConfigError(f"bus keys lack {exc.args[0]}", location=location) from None

    def server_config(self) -> dict[str, str]:
        """``operator``, ``system_account`` and the preloaded account JWTs of nats-server's
        configuration (the caller writes them out)."""
        operator = encode_jwt(
            {
                "name": "provarmor",
                "sub": self.operator.public,
                "nats": {"system_account": self.system.public, "type": "operator", "version": 2},
            },
            self.operator,
        )
        system = encode_jwt(
            {
                "name": "SYS",
                "sub": self.system.public,
                "nats": {"limits": _UNLIMITED, "type": "account", "version": 2},
            },
            self.operator,
        )
        account = encode_jwt(
            {
                "name": "PROVARMOR",
                "sub": self.account.public,
                "nats": {
                    "limits": dict(
                        _UNLIMITED, mem_storage=-1, disk_storage=-1, streams=-1, consumer=-1
                    ),
                    "signing_keys": [self.signing_key.public],
                    "type": "account",
                    "version": 2,
                },
            },
            self.operator,
        )
        return {
            "operator": operator,
            "system_account": self.system.public,
            "system_jwt": system,
            "account": self.account.public,
            "account_jwt": account,
        }

    def service(self, name: str) -> Credentials:
        return user_credentials(
            name, SERVICE_PERMISSIONS, signing_key=self.signing_key, account=self.account.public
        )

    def manager(self) -> Credentials:
        """The manager's user (:func:`manager_permissions`)."""
        return user_credentials(
            "manager",
            manager_permissions(),
            signing_key=self.signing_key,
            account=self.account.public,
            inbox=MANAGER_INBOX,
        )

    def signer(self) -> AccountSigner:
        return AccountSigner(account=self.account.public, signing_key=self.signing_key)


def nats_config(  # noqa: PLR0913 (each a line of the configuration)
    trust: Trust,
    *,
    host: str,
    port: int,
    store_dir: Path,
    operator_file: Path,
    tls: tuple[Path, Path] | None = None,
    monitor_port: int = 0,
) -> str:
    """nats-server's configuration: JetStream in ``store_dir``, trust in ``trust`` (the
    operator JWT goes to ``operator_file``), TLS with ``tls`` = (cert, key) when given."""
    parts = trust.server_config()
    operator_file.write_text(parts["operator"] + "\n")
    lines = [
        f"listen: {json.dumps(f'{host}:{port}')}",
        "server_name: provarmor",
        f"jetstream {{ store_dir: {json.dumps(str(store_dir))} }}",
        f"operator: {json.dumps(str(operator_file))}",
        f"system_account: {parts['system_account']}",
        "resolver: MEMORY",
        "resolver_preload: {",
        f"  {parts['system_account']}: {json.dumps(parts['system_jwt'])}",
        f"  {parts['account']}: {json.dumps(parts['account_jwt'])}",
        "}",
    ]
    if monitor_port:
        lines.append(f"http: {json.dumps(f'127.0.0.1:{monitor_port}')}")
    if tls is not None:
        cert, key = tls
        lines.append(
            f"tls {{ cert_file: {json.dumps(str(cert))}, key_file: {json.dumps(str(key))} }}"
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class BusAccess:
    """Where an agent publishes and as whom: what enrolment hands out."""

    url: str
    credentials: Credentials

    def to_dict(self) -> dict[str, str]:
        return {
            "url": self.url,
            "jwt": self.credentials.jwt,
            "seed": self.credentials.seed,
            "inbox": self.credentials.inbox,
        }

    @classmethod
    def from_dict(cls, data: object, *, location: str) -> BusAccess:
        if not isinstance(data, dict):
            raise ConfigError("bus access is not an object", location=location)
        try:
            url, jwt, seed, inbox = (str(data[key]) for key in ("url", "jwt", "seed", "inbox"))
        except KeyError as exc:
            raise ConfigError(f"bus access lacks {exc.args[0]!r}", location=location) from None
        NKey.from_seed(seed, location=location)
        return cls(url=url, credentials=Credentials(jwt=jwt, seed=seed, inbox=inbox))


SIGNER_VERSION = "1"


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountSigner:
    """What the manager holds to issue agents' bus credentials: the account's public key
    and its signing key (not the operator's or the account's own key)."""

    account: str
    signing_key: NKey

    def issue_agent(self, agent_id: str, host_id: str) -> Credentials:
        return user_credentials(
            f"agent {agent_id}",
            agent_permissions(agent_id, host_id),
            signing_key=self.signing_key,
            account=self.account,
            inbox=agent_inbox(agent_id),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": SIGNER_VERSION,
                "account": self.account,
                "signing_key": self.signing_key.seed,
            }
        )

    @classmethod
    def load(cls, path: Path) -> AccountSigner:
        location = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(
                f"cannot read the bus signing key: {exc}", location=location
            ) from None
        if not isinstance(data, dict) or data.get("version") != SIGNER_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise ConfigError(
                f"bus signing key version {version!r} is not {SIGNER_VERSION}", location=location
            )
        try:
            return cls(
                account=str(data["account"]),
                signing_key=NKey.from_seed(str(data["signing_key"]), location=location),
            )
        except KeyError as exc:
            raise ConfigError(f"bus signing key lacks {exc.args[0]!r}", location=location) from None
