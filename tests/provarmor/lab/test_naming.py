from provarmor.lab.naming import Names


def draw(seed):
    names = Names(seed)
    return [
        names.token(),
        names.word(),
        names.hidden(),
        names.system_like(),
        names.user("svc"),
        str(names.port()),
        f"{names.jitter(0.1, 2.0):.6f}",
    ]


def test_one_seed_replays_the_same_names():
    assert draw(7) == draw(7)


def test_two_seeds_give_different_strings_for_everything():
    first, second = draw(1), draw(2)
    assert all(a != b for a, b in zip(first, second, strict=True))


def test_names_are_not_repeated_within_a_run():
    names = Names(3)
    tokens = [names.token(2) for _ in range(300)]
    ports = [names.port(1000, 1400) for _ in range(300)]
    assert len(set(tokens)) == 300 and len(set(ports)) == 300


def test_users_fit_useradd_and_octets_avoid_reserved_addresses():
    names = Names(4)
    user = names.user("www")
    assert len(user) <= 16 and user.isalnum()
    octets = names.host_octets(6)
    assert len(set(octets)) == 6 and all(10 <= octet < 250 for octet in octets)
