from provarmor.lab.benign.cron_jobs import WORKLOAD


def test_jobs_run_as_root_through_run_parts_inside_the_scratch_directory(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == ""
    assert f"run-parts --report {env.ctx.scratch}/cron.daily" in command
