"""The documents' commands: every README command belongs to one group of tests/docs_commands.py
(each run by its own tests/test_readme_NAME.py), every command of every document parses, and
docs/*.md's commands (evaluations over the shared data sets) run as written (slow)."""

from __future__ import annotations

import pytest

from tests.conftest import LONG_FILES, ROOT
from tests.docs_commands import (
    DOCS,
    GROUPS,
    README,
    _click_command,
    documented_commands,
    run_documented,
    workplace,
)


def test_every_readme_command_belongs_to_exactly_one_group():
    """A new README section, or a command moved to another one, cannot go untested."""
    commands = documented_commands(README)
    assert len(commands) >= 10, "the README lost its commands"
    for command in commands:
        owners = [group.name for group in GROUPS.values() if group.commands([command])]
        assert len(owners) == 1, (
            f"{command} (under {' > '.join(command.sections)}) is in {len(owners)} groups "
            f"{owners}: add its section to one group in tests/docs_commands.py"
        )
    for group in GROUPS.values():
        assert group.commands(commands), f"group {group.name!r} has no README command left"
        for step, setup in zip(group.setup, group.setup_commands(commands), strict=True):
            assert setup not in group.commands(commands), f"{group.name}: {step} is one of its own commands"
        test_file = ROOT / group.test_file
        assert test_file.is_file(), f"{group.test_file} (which runs group {group.name!r}) is missing"
        assert f'"{group.name}"' in test_file.read_text(), f"{group.test_file} does not run {group.name!r}"
        assert group.test_file in LONG_FILES, f"{group.test_file} is not in tests/conftest.py's LONG_FILES"


@pytest.fixture(scope="module")
def docs_workplace(tmp_path_factory, settings):
    with workplace(tmp_path_factory, settings, "docs") as place:
        yield place


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCS, ids=[path.name for path in DOCS])
def test_docs_commands_run_as_written(document, docs_workplace):
    commands = documented_commands(document)
    if not commands:
        pytest.skip(f"{document.name} shows no command")
    run_documented(commands, docs_workplace)


def test_every_documented_command_parses():
    """Fast check of every command in every document: the subcommand and each option exist."""
    checked = 0
    for document in [README, *DOCS]:
        for command in documented_commands(document):
            words = command.words
            if words[0] != "embedhub":
                continue
            target = _click_command(words)
            names = {opt for parameter in target.params for opt in parameter.opts}
            for word in words[1:]:
                if word.startswith("-") and word.split("=", 1)[0] not in names:
                    raise AssertionError(f"{command.source}:{command.line}: {word} is not an option")
            checked += 1
    assert checked >= 10
