"""Splitting migration files into statements: comments, strings, semicolons, line numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptopipeline.ksql import SqlSyntaxError, split_statements, substitute
from cryptopipeline.ksql._split import CommandKind, classify


def _texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


def test_semicolons_inside_strings_comments_and_quoted_identifiers_do_not_split() -> None:
    sql = (
        "-- a comment; with a semicolon\n"
        "CREATE STREAM S (`A;B` STRING) WITH (KAFKA_TOPIC='t;1', VALUE_FORMAT='JSON');\n"
        "/* block; comment\n spanning; lines */\n"
        "INSERT INTO S (`A;B`) VALUES ('it''s; fine -- not a comment /* nor this */');\n"
    )
    assert _texts(sql) == [
        "CREATE STREAM S (`A;B` STRING) WITH (KAFKA_TOPIC='t;1', VALUE_FORMAT='JSON');",
        "INSERT INTO S (`A;B`) VALUES ('it''s; fine -- not a comment /* nor this */');",
    ]


def test_multi_line_statements_keep_their_first_line_number() -> None:
    sql = (
        "\n-- header\n\nCREATE TABLE T\n  AS SELECT A,\n  -- inline\n  B FROM S;\n\n"
        "  DROP STREAM X;"
    )
    statements = split_statements(sql)
    assert [s.line for s in statements] == [4, 9]
    assert statements[0].text == "CREATE TABLE T\n  AS SELECT A,\n  \n  B FROM S;"


def test_a_string_spanning_lines_counts_its_newlines() -> None:
    statements = split_statements("SELECT 'a\nb\nc' FROM X;\nDROP STREAM Y;")
    assert [s.line for s in statements] == [1, 4]


@pytest.mark.parametrize(
    ("sql", "line", "problem"),
    [
        ("CREATE STREAM S (A STRING);\nINSERT INTO S VALUES ('open;\n", 2, "unterminated string"),
        ("/* never closed;\nCREATE STREAM S;", 1, "unterminated /* comment"),
        ("CREATE STREAM S;\n\nDROP STREAM S", 3, "no terminating semicolon"),
        ("CREATE STREAM `S;", 1, "unterminated quoted identifier"),
        ("CREATE STREAM S;\n ;", 2, "empty statement"),
    ],
)
def test_bad_sql_is_reported_with_its_line(sql: str, line: int, problem: str) -> None:
    with pytest.raises(SqlSyntaxError) as error:
        split_statements(sql)
    assert error.value.line == line
    assert problem in str(error.value)


def test_client_side_commands_are_classified_like_ksql_migrations() -> None:
    commands = [
        classify(s)
        for s in split_statements(
            "SET 'auto.offset.reset' = 'earliest';\nUNSET 'auto.offset.reset';\n"
            "DEFINE topic = 'it''s';\nUNDEFINE topic;\nCREATE STREAM S;"
        )
    ]
    assert [c.kind for c in commands] == [
        CommandKind.SET,
        CommandKind.UNSET,
        CommandKind.DEFINE,
        CommandKind.UNDEFINE,
        CommandKind.STATEMENT,
    ]
    assert (commands[0].name, commands[0].value) == ("auto.offset.reset", "earliest")
    assert commands[2].value == "it's"
    with pytest.raises(SqlSyntaxError, match="do not belong"):
        classify(split_statements("SELECT * FROM S;")[0])


def test_variables_are_substituted_case_insensitively_and_can_be_escaped() -> None:
    text = "CREATE STREAM ${Name} WITH (KAFKA_TOPIC='${topic}') -- $${topic}"
    assert substitute(text, {"name": "S", "TOPIC": "t"}) == (
        "CREATE STREAM S WITH (KAFKA_TOPIC='t') -- ${topic}"
    )


_word = st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True)
_string = st.text(alphabet="ab ;-/*'\n`\"", max_size=12).map(
    lambda s: "'" + s.replace("'", "''") + "'"
)
_ident = st.text(alphabet="ab ;-/*'", min_size=1, max_size=8).map(lambda s: "`" + s + "`")
_token = st.one_of(_word, _string, _ident, st.sampled_from(["(", ")", ",", "=", "*"]))
_comment = st.one_of(
    st.text(alphabet="ab ;'`*", max_size=10).map(lambda s: "--" + s + "\n"),
    st.text(alphabet="ab ;'`\n-", max_size=10).map(lambda s: "/*" + s + "*/"),
)
_statement = st.lists(_token, min_size=1, max_size=8).map(lambda tokens: " ".join(tokens))


@given(st.lists(st.tuples(_statement, st.lists(_comment, max_size=2)), min_size=1, max_size=5))
def test_any_statements_with_comments_between_them_split_back(
    items: list[tuple[str, list[str]]],
) -> None:
    sql = ""
    for statement, comments in items:
        sql += " ".join(comments) + "\n" + statement + ";\n"
    assert _texts(sql) == [statement.strip() + ";" for statement, _ in items]


@given(_statement, st.lists(_comment, min_size=1, max_size=3))
def test_comments_inside_a_statement_are_removed_without_touching_literals(
    statement: str, comments: list[str]
) -> None:
    tokens = statement.split(" ")
    # put the comments after the first token (tokens may contain spaces only inside quotes, so
    # rebuild from the original string instead of splitting it)
    first = statement[: len(tokens[0])] if not tokens[0].startswith(("'", "`")) else ""
    rest = statement[len(first) :]
    sql = first + " " + " ".join(comments) + " " + rest + ";"
    (text,) = _texts(sql)
    assert " ".join(text.split()) == " ".join((first + " " + rest + ";").split())
