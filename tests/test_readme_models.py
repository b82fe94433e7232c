"""The README's "Models" commands, run as written (tests/docs_commands.py)."""

from tests.docs_commands import check_readme_group


def test_readme_models_commands_run_as_written(tmp_path_factory, settings):
    check_readme_group("models", tmp_path_factory, settings)
