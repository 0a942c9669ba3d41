"""The overlay-interop pytest plugin is installed (entry point `pytest11`, harness/plugin.py) and finds this
checkout's vendors/ and suites/ by the rootdir. This file only keeps run output out of collection."""
collect_ignore = ["reports", ".venv", ".tox"]
