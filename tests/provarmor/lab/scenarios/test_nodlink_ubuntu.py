import base64
import zipfile  # noqa: F401  (the scanner is served as a zip)

from provarmor.lab.scenarios.nodlink_ubuntu import SCENARIO


def test_recon_is_base64_encoded_and_the_scanner_is_a_zip(plan_checks):
    for _ctx, plan in plan_checks(SCENARIO):
        recon = plan.actions[1].command
        blob = recon.split()[1]
        assert "uname -a" in base64.b64decode(blob).decode()
        scanner = next(p for p in plan.payloads if p.path.endswith(".zip"))
        assert scanner.archive_as == "scan.py"
        deploy = plan.actions[2].command
        assert "chmod +x" in deploy and "nohup" in deploy and "curl" in deploy
