"""The ground floor: host data, shared vocabulary (NUMA policies, llama.cpp-family flags) and helpers.

Every other package (facts, bmc, deploys, bench, evals) may import from here; nothing here imports
any of them. That rule is what lets facts and bmc stand on their own and keeps data flowing one way.
"""
