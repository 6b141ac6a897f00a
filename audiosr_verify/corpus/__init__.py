"""Corpus evaluation: every audio file of a folder through one subject (and optionally a second).

    files.py      which files of CORPUS are audio, in a stable order
    journal.py    OUT/results.jsonl: append-only, fsynced per row, locked, resumable
    worst.py      spectrogram data kept only for the files that rank worst
    local.py      the process-pool engine (this machine)
    ray_engine.py the Ray engine (this machine or a cluster; optional extra [ray])
    summary.py    OUT/summary.json from the rows
    options.py    the ranges of the evaluation's own options (workers, threads, ...) and their check
    run.py        the driver: discover, skip what is done, dispatch, journal, summarise

The per-file computation and its settings (what a row depends on) are
`audiosr_verify.checks.corpus`; the HTML summary is `audiosr_verify.report.corpus`.
Nothing here prints: the CLI renders progress.
"""
