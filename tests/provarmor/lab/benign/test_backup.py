from provarmor.lab.benign.backup import WORKLOAD


def test_cron_runs_roots_archive_and_the_admins_rsync_over_ssh(workload_commands):
    env, [(local, root, _), (remote, ops, _)] = workload_commands(WORKLOAD)
    assert env.via == ["cron", "cron"]
    assert root == "" and ops == env.ctx.ops_user
    assert "tar czf" in local and "rsync -a" in local
    assert f"@{env.ctx.address('admin')}:" in remote
