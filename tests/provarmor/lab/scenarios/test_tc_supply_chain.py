from provarmor.lab.scenario import Channel
from provarmor.lab.scenarios.tc_supply_chain import SCENARIO


def test_the_tampered_configure_is_the_exec_root_and_make_runs_it_by_full_path(plan_checks):
    for ctx, plan in plan_checks(SCENARIO):
        (configure,) = plan.exec_roots
        files = {item.path: item for item in plan.setup_files}
        assert files[configure].mode == 0o755
        makefile = next(item for path, item in files.items() if path.endswith("Makefile"))
        assert "$(CURDIR)/vendor/" in makefile.content
        assert ctx.c2.url in files[configure].content
        assert plan.actions[0].channel is Channel.VICTIM
        assert plan.actions[0].user == ctx.dev_user
