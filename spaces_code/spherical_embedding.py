r"""JoSE：球面上的词向量和句向量 — https://kexue.fm/archives/7063

Paper: Meng et al., "Spherical Text Embedding" (NeurIPS 2019), the JoSE model. Word vectors $\boldsymbol{u}$,
context vectors $\boldsymbol{v}$ and document vectors $\boldsymbol{d}$ all live on the unit sphere and a
negative word $\boldsymbol{u}'$ is pushed away by the hinge loss

$$\max(0, m - \cos(\boldsymbol{u}, \boldsymbol{v}) - \cos(\boldsymbol{u}, \boldsymbol{d})
      + \cos(\boldsymbol{u}', \boldsymbol{v}) + \cos(\boldsymbol{u}', \boldsymbol{d}))$$

On the sphere $\cos(\boldsymbol{x}, \boldsymbol{y}) = \boldsymbol{x}^\top\boldsymbol{y}$, and the loss is computed with
inner products, so its Euclidean gradient $\boldsymbol{g}$ has a radial part. Three update rules:

* Euclidean step + renormalisation: $\boldsymbol{x} \leftarrow (\boldsymbol{x} - \eta\boldsymbol{g}) / \|\cdot\|$;
* Riemannian SGD: project onto the tangent space, $(I - \boldsymbol{x}\boldsymbol{x}^\top)\boldsymbol{g}$, then
  retract $R_{\boldsymbol{x}}(\boldsymbol{z}) = (\boldsymbol{x} + \boldsymbol{z}) / \|\boldsymbol{x} + \boldsymbol{z}\|$;
* the paper's rule, a Riemannian step scaled by $1 + \boldsymbol{x}^\top\boldsymbol{g} / \|\boldsymbol{g}\|$:
  $\boldsymbol{x} \leftarrow R_{\boldsymbol{x}}\big(-\eta (1 + \boldsymbol{x}^\top\boldsymbol{g}/\|\boldsymbol{g}\|)
  (I - \boldsymbol{x}\boldsymbol{x}^\top)\boldsymbol{g}\big)$.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spaces_code.randomness import rand, randint, randn

STEP_RULES = ("euclidean", "riemannian", "jose")


def jose_loss(u: Tensor, v: Tensor, d: Tensor, u_neg: Tensor, margin: float = 0.15) -> Tensor:
    """Hinge loss per triple ``(...)`` for unit vectors ``(..., dim)``; cosines are inner products."""
    # $\max(0, m - \cos(u, v) - \cos(u, d) + \cos(u', v) + \cos(u', d))$
    score = (u * v).sum(-1) + (u * d).sum(-1) - (u_neg * v).sum(-1) - (u_neg * d).sum(-1)  # (...)
    return (margin - score).clamp_min(0)


def tangent_projection(x: Tensor, grad: Tensor) -> Tensor:
    """Riemannian gradient on the unit sphere: $(I - x x^\\top) g$, row-wise for ``(..., dim)``."""
    # $(I - \boldsymbol{x}\boldsymbol{x}^\top)\boldsymbol{g} = \boldsymbol{g} - (\boldsymbol{x}^\top\boldsymbol{g})\boldsymbol{x}$
    return grad - (x * grad).sum(-1, keepdim=True) * x


def retraction(x: Tensor, step: Tensor) -> Tensor:
    """Map a tangent step back to the sphere: $R_x(z) = (x + z) / \\|x + z\\|$."""
    return nn.functional.normalize(x + step, dim=-1)


def sphere_step(x: Tensor, grad: Tensor, lr: float, rule: str = "riemannian") -> Tensor:
    """One descent step of unit rows ``x`` ``(..., dim)`` along Euclidean gradient ``grad`` by ``rule``."""
    if rule == "euclidean":
        return nn.functional.normalize(x - lr * grad, dim=-1)
    tangent = tangent_projection(x, grad)  # (..., dim)
    if rule == "riemannian":
        return retraction(x, -lr * tangent)
    if rule == "jose":
        # $1 + \boldsymbol{x}^\top\boldsymbol{g} / \|\boldsymbol{g}\|$ (a zero gradient leaves x where it is)
        norm = grad.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(grad.dtype).tiny)
        scale = 1 + (x * grad).sum(-1, keepdim=True) / norm  # (..., 1) in [0, 2]
        return retraction(x, -lr * scale * tangent)
    raise ValueError(f"unknown rule {rule!r}: use one of {STEP_RULES}")


@dataclass
class JoSEConfig:
    num_words: int
    num_docs: int
    dim: int = 8          # embedding dimension (the paper uses 100)
    margin: float = 0.15  # m in the hinge loss (the paper's default)


class SphericalEmbedding(nn.Module):
    """Word, context and document vectors on the unit sphere, initialised uniformly on it."""

    def __init__(self, config: JoSEConfig, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None):
        super().__init__()
        self.config = config

        def uniform_on_sphere(n: int) -> nn.Parameter:
            x = randn(n, config.dim, generator=generator, device=device)  # on the generator's device, moved
            return nn.Parameter(nn.functional.normalize(x, dim=-1))

        self.word = uniform_on_sphere(config.num_words)     # u, u'
        self.context = uniform_on_sphere(config.num_words)  # v
        self.doc = uniform_on_sphere(config.num_docs)       # d

    def forward(self, triples: Tensor, negatives: Tensor) -> Tensor:
        """Mean hinge loss over ``triples`` ``(batch, 3)`` = (doc, word, context word), ``negatives`` ``(batch,)``."""
        doc, word, context = triples.unbind(-1)
        return jose_loss(self.word[word], self.context[context], self.doc[doc], self.word[negatives],
                         self.config.margin).mean()


def topic_corpus(num_topics: int, words_per_topic: int, docs_per_topic: int, triples_per_doc: int,
                 noise: float = 0.1, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> Tensor:
    """Toy co-occurrence data ``(num_docs * triples_per_doc, 3)``: (doc, word, context word).

    Document ``t`` belongs to topic ``t // docs_per_topic``; its words come from that topic's block of
    the vocabulary, except a fraction ``noise`` drawn from the whole vocabulary.
    """
    num_docs, num_words = num_topics * docs_per_topic, num_topics * words_per_topic
    device = generator.device if device is None and generator is not None else device
    doc = torch.arange(num_docs, device=device).repeat_interleave(triples_per_doc)  # (n,)
    topic = doc // docs_per_topic
    words = []
    for _ in range(2):  # the word and its context word
        in_topic = topic * words_per_topic + randint(0, words_per_topic, tuple(doc.shape), generator=generator,
                                                     device=doc.device)
        anywhere = randint(0, num_words, tuple(doc.shape), generator=generator, device=doc.device)
        is_noise = rand(*doc.shape, generator=generator, device=doc.device) < noise
        words.append(torch.where(is_noise, anywhere, in_topic))
    return torch.stack([doc, *words], dim=-1)


def train_jose(model: SphericalEmbedding, triples: Tensor, steps: int, lr: float, rule: str = "jose",
               generator: torch.Generator | None = None) -> list[float]:
    """Full-batch descent on the sphere, fresh uniform negatives each step; returns the loss per step.

    Gradients are taken with autograd on the inner-product loss and applied row-wise by
    :func:`sphere_step`, so every vector stays on the sphere after every step.
    """
    history = []
    for _ in range(steps):
        negatives = randint(0, model.config.num_words, (triples.shape[0],), generator=generator,
                            device=triples.device)
        loss = model(triples, negatives)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for param, grad in zip(model.parameters(), grads):
                # d(mean loss)/d(row) shrinks with the table size; rescaling keeps ``lr`` size-independent
                param.copy_(sphere_step(param, grad * param.shape[0], lr, rule))
        history.append(float(loss.detach()))
    return history
