"""Make the original ``audiosr`` importable offline. Runs INSIDE the oracle venv.

Call ``install()`` before ``import audiosr``. Every shim here replaces
something that needs a network or a broken binary and that inference never
uses numerically:

- ``torchaudio._extension``: the PyPI torchaudio 2.11 wheel is a CUDA build
  whose extension library does not load on CPU machines; the parts audiosr
  uses (``functional.resample``, ``transforms.MelSpectrogram``,
  ``compliance.kaldi``) are pure Python, so "no extension" is enough.
- ``torchaudio.load``: needs torchcodec in 2.11; replaced by a soundfile
  reader returning float32 ``[channels, samples]`` and the rate (the same
  float32 the project side reads from the same 16-bit file).
- ``torchvision._meta_registrations``: fails with "operator torchvision::nms
  does not exist" (no compiled ops); nothing in audiosr needs it.
- ``RobertaConfig/RobertaTokenizer.from_pretrained("roberta-base")``: CLAP's
  text branch asks the Hub at construction time, and
  ``audiosr/clap/training/data.py`` even at import time. A hand-made config
  with roberta-base's dimensions gives the same state_dict layout; the
  tokenizer only has to exist.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
import types

_INSTALLED = False

# roberta-base's config.json, reduced to the fields that shape the model.
ROBERTA_BASE = dict(
    vocab_size=50265,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    max_position_embeddings=514,
    type_vocab_size=1,
    initializer_range=0.02,
    layer_norm_eps=1e-5,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)


def _stub_torchaudio_extension() -> None:
    name = "torchaudio._extension"
    if name in sys.modules:
        return
    mod = types.ModuleType(name)
    mod.__doc__ = "audiosr-verify stub: the compiled torchaudio extension is not available"
    mod._IS_TORCHAUDIO_EXT_AVAILABLE = False
    mod._IS_ALIGN_AVAILABLE = False
    mod._check_cuda_version = lambda: None

    def fail_if_no_align(func):
        def wrapped(*args, **kwargs):
            raise RuntimeError("torchaudio alignment extension is stubbed out in the oracle venv")

        return wrapped

    mod.fail_if_no_align = fail_if_no_align
    mod.__all__ = ["_check_cuda_version", "_IS_TORCHAUDIO_EXT_AVAILABLE"]
    sys.modules[name] = mod


def _stub_torchvision_meta() -> None:
    name = "torchvision._meta_registrations"
    if name not in sys.modules:
        sys.modules[name] = types.ModuleType(name)


def soundfile_load(uri, frame_offset: int = 0, num_frames: int = -1, normalize: bool = True,
                   channels_first: bool = True, format=None, buffer_size: int = 4096, backend=None):
    """``torchaudio.load`` replacement: float32 ``[channels, samples]`` and rate."""
    import soundfile as sf
    import torch

    stop = None if num_frames is None or num_frames < 0 else frame_offset + num_frames
    data, rate = sf.read(uri, start=frame_offset, stop=stop, dtype="float32", always_2d=True)
    tensor = torch.from_numpy(data.T.copy() if channels_first else data.copy())
    return tensor, int(rate)


def _write_tiny_roberta_vocab() -> str:
    folder = tempfile.mkdtemp(prefix="audiosr-oracle-roberta-")
    atexit.register(shutil.rmtree, folder, True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    # byte-level BPE needs its printable byte alphabet to tokenize anything
    for i, ch in enumerate("abcdefghijklmnopqrstuvwxyz\u0120"):
        vocab[ch] = 5 + i
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    return folder


def _patch_roberta() -> None:
    import transformers
    from transformers import RobertaConfig, RobertaTokenizer

    vocab_dir = _write_tiny_roberta_vocab()

    def config_from_pretrained(cls, name_or_path=None, *args, **kwargs):
        return cls(**ROBERTA_BASE)

    def tokenizer_from_pretrained(cls, name_or_path=None, *args, **kwargs):
        return cls(
            vocab_file=os.path.join(vocab_dir, "vocab.json"),
            merges_file=os.path.join(vocab_dir, "merges.txt"),
        )

    RobertaConfig.from_pretrained = classmethod(config_from_pretrained)
    RobertaTokenizer.from_pretrained = classmethod(tokenizer_from_pretrained)
    transformers.logging.set_verbosity_error()


def install() -> None:
    """Apply every shim (idempotent). Must run before ``import audiosr``."""
    global _INSTALLED
    if _INSTALLED:
        return
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _stub_torchaudio_extension()
    _stub_torchvision_meta()
    import torchaudio

    torchaudio.load = soundfile_load
    _patch_roberta()
    _INSTALLED = True
