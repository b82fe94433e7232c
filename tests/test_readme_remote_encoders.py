"""The README's "Remote encoders" commands, run as written against a stand-in endpoint
(tests/docs_commands.py)."""

from tests.docs_commands import check_readme_group


def test_readme_remote_encoders_commands_run_as_written(tmp_path_factory, settings):
    check_readme_group("remote_encoders", tmp_path_factory, settings)
