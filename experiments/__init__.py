"""Experiment drivers, one per thesis chapter (installed as ``bioSNN.experiments``).

Each module defines ``SUMMARY`` (one line), ``Config`` (a frozen dataclass whose defaults reproduce the
paper's setting), ``PRESETS`` (``quick`` and ``full`` overrides) and ``run(config, run_dir, progress) -> metrics``.
"""
