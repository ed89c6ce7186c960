"""benchmarks/gpu_check.py is run rarely, on a GPU lent for minutes: its dry run on the CPU keeps it working."""
import importlib.util
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_refuses_unless_told_it_is_a_dry_run(tmp_path):
    module = gpu_check()
    if module.torch.cuda.is_available():
        pytest.skip("this machine has a GPU")

    assert module.main(["--out", str(tmp_path / "report.json")]) == 2
    assert not (tmp_path / "report.json").exists()


def test_the_dry_run_checks_both_architectures_through_the_transformers_backend(tmp_path):
    out = tmp_path / "report.json"

    with ThreadPoolExecutor(max_workers=1) as pool:  # the script runs its own event loop
        assert pool.submit(gpu_check().main, ["--allow-cpu", "--out", str(out)]).result() == 0

    report = json.loads(out.read_text())
    assert [(f["architecture"], f["fim_format"]) for f in report["families"]] == [
        ("DeepseekV2ForCausalLM", "deepseek-coder"), ("DeepseekV3ForCausalLM", "deepseek-coder")]
    for family in report["families"]:
        assert set(family["checks"]) == {"chat", "fim", "next_token_vs_cpu"}
        assert family["ok"] and all(check["ok"] for check in family["checks"].values())
