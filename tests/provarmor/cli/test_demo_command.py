"""``provarmor demo`` on the bundled sample: ingest, the root-cause trace, one incident with
its story, and the incident drawn as SVG."""


def test_demo_runs_on_the_bundled_sample(tmp_path, invoke):
    result = invoke("demo", "--db", tmp_path / "demo.db")
    assert result.exit_code == 0, result.output
    assert "root cause of the last outbound connection" in result.output
    assert "/tmp/x/payload" in result.output
    assert "1 incidents" in result.output
    assert "is the entry point" in result.output
    svg = tmp_path / "demo-incident.svg"
    assert svg.read_text().startswith("<?xml") or "<svg" in svg.read_text()[:200]
