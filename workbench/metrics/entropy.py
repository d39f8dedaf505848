"""Deep Compression's storage estimate: CSR with relative indices, Huffman-coded (Han et al., 2016).

Non-zero weights are stored in flattened order with the gap to the previous non-zero in a
fixed number of index bits (8 for conv, 5 for fully connected layers); a gap that overflows
is bridged with a filler zero. Both the value stream and the gap stream are Huffman coded,
and each code table (1 byte of code length per symbol) is counted.
"""

from __future__ import annotations

import heapq
from collections import Counter

import numpy as np


def huffman_code_lengths(frequencies: dict) -> dict:
    """Code length in bits of each symbol of an optimal prefix code (1 bit for a lone symbol)."""
    freqs = {s: f for s, f in frequencies.items() if f > 0}
    if not freqs:
        return {}
    if len(freqs) == 1:
        return {next(iter(freqs)): 1}
    heap = [(f, i, (s,)) for i, (s, f) in enumerate(sorted(freqs.items(), key=lambda kv: repr(kv[0])))]
    heapq.heapify(heap)
    lengths = dict.fromkeys(freqs, 0)
    counter = len(heap)
    while len(heap) > 1:
        f1, _, a = heapq.heappop(heap)
        f2, _, b = heapq.heappop(heap)
        for s in a + b:
            lengths[s] += 1
        heapq.heappush(heap, (f1 + f2, counter, a + b))
        counter += 1
    return lengths


def huffman_bits(symbols) -> tuple[int, int]:
    """(payload bits, table bytes) of Huffman-coding a sequence of symbols."""
    freqs = Counter(np.asarray(symbols).ravel().tolist())
    lengths = huffman_code_lengths(freqs)
    return sum(freqs[s] * lengths[s] for s in freqs), len(lengths)


def relative_csr(values: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(stored values, gaps) of the relative-index sparse format, filler zeros included."""
    flat = np.asarray(values).ravel()
    nz = np.flatnonzero(flat)
    max_gap = 2 ** index_bits - 1
    stored, gaps = [], []
    last = -1
    for idx in nz:
        gap = int(idx - last)
        while gap > max_gap:
            stored.append(0)
            gaps.append(max_gap)
            gap -= max_gap
        stored.append(flat[idx])
        gaps.append(gap)
        last = idx
    return np.asarray(stored, dtype=flat.dtype), np.asarray(gaps, dtype=np.int64)


def sparse_entropy_bytes(values: np.ndarray, index_bits: int) -> dict:
    """Estimated bytes of one integer weight tensor in Huffman-coded relative CSR."""
    stored, gaps = relative_csr(values, index_bits)
    value_bits, value_table = huffman_bits(stored)
    gap_bits, gap_table = huffman_bits(gaps)
    payload = (value_bits + gap_bits + 7) // 8
    return {"entries": int(stored.size), "value_bits": int(value_bits), "index_bits": int(gap_bits),
            "table_bytes": int(value_table + gap_table), "bytes": int(payload + value_table + gap_table)}


def dense_entropy_bytes(values: np.ndarray) -> int:
    """Estimated bytes of a Huffman-coded dense tensor (for tensors where CSR does not pay)."""
    bits, table = huffman_bits(values)
    return (bits + 7) // 8 + table
