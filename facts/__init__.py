"""Hardware facts of a local-LLM workstation: pyinfra facts (``facts.hardware``) over pure
parsers (``facts.parse``), a collector (``facts.collect.collect_local``) and ``python -m facts``.
"""
