"""``python -m audiosr_verify ...`` is ``audiosr-verify ...``."""

from audiosr_verify.cli.main import main

raise SystemExit(main())
