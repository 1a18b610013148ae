# gtdsl kernel template: attention backward, flash style (FlashAttention-2, as Triton's
# fused-attention tutorial), for the forward of kernels/attention.py, which saved the output
# o and each row's log-sum-exp lse (base 2; +inf for a row that sees no key).
#
# With P = exp2(S2 - lse) the probabilities (S2 the base-2 scores, bias and masks applied as
# the forward applies them), dO the output's gradient and delta = rowsum(dO * o):
#   dV = P^T dO,  dS = P * (dO V^T - delta),  dQ = dS K * scale,  dK = dS^T Q * scale,
# and an additive bias's gradient is dS. Three kernels: _pre computes delta; _dkdv owns
# BLOCK_N keys of one (batch, head) and walks the query blocks that see them (a causal one
# starts at the diagonal); _dq owns BLOCK_M queries and walks their keys (a causal one stops
# at the diagonal), storing dS too when STORE_DS. Query and key blocks that the diagonal or
# an end of the sequences cuts are the only ones that mask; a row past L has lse = +inf and
# so P = 0. Operands are addressed through their strides (0 along a broadcast dim) but for
# the head dim, which is contiguous.

@triton.jit
def KERNEL_NAME_pre(o_ptr, do_ptr, delta_ptr, H, L, sob, soh, sol, sgb, sgh, sgl,
                    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """delta[b, h, i] = sum_d dO[b, h, i, d] * o[b, h, i, d]."""
    n_m = tl.cdiv(L, BLOCK_M)
    pid = tl.program_id(0)
    bh = pid // n_m
    b = bh // H
    h = bh % H
    offs_m = (pid % n_m) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_m[:, None] < L) & (offs_d[None, :] < HEAD_DIM)
    acc_ty = delta_ptr.dtype.element_ty
    o = tl.load(o_ptr + b * sob + h * soh + offs_m[:, None] * sol + offs_d[None, :],
                mask=mask, other=0.0).to(acc_ty)
    do = tl.load(do_ptr + b * sgb + h * sgh + offs_m[:, None] * sgl + offs_d[None, :],
                 mask=mask, other=0.0).to(acc_ty)
    tl.store(delta_ptr + bh * L + offs_m, tl.sum(o * do, 1), mask=offs_m < L)


