"""The evaluation suite: readers (`datasets`), metric functions (`metrics`), tasks by name
(`tasks`), reports (`report`), suites (`suite`) and the `embedhub eval` commands (`cli`).

Datasets are read from paths; nothing is downloaded. See docs/evaluation.md.
"""
