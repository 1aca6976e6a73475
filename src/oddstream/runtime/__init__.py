"""The imperative shell: loads aggregates, calls ``decide()``, appends, retries.

Nothing outside this package may assume that a race's writer is in the same process.
"""
