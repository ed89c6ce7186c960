"""The HTTP layer sees only the backends package's interface, never a concrete backend or embedder."""
import ast
from pathlib import Path

import model_service.api

INTERFACE = {"model_service.backends", "model_service.backends.base"}
ENGINES = {"torch", "vllm", "transformers", "peft", "sentence_transformers"}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_the_http_layer_imports_only_the_backend_interface():
    api_files = sorted(Path(model_service.api.__file__).parent.glob("*.py"))
    imported = {path.name: imported_modules(path) for path in api_files}

    backends = {path: {m for m in modules if m.startswith("model_service.backends")} for path, modules in
                imported.items()}
    engines = {path: {m for m in modules if m.split(".")[0] in ENGINES} for path, modules in imported.items()}

    assert "state.py" in imported and "generation.py" in imported
    assert {path: modules - INTERFACE for path, modules in backends.items() if modules - INTERFACE} == {}
    assert {path: modules for path, modules in engines.items() if modules} == {}
