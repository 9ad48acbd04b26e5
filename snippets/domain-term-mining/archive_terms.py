"""New-word discovery on the archive's ML excerpts, then the domain ratio against the other excerpts."""
from spaces_code.corpus import read_posts
from spaces_code.new_words import DiscoveryConfig, domain_terms, segments

posts = read_posts()
# domain: the 信息时代 (machine learning / NLP) excerpts; general: the 数学研究 and life excerpts
domain = [post.text for post in posts if "信息时代" in post.categories]
general = [post.text for post in posts if "信息时代" not in post.categories]
print(f"domain: {len(domain)} excerpts, {sum(map(len, segments(domain)))} Chinese characters; "
      f"general: {len(general)} excerpts, {sum(map(len, segments(general)))} characters")

config = DiscoveryConfig(max_len=4, min_count=4, min_cohesion=2.0, min_entropy=1.0)
ranked = domain_terms(domain, general, config)
print(f"new-word discovery kept {len(ranked)} words (count >= {config.min_count}, "
      f"cohesion >= {config.min_cohesion}, both neighbour entropies >= {config.min_entropy})")


def table(rows):
    print(f"  {'词语':\u3000<4}{'domain':>7}{'general':>8}{'log ratio':>10}{'cohesion':>9}"
          f"{'H_L':>6}{'H_R':>6}")
    for w, general_count, ratio in rows:
        # pad with ideographic spaces: a Chinese character is two columns wide
        print(f"  {w.word:\u3000<4}{w.count:>7}{general_count:>8}{ratio:>10.2f}{w.cohesion:>9.2f}"
              f"{w.left_entropy:>6.2f}{w.right_entropy:>6.2f}")


print("top domain terms (largest ratio):")
table(ranked[:12])
print("words the ratio rejects (as frequent outside the domain):")
table(ranked[-5:])
