from provarmor.lab.benign.log_rotation import WORKLOAD


def test_logrotate_rotates_the_web_log_with_its_own_state_file(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == ""
    assert env.ctx.web.log in command and f"-s {env.ctx.scratch}/logrotate/state" in command
