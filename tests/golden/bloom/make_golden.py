"""Write the golden Bloom filter of format version 1 (run once; the file is committed).

    python tests/golden/bloom/make_golden.py

``test_bloom_golden.py`` loads the committed bytes forever and checks that every
key added here is found, that the keys below are absent, and that the bytes
round-trip unchanged. Never regenerate a released version's file.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ADDED = [f"doc-{i}".encode() for i in range(1000)]
ABSENT = [f"never-{i}".encode() for i in range(20)]  # checked absent in the committed filter


def main() -> None:
    from memstrata import BloomFilter

    bloom = BloomFilter(capacity=2000, fp_rate=0.001)
    bloom.add_many(ADDED)
    assert not any(bloom.contains_many(ABSENT))
    bloom.save(HERE / "v1.bloom")


if __name__ == "__main__":
    main()
