"""Back up the box before the point of no return (phase 0) and restore it (restore.py)."""
