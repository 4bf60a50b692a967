"""The fuzz run is a program (``python tests/fuzz/run.py``), not part of the default test run.

Its modules are helpers that ``tests/test_hardening_fuzz.py`` imports; nothing here is collected.
"""

collect_ignore_glob = ["*.py"]
