"""The thin CLI and the test-infrastructure helpers."""

import json

import pytest

from winoforge.cli import main

pytestmark = pytest.mark.portable


def test_demo_runs_and_checks_exactness(capsys):
    assert main(["demo", "--core-only"]) == 0
    out = capsys.readouterr().out
    assert "integer Winograd == 4 x direct convolution: True" in out
    assert "exact round trip: True" in out


def test_counts_json(capsys):
    assert main(["counts", "--network", "vgg16-cifar10", "--m", "2", "--sub-row", "8", "--keep", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["direct"]["mults"] == 313_201_664
    assert data["layers"][0]["srbs_applied"] is False  # Cin = 3


def test_bits(capsys):
    assert main(["bits", "--in-bits", "4", "--weight-bits", "4", "--cin", "1"]) == 0
    assert "register width   12 bits" in capsys.readouterr().out


def test_bad_parameters_give_a_clear_error(capsys):
    assert main(["counts", "--sub-row", "8", "--keep", "9"]) == 2
    assert "keep=9 is out of range; allowed: 1..8" in capsys.readouterr().err


def test_require_tool_skips_locally_and_fails_in_ci(monkeypatch, tool, module):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="tool 'iverilog-missing' is not available"):
        tool("iverilog-missing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.skip.Exception):
        tool("not-a-ci-tool")  # CI does not install it: still a skip
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="CI installs it"):
        tool("yosys")
    assert module("json") is json
