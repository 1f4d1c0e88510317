from provarmor.sources.registry import IMPORTERS


def test_every_format_of_the_cli_has_an_importer():
    assert {"ndjson", "auditd", "cdm", "sysdig"} <= set(IMPORTERS)
