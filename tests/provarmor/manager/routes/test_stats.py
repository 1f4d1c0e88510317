"""The timeline route: alerts and incidents per bucket of event time."""

BUCKETS = {"minute": 60, "hour": 3600, "day": 86_400}


def test_timeline_counts_every_alert_and_incident_in_each_bucket_size(loaded):
    alerts = loaded.get("/alerts", limit=1000).json()
    incidents = loaded.get("/incidents").json()
    first = min(alert["first_timestamp"] for alert in alerts)
    after = max(alert["first_timestamp"] for alert in alerts) + 1
    for bucket, seconds in BUCKETS.items():
        timeline = loaded.get("/stats/timeline", bucket=bucket).json()
        assert timeline, bucket
        assert sum(row["alerts"] for row in timeline) == len(alerts)
        assert sum(row["incidents"] for row in timeline) == len(incidents)
        starts = [row["start_ns"] for row in timeline]
        assert starts == sorted(starts)
        assert all(start % (seconds * 1_000_000_000) == 0 for start in starts)
        assert starts[0] <= first < starts[0] + seconds * 1_000_000_000
        assert loaded.get("/stats/timeline", bucket=bucket, since=str(after)).json() == []
    assert (
        loaded.get("/stats/timeline").json() == loaded.get("/stats/timeline", bucket="hour").json()
    )


def test_empty_timeline_and_bad_parameters(manager):
    assert manager.get("/stats/timeline").json() == []
    week = manager.get("/stats/timeline", bucket="week")
    assert week.status_code == 400
    assert week.json()["field"] == "query.bucket"
    assert manager.get("/stats/timeline", since="soon").json()["field"] == "since"
    assert manager.client.get("/api/v1/stats/timeline").status_code == 401
