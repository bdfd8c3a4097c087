"""Coverage-guided fuzzing of the config path with atheris: any text, through YAML, into
``validate``; only ``ConfigError`` may escape, and a config that validates is plain JSON.

Run as ``python -m tests.faults.fuzz_config CORPUS_DIR -runs=N`` (libFuzzer's flags); an
escaping exception ends the run with a traceback and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
import warnings

import atheris

# Coverage guides the fuzzer through the code under test: the YAML parser and nbsweep. Not
# through numpy and scipy, which nbsweep.config imports: instrumenting them took ~15 s.
with atheris.instrument_imports(include=["nbsweep", "yaml"]):
    from nbsweep.config import ConfigError, load_yaml, validate


def one_input(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loaded = load_yaml(text)
        except ConfigError:
            return
        try:
            config = validate(loaded)
        except ConfigError:
            return
        json.dumps(config.as_dict())  # a YAML date or !!binary would raise TypeError here


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
