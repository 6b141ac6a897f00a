"""Faults the 14 short mono cases could not see fail the golden check on the case made to see them.

`audiosr-verify golden check --subject fault:NAME` runs our product (every case's enhance options) with the
fault in force against our own goldens (`FaultSubject.product`). Here, through the CLI as a user runs it:

* the vocoder's ``output_padding=1`` on the stride-5 upsampler, and a held-out fault of the same kind (the
  vocoder given one mel frame fewer), change only the end of each 5.12 s window: the full-window case fails;
* a silence gate at -60 dBFS silences the -66 dBFS channel of the three-channel case;
* the preserve level matched by peak instead of RMS changes the level of every preserve case;
* channels of one batch drawn their own noise change the second channel of the stereo case.

Each run compares one case (a few seconds); benchmarks/bench_golden_faults.py runs every fault on every case.
"""

from __future__ import annotations

import pytest

from audiosr_verify.cli.main import main

FAULT_CASES = [
    ("vocoder_output_padding", "full_window_16k"),
    ("vocoder_last_frame_dropped", "full_window_16k"),  # held out: the cases were not made with it in mind
    ("silence_gate_60db", "three_channels_32k"),
    ("preserve_level_peak", "full_window_16k"),
    ("channel_batch_draws", "stereo_24k"),
]


@pytest.mark.parametrize("fault,case", FAULT_CASES, ids=[f for f, _ in FAULT_CASES])
def test_golden_check_fails_and_names_the_case(fault, case, capsys):
    assert main(["golden", "check", "--subject", f"fault:{fault}", "--case", case]) == 1
    out = capsys.readouterr().out
    assert f"golden case '{case}' (random-tiny-seed0): FAILED" in out, out
    assert "golden regression FAILED (random-tiny-seed0): 1 failed" in out, out


def test_the_vocoder_fault_is_invisible_on_a_short_case(capsys):
    """Why the full-window case exists: on a 1.5 s input the fault's samples are padding, cut off."""
    assert main(["golden", "check", "--subject", "fault:vocoder_output_padding", "--case", "tones_16k"]) == 0
    assert "1 within tolerance" in capsys.readouterr().out


def test_a_fault_never_writes_our_goldens(capsys):
    assert main(["golden", "update", "--subject", "fault:vocoder_output_padding", "--case", "full_window_16k"]) == 2
    assert "only our model writes" in capsys.readouterr().err
