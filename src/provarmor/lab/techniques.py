"""The ATT&CK techniques the lab's scenarios use, each with the tactic it serves there.

Ids and names follow ATT&CK Enterprise v18 (the table packaged as ``data/attack.json``; a
test checks every entry against it). Where a technique belongs to several tactics, the
constant names the one it serves in the lab's scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Tactic(StrEnum):
    """ATT&CK tactics by their short names."""

    INITIAL_ACCESS = "initial-access"
    EXECUTION = "execution"
    PERSISTENCE = "persistence"
    PRIVILEGE_ESCALATION = "privilege-escalation"
    DEFENSE_EVASION = "defense-evasion"
    CREDENTIAL_ACCESS = "credential-access"
    DISCOVERY = "discovery"
    LATERAL_MOVEMENT = "lateral-movement"
    COLLECTION = "collection"
    EXFILTRATION = "exfiltration"
    COMMAND_AND_CONTROL = "command-and-control"


TACTIC_IDS: dict[Tactic, str] = {
    Tactic.INITIAL_ACCESS: "TA0001",
    Tactic.EXECUTION: "TA0002",
    Tactic.PERSISTENCE: "TA0003",
    Tactic.PRIVILEGE_ESCALATION: "TA0004",
    Tactic.DEFENSE_EVASION: "TA0005",
    Tactic.CREDENTIAL_ACCESS: "TA0006",
    Tactic.DISCOVERY: "TA0007",
    Tactic.LATERAL_MOVEMENT: "TA0008",
    Tactic.COLLECTION: "TA0009",
    Tactic.EXFILTRATION: "TA0010",
    Tactic.COMMAND_AND_CONTROL: "TA0011",
}


@dataclass(frozen=True, slots=True)
class Technique:
    id: str
    name: str
    tactic: Tactic


_I, _X, _P, _E = (
    Tactic.INITIAL_ACCESS,
    Tactic.EXECUTION,
    Tactic.PERSISTENCE,
    Tactic.PRIVILEGE_ESCALATION,
)
_D, _C, _V, _L = (
    Tactic.DEFENSE_EVASION,
    Tactic.CREDENTIAL_ACCESS,
    Tactic.DISCOVERY,
    Tactic.LATERAL_MOVEMENT,
)
_O, _F, _K = Tactic.COLLECTION, Tactic.EXFILTRATION, Tactic.COMMAND_AND_CONTROL

EXPLOIT_PUBLIC_APP = Technique("T1190", "Exploit Public-Facing Application", _I)
DRIVE_BY = Technique("T1189", "Drive-by Compromise", _I)
SUPPLY_CHAIN_DEPENDENCY = Technique(
    "T1195.001", "Compromise Software Dependencies and Development Tools", _I
)
UNIX_SHELL = Technique("T1059.004", "Unix Shell", _X)
PYTHON = Technique("T1059.006", "Python", _X)
MALICIOUS_FILE = Technique("T1204.002", "Malicious File", _X)
CRON = Technique("T1053.003", "Cron", _P)
SYSTEMD_SERVICE = Technique("T1543.002", "Systemd Service", _P)
SSH_AUTHORIZED_KEYS = Technique("T1098.004", "SSH Authorized Keys", _P)
SHELL_CONFIG = Technique("T1546.004", "Unix Shell Configuration Modification", _P)
DYNAMIC_LINKER_HIJACK = Technique("T1574.006", "Dynamic Linker Hijacking", _P)
LOCAL_ACCOUNT = Technique("T1136.001", "Local Account", _P)
BROWSER_EXTENSIONS = Technique("T1176.001", "Browser Extensions", _P)
COMPROMISE_BINARY = Technique("T1554", "Compromise Host Software Binary", _P)
SETUID = Technique("T1548.001", "Setuid and Setgid", _E)
SUDO = Technique("T1548.003", "Sudo and Sudo Caching", _E)
DEOBFUSCATE = Technique("T1140", "Deobfuscate/Decode Files or Information", _D)
OBFUSCATED = Technique("T1027", "Obfuscated Files or Information", _D)
COMPILE_AFTER_DELIVERY = Technique("T1027.004", "Compile After Delivery", _D)
FILELESS_STORAGE = Technique("T1027.011", "Fileless Storage", _D)
REFLECTIVE_LOADING = Technique("T1620", "Reflective Code Loading", _D)
MASQUERADE_NAME = Technique("T1036.005", "Match Legitimate Resource Name or Location", _D)
FILE_PERMISSIONS = Technique(
    "T1222.002", "Linux and Mac File and Directory Permissions Modification", _D
)
CLEAR_LOGS = Technique("T1070.002", "Clear Linux or Mac System Logs", _D)
CLEAR_HISTORY = Technique("T1070.003", "Clear Command History", _D)
FILE_DELETION = Technique("T1070.004", "File Deletion", _D)
TIMESTOMP = Technique("T1070.006", "Timestomp", _D)
IMPAIR_HISTORY = Technique("T1562.003", "Impair Command History Logging", _D)
HIDDEN_FILES = Technique("T1564.001", "Hidden Files and Directories", _D)
PASSWORD_GUESSING = Technique("T1110.001", "Password Guessing", _C)
SHADOW_FILE = Technique("T1003.008", "/etc/passwd and /etc/shadow", _C)
PRIVATE_KEYS = Technique("T1552.004", "Private Keys", _C)
SHELL_HISTORY = Technique("T1552.003", "Shell History", _C)
CREDENTIALS_IN_FILES = Technique("T1552.001", "Credentials In Files", _C)
SYSTEM_INFO = Technique("T1082", "System Information Discovery", _V)
OWNER_USER = Technique("T1033", "System Owner/User Discovery", _V)
NETWORK_CONFIG = Technique("T1016", "System Network Configuration Discovery", _V)
NETWORK_CONNECTIONS = Technique("T1049", "System Network Connections Discovery", _V)
PROCESS_DISCOVERY = Technique("T1057", "Process Discovery", _V)
FILE_DISCOVERY = Technique("T1083", "File and Directory Discovery", _V)
REMOTE_SYSTEMS = Technique("T1018", "Remote System Discovery", _V)
SERVICE_SCAN = Technique("T1046", "Network Service Discovery", _V)
LOCAL_ACCOUNT_DISCOVERY = Technique("T1087.001", "Local Account", _V)
SSH = Technique("T1021.004", "SSH", _L)
LOCAL_ACCOUNTS = Technique("T1078.003", "Local Accounts", _I)
LATERAL_TOOL_TRANSFER = Technique("T1570", "Lateral Tool Transfer", _L)
LOCAL_DATA = Technique("T1005", "Data from Local System", _O)
LOCAL_STAGING = Technique("T1074.001", "Local Data Staging", _O)
ARCHIVE_UTILITY = Technique("T1560.001", "Archive via Utility", _O)
EXFIL_C2 = Technique("T1041", "Exfiltration Over C2 Channel", _F)
EXFIL_UNENCRYPTED = Technique("T1048.003", "Exfiltration Over Unencrypted Non-C2 Protocol", _F)
SIZE_LIMITS = Technique("T1030", "Data Transfer Size Limits", _F)
INGRESS_TRANSFER = Technique("T1105", "Ingress Tool Transfer", _K)
WEB_PROTOCOLS = Technique("T1071.001", "Web Protocols", _K)
DNS_PROTOCOL = Technique("T1071.004", "DNS", _K)
NON_APPLICATION_PROTOCOL = Technique("T1095", "Non-Application Layer Protocol", _K)
STANDARD_ENCODING = Technique("T1132.001", "Standard Encoding", _K)
NON_STANDARD_PORT = Technique("T1571", "Non-Standard Port", _K)

ALL: tuple[Technique, ...] = tuple(
    value for value in globals().values() if isinstance(value, Technique)
)
"""Every technique above (the docs table and the ATT&CK cross-check read this)."""