@triton.jit
def KERNEL_NAME_dkdv(q_ptr, k_ptr, v_ptr, b_ptr, do_ptr, lse_ptr, delta_ptr, dk_ptr, dv_ptr,
                     qk_scale: "fp64", log2e: "fp64", sm_scale: "fp64", H, L, S,
                     sqb, sqh, sql, skb, skh, sks, svb, svh, svs, sbb, sbh, sbl, sbs,
                     sgb, sgh, sgl, sdkb, sdkh, sdks, sdvb, sdvh, sdvs,
                     HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                     BLOCK_D: tl.constexpr, CAUSAL: tl.constexpr, BIAS: tl.constexpr,
                     IEEE: tl.constexpr):
    """dK and dV of BLOCK_N keys of one (batch, head), over the query blocks that see them."""
    ACC: tl.constexpr = tl.float64 if q_ptr.dtype.element_ty == tl.float64 else tl.float32
    n_n = tl.cdiv(S, BLOCK_N)
    pid = tl.program_id(0)
    bh = pid // n_n
    b = bh // H
    h = bh % H
    n0 = (pid % n_n) * BLOCK_N
    offs_n = n0 + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    kv_mask = (offs_n[:, None] < S) & (offs_d[None, :] < HEAD_DIM)
    k = tl.load(k_ptr + b * skb + h * skh + offs_n[:, None] * sks + offs_d[None, :],
                mask=kv_mask, other=0.0)
    v = tl.load(v_ptr + b * svb + h * svh + offs_n[:, None] * svs + offs_d[None, :],
                mask=kv_mask, other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=ACC)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=ACC)
    # the bias columns of these keys; keys past S read key S - 1 (they are not stored)
    b_cols = b_ptr + b * sbb + h * sbh + tl.minimum(offs_n, S - 1) * sbs
    q_base = q_ptr + b * sqb + h * sqh
    do_base = do_ptr + b * sgb + h * sgh
    lse_base = lse_ptr + bh * L
    delta_base = delta_ptr + bh * L
    scale = tl.full([], qk_scale, ACC)
    bias_scale = tl.full([], log2e, ACC)
    l_full = L - L % BLOCK_M  # the queries of whole blocks
    if CAUSAL:
        # queries before n0 see none of these keys; the blocks up to n0 + BLOCK_N straddle
        # the diagonal (BLOCK_N is a multiple of BLOCK_M); every later query sees them all
        lo = tl.minimum(n0, L)
        mid = tl.minimum(n0 + BLOCK_N, L)
    else:
        lo = 0
        mid = 0
    dk, dv = _gtdsl_attn_dkdv_blocks(
        dk, dv, k, v, q_base, do_base, lse_base, delta_base, b_cols, sql, sgl, sbl,
        lo, mid, L, scale, bias_scale, offs_n, offs_m, offs_d, HEAD_DIM, BLOCK_M, BLOCK_N,
        BLOCK_D, True, CAUSAL, BIAS, IEEE)
    full_end = tl.maximum(l_full, mid)
    dk, dv = _gtdsl_attn_dkdv_blocks(
        dk, dv, k, v, q_base, do_base, lse_base, delta_base, b_cols, sql, sgl, sbl,
        mid, full_end, L, scale, bias_scale, offs_n, offs_m, offs_d, HEAD_DIM, BLOCK_M,
        BLOCK_N, BLOCK_D, False, CAUSAL, BIAS, IEEE)
    dk, dv = _gtdsl_attn_dkdv_blocks(
        dk, dv, k, v, q_base, do_base, lse_base, delta_base, b_cols, sql, sgl, sbl,
        full_end, L, L, scale, bias_scale, offs_n, offs_m, offs_d, HEAD_DIM, BLOCK_M, BLOCK_N,
        BLOCK_D, True, False, BIAS, IEEE)
    dk = dk * tl.full([], sm_scale, ACC)
    tl.store(dk_ptr + b * sdkb + h * sdkh + offs_n[:, None] * sdks + offs_d[None, :],
             dk.to(dk_ptr.dtype.element_ty), mask=kv_mask)
    tl.store(dv_ptr + b * sdvb + h * sdvh + offs_n[:, None] * sdvs + offs_d[None, :],
             dv.to(dv_ptr.dtype.element_ty), mask=kv_mask)


@triton.jit
def KERNEL_NAME_dq(q_ptr, k_ptr, v_ptr, b_ptr, do_ptr, lse_ptr, delta_ptr, dq_ptr, ds_ptr,
                   qk_scale: "fp64", log2e: "fp64", sm_scale: "fp64", H, L, S,
                   sqb, sqh, sql, skb, skh, sks, svb, svh, svs, sbb, sbh, sbl, sbs,
                   sgb, sgh, sgl, sdqb, sdqh, sdql,
                   HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   BLOCK_D: tl.constexpr, CAUSAL: tl.constexpr, BIAS: tl.constexpr,
                   STORE_DS: tl.constexpr, IEEE: tl.constexpr):
    """dQ of BLOCK_M queries of one (batch, head), over the keys they see; with STORE_DS also
    dS, contiguous [B, H, L, S] (the gradient of an additive bias)."""
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
    q_mask = row_ok[:, None] & (offs_d[None, :] < HEAD_DIM)
    q = tl.load(q_ptr + b * sqb + h * sqh + offs_m[:, None] * sql + offs_d[None, :],
                mask=q_mask, other=0.0)
    do = tl.load(do_ptr + b * sgb + h * sgh + offs_m[:, None] * sgl + offs_d[None, :],
                 mask=q_mask, other=0.0)
    lse = tl.load(lse_ptr + bh * L + offs_m, mask=row_ok, other=float("inf"))
    delta = tl.load(delta_ptr + bh * L + offs_m, mask=row_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=ACC)
    k_base = k_ptr + b * skb + h * skh
    v_base = v_ptr + b * svb + h * svh
    b_rows = b_ptr + b * sbb + h * sbh + tl.minimum(offs_m, L - 1) * sbl
    ds_rows = ds_ptr + bh.to(tl.int64) * L * S + offs_m.to(tl.int64) * S
    scale = tl.full([], qk_scale, ACC)
    bias_scale = tl.full([], log2e, ACC)
    s_full = S - S % BLOCK_N
    if CAUSAL:
        full_end = tl.minimum(m0, s_full)
        end = tl.minimum(m0 + BLOCK_M, S)
    else:
        full_end = s_full
        end = S
    dq = _gtdsl_attn_dq_blocks(
        dq, q, do, lse, delta, k_base, v_base, b_rows, ds_rows, sks, svs, sbs, 0,
        full_end, L, S, scale, bias_scale, offs_m, offs_n, offs_d, HEAD_DIM, BLOCK_M, BLOCK_N,
        BLOCK_D, False, CAUSAL, BIAS, STORE_DS, IEEE)
    dq = _gtdsl_attn_dq_blocks(
        dq, q, do, lse, delta, k_base, v_base, b_rows, ds_rows, sks, svs, sbs,
        full_end, end, L, S, scale, bias_scale, offs_m, offs_n, offs_d, HEAD_DIM, BLOCK_M,
        BLOCK_N, BLOCK_D, True, CAUSAL, BIAS, STORE_DS, IEEE)
    dq = dq * tl.full([], sm_scale, ACC)
    tl.store(dq_ptr + b * sdqb + h * sdqh + offs_m[:, None] * sdql + offs_d[None, :],
             dq.to(dq_ptr.dtype.element_ty), mask=q_mask)


