"""``provarmor config schema`` and ``config show``, and the global ``--config``/``--set``
options every command reads its settings through."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_config_reference_is_current(invoke):
    result = invoke("config", "schema")
    assert result.exit_code == 0
    committed = (ROOT / "docs" / "reference" / "config.md").read_text()
    assert committed == result.output, "run: provarmor config schema > docs/reference/config.md"


def test_show_prints_every_section(invoke):
    result = invoke("config", "show")
    assert result.exit_code == 0, result.output
    shown = [line.removesuffix(":") for line in result.output.splitlines() if line[:1] != " "]
    assert {"agent", "anomaly", "detection", "graph", "investigation", "manager"} <= set(shown)


def test_a_setting_given_with_set_reaches_the_configuration(run_cli):
    result = run_cli("--set", "graph.max_nodes=1234", "config", "show")
    assert result.returncode == 0, result.stderr
    assert "max_nodes: 1234" in result.stdout


def test_a_config_file_reaches_the_configuration_and_set_wins_over_it(tmp_path, run_cli):
    config = tmp_path / "provarmor.yaml"
    config.write_text("graph:\n  max_nodes: 777\ninvestigation:\n  max_hops: 7\n")
    result = run_cli("--config", str(config), "--set", "graph.max_nodes=1234", "config", "show")
    assert result.returncode == 0, result.stderr
    assert "max_nodes: 1234" in result.stdout and "max_nodes: 777" not in result.stdout
    assert "max_hops: 7" in result.stdout


def test_a_malformed_set_is_one_line_naming_it(run_cli):
    result = run_cli("--set", "graph.max_nodes", "config", "show")
    assert result.returncode == 2
    assert "--set graph.max_nodes" in result.stderr and "section.key=value" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_negative_ebpf_reorder_delay_is_one_line_naming_it(run_cli):
    result = run_cli("--set", "agent.ebpf_reorder_ms=-5", "config", "show")
    assert result.returncode == 2
    assert "--set agent.ebpf_reorder_ms=-5: must be 0 or more" in result.stderr
    assert "Traceback" not in result.stderr
    shown = run_cli("--set", "agent.ebpf_reorder_ms=0", "config", "show")
    assert shown.returncode == 0 and "ebpf_reorder_ms: 0" in shown.stdout
