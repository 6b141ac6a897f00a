"""Files in and out: the one way the project opens an input and the one way it publishes an output.

- `safe_open`: regular files only, bounded reads, one-line errors;
- `targets`: a run's outputs checked before any work and locked until it ends;
- `signals`: SIGTERM/SIGHUP stop a run like SIGINT, never in the middle of a rename;
- `publish`: written beside and renamed (files), swapped atomically (directories);
- `audio_stream`: validated, block-wise reading of audio files of any length;
- `audio_file`: whole audio files read (checked) and written atomically.
"""
