"""Without the bias update routing collapses onto a few experts; with it the load stays balanced."""
import torch
from transformers import DeepseekV3ForCausalLM

from training.balancing import ExpertLoadBalancer
from training.model_config import MoEModelConfig

COLLAPSED = 3.5  # max/mean expert load; 4.0 = every token on the same 2 of 8 experts
BALANCED = 1.5
STEPS = 150
MEASURED = 50  # the load is measured over the last steps, once routing has settled


def tiny_moe() -> DeepseekV3ForCausalLM:
    """A 2-layer, 8-expert model over a 64-token vocabulary, seeded."""
    torch.manual_seed(0)
    config = MoEModelConfig(vocab_size=64, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
                            num_hidden_layers=2, max_position_embeddings=64)
    return DeepseekV3ForCausalLM(config.to_hf(bos_token_id=0, eos_token_id=1, pad_token_id=2))


def train_routing(*, bias_update_speed: float, aux_loss_weight: float = 0.0) -> list[float]:
    """Max/mean expert load per MoE layer over the last MEASURED of STEPS training steps on
    low-entropy data (16 token types), the kind of input that lets a few experts win every token."""
    model = tiny_moe()
    balancer = ExpertLoadBalancer(model, bias_update_speed=bias_update_speed, aux_loss_weight=aux_loss_weight)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.Generator().manual_seed(1)
    for step in range(STEPS):
        if step == STEPS - MEASURED:
            balancer.load_report()  # forget the warm-up
        tokens = torch.randint(0, 16, (8, 33), generator=data)
        logits = model(input_ids=tokens[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 64), tokens[:, 1:].reshape(-1))
        aux = balancer.aux_loss()
        (loss if aux is None else loss + aux).backward()
        optimizer.step()
        optimizer.zero_grad()
        balancer.update_biases()
    return balancer.load_report()["max_over_mean"]


def test_routing_collapses_without_balancing():
    assert min(train_routing(bias_update_speed=0.0)) >= COLLAPSED


def test_bias_updates_keep_the_load_balanced():
    assert max(train_routing(bias_update_speed=0.03)) <= BALANCED


def test_the_sequence_aux_loss_is_positive_and_reaches_the_router():
    model = tiny_moe()
    balancer = ExpertLoadBalancer(model, bias_update_speed=0.0, aux_loss_weight=0.01)

    model(input_ids=torch.randint(0, 64, (2, 16)))
    aux = balancer.aux_loss()
    aux.backward()

    assert aux.item() > 0
    assert balancer.routers[0].weight.grad.abs().sum() > 0
    assert balancer.aux_loss() is None  # consumed


def test_bias_moves_against_the_load_error():
    model = tiny_moe()
    balancer = ExpertLoadBalancer(model, bias_update_speed=0.5, aux_loss_weight=0.0)
    balancer.step_counts[0] = torch.tensor([10.0, 0, 2, 2, 2, 2, 2, 4])  # mean 3

    balancer.update_biases()

    assert balancer.routers[0].e_score_correction_bias.tolist() == [-0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, -0.5]
