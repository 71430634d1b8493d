"""Code that runs on the traced host itself.

Everything in this package uses the Python standard library only, so that the
same implementation serves ``tracekit doctor`` on this machine and on remote
hosts, where Ansible ships it to a bare Python interpreter (3.8 or newer).
tests/unit/test_agent_stdlib.py enforces this.
"""
