"""New-word discovery on the archive's ML excerpts, scored against jieba's dictionary as the general corpus."""
from pathlib import Path

import yaml

import spaces_code
from spaces_code.corpus import CJK_RUN, read_posts
from spaces_code.new_words import (DiscoveryConfig, discover_words, jieba_frequencies, occurrences,
                                   precision_at_k, score_terms, segments)

posts = read_posts()
# domain: the 信息时代 (machine learning / NLP) excerpts
domain = [post.text for post in posts if "信息时代" in post.categories]
others = [post.text for post in posts if "信息时代" not in post.categories]
domain_size = sum(map(len, segments(domain)))
config = DiscoveryConfig(max_len=4, min_count=4, min_cohesion=2.0, min_entropy=1.0)
words = discover_words(domain, config)
print(f"domain: {len(domain)} excerpts, {domain_size} Chinese characters; new-word discovery kept {len(words)} "
      f"words (count >= {config.min_count}, cohesion >= {config.min_cohesion}, neighbour entropies >= "
      f"{config.min_entropy})")

# general corpora: the archive's other excerpts (small), or jieba's dictionary (word frequencies over ~60M tokens)
jieba_freq, jieba_total = jieba_frequencies()
small = dict(occurrences(others, [w.word for w in words]))
small_size = sum(map(len, segments(others)))
print(f"general corpus: the other {len(others)} excerpts ({small_size} characters), or jieba's dictionary "
      f"({len(jieba_freq):,} words, total frequency {jieba_total:,})")

# the archive's own tags (taxonomy.yml) that are Chinese words: the terms a good ranking should surface
taxonomy = yaml.safe_load((Path(spaces_code.__file__).parents[1] / "taxonomy.yml").read_text(encoding="utf-8"))
tags = {tag for tag in taxonomy["tags"] if CJK_RUN.fullmatch(tag)}
print(f"{len(tags)} Chinese tags, {sum(w.word in tags for w in words)} of them among the discovered words")

rankings = {
    "frequency in the domain": [w.word for w in words],
    "ratio, other excerpts": [t.stats.word for t in score_terms(words, domain_size, small, small_size, by="ratio")],
    "ratio, jieba dictionary": [t.stats.word for t in
                                score_terms(words, domain_size, jieba_freq, jieba_total, by="ratio")],
    "LLR, jieba dictionary": [t.stats.word for t in score_terms(words, domain_size, jieba_freq, jieba_total)],
}
print(f"\n{'ranking':<26}{'P@10':>6}{'P@20':>6}{'P@40':>6}   top 10")
for name, ranked in rankings.items():
    print(f"{name:<26}" + "".join(f"{precision_at_k(ranked, tags, k):>6.2f}" for k in (10, 20, 40))
          + "   " + " ".join(ranked[:10]))

print("\ntop 15 by LLR against jieba's dictionary (* = a tag of the archive):")
print(f"  {'词语':\u3000<5}{'domain':>7}{'jieba':>8}{'log ratio':>10}{'LLR':>8}{'cohesion':>9}")
for t in score_terms(words, domain_size, jieba_freq, jieba_total)[:15]:
    # pad with ideographic spaces: a Chinese character is two columns wide
    print(f"{'*' if t.stats.word in tags else ' '} {t.stats.word:\u3000<5}{t.stats.count:>7}{t.general_count:>8}"
          f"{t.ratio:>10.2f}{t.llr:>8.1f}{t.stats.cohesion:>9.2f}")
