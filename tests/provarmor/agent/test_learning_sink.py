"""The standalone agent's learning sink on the real benign lab recording."""

from pathlib import Path

from provarmor.agent.learning_sink import LearningSink
from provarmor.agent.spool import SpoolPosition
from provarmor.detection.anomaly.settings import LearningSettings
from provarmor.pipeline.config import AnalysisConfig
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

BENIGN = Path(__file__).parents[2] / "data" / "lab" / "benign-seed2" / "events.ndjson.gz"


def test_learning_sink_commits_its_position_with_each_checkpoint(tmp_path):
    events = list(read_ndjson(BENIGN, report=IngestReport(source=str(BENIGN)), host=HostContext()))
    config = AnalysisConfig(learning=LearningSettings(window_seconds=75, checkpoint_seconds=3600))
    sink = LearningSink(tmp_path / "models", config=config, alerts=tmp_path / "alerts.jsonl")
    assert sink.committed() is None
    sink.write(events[:1000], SpoolPosition(sequence=1000))
    assert sink.committed() is None  # not checkpointed yet: a restart re-reads nothing older
    sink.close()
    again = LearningSink(tmp_path / "models", config=config, alerts=tmp_path / "alerts.jsonl")
    assert again.committed() == SpoolPosition(sequence=1000)
    assert again.learning.status().events == 1000
    again.write(events[1000:], SpoolPosition(sequence=len(events)))
    # The window closed: version 1 was archived and checkpointed with its position at once.
    assert again.committed() == SpoolPosition(sequence=len(events))
    assert again.learning.archive.versions() == [1]
    again.close()
