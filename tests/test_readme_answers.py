"""The README's `kb ask` commands ("Knowledge base"), run as written on a collection made by
that section's own commands (tests/docs_commands.py)."""

from tests.docs_commands import check_readme_group


def test_readme_answers_commands_run_as_written(tmp_path_factory, settings):
    check_readme_group("answers", tmp_path_factory, settings)
