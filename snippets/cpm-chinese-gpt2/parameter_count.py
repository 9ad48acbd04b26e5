"""Parameter count of CPM-LM and its smaller siblings, from the configuration alone."""
from spaces_code.cpm_lm import GPT2Config, count_parameters

# sizes of the CPM paper (arXiv:2012.00413, Table 1); vocabulary 30000, 1024 positions
sizes = {"CPM-Small": (12, 768, 12), "CPM-Medium": (24, 1024, 16), "CPM-Large (CPM-LM)": (32, 2560, 32)}
print(f"{'model':<20}{'layers':>7}{'d':>6}{'heads':>6}{'parameters':>16}")
for name, (n_layer, n_embd, n_head) in sizes.items():
    n = count_parameters(GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head))
    print(f"{name:<20}{n_layer:>7}{n_embd:>6}{n_head:>6}{n:>16,}  ≈ {n / 1e9:.2f}B")

config = GPT2Config()
total = count_parameters(config)
outside_blocks = count_parameters(GPT2Config(n_layer=0))
per_block = count_parameters(GPT2Config(n_layer=1)) - outside_blocks
print(f"\nCPM-LM = {outside_blocks:,} (embeddings + final LN) + 32 x {per_block:,} (one block)")
print(f"weights alone: {total * 4 / 2**30:.1f} GiB in fp32, {total * 2 / 2**30:.1f} GiB in fp16")
