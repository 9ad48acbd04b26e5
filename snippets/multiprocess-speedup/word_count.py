# spaces: timing-dependent
"""The article's word-count loop, verbatim, then the same count with a process pool."""
import functools
import os
import time

from spaces_code import corpus
from spaces_code.corpus import tokenize
from spaces_code.parallel_count import parallel_word_count, speedup

REPEAT = 6  # the archive is only ~25k Chinese characters: 6 rounds make the timing meaningful
PROCESSES = min(2, os.cpu_count() or 1)

# the article calls read_texts() with no argument; bind how many rounds of the archive it yields
read_texts = functools.partial(corpus.read_texts, repeat=REPEAT)
tokenize("预热")  # load jieba's dictionary once, outside both timings (forked workers inherit it)

start = time.perf_counter()
tokens = {}

for text in read_texts():
    for token in tokenize(text):
        tokens[token] = tokens.get(token, 0) + 1
serial_seconds = time.perf_counter() - start

start = time.perf_counter()
parallel_tokens = parallel_word_count(read_texts(), processes=PROCESSES)
parallel_seconds = time.perf_counter() - start

n_texts = sum(1 for _ in read_texts())
print(f"texts: {n_texts} ({REPEAT} rounds of the archive), distinct tokens: {len(tokens)}, "
      f"total tokens: {sum(tokens.values())}")
print(f"serial and {PROCESSES}-process counts identical: {tokens == parallel_tokens}")
print(f"serial   {serial_seconds:6.2f} s")
print(f"parallel {parallel_seconds:6.2f} s  ({PROCESSES} processes)")
print(f"measured speedup T1/TP = {speedup(serial_seconds, parallel_seconds):.2f}, "
      f"efficiency = {speedup(serial_seconds, parallel_seconds) / PROCESSES:.2f}")
