from provarmor.lab.scenarios.credential_theft_lateral import SCENARIO


def test_the_sudo_rule_is_for_the_web_user_and_lateral_movement_is_marked(plan_checks):
    for ctx, plan in plan_checks(SCENARIO):
        (sudoers,) = plan.setup_files
        assert sudoers.path.startswith("/etc/sudoers.d/") and sudoers.mode == 0o440
        assert sudoers.content == f"{ctx.web.user} ALL=(root) NOPASSWD: /usr/bin/tar\n"
        lateral = next(a for a in plan.actions if a.lateral_to)
        assert lateral.lateral_to == "host2"
        assert f"{ctx.ops_user}@{ctx.address('host2')}" in lateral.command
