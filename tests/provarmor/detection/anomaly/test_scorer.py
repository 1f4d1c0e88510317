import dataclasses


def _trained_child(benign_split):
    training, _ = benign_split
    return next(history[-1] for history in training if history[-1].parent_exe)


def test_a_process_is_judged_in_its_parents_context_when_training_saw_it(small_model, benign_split):
    profile = _trained_child(benign_split)
    assert small_model.subject(profile) == profile.context != profile.exe
    orphan = dataclasses.replace(profile, parent_exe="/opt/never/seen")
    assert small_model.subject(orphan) == profile.exe


def test_unseen_executables_and_tokens_cost_and_seen_ones_do_not(small_model, benign_split):
    profile = _trained_child(benign_split)
    subject = small_model.subject(profile)
    token = next(iter(profile.tokens["read"] or profile.tokens["arg"]))
    attribute = "read" if profile.tokens["read"] else "arg"
    assert small_model.surprise(subject, attribute, token) == 0.0
    assert small_model.surprise(subject, "exe", profile.exe) == 0.0
    assert small_model.surprise(subject, "exe", "/tmp/.x/dropped") == small_model.new_executable
    assert small_model.new_executable > 0.0
    unseen = small_model.surprise(subject, "net", "connect public:<registered>")
    assert unseen > small_model.escape[f"{subject}\x1fnet"]
