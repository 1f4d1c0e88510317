"""The one list of the lab's scenarios and the one list of its benign workloads.

Adding a scenario or workload means writing its module and adding it here; nothing is
registered by import side effects.
"""

from __future__ import annotations

from provarmor.lab.benign import (
    admin_downloads,
    admin_shell,
    backup,
    build_c_project,
    cron_jobs,
    developer_edit,
    git_operations,
    log_rotation,
    package_install,
    python_project,
    ssh_admin,
    test_suite,
    webapp_load,
)
from provarmor.lab.scenario import Scenario
from provarmor.lab.scenarios import (
    credential_theft_lateral,
    log_tampering,
    nodlink_ubuntu,
    persistence_sweep,
    ssh_brute_force,
    staging_exfil,
    tc_browser_dropper,
    tc_supply_chain,
    tc_webshell_implant,
)
from provarmor.lab.workload import Workload
from provarmor.model.errors import ConfigError

SCENARIOS: tuple[Scenario, ...] = (
    tc_webshell_implant.SCENARIO,
    tc_browser_dropper.SCENARIO,
    tc_supply_chain.SCENARIO,
    nodlink_ubuntu.SCENARIO,
    credential_theft_lateral.SCENARIO,
    persistence_sweep.SCENARIO,
    log_tampering.SCENARIO,
    staging_exfil.SCENARIO,
    ssh_brute_force.SCENARIO,
)

WORKLOADS: tuple[Workload, ...] = (
    build_c_project.WORKLOAD,
    python_project.WORKLOAD,
    test_suite.WORKLOAD,
    git_operations.WORKLOAD,
    webapp_load.WORKLOAD,
    cron_jobs.WORKLOAD,
    admin_shell.WORKLOAD,
    package_install.WORKLOAD,
    log_rotation.WORKLOAD,
    backup.WORKLOAD,
    ssh_admin.WORKLOAD,
    developer_edit.WORKLOAD,
    admin_downloads.WORKLOAD,
)

BENIGN_MIX = "benign"
"""The name ``run_lab`` takes for a benign mix (``benign`` or ``benign:NAME,NAME``)."""


def find_scenario(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    known = ", ".join(scenario.name for scenario in SCENARIOS)
    raise ConfigError(f"unknown scenario {name!r} (known: {known})")


def records_host_logs(name: str) -> bool:
    """Whether ``run_lab(name)`` is recorded with the host's logs beside the kernel sensor."""
    if name == BENIGN_MIX or name.startswith(f"{BENIGN_MIX}:"):
        return False
    return find_scenario(name).host_logs


def find_workloads(names: str = "") -> tuple[Workload, ...]:
    """Workloads by comma-separated names; all of them when ``names`` is empty."""
    if not names.strip():
        return WORKLOADS
    by_name = {workload.name: workload for workload in WORKLOADS}
    chosen = []
    for name in (part.strip() for part in names.split(",") if part.strip()):
        if name not in by_name:
            raise ConfigError(f"unknown workload {name!r} (known: {', '.join(by_name)})")
        chosen.append(by_name[name])
    return tuple(chosen)
