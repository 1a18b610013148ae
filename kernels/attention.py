# gtdsl kernel template: attention forward, softmax(q k^T * scale + bias) v in one pass over the
# keys with an online softmax (FlashAttention-2, as Triton's fused-attention tutorial).
#
# q: [B, H, L, D], k and v: [B, H, S, D], o: [B, H, L, D], every operand addressed through its
# strides (0 along a broadcast dim) but for the head dim, which is contiguous. One program
# computes BLOCK_M queries of one (batch, head); keys and values stream through in blocks of
# BLOCK_N. BIAS 1: a bool mask (True = attend), BIAS 2: an additive float bias, both read at [b,
# h, i, j] through strides that are 0 along the dims they broadcast over. Scores live in base 2:
# qk_scale is scale * log2(e) and the bias is multiplied by log2e, so exp2 is the exponential. Key
# blocks that every query of the block sees run without any masking; only the blocks on the causal
# diagonal and the last, partial block of keys mask. CAUSAL: query i sees key j when j <= i
# (torch's is_causal, aligned to the top left, also when L != S); a causal program stops at the
# diagonal. A row that sees no key yields 0, as torch does. lse gets each row's log-sum-exp (base
# 2; +inf for a row that sees no key), which the backward reads. IEEE: products of the accumulator
# dtype (f32 or f64, IEEE, as torch computes without TF32); otherwise f16 and bf16 products
# accumulate in f32. The accumulator is f64 for f64 data, f32 otherwise.

@triton.jit
def KERNEL_NAME(q_ptr, k_ptr, v_ptr, b_ptr, o_ptr, lse_ptr, qk_scale: "fp64", log2e: "fp64",
                H, L, S, sqb, sqh, sql, skb, skh, sks, svb, svh, svs, sbb, sbh, sbl, sbs,
                sob, soh, sol,
                HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                BLOCK_D: tl.constexpr, CAUSAL: tl.constexpr, BIAS: tl.constexpr,
                IEEE: tl.constexpr):
    ACC: tl.constexpr = tl.float64 if q_ptr.dtype.element_ty == tl.float64 else tl.float32
    n_m = tl.cdiv(L, BLOCK_M)
    pid = tl.program_id(0)
    bh = pid // n_m
    start_m = pid % n_m
    if CAUSAL:  # the longest rows first
        start_m = n_m - 1 - start_m
    b = bh // H
    h = bh % H
    m0 = start_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < L
    q = tl.load(q_ptr + b * sqb + h * sqh + offs_m[:, None] * sql + offs_d[None, :],
                mask=row_ok[:, None] & (offs_d[None, :] < HEAD_DIM), other=0.0)
    k_base = k_ptr + b * skb + h * skh
    v_base = v_ptr + b * svb + h * svh
    # the bias rows of this block; rows past L read row L - 1 (they are not stored)
    b_rows = b_ptr + b * sbb + h * sbh + tl.minimum(offs_m, L - 1) * sbl
    scale = tl.full([], qk_scale, ACC)
    bias_scale = tl.full([], log2e, ACC)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=ACC)
    l_i = tl.zeros([BLOCK_M], dtype=ACC)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=ACC)
    s_full = S - S % BLOCK_N  # the keys of whole blocks
    if CAUSAL:
        # key blocks below the diagonal are seen by every query of the block (BLOCK_M is a
        # multiple of BLOCK_N); the ones after them up to the last query's key are masked
        full_end = tl.minimum(m0, s_full)
        end = tl.minimum(m0 + BLOCK_M, S)
    else:
        full_end = s_full
        end = S
    acc, l_i, m_i = _gtdsl_attn_fwd_blocks(
        acc, l_i, m_i, q, k_base, v_base, b_rows, sks, svs, sbs, 0, full_end, S,
        scale, bias_scale, offs_m, offs_n, offs_d, HEAD_DIM, BLOCK_N, BLOCK_D, False, CAUSAL,
        BIAS, IEEE)
    acc, l_i, m_i = _gtdsl_attn_fwd_blocks(
        acc, l_i, m_i, q, k_base, v_base, b_rows, sks, svs, sbs, full_end, end, S,
        scale, bias_scale, offs_m, offs_n, offs_d, HEAD_DIM, BLOCK_N, BLOCK_D, True, CAUSAL,
        BIAS, IEEE)
    seen = l_i > 0.0
    acc = acc / tl.where(seen, l_i, 1.0)[:, None]
    tl.store(o_ptr + b * sob + h * soh + offs_m[:, None] * sol + offs_d[None, :],
             acc.to(o_ptr.dtype.element_ty), mask=row_ok[:, None] & (offs_d[None, :] < HEAD_DIM))
    lse = tl.where(seen, m_i + tl.log2(tl.where(seen, l_i, 1.0)), float("inf"))
    tl.store(lse_ptr + bh * L + offs_m, lse, mask=row_ok)


@triton.jit
def _gtdsl_attn_fwd_blocks(acc, l_i, m_i, q, k_base, v_base, b_rows, sks, svs, sbs,
                           lo, hi, S, scale, bias_scale, offs_m, offs_n, offs_d,
                           HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr,
                           BLOCK_D: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr,
                           BIAS: tl.constexpr, IEEE: tl.constexpr):
    """The key blocks [lo, hi): MASKED ones check the key bound and the causal diagonal;
    the others load and compute without any mask."""
    for start_n in range(lo, hi, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        kn = start_n + offs_n
        k_ptrs = k_base + kn[None, :] * sks + offs_d[:, None]  # k^T: [BLOCK_D, BLOCK_N]
        v_ptrs = v_base + kn[:, None] * svs + offs_d[None, :]
        if MASKED:
            k = tl.load(k_ptrs, mask=(kn[None, :] < S) & (offs_d[:, None] < HEAD_DIM), other=0.0)
            v = tl.load(v_ptrs, mask=(kn[:, None] < S) & (offs_d[None, :] < HEAD_DIM), other=0.0)
        elif BLOCK_D == HEAD_DIM:
            k = tl.load(k_ptrs)
            v = tl.load(v_ptrs)
        else:
            k = tl.load(k_ptrs, mask=offs_d[:, None] < HEAD_DIM, other=0.0)
            v = tl.load(v_ptrs, mask=offs_d[None, :] < HEAD_DIM, other=0.0)
        if IEEE:
            qk = tl.dot(q.to(acc.dtype), k.to(acc.dtype), input_precision="ieee",
                        out_dtype=acc.dtype)
        else:
            qk = tl.dot(q, k)
        qk = qk * scale
        if BIAS != 0:
            b_ptrs = b_rows[:, None] + kn[None, :] * sbs
            if MASKED:
                bias = tl.load(b_ptrs, mask=kn[None, :] < S, other=0)
            else:
                bias = tl.load(b_ptrs)
            if BIAS == 1:
                qk = tl.where(bias != 0, qk, float("-inf"))
            else:
                qk = qk + bias.to(acc.dtype) * bias_scale
        if MASKED:
            visible = kn[None, :] < S
            if CAUSAL:
                visible = visible & (kn[None, :] <= offs_m[:, None])
            qk = tl.where(visible, qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        if BIAS != 0:  # a row may have seen no key yet: keep the exponents finite
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        else:
            m_use = m_new
        p = tl.math.exp2(qk - m_use[:, None])
        alpha = tl.math.exp2(m_i - m_use)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        if IEEE:
            acc = tl.dot(p, v.to(acc.dtype), acc, input_precision="ieee", out_dtype=acc.dtype)
        else:
            acc = tl.dot(p.to(v.dtype), v, acc)
        m_i = m_new
    return acc, l_i, m_i
