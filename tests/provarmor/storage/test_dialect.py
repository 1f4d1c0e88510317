"""What the dialects share: the upsert statement, lookups by many keys and literal LIKE
patterns, run on SQLite (the PostgreSQL dialect's tests run them there)."""

import sqlite3

import pytest

from provarmor.storage.dialect import (
    IN_KEYS,
    column_names,
    like_literal,
    select_where_in,
    upsert_statement,
)
from provarmor.storage.sqlite_dialect import SqliteDialect


def test_upsert_statement_reads_as_sql_both_engines_run():
    statement = upsert_statement(
        "t",
        (("k", "int8"), ("v", "text")),
        "VALUES (?, ?)",
        conflict="k",
        update="v = excluded.v",
        returning="k",
    )
    assert statement == (
        "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v "
        "RETURNING k"
    )
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    assert db.execute(statement, (1, "a")).fetchall() == [(1,)]
    assert db.execute(statement, (1, "b")).fetchall() == [(1,)]
    assert db.execute("SELECT k, v FROM t").fetchall() == [(1, "b")]
    assert column_names((("k", "int8"), ('"user"', "text"))) == 'k, "user"'


@pytest.mark.parametrize("text", ["100%", "a_b", "back\\slash", "plain", "%_\\"])
def test_like_literal_matches_the_text_itself_only(text):
    db = sqlite3.connect(":memory:")
    pattern = f"%{like_literal(text)}%"
    found = [
        candidate
        for candidate in (f"x{text}y", text.replace("%", "Q").replace("_", "Q"), "other")
        if db.execute("SELECT ? LIKE ? ESCAPE '\\'", (candidate, pattern)).fetchone()[0]
    ]
    assert found[0] == f"x{text}y"
    assert "other" not in found
    assert all(text in candidate for candidate in found)


def test_select_where_in_takes_any_number_of_keys(tmp_path):
    db = SqliteDialect(tmp_path / "t.db", name="test store")
    db.execute_script("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    with db.transaction():
        db.load("t", (("k", "int8"), ("v", "text")), [(k, f"v{k}") for k in range(3 * IN_KEYS)])
    wanted = list(range(1, 3 * IN_KEYS + 7, 2))  # over two chunks, some keys not stored
    found = select_where_in(db, "SELECT k, v FROM t", "k", wanted)
    assert sorted(found) == [(k, f"v{k}") for k in wanted if k < 3 * IN_KEYS]
    db.close()
