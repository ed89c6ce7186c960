"""Expert load balancing for transformers' DeepseekV3, which ships none for training.

- Auxiliary-loss-free balancing (DeepSeek-V3 §2.1.2): after every optimizer step each routed
  expert's `e_score_correction_bias` moves by `speed` against the sign of its load error
  (overloaded experts down, underloaded up). The bias only affects which experts are chosen, not
  their gate weights.
- Optional sequence-level auxiliary loss: alpha * sum_i f_i * P_i per sequence, where f_i is expert
  i's share of the sequence's routing slots (scaled so 1 is balanced) and P_i its mean normalised
  affinity.

Forward hooks on every router count the experts chosen; counts are summed across processes
before the bias update so every rank moves its biases identically.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3TopkRouter


class ExpertLoadBalancer:
    def __init__(self, model: torch.nn.Module, *, bias_update_speed: float, aux_loss_weight: float):
        self.routers = [module for module in model.modules() if isinstance(module, DeepseekV3TopkRouter)]
        if not self.routers:
            raise ValueError("the model has no DeepseekV3 routers to balance")
        self.n_experts = self.routers[0].num_experts
        self.top_k = self.routers[0].top_k
        self.bias_update_speed = bias_update_speed
        self.aux_loss_weight = aux_loss_weight
        self.step_counts = torch.zeros(len(self.routers), self.n_experts)  # since the last bias update
        self.window_counts = torch.zeros(len(self.routers), self.n_experts)  # since the last load report
        self._aux_terms: list[torch.Tensor] = []
        self._handles = [router.register_forward_hook(self._make_hook(layer))
                         for layer, router in enumerate(self.routers)]

    def _make_hook(self, layer: int):
        def hook(router: DeepseekV3TopkRouter, args, output):
            if not router.training:
                return
            router_logits, _, topk_indices = output
            self.step_counts[layer] += torch.bincount(topk_indices.flatten().cpu(), minlength=self.n_experts)
            if self.aux_loss_weight > 0:
                batch, seq = args[0].shape[:2]  # router input: (batch, seq, hidden)
                self._aux_terms.append(self._sequence_balance_loss(router_logits, topk_indices, batch, seq))

        return hook

    def _sequence_balance_loss(self, router_logits: torch.Tensor, topk_indices: torch.Tensor, batch: int,
                               seq: int) -> torch.Tensor:
        scores = router_logits.sigmoid().view(batch, seq, self.n_experts)
        affinity = (scores / scores.sum(dim=-1, keepdim=True)).mean(dim=1)  # P_i: (batch, experts)
        chosen = F.one_hot(topk_indices.view(batch, seq, self.top_k), self.n_experts).sum(dim=2).float()
        share = chosen.mean(dim=1) * self.n_experts / self.top_k  # f_i: (batch, experts), 1 = balanced
        return (share * affinity).sum(dim=-1).mean()

    def aux_loss(self) -> torch.Tensor | None:
        """The balance loss of the forward passes since the last call (None when disabled)."""
        if not self._aux_terms:
            return None
        loss = self.aux_loss_weight * torch.stack(self._aux_terms).sum()
        self._aux_terms = []
        return loss

    @torch.no_grad()
    def update_biases(self, all_reduce: Callable[[torch.Tensor], None] | None = None) -> None:
        """Call once per optimizer step, on every process."""
        counts = self.step_counts
        if all_reduce is not None:
            all_reduce(counts)
        if self.bias_update_speed > 0:
            for layer, router in enumerate(self.routers):
                error = counts[layer].mean() - counts[layer]  # > 0: underloaded
                router.e_score_correction_bias.add_(
                    self.bias_update_speed * torch.sign(error).to(router.e_score_correction_bias))
        self.window_counts += counts
        self.step_counts = torch.zeros_like(counts)

    def load_report(self) -> dict:
        """Per MoE layer: tokens routed to each expert and max/mean load, since the last report."""
        counts = self.window_counts
        self.window_counts = torch.zeros_like(counts)
        ratios = (counts.max(dim=1).values / counts.mean(dim=1).clamp(min=1e-9)).tolist()
        return {"max_over_mean": [round(r, 3) for r in ratios], "counts": counts.long().tolist()}

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
