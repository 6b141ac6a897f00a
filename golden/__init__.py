"""The harness's data, importable as ``audiosr_verify.data`` so that a wheel ships it.

manifests/ (checkpoint key layouts written by the original), inputs/ and
oracle/ (the original's stage outputs on them), regression_inputs/ and
regression/ (golden outputs). No code lives here.
"""
