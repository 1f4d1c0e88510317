from provarmor.lab.benign.webapp_load import WORKLOAD


def test_requests_only_go_to_the_local_web_application(workload_commands):
    for seed in range(1, 6):
        env, [(command, _user, _)] = workload_commands(WORKLOAD, seed)
        requests = command.split(" ; ")
        assert 5 <= len(requests) < 15
        assert all(env.ctx.web.url in request for request in requests)
