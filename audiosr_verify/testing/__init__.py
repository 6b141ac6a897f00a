"""pytest support: the plugin (pytest_plugin.py), test cases from audio folders, hypothesis strategies.

``from audiosr_verify.testing import audio_files`` stays light (stdlib and pytest only): the plugin's
entry point imports this package in every pytest session of the environment.
"""

from audiosr_verify.testing.audio_files import AudioFile, audio_files

__all__ = ["AudioFile", "audio_files"]
