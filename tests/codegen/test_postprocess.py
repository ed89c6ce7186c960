import pytest

from apps.codegen.completion import cursor_window
from apps.codegen.postprocess import is_multiline, is_repetition, syntax_guard, truncate


@pytest.mark.parametrize("prefix,suffix,expected", [
    ("def f(x):\n    ", "", True),
    ("def f(x):\n    return x +", "", False),
    ("x = compute(", ")\n", False),
    ("for i in items:\n    \n", "", True),
])
def test_single_or_multi_line_follows_the_cursor(prefix, suffix, expected):
    assert is_multiline(prefix, suffix) is expected


def test_single_line_completions_stop_at_the_newline():
    assert truncate("x + 1\n    y = 2\n", language="python", prefix="    return ", multiline=False) == "x + 1"


def test_python_blocks_end_at_a_dedent_past_the_start():
    text = "total = 0\n    for x in xs:\n        total += x\n    return total\ndef other():\n    pass"

    result = truncate(text, language="python", prefix="def f(xs):\n    ", multiline=True)

    assert result == "total = 0\n    for x in xs:\n        total += x\n    return total"


def test_brace_blocks_end_where_the_enclosing_block_closes():
    text = "int t = 0;\n  for (int i = 0; i < n; i++) { t += i; }\n  return t;\n}\nint other() { return 1; }"

    result = truncate(text, language="c", prefix="int f(int n) {\n  ", multiline=True)

    assert result == "int t = 0;\n  for (int i = 0; i < n; i++) { t += i; }\n  return t;"


def test_stop_words_cut_the_completion():
    text = "return 1\n\nclass Next:\n    pass"

    assert truncate(text, language="python", prefix="def f():\n    ", multiline=True) == "return 1"


def test_repeating_the_line_above_or_the_suffix_is_dropped():
    assert is_repetition("total += x", prefix="for x in xs:\n    total += x\n    ", suffix="")
    assert is_repetition("return total", prefix="def f():\n    ", suffix="return total\n")
    assert is_repetition("   ", prefix="x", suffix="")
    assert not is_repetition("return total", prefix="def f():\n    total = 1\n    ", suffix="")


def test_guard_accepts_a_completion_that_adds_no_errors():
    result = syntax_guard("a + b", language="python", prefix="def add(a, b):\n    return ", suffix="\n")

    assert (result.action, result.text) == ("accepted", "a + b")


def test_guard_trims_to_the_longest_error_free_prefix_of_lines():
    completion = "total = a + b\n    return total\n    if (:"

    result = syntax_guard(completion, language="python", prefix="def add(a, b):\n    ", suffix="\n")

    assert (result.action, result.text) == ("trimmed", "total = a + b\n    return total")
    assert result.errors_after > result.errors_before


def test_guard_rejects_a_completion_that_breaks_everything():
    result = syntax_guard("(((", language="java", prefix="class A { int f() { return ", suffix="; } }")

    assert (result.action, result.text) == ("rejected", "")


def test_guard_compares_with_the_errors_the_file_already_has():
    prefix = "def broken(:\n    pass\n\ndef ok():\n    return "  # the file is already broken above the cursor

    result = syntax_guard("42", language="python", prefix=prefix, suffix="\n")

    assert result.action == "accepted"
    assert result.errors_before > 0


def test_the_cursor_window_keeps_whole_lines_nearest_the_cursor():
    prefix = "".join(f"line {i}\n" for i in range(1000)) + "x = "
    suffix = "\n" + "".join(f"after {i}\n" for i in range(1000))

    head, tail = cursor_window(prefix, suffix, scale=0.01)  # 40 and 15 characters

    assert head == "line 996\nline 997\nline 998\nline 999\nx = "  # exactly 40: no line is cut
    assert tail == "\nafter 0\n"  # "after 1" would be cut
    assert cursor_window("short = ", "\n") == ("short = ", "\n")
