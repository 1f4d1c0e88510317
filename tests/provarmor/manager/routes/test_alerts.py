"""The alerts route: the alerts raised on the real lab capture, filtered and paged."""

from provarmor.manager.auth import Role

LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def test_lab_alerts_filtered_by_level_host_time_and_paged(loaded):
    alerts = loaded.get("/alerts", limit=1000).json()
    assert len(alerts) >= 5
    assert {alert["host_id"] for alert in alerts} == {LAB_HOST}
    assert all(alert["id"].startswith(alert["rule_id"] + "@") for alert in alerts)
    assert all(alert["event_ids"] and alert["techniques"] for alert in alerts)
    firsts = [alert["first_timestamp"] for alert in alerts]
    assert firsts == sorted(firsts, reverse=True), "latest first, like incidents"
    oldest = loaded.get("/alerts", order="oldest", limit=1000).json()
    assert oldest == alerts[::-1]
    high = loaded.get("/alerts", level="high", limit=1000).json()
    assert high == [alert for alert in alerts if alert["level"] == "high"]
    assert high
    assert loaded.get("/alerts", host=LAB_HOST, limit=1000).json() == alerts
    assert loaded.get("/alerts", host="other-host").json() == []
    middle = firsts[len(firsts) // 2]
    later = loaded.get("/alerts", since=str(middle), limit=1000).json()
    assert later and all(alert["last_timestamp"] >= middle for alert in later)
    assert len(later) < len(alerts)
    first_two = loaded.get("/alerts", limit=2).json()
    next_two = loaded.get("/alerts", limit=2, offset=2).json()
    assert first_two + next_two == alerts[:4]


def test_no_alerts_without_uploads_and_bad_parameters_are_400(manager):
    analyst = manager.token(Role.ANALYST)
    assert manager.get("/alerts", token=analyst).json() == []
    bad_time = manager.get("/alerts", until="tomorrow")
    assert bad_time.status_code == 400
    assert bad_time.json()["field"] == "until"
    assert manager.get("/alerts", limit=1001).json()["field"] == "limit"
    assert manager.get("/alerts", order="sideways").json()["field"] == "query.order"
    assert manager.client.get("/api/v1/alerts").status_code == 401
