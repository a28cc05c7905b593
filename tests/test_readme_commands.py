"""The README's ``winoforge`` commands work as written.

They are parsed out of README.md (the lines of its ``bash`` blocks and the inline code spans
that carry options), so the test follows the README.  Fast: every command line parses, every
training command's config (with its ``--set`` and ``--no-teacher``) validates, and the commands
that need no earlier output run.  Slow: the whole chain as a new user runs it -- teacher,
students, export, both builds, the runtime -- in a scratch folder, with tiny settings added as
extra options (one epoch on a few hundred images)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from winoforge import cli

ROOT = Path(__file__).resolve().parents[1]

#: Options added to each subcommand in the end-to-end run, so it takes minutes, not days.
TINY = {
    "train-teacher": ["--set", "optim.epochs=1", "--set", "optim.warmup_epochs=0", "--set", "data.train_subset=256",
                      "--set", "data.test_subset=256"],
    "distill": ["--set", "optim.epochs=1", "--set", "optim.warmup_epochs=0", "--set", "data.train_subset=256",
                "--set", "data.test_subset=256", "--set", "prune.dense_epochs=0", "--set", "prune.span_epochs=1"],
    "export": ["--check-images", "8"],
    "run": ["--images", "64"],
}


def readme_commands(text: str | None = None) -> list[list[str]]:
    """``winoforge`` command lines of the README, as argument lists without the program name.
    Lines with a ``...`` placeholder are prose, not commands."""
    text = text if text is not None else (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        lines += block.replace("\\\n", " ").splitlines()
    lines += [span for span in re.findall(r"`(winoforge [^`\n]+)`", text) if " --" in span]
    commands = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[:1] == ["winoforge"] and "..." not in words:
            commands.append(words[1:])
    return commands


def test_readme_has_the_commands_of_every_stage():
    names = {c[0] for c in readme_commands()}
    assert {"train-teacher", "distill", "export", "build", "run", "counts", "bits"} <= names, names


def test_readme_parser_skips_prose():
    text = "```bash\nwinoforge a --x 1   # c -> runs/.../\nwinoforge b \\\n  --y 2\ntorchrun x\nwinoforge c ...\n```\n`winoforge d` `winoforge e --z`"
    assert readme_commands(text) == [["a", "--x", "1"], ["b", "--y", "2"], ["e", "--z"]]


def test_every_readme_command_parses(monkeypatch):
    # files that earlier commands write (models, packages, inputs) do not exist yet: only the
    # options and values are checked here; configs are real files and stay checked
    for name in ("_readable_file", "_existing_dir"):
        monkeypatch.setattr(cli, name, lambda text: text)
    monkeypatch.chdir(ROOT)
    parser = cli.build_parser()
    for argv in readme_commands():
        parser.parse_args(argv)


def test_every_readme_training_command_has_a_valid_config(monkeypatch):
    """What stopped "same, no teacher" ("hints need at least one teacher") is checked here."""
    monkeypatch.chdir(ROOT)
    parser = cli.build_parser()
    training = [a for a in readme_commands() if a[0] in ("train-teacher", "distill")]
    assert len(training) >= 3
    for argv in training:
        cli.run_config(parser.parse_args(argv))


def test_readme_commands_without_inputs_run(capsys):
    ran = 0
    for argv in readme_commands():
        if argv[0] in ("counts", "bits"):
            assert cli.main(argv) == 0, argv
            ran += 1
    assert ran >= 2
    assert "register width" in capsys.readouterr().out


@pytest.mark.slow
def test_readme_chain_as_a_new_user_runs_it(tmp_path, monkeypatch, capfd):
    """Every README command in order, in a scratch folder holding only the repository's configs
    and notebooks (links), tiny settings added; each must exit 0."""
    for name in ("configs", "notebooks"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    from winoforge.runtime.idx import fashion_mnist_arrays

    images = fashion_mnist_arrays(None, "test")[0][:16]
    np.save(tmp_path / "x.npy", images[:, None])  # torch's NCHW: the runtime takes it too
    console = ""
    for argv in readme_commands():
        status = cli.main([*argv, *TINY.get(argv[0], [])])
        out, err = capfd.readouterr()
        assert status == 0, f"winoforge {shlex.join(argv)}: {err[-2000:]}"
        console += out
    assert np.load(tmp_path / "y.npy").shape[0] == 16
    assert "16 inputs (NCHW)" in console
    for package in ("bitstreams/student", "bitstreams/student-baseline"):
        assert_no_absolute_paths(tmp_path / package / "manifest.json", tmp_path)


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def assert_no_absolute_paths(manifest: Path, *folders: Path) -> None:
    import json
    import os

    text = manifest.read_text()
    absolute = [s for s in _strings(json.loads(text)) if os.path.isabs(s)]
    assert not absolute, f"{manifest}: absolute paths {absolute}"
    for folder in (ROOT, *folders):
        assert str(folder.resolve()) not in text and str(folder) not in text, f"{manifest} names {folder}"


def test_portable_paths(tmp_path):
    from winoforge.hw.finn_env import FAKE_VIVADO
    from winoforge.hw.flow import portable_paths

    package = tmp_path / "bitstreams" / "p"
    value = {"a": [str(ROOT / "runs" / "s"), str(tmp_path / "build" / "x.toml"), "runtime/params.npz"],
             "vivado": FAKE_VIVADO, "n": 3, "note": "a reference student"}
    assert portable_paths(value, package) == {
        "a": ["runs/s", "../../build/x.toml", "runtime/params.npz"],
        "vivado": "none: a placeholder path for FINN (no Vivado here)", "n": 3, "note": "a reference student"}


def test_committed_packages_hold_no_absolute_paths():
    manifests = sorted((ROOT / "notebooks" / "packages").glob("*/manifest.json"))
    assert manifests  # the notebooks' package is committed
    for manifest in manifests:
        assert_no_absolute_paths(manifest)
