# gtdsl kernel template: attention forward (softmax(q k^T * scale) v), one pass over the keys
# with an online softmax, as in FlashAttention.
#
# q: [B, H, L, D], k: [B, H, S, D], v: [B, H, S, D], every operand addressed through its
# strides. One program computes BLOCK_M queries of one (batch, head); keys and values stream
# through in blocks of BLOCK_N. CAUSAL masks key j for query i when j > i (torch's
# `is_causal`, aligned to the top left). Scores and the running sums are f32; f32 inputs use
# IEEE products. A row whose keys are all masked yields 0/0, as torch does.

@triton.jit
def KERNEL_NAME(q_ptr, k_ptr, v_ptr, o_ptr, sm_scale, H, L, S, D,
                sqb, sqh, sql, sqd, skb, skh, sks, skd, svb, svh, svs, svd,
                sob, soh, sol, sod,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                CAUSAL: tl.constexpr, IEEE: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q_mask = (offs_m[:, None] < L) & (offs_d[None, :] < D)
    q = tl.load(q_ptr + b * sqb + h * sqh + offs_m[:, None] * sql + offs_d[None, :] * sqd,
                mask=q_mask, other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    for start in range(0, S, BLOCK_N):
        kn = start + offs_n
        k = tl.load(k_ptr + b * skb + h * skh + kn[None, :] * sks + offs_d[:, None] * skd,
                    mask=(kn[None, :] < S) & (offs_d[:, None] < D), other=0.0)
        if IEEE:
            qk = tl.dot(q.to(tl.float32), k.to(tl.float32), input_precision="ieee") * sm_scale
        else:
            qk = tl.dot(q, k) * sm_scale
        valid = kn[None, :] < S
        if CAUSAL:
            valid = valid & (kn[None, :] <= offs_m[:, None])
        qk = tl.where(valid, qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, axis=1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp(qk - m_safe[:, None])
        alpha = tl.exp(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(v_ptr + b * svb + h * svh + kn[:, None] * svs + offs_d[None, :] * svd,
                    mask=(kn[:, None] < S) & (offs_d[None, :] < D), other=0.0)
        if IEEE:
            acc = acc * alpha[:, None] + tl.dot(p, v.to(tl.float32), input_precision="ieee")
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    acc = acc / l_i[:, None]
    tl.store(o_ptr + b * sob + h * soh + offs_m[:, None] * sol + offs_d[None, :] * sod,
             acc.to(o_ptr.dtype.element_ty), mask=q_mask)
