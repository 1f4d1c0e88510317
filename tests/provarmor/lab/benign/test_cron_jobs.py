from provarmor.lab.benign.cron_jobs import WORKLOAD


def test_cron_runs_the_chosen_jobs_through_run_parts_as_root(workload_commands):
    env, [(command, user, _)] = workload_commands(WORKLOAD)
    assert user == "" and env.via == ["cron"]
    jobs = f"{env.ctx.scratch}/cron.daily"
    assert "run-parts --report --regex '^(" in command and command.rstrip().endswith(jobs)
    installed = {path: mode for path, (_, mode) in env.installed.items() if path.startswith(jobs)}
    assert len(installed) == 4 and set(installed.values()) == {0o755}
