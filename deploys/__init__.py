"""The phases as pyinfra deploys: entry points at the top, their parts in one subpackage per concern.

Entry points (what ``pyinfra inventory.py deploys/X.py`` runs): ``phase0.py`` … ``phase5.py``,
``phase3_install.py`` (phase 3's BMC half), ``verify.py``, ``restore.py``. Parts: ``core/`` (shared
guards, markers, the run harness), ``backup/``, ``bmc/``, ``host/``, ``runtime/``, ``stack/``,
``checks/``. Facts come from ``facts/``.
"""
