from provarmor.lab.atomics.downloads import BASE_URL, local_source, rewrite_downloads, stage

RAW = "https://raw.githubusercontent.com/redcanaryco/atomic-red-team/master/atomics"


def test_github_urls_of_local_sources_point_at_the_local_server(atomics_data):
    text = f"curl -sS {RAW}/T1059.004/src/echo-art-fish.sh | bash"
    rewritten = rewrite_downloads(text, atomics=atomics_data / "atomics")
    assert rewritten.text == f"curl -sS {BASE_URL}/T1059.004/src/echo-art-fish.sh | bash"
    assert rewritten.served == ("T1059.004/src/echo-art-fish.sh",)
    assert rewritten.unserved == ()


def test_the_github_raw_spelling_is_recognised_too(atomics_data):
    url = "https://github.com/redcanaryco/atomic-red-team/raw/master/atomics/T1059.004/src/pipe-to-shell.sh"
    assert local_source(url, atomics_data / "atomics") == "T1059.004/src/pipe-to-shell.sh"


def test_urls_without_a_local_copy_are_unserved_and_left_alone(atomics_data):
    text = (
        "curl --create-dirs https://raw.githubusercontent.com/IvanGlinkin/AutoSUID/main/AutoSUID.sh"
        f" -o x; curl {RAW}/T1059.004/src/missing.sh; curl {RAW}/T1059.004/src/../../etc/passwd"
    )
    rewritten = rewrite_downloads(text, atomics=atomics_data / "atomics")
    assert rewritten.text == text and rewritten.served == ()
    assert len(rewritten.unserved) == 3


def test_loopback_urls_are_kept(atomics_data):
    text = "curl http://127.0.0.1:8080/x; curl http://localhost/y"
    assert rewrite_downloads(text, atomics=atomics_data / "atomics").text == text


def test_stage_copies_served_files_into_the_server_root(tmp_path, atomics_data):
    copies = stage(
        ["T1059.004/src/echo-art-fish.sh"], atomics=atomics_data / "atomics", www=tmp_path
    )
    assert copies == [tmp_path / "T1059.004" / "src" / "echo-art-fish.sh"]
    assert copies[0].read_text().startswith("#! /bin/bash")
