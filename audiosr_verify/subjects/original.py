"""The built-in subject ``original``: audiosr 0.0.7 itself, live, in the oracle venv.

`activate()` starts ``runner.py serve`` in the oracle's interpreter (built by
``audiosr-verify oracle setup``); every stage call is then one request to that
process, which answers by calling the original's own function for the stage
(runner.py `_Stages`). Tensors travel as safetensors files, so nothing of the
original's stack is imported here. The fixtures were made by the same code,
so ``check original`` must pass, bit for bit where the original is
deterministic: it is the harness's self-test.

Where the original raises (digital silence, energy below 1 kHz), the call
raises `OriginalRaised` carrying the original's exception type and message.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiosr_model.errors import AudioSRError
from audiosr_verify.schema import stage as schema_stage
from audiosr_verify.subject import Subject, SubjectContext


class OriginalRaised(RuntimeError):
    """The original raised on a stage call; ``type_name`` is its exception's class name."""

    def __init__(self, type_name: str, message: str):
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name


def _tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().contiguous()
    return torch.from_numpy(np.ascontiguousarray(x))


class OriginalSubject(Subject):
    name = "original"
    description = "audiosr 0.0.7 (the original), live in the oracle venv"

    def __init__(self, context: SubjectContext, python: str | None = None):
        self.context = context
        self.python = python
        self.proc: subprocess.Popen | None = None
        self.work: tempfile.TemporaryDirectory | None = None

    def provided(self) -> frozenset[str]:
        from audiosr_verify.schema import STAGE_NAMES

        return frozenset(STAGE_NAMES)

    def state_dict_layout(self):
        from audiosr_verify.oracle.manifests import manifest_path, read_manifest

        manifest = read_manifest(manifest_path(self.context.preset))
        return manifest.keys  # written by the original itself (runner.py manifest)

    # ------------------------------------------------------------------ lifecycle

    def activate(self) -> None:
        from audiosr_verify.oracle import driver

        try:
            python = driver.oracle_python(self.python)
        except driver.OracleUnavailable as exc:
            raise AudioSRError(f"subject original: {exc}; run `audiosr-verify oracle setup`") from None
        self.work = tempfile.TemporaryDirectory(prefix="audiosr-original-")
        request = Path(self.work.name) / "serve.json"
        request.write_text(json.dumps(driver.with_overrides({"preset": self.context.preset,
                                                            "weights": self.context.checkpoint})))
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)  # nothing of the project venv may leak into the oracle
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        self._stderr = open(Path(self.work.name) / "stderr.log", "w")
        self.proc = subprocess.Popen([str(python), str(driver.RUNNER), "serve", str(request)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        ready = self._read()
        if not ready.get("ok"):
            raise AudioSRError(f"subject original: the oracle runner did not start ({ready.get('error')})")

    def deactivate(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.write(json.dumps({"stage": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
            self.proc = None
        if self.work is not None:
            self._stderr.close()
            self.work.cleanup()
            self.work = None

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            tail = (Path(self.work.name) / "stderr.log").read_text()[-2000:]
            raise AudioSRError(f"subject original: the oracle runner exited ({self.proc.poll()}): {tail.strip()}")
        return json.loads(line)

    # ------------------------------------------------------------------ calls

    def _call(self, stage: str, **kwargs) -> dict[str, Any]:
        from safetensors.torch import load_file, save_file

        if self.proc is None:
            raise RuntimeError("subject original is not activated")
        tag = uuid.uuid4().hex[:8]
        work = Path(self.work.name)
        tensors = {k: _tensor(v) for k, v in kwargs.items() if isinstance(v, (torch.Tensor, np.ndarray))}
        scalars = {k: v for k, v in kwargs.items() if k not in tensors}
        inputs = work / f"{stage}-{tag}-in.safetensors"
        out = work / f"{stage}-{tag}-out.safetensors"
        save_file(tensors, str(inputs))
        self.proc.stdin.write(json.dumps({"stage": stage, "inputs": str(inputs), "args": scalars,
                                          "order": list(kwargs), "out": str(out)}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        inputs.unlink(missing_ok=True)
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise OriginalRaised(err.get("type", "Error"), err.get("message", ""))
        result = dict(reply.get("scalars") or {})
        if reply.get("tensors"):
            result.update(load_file(str(out)))
        out.unlink(missing_ok=True)
        return result

    def _named(self, stage: str, *args) -> dict[str, Any]:
        names = [t.name for t in schema_stage(stage).inputs]
        return self._call(stage, **dict(zip(names, args)))

    def resample(self, waveform, rate):
        return self._named("resample", np.asarray(waveform, np.float32), int(rate))  # [C, N] or [N]

    def normalize(self, waveform):
        return self._named("normalize", np.asarray(waveform, np.float32))

    def features(self, waveform):
        return self._named("features", np.asarray(waveform, np.float32))

    def cutoff(self, stft):
        return self._named("cutoff", stft)

    def lowpass(self, waveform, cutoff_hz, filter_type):
        return self._named("lowpass", np.asarray(waveform, np.float32), float(cutoff_hz), str(filter_type))

    def randomness(self, seed, latent_shape, count):
        out = self._call("randomness", seed=int(seed), latent_shape=[int(n) for n in latent_shape], count=int(count))
        return out["filter_type"], [out[f"draws.{i}"] for i in range(int(count))]

    def condition_encode(self, log_mel):
        return self._named("condition_encode", log_mel)

    def unet(self, x, t, cond):
        return self._named("unet", x, torch.as_tensor(t).long(), cond)

    def ddim_schedule(self, steps):
        return self._named("ddim_schedule", int(steps))

    def ddim_step(self, x, cond, index, steps, guidance, noise):
        return self._named("ddim_step", x, cond, int(index), int(steps), float(guidance), noise)

    def vae_decode(self, z):
        return self._named("vae_decode", z)

    def mel_replace(self, mel, lowpass_mel):
        return self._named("mel_replace", mel, lowpass_mel)

    def vocoder(self, mel):
        return self._named("vocoder", mel)

    def postprocess(self, waveform, lowpass_waveform):
        return self._named("postprocess", np.asarray(waveform, np.float32), np.asarray(lowpass_waveform, np.float32))

    def output_level(self, waveform):
        return self._named("output_level", np.asarray(waveform, np.float32))

    def enhance(self, waveform, rate, seed, steps, guidance):
        return self._named("enhance", np.asarray(waveform, np.float32), int(rate), int(seed), int(steps),
                           float(guidance))


def make_subject(context: SubjectContext) -> OriginalSubject:
    return OriginalSubject(context, python=context.options.get("python"))


__all__ = ["OriginalRaised", "OriginalSubject", "make_subject"]