@triton.jit
def _gtdsl_attn_dot(a, b, acc, IEEE: tl.constexpr):
    """acc + a @ b: IEEE products in the accumulator's dtype, or a in b's dtype (f16, bf16)
    accumulated in f32."""
    if IEEE:
        out = tl.dot(a.to(acc.dtype), b.to(acc.dtype), acc, input_precision="ieee",
                     out_dtype=acc.dtype)
    else:
        out = tl.dot(a.to(b.dtype), b, acc)
    return out


@triton.jit
def _gtdsl_attn_dkdv_blocks(dk, dv, k, v, q_base, do_base, lse_base, delta_base, b_cols,
                            sql, sgl, sbl, lo, hi, L, scale, bias_scale, offs_n,
                            offs_m0, offs_d, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr,
                            BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, MASKED: tl.constexpr,
                            CAUSAL: tl.constexpr, BIAS: tl.constexpr, IEEE: tl.constexpr):
    """The query blocks [lo, hi) for one block of keys: MASKED ones check the query bound
    and, when CAUSAL, the diagonal; the others load and compute without any mask."""
    for start_m in range(lo, hi, BLOCK_M):
        start_m = tl.multiple_of(start_m, BLOCK_M)
        offs_m = start_m + offs_m0
        qt_ptrs = q_base + offs_m[None, :] * sql + offs_d[:, None]  # q^T: [D, M]
        do_ptrs = do_base + offs_m[:, None] * sgl + offs_d[None, :]
        if MASKED:
            row_ok = offs_m < L
            qt = tl.load(qt_ptrs, mask=row_ok[None, :] & (offs_d[:, None] < HEAD_DIM), other=0.0)
            do = tl.load(do_ptrs, mask=row_ok[:, None] & (offs_d[None, :] < HEAD_DIM), other=0.0)
            lse = tl.load(lse_base + offs_m, mask=row_ok, other=float("inf"))
            delta = tl.load(delta_base + offs_m, mask=row_ok, other=0.0)
        else:
            if BLOCK_D == HEAD_DIM:
                qt = tl.load(qt_ptrs)
                do = tl.load(do_ptrs)
            else:
                qt = tl.load(qt_ptrs, mask=offs_d[:, None] < HEAD_DIM, other=0.0)
                do = tl.load(do_ptrs, mask=offs_d[None, :] < HEAD_DIM, other=0.0)
            lse = tl.load(lse_base + offs_m)
            delta = tl.load(delta_base + offs_m)
        qkt = _gtdsl_attn_dot(k, qt, tl.zeros([BLOCK_N, BLOCK_M], dtype=dk.dtype), IEEE)
        st = qkt * scale  # base-2 scores, transposed: [N, M]
        if BIAS != 0:
            if MASKED:  # rows past L read row L - 1 (their lse is +inf: P = 0)
                bias = tl.load(b_cols[:, None] + tl.minimum(offs_m, L - 1)[None, :] * sbl)
            else:
                bias = tl.load(b_cols[:, None] + offs_m[None, :] * sbl)
            if BIAS == 1:
                st = tl.where(bias != 0, st, float("-inf"))
            else:
                st = st + bias.to(dk.dtype) * bias_scale
        pt = tl.math.exp2(st - lse[None, :])
        if MASKED and CAUSAL:
            pt = tl.where(offs_m[None, :] >= offs_n[:, None], pt, 0.0)
        dv = _gtdsl_attn_dot(pt, do, dv, IEEE)
        dpt = _gtdsl_attn_dot(v, tl.trans(do), tl.zeros([BLOCK_N, BLOCK_M], dtype=dk.dtype),
                              IEEE)
        dst = pt * (dpt - delta[None, :])
        dk = _gtdsl_attn_dot(dst, tl.trans(qt), dk, IEEE)
    return dk, dv


