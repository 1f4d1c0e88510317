import json

from provarmor.lab.scenario import Channel
from provarmor.lab.scenarios.tc_browser_dropper import SCENARIO


def test_the_browser_is_launched_as_the_developer_and_installs_a_native_helper(plan_checks):
    for ctx, plan in plan_checks(SCENARIO):
        first = plan.actions[0]
        assert first.channel is Channel.LAUNCH and first.user == ctx.dev_user
        manifest = json.loads(next(p for p in plan.payloads if p.path.endswith(".json")).content)
        assert manifest["native_host"]["url"].startswith(ctx.c2.url)
        browser = plan.setup_files[0]
        assert browser.owner == ctx.dev_user and browser.mode == 0o755
        assert compile(browser.content.split("\n", 1)[1], "browser", "exec")
