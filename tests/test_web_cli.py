"""``styletransfer serve``: its flags, and one clear line when the web extra is missing."""

from __future__ import annotations

import sys

import pytest

from styletransfer.cli import main


def test_serve_without_the_web_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "styletransfer.web.server", None)  # as if fastapi were missing
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'styletransfer[web]'" in err and len(err.strip().splitlines()) == 1


def test_serve_help_names_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--data-dir", "--max-upload-mb", "--max-size", "--token", "--open"):
        assert flag in out
