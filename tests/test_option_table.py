"""One option table: every option an API keyword and a CLI flag, in the README, checked by name, torch-free."""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

import pytest

from styletransfer import api
from styletransfer.cli import main_parser
from styletransfer.errors import OptionError
from styletransfer.options import OPTIONS, check_options, json_schema
from styletransfer.presets import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def test_every_run_option_is_an_api_keyword_and_a_cli_flag() -> None:
    keywords = set(inspect.signature(api.stylize).parameters) - {"content", "style", "callback", "should_stop"}
    run_options = {o.name for o in OPTIONS if o.group != "output"}
    assert keywords == run_options
    flags = {a.dest for a in main_parser()._actions if isinstance(a, argparse.Action)}
    assert {o.name for o in OPTIONS} <= flags
    for o in OPTIONS:  # the CLI's help is the table's
        action = next(a for a in main_parser()._actions if a.dest == o.name)
        assert action.help is not None and action.help.startswith(o.help[:40])


def test_the_readme_lists_every_flag_and_the_presets_table_is_generated() -> None:
    readme = (ROOT / "README.md").read_text()
    summary = readme[readme.index("```bash\nstyletransfer CONTENT STYLE") :]
    summary = summary[: summary.index("```", 8)]
    for o in OPTIONS:
        assert o.flag in summary, o.flag
    assert markdown_table() in readme  # the presets table is the presets' own, field by field


def test_option_checks_name_the_option() -> None:
    for values, name, words in [
        ({"size": 0}, "size", "must be at least 1, not 0"),
        ({"size": 2.5}, "size", "must be a whole number"),
        ({"style_blend": [1, -1]}, "style_blend", "must be >= 0"),
        ({"pooling": "min"}, "pooling", "unknown pooling 'min'"),
        ({"manifest": "yes"}, "manifest", "must be true or false"),
        ({"style_scale": 0}, "style_scale", "must be > 0"),
    ]:
        with pytest.raises(OptionError, match=re.escape(words)) as info:
            check_options(values)
        assert info.value.option == name and "--" not in str(info.value)
    schema = json_schema()
    assert set(schema["properties"]) == {o.name for o in OPTIONS}
    assert schema["properties"]["size"]["maximum"] == 16383 and schema["properties"]["seed"]["default"] == 0


def test_the_options_module_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, styletransfer.options, styletransfer.errors, styletransfer.presets; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
