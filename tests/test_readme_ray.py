"""The README's "Ingestion on Ray" commands, run as written (tests/docs_commands.py)."""

from tests.docs_commands import check_readme_group


def test_readme_ray_commands_run_as_written(tmp_path_factory, settings):
    check_readme_group("ray", tmp_path_factory, settings)
