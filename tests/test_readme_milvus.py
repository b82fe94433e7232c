"""The README's "Milvus store" and "Approximate (ANN) vector index" commands, run as written
(tests/docs_commands.py)."""

from tests.docs_commands import check_readme_group


def test_readme_milvus_commands_run_as_written(tmp_path_factory, settings):
    check_readme_group("milvus", tmp_path_factory, settings)
