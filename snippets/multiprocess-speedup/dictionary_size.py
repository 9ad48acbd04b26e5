# spaces: timing-dependent
"""When can efficiency exceed 1? The article's loop slows down as its dictionary grows; chunks keep it small."""
import os
import time

import matplotlib.pyplot as plt
import torch

from spaces_code.parallel_count import (chunked_count, count_tokens, expected_distinct, speedup,
                                        zipf_probabilities, zipf_stream)
from spaces_code.runtime import make_generator

generator = make_generator(0)  # the streams are counted by Python on the CPU


def best_seconds(fn, repeats=2):
    """The best of ``repeats`` wall-clock times of fn(), and its result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


# 1) the article's loop on 300k tokens drawn uniformly from V ids: ns per token against the final dictionary size
N_UNIFORM = 300_000
per_token = {}
for vocab in (10**2, 10**3, 10**4, 10**5, 10**6):
    tokens = torch.randint(vocab, (N_UNIFORM,), generator=generator).tolist()
    seconds, counts = best_seconds(lambda: count_tokens(tokens))
    per_token[len(counts)] = 1e9 * seconds / N_UNIFORM
print("the article's loop, time per token against dictionary size:")
print("  " + "  ".join(f"{size:>9,}: {ns:5.0f} ns" for size, ns in per_token.items()))
del tokens

# 2) a Zipfian stream (s = 1) of 600k tokens over a million ids: one dictionary, P chunks in series, P processes
probs = zipf_probabilities(1_000_000, exponent=1.0)
ids = zipf_stream(600_000, probs, generator)
n = ids.numel()
t1, table = best_seconds(lambda: chunked_count(ids, 1))
print(f"\nZipf stream: {n:,} tokens, {len(table):,} distinct (expected D(N) = {expected_distinct(probs, n):,.0f}); "
      f"one dictionary T1 = {t1:.2f} s")
print(f"{'P':>2}{'D(N/P) per chunk':>18}{'P chunks, 1 process':>21}{'P processes':>13}{'S_P = T1/TP':>13}"
      f"{'E_P':>6}{'vs chunked':>12}")
cores = os.cpu_count() or 1
rows = []
for p in (1, 2, 4):
    serial_chunks, serial_table = best_seconds(lambda: chunked_count(ids, p), repeats=1)
    pooled, pooled_table = (best_seconds(lambda: chunked_count(ids, p, processes=p), repeats=1) if p > 1
                            else (serial_chunks, serial_table))
    assert serial_table == pooled_table == table  # the same counts on every path
    s_p = speedup(t1, pooled)
    rows.append((p, serial_chunks, pooled))
    print(f"{p:>2}{expected_distinct(probs, n // p):>18,.0f}{serial_chunks:>19.2f} s{pooled:>11.2f} s{s_p:>13.2f}"
          f"{s_p / p:>6.2f}{serial_chunks / pooled:>12.2f}")
print(f"cores on this machine: {cores}")

fig, (ax_size, ax_p) = plt.subplots(1, 2, figsize=(8.5, 3.4))
ax_size.semilogx(list(per_token), list(per_token.values()), "o-")
ax_size.set_xlabel("dictionary size (distinct tokens)")
ax_size.set_ylabel("ns per token")
ax_size.set_title("tokens[t] = tokens.get(t, 0) + 1", fontsize=9)
ax_size.set_ylim(bottom=0)
ps = [row[0] for row in rows]
ax_p.plot(ps, [t1 / p for p in ps], "k:", label="ideal $T_1/P$")
ax_p.axhline(t1, color="gray", ls="--", lw=1, label="one dictionary $T_1$")
ax_p.plot(ps, [row[1] for row in rows], "s-", label="P chunks, one process")
ax_p.plot(ps, [row[2] for row in rows], "o-", label="P processes")
ax_p.set_xticks(ps)
ax_p.set_xlabel("P")
ax_p.set_ylabel("seconds")
ax_p.set_ylim(bottom=0)
ax_p.legend(fontsize=7)
fig.tight_layout()
