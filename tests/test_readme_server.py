"""The README's opening `make run` and "The server" section, run as written
(tests/docs_commands.py)."""

from tests.docs_commands import check_readme_group


def test_readme_server_commands_run_as_written(tmp_path_factory, settings):
    check_readme_group("server", tmp_path_factory, settings)
