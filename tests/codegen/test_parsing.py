"""Each supported language: a real snippet parses without errors and yields its definitions and imports."""
import pytest

from apps.codegen.languages import LANGUAGES, language_for_path, normalise
from apps.codegen.parsing import chunks, definitions, error_count, imports

SNIPPETS = {
    "python": ("from math import sqrt\n\ndef hypot(a, b):\n    \"\"\"Length of the hypotenuse.\"\"\"\n"
               "    return sqrt(a * a + b * b)\n", "hypot", "function", "from math import sqrt"),
    "javascript": ("import { readFile } from 'fs';\n\nexport function parseConfig(text) {\n"
                   "  return JSON.parse(text);\n}\n", "parseConfig", "function", "import { readFile } from 'fs';"),
    "typescript": ("import { Request } from 'express';\n\ninterface User { id: number; name: string }\n\n"
                   "function greet(user: User): string {\n  return `Hello ${user.name}`;\n}\n", "greet", "function",
                   "import { Request } from 'express';"),
    "java": ("import java.util.List;\n\npublic class Stats {\n  public static double mean(List<Double> xs) {\n"
             "    double sum = 0;\n    for (double x : xs) sum += x;\n    return sum / xs.size();\n  }\n}\n",
             "mean", "method", "import java.util.List;"),
    "c": ("#include <string.h>\n\nint count_char(const char *s, char c) {\n  int n = 0;\n"
          "  for (; *s; s++) if (*s == c) n++;\n  return n;\n}\n", "count_char", "function", "#include <string.h>"),
    "cpp": ("#include <vector>\n\nint sum(const std::vector<int>& xs) {\n  int total = 0;\n"
            "  for (int x : xs) total += x;\n  return total;\n}\n", "sum", "function", "#include <vector>"),
    "csharp": ("using System;\n\nnamespace Shop {\n  public class Cart {\n    public decimal Total(decimal[] prices) {\n"
               "      decimal t = 0;\n      foreach (var p in prices) t += p;\n      return t;\n    }\n  }\n}\n",
               "Total", "method", "using System;"),
    "go": ("package shop\n\nimport \"strings\"\n\nfunc Slug(name string) string {\n"
           "\treturn strings.ToLower(strings.ReplaceAll(name, \" \", \"-\"))\n}\n", "Slug", "function",
           "import \"strings\""),
    "rust": ("use std::collections::HashMap;\n\nfn word_count(text: &str) -> HashMap<&str, usize> {\n"
             "    let mut counts = HashMap::new();\n    for w in text.split_whitespace() {\n"
             "        *counts.entry(w).or_insert(0) += 1;\n    }\n    counts\n}\n", "word_count", "function",
             "use std::collections::HashMap;"),
    "php": ("<?php\nuse App\\Models\\User;\n\nfunction full_name($first, $last) {\n"
            "    return trim($first . ' ' . $last);\n}\n", "full_name", "function", "use App\\Models\\User;"),
    "ruby": ("require 'json'\n\nclass Order\n  def total(items)\n    items.sum { |i| i[:price] }\n  end\nend\n",
             "total", "method", "require 'json'"),
    "kotlin": ("import kotlin.math.max\n\nfun clamp(x: Int, low: Int, high: Int): Int {\n"
               "    return max(low, minOf(x, high))\n}\n", "clamp", "function", "import kotlin.math.max"),
}


def test_twelve_languages_are_supported():
    assert set(SNIPPETS) == set(LANGUAGES)


@pytest.mark.parametrize("language", sorted(SNIPPETS))
def test_snippet_parses_and_yields_its_definition_and_import(language):
    source, name, kind, import_text = SNIPPETS[language]

    found = {d.name: d for d in definitions(language, source)}

    assert error_count(language, source) == 0
    assert found[name].kind == kind
    assert found[name].start_line < found[name].end_line
    assert name in found[name].signature
    assert import_text in imports(language, source)


def test_python_docstrings_and_signatures_are_kept():
    source, *_ = SNIPPETS["python"]

    hypot = definitions("python", source)[0]

    assert (hypot.signature, hypot.docstring) == ("def hypot(a, b):", "Length of the hypotenuse.")


def test_broken_code_has_errors():
    assert error_count("python", "def f(:\n    return\n") > 0
    assert error_count("java", "public class A { void m( { } }") > 0


@pytest.mark.parametrize("client_id,name", [("python", "python"), ("c_sharp", "csharp"), ("typescriptreact", "typescript"),
                                             ("C++", "cpp"), ("cobol", None)])
def test_client_language_ids_are_normalised(client_id, name):
    assert normalise(client_id) == name


def test_files_map_to_languages_by_extension():
    assert language_for_path("src/app/main.rs").name == "rust"
    assert language_for_path("README.md") is None


def test_chunks_cover_the_file_in_overlapping_windows():
    source = "\n".join(f"line {i}" for i in range(1, 51))

    windows = chunks(source, lines_per_chunk=20)

    assert [(c.start_line, c.end_line) for c in windows] == [(1, 20), (11, 30), (21, 40), (31, 50)]
