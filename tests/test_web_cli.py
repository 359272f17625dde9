"""``styletransfer serve``: its flags, and one clear line when the web extra is missing."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from styletransfer.cli import main


def test_serve_without_the_web_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "styletransfer.web.server", None)  # as if fastapi were missing
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'gatys-styletransfer[web]'" in err and len(err.strip().splitlines()) == 1


def test_serve_help_names_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    flags = ("--host", "--port", "--data-dir", "--max-upload-mb", "--max-size", "--token", "--max-queued")
    for flag in (*flags, "--max-job-pixels", "--min-free-mb", "--open"):
        assert flag in out


@pytest.mark.parametrize("token", ["", "short", "x" * 15])
def test_a_short_token_is_a_usage_error_naming_it(token: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--token", token])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--token" in err and "16" in err


def test_a_second_server_on_one_data_folder_says_who_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("fastapi")
    from styletransfer.folder_lock import FolderLock

    data = tmp_path / "data"
    (data / "tmp" / "upload-in-progress").mkdir(parents=True)  # the first server's
    with FolderLock(data, "styletransfer serve (the first)"):
        assert main(["serve", "--data-dir", str(data), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the first" in err and str(os.getpid()) in err
    assert (data / "tmp" / "upload-in-progress").is_dir()  # nothing of the first server's was touched


def test_the_data_folder_is_made_private(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from styletransfer.web.server import open_data_dir

    new, old = tmp_path / "new" / "data", tmp_path / "old"
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    for folder in (new, old):
        lock = open_data_dir(folder)
        try:
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        finally:
            lock.release()
