from provarmor.lab.atomics.identities import Identities, created_identities, unset_variables


def test_users_and_groups_created_by_the_test_are_found():
    texts = [
        "useradd -s /bin/bash -p $(openssl passwd -1 x) art",
        '[ "$(uname)" = FreeBSD ] && pw useradd bsd -g wheel || groupadd -r artgroup',
        "sudo sh -c 'useradd --create-home --shell /bin/sh nested'",
    ]
    found = created_identities(texts)
    assert found == Identities(
        users=frozenset({"art", "bsd", "nested"}), groups=frozenset({"artgroup"})
    )


def test_changing_an_account_is_not_creating_it():
    assert created_identities(["usermod --lock art; userdel art; passwd nobody"]) == Identities()


def test_unset_variables_are_those_read_but_never_set():
    assert unset_variables("rm $TMPFILE; X=1; echo $X $HOME ${Y}") == frozenset({"TMPFILE", "Y"})
    assert unset_variables("read line; echo $line; for f in a; do echo $f; done") == frozenset()
    assert unset_variables("getopts ab opt; echo $opt $PathToAtomicsFolder") == frozenset()
