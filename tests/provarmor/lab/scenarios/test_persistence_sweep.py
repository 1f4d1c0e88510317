from provarmor.lab.scenarios.implants import implant_payload  # noqa: F401
from provarmor.lab.scenarios.persistence_sweep import SCENARIO


def test_persistence_entries_point_only_at_the_lab_drop_directory(plan_checks):
    for ctx, plan in plan_checks(SCENARIO):
        by_step = {action.step: action for action in plan.actions}
        folder = plan.artifacts[0]
        assert folder in by_step["cron"].command and "/etc/cron.d/" in by_step["cron"].command
        assert folder in by_step["systemd"].command
        assert "LD_PRELOAD" in by_step["preload-and-rc"].command
        assert f"/home/{ctx.ops_user}/.bashrc" in by_step["preload-and-rc"].command
        assert "/etc/ld.so.preload" not in " ".join(a.command for a in plan.actions)
        root_steps = [a for a in plan.actions if a.agent]
        assert len(root_steps) == 4 and len({a.agent for a in root_steps}) == 1
