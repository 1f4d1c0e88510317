from provarmor.lab.scenarios.log_tampering import SCENARIO


def test_tampering_targets_the_lab_log_and_the_lab_admins_history(plan_checks):
    for ctx, plan in plan_checks(SCENARIO):
        by_step = {action.step: action for action in plan.actions}
        assert ctx.web.log in by_step["clear-logs"].command
        assert f"/home/{ctx.ops_user}/.bash_history" in by_step["clear-history"].command
        assert "touch -r" in by_step["masquerade-timestomp"].command
        assert "/root/" not in " ".join(a.command for a in plan.actions)
