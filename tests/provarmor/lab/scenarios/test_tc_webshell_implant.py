from provarmor.lab.scenario import Channel
from provarmor.lab.scenarios.tc_webshell_implant import SCENARIO


def test_plan_enters_by_the_web_shell_and_runs_the_implant_from_memory(plan_checks):
    for ctx, plan in plan_checks(SCENARIO):
        assert plan.actions[0].channel is Channel.WEBSHELL
        loader = next(p for p in plan.payloads if p.path.endswith(".js"))
        assert "memfd_create" in loader.content and "/proc/self/fd/" in loader.content
        assert {p.compile for p in plan.payloads} == {True, False}
        setuid = [c for c in plan.setup_commands if c[:2] == ("chmod", "4755")]
        assert setuid and setuid[0][2] in plan.artifacts
        assert any(a.channel is Channel.SHELL for a in plan.actions)
        assert str(ctx.c2.shell_port) in plan.payloads[0].content