@triton.jit
def _gtdsl_attn_dq_blocks(dq, q, do, lse, delta, k_base, v_base, b_rows, ds_rows, sks, svs,
                          sbs, lo, hi, L, S, scale, bias_scale, offs_m, offs_n,
                          offs_d, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, MASKED: tl.constexpr,
                          CAUSAL: tl.constexpr, BIAS: tl.constexpr, STORE_DS: tl.constexpr,
                          IEEE: tl.constexpr):
    """The key blocks [lo, hi) for one block of queries: MASKED ones check the key bound and
    the causal diagonal; the others load and compute without any mask."""
    for start_n in range(lo, hi, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        kn = start_n + offs_n
        kt_ptrs = k_base + kn[None, :] * sks + offs_d[:, None]  # k^T: [D, N]
        vt_ptrs = v_base + kn[None, :] * svs + offs_d[:, None]  # v^T: [D, N]
        if MASKED:
            kv_mask = (kn[None, :] < S) & (offs_d[:, None] < HEAD_DIM)
            kt = tl.load(kt_ptrs, mask=kv_mask, other=0.0)
            vt = tl.load(vt_ptrs, mask=kv_mask, other=0.0)
        elif BLOCK_D == HEAD_DIM:
            kt = tl.load(kt_ptrs)
            vt = tl.load(vt_ptrs)
        else:
            kt = tl.load(kt_ptrs, mask=offs_d[:, None] < HEAD_DIM, other=0.0)
            vt = tl.load(vt_ptrs, mask=offs_d[:, None] < HEAD_DIM, other=0.0)
        qk = _gtdsl_attn_dot(q, kt, tl.zeros([BLOCK_M, BLOCK_N], dtype=dq.dtype), IEEE)
        s = qk * scale
        if BIAS != 0:
            b_ptrs = b_rows[:, None] + kn[None, :] * sbs
            if MASKED:
                bias = tl.load(b_ptrs, mask=kn[None, :] < S, other=0)
            else:
                bias = tl.load(b_ptrs)
            if BIAS == 1:
                s = tl.where(bias != 0, s, float("-inf"))
            else:
                s = s + bias.to(dq.dtype) * bias_scale
        if MASKED:
            visible = kn[None, :] < S
            if CAUSAL:
                visible = visible & (kn[None, :] <= offs_m[:, None])
            s = tl.where(visible, s, float("-inf"))
        p = tl.math.exp2(s - lse[:, None])
        dp = _gtdsl_attn_dot(do, vt, tl.zeros([BLOCK_M, BLOCK_N], dtype=dq.dtype), IEEE)
        ds = p * (dp - delta[:, None])
        if STORE_DS:
            ds_ptrs = ds_rows[:, None] + kn[None, :]
            if MASKED:
                tl.store(ds_ptrs, ds.to(ds_ptrs.dtype.element_ty),
                         mask=(offs_m[:, None] < L) & (kn[None, :] < S))
            else:
                tl.store(ds_ptrs, ds.to(ds_ptrs.dtype.element_ty), mask=offs_m[:, None] < L)
        dq = _gtdsl_attn_dot(ds, tl.trans(kt), dq, IEEE)
    return dq
