"""The runbook's Verification Matrix and Definition of Done, as a pyinfra run that changes nothing.

    pyinfra -y inventory.py deploys/verify.py            # every host in the inventory
    OMNI_HOST=@local pyinfra -y inventory.py deploys/verify.py

Prints one table per host (row, target, measured, PASS/FAIL/UNKNOWN, weight), writes
``reports/verify-<host>-<timestamp>.json`` (``OMNI_REPORTS_DIR`` moves it) and exits non-zero when a
CRITICAL row fails. Rows come from every module in ``deploys/checks/`` (see ``deploys.checks.context``);
components not deployed yet are UNKNOWN with the reason.
"""

from pyinfra import host, state

from deploys.checks.matrix import verify_host

verify_host(host, state)
