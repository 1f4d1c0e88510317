from provarmor.lab.benign.log_rotation import WORKLOAD


def test_cron_runs_logrotate_on_the_web_log_with_its_own_state_file(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == "" and env.via == ["cron"]
    folder = f"{env.ctx.scratch}/logrotate"
    assert f"-s {folder}/state {folder}/web.conf" in command
    assert env.ctx.web.log in env.installed[f"{folder}/web.conf"][0]
