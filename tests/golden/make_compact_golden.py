"""Write the golden compact frames (compact format 2; run once; the files are committed).

    python tests/golden/make_compact_golden.py

Each case encodes a fixed value with :func:`memstrata.codecs.encode_compact`
under a fixed context, with or without the golden dictionary of ``v1/zstd.dict``;
``tests/conformance/test_codecs.py`` checks the committed frames still decode to
these values, and that today's code writes the same bytes. Never regenerate the
files of a released version: add a new directory for a new format instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "compact-v2"
_spec = importlib.util.spec_from_file_location("make_golden", Path(__file__).resolve().parent / "make_golden.py")
assert _spec is not None and _spec.loader is not None
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)

# name -> (tag, uses the golden dictionary, context, original bytes or value to serialize)
CASES: dict[str, tuple[int, bool, bytes, Any]] = {
    "raw-bytes": (0, False, b"", b"golden compact bytes"),
    "raw-empty": (0, False, b"slot-0", b""),
    "zstd-record": (1, False, b"perf_delta_1763700000_00ab12", make_golden.record()),
    "zstd-dict-record": (1, True, b"\x00" * 16, make_golden.dictionary_samples()[7]),
    "zstd-dict-json-tag": (2, True, b"t7", make_golden.dictionary_samples()[9]),
}


def original(tag: int, value: Any) -> bytes:
    """The bytes a case's frame holds (tag 1: the serialized value)."""
    from memstrata.codecs import serialize

    return serialize(value) if tag == 1 else value


def dictionary() -> bytes:
    """Digest of the golden dictionary, registered."""
    from memstrata.codecs import register_dictionary

    return register_dictionary(make_golden.dictionary_bytes())


def main() -> None:
    from memstrata.codecs import encode_compact

    HERE.mkdir(exist_ok=True)
    d = dictionary()
    for name, (tag, with_dict, context, value) in CASES.items():
        path = HERE / f"{name}.cframe"
        if path.exists():
            continue  # golden files are written once
        frame, used = encode_compact(original(tag, value), tag, d if with_dict else None, context=context, threshold=1)
        assert (used is not None) == with_dict, name
        path.write_bytes(frame)
        print(f"wrote {path.name} ({len(frame)} bytes)")


if __name__ == "__main__":
    main()
