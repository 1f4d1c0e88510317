from provarmor.lab.accounts import user_environment


def test_a_login_like_environment():
    environment = user_environment("root")
    assert environment["HOME"] == "/root" and environment["USER"] == "root"
    assert "/usr/bin" in environment["PATH"].split(":")
