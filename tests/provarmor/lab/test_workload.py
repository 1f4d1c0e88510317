from provarmor.lab.context import LabContext
from provarmor.lab.workload import Workload, no_artifacts


def test_workloads_declare_no_artifacts_unless_they_say_so():
    workload = Workload(name="w", title="t", description="d", run=lambda env, rng: None)
    assert workload.artifacts is no_artifacts
    assert workload.artifacts(LabContext.from_seed(1)) == ()
    assert workload.looks_like == ""
