"""The README's "Knowledge base" commands but `kb ask`, run as written (tests/docs_commands.py)."""

from tests.docs_commands import check_readme_group


def test_readme_knowledge_base_commands_run_as_written(tmp_path_factory, settings):
    check_readme_group("knowledge_base", tmp_path_factory, settings)
