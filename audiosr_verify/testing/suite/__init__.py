"""The harness's suites, run against any subject: ``pytest --pyargs audiosr_verify.testing.suite --audiosr-subject S``.

With no ``--audiosr-subject`` they check ``reference`` (this project's own
implementation). Fixtures come from the pytest plugin (testing/pytest_plugin.py).
"""
