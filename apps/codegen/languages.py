"""The languages the code-completion app understands, with their tree-sitter grammars (offline wheels).

Each language names the node types that define symbols and import others, its line-comment
prefix (context snippets are pasted as comments) and its block style (indentation or braces).
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field

import tree_sitter


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    module: str  # the tree-sitter grammar wheel
    grammar: str = "language"  # the function of the module returning the grammar
    extensions: tuple[str, ...] = ()
    definitions: dict[str, str] = field(default_factory=dict)  # node type -> kind ("function", "class", ...)
    imports: tuple[str, ...] = ()
    comment: str = "//"
    indented_blocks: bool = False  # Python: blocks end by dedent, not by a closing brace
    stop_words: tuple[str, ...] = ()  # a completion ends before any of these


LANGUAGES: dict[str, LanguageSpec] = {spec.name: spec for spec in [
    LanguageSpec("python", "tree_sitter_python", extensions=(".py",), comment="#", indented_blocks=True,
                 definitions={"function_definition": "function", "class_definition": "class"},
                 imports=("import_statement", "import_from_statement"),
                 stop_words=("\ndef ", "\nclass ", "\nif __name__", "\n@", "\nimport ", "\nfrom ")),
    LanguageSpec("javascript", "tree_sitter_javascript", extensions=(".js", ".mjs", ".cjs", ".jsx"),
                 definitions={"function_declaration": "function", "class_declaration": "class",
                              "method_definition": "method", "variable_declarator": "variable"},
                 imports=("import_statement",), stop_words=("\nfunction ", "\nclass ", "\nexport ", "\nimport ")),
    LanguageSpec("typescript", "tree_sitter_typescript", grammar="language_typescript", extensions=(".ts", ".tsx"),
                 definitions={"function_declaration": "function", "class_declaration": "class",
                              "method_definition": "method", "interface_declaration": "interface",
                              "type_alias_declaration": "type", "variable_declarator": "variable"},
                 imports=("import_statement",),
                 stop_words=("\nfunction ", "\nclass ", "\nexport ", "\ninterface ", "\nimport ")),
    LanguageSpec("java", "tree_sitter_java", extensions=(".java",),
                 definitions={"class_declaration": "class", "interface_declaration": "interface",
                              "method_declaration": "method", "constructor_declaration": "constructor",
                              "enum_declaration": "enum"},
                 imports=("import_declaration",), stop_words=("\npublic class ", "\nclass ", "\nimport ")),
    LanguageSpec("c", "tree_sitter_c", extensions=(".c", ".h"),
                 definitions={"function_definition": "function", "struct_specifier": "struct"},
                 imports=("preproc_include",), stop_words=("\n#include ", "\n#define ")),
    LanguageSpec("cpp", "tree_sitter_cpp", extensions=(".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"),
                 definitions={"function_definition": "function", "class_specifier": "class",
                              "struct_specifier": "struct", "namespace_definition": "namespace"},
                 imports=("preproc_include", "using_declaration"), stop_words=("\n#include ",)),
    LanguageSpec("csharp", "tree_sitter_c_sharp", extensions=(".cs",),
                 definitions={"class_declaration": "class", "interface_declaration": "interface",
                              "method_declaration": "method", "struct_declaration": "struct",
                              "record_declaration": "record", "enum_declaration": "enum"},
                 imports=("using_directive",), stop_words=("\nusing ", "\nnamespace ")),
    LanguageSpec("go", "tree_sitter_go", extensions=(".go",),
                 definitions={"function_declaration": "function", "method_declaration": "method",
                              "type_spec": "type"},
                 imports=("import_declaration",), stop_words=("\nfunc ", "\ntype ", "\nimport ", "\npackage ")),
    LanguageSpec("rust", "tree_sitter_rust", extensions=(".rs",),
                 definitions={"function_item": "function", "struct_item": "struct", "enum_item": "enum",
                              "trait_item": "trait", "mod_item": "module"},
                 imports=("use_declaration",), stop_words=("\nfn ", "\npub fn ", "\nimpl ", "\nuse ", "\nmod ")),
    LanguageSpec("php", "tree_sitter_php", grammar="language_php", extensions=(".php",),
                 definitions={"function_definition": "function", "class_declaration": "class",
                              "method_declaration": "method", "interface_declaration": "interface"},
                 imports=("namespace_use_declaration",), stop_words=("\nfunction ", "\nclass ", "\nuse ")),
    LanguageSpec("ruby", "tree_sitter_ruby", extensions=(".rb",), comment="#",
                 definitions={"method": "method", "singleton_method": "method", "class": "class",
                              "module": "module"},
                 imports=(), stop_words=("\ndef ", "\nclass ", "\nmodule ", "\nrequire ")),
    LanguageSpec("kotlin", "tree_sitter_kotlin", extensions=(".kt", ".kts"),
                 definitions={"function_declaration": "function", "class_declaration": "class",
                              "object_declaration": "object"},
                 imports=("import",), stop_words=("\nfun ", "\nclass ", "\nimport ", "\nobject ")),
]}
PLAINTEXT = LanguageSpec("plaintext", "", comment="#")  # a missing or unknown language: no grammar, no guard
ALIASES = {"c_sharp": "csharp", "c#": "csharp", "cs": "csharp", "c++": "cpp", "js": "javascript", "ts": "typescript",
           "py": "python", "golang": "go", "rb": "ruby", "kt": "kotlin", "javascriptreact": "javascript",
           "typescriptreact": "typescript"}


def normalise(language: str) -> str | None:
    """The registry name for a client's language id (Tabby and VS Code ids included), or None."""
    name = language.strip().lower()
    name = ALIASES.get(name, name)
    return name if name in LANGUAGES else None


def spec_for(name: str) -> LanguageSpec:
    """The language's spec; plain text for a name outside the registry."""
    return LANGUAGES.get(name, PLAINTEXT)


def language_for_path(path: str) -> LanguageSpec | None:
    lowered = path.lower()
    return next((spec for spec in LANGUAGES.values() if lowered.endswith(spec.extensions)), None)


_parsers = threading.local()  # a tree-sitter parser is not shared between threads


def parser(name: str) -> tree_sitter.Parser:
    cached = getattr(_parsers, "by_language", None)
    if cached is None:
        cached = _parsers.by_language = {}
    if name not in cached:
        spec = LANGUAGES[name]
        grammar = getattr(importlib.import_module(spec.module), spec.grammar)()
        cached[name] = tree_sitter.Parser(tree_sitter.Language(grammar))
    return cached[name]
