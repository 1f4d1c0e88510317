from provarmor.lab.environment import remove_artifacts


def test_artifacts_are_removed_but_short_and_relative_paths_are_refused(tmp_path):
    folder = tmp_path / "drop" / "inner"
    folder.mkdir(parents=True)
    (folder / "f").write_text("x")
    single = tmp_path / "single"
    single.write_text("x")
    removed = remove_artifacts([str(tmp_path / "drop"), str(single), "/tmp", "relative/x", "/"])
    assert removed == [str(tmp_path / "drop"), str(single)]
    assert not (tmp_path / "drop").exists() and not single.exists()
