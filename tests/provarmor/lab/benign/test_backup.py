from provarmor.lab.benign.backup import WORKLOAD


def test_a_local_archive_and_an_rsync_over_ssh_to_the_admin_host(workload_commands):
    env, [(local, root, _), (remote, ops, _)] = workload_commands(WORKLOAD)
    assert root == "" and ops == env.ctx.ops_user
    assert "tar czf" in local and "rsync -a" in local
    assert f"@{env.ctx.address('admin')}:" in remote
