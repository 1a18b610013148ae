# gtdsl kernel template: matrix product with a fused elementwise epilogue.
#
# C[M, N] = epilogue(A[M, K] @ B[K, N]), accumulated in f32. Every operand is addressed
# through its strides, so a transposed operand (`x @ w.T`, `dy.T @ x`) is read in place.
# f16 and bf16 operands go to the tensor cores as they are; f32 operands use IEEE products
# (torch's default for matmul), not TF32. DOT_F32 multiplies in f32 (f32 operands, and
# Triton's interpreter, which has no f16/bf16 dot: f16 and bf16 products are exact in f32).
# The generator fills the parameter line `#@params` (epilogue tensors and scalars) and the
# line `#@epilogue` (statements that turn `acc` into `v`, with `offs_m`, `offs_n` and `mask`
# in scope). A gradient product computes its operand A instead of loading it: the generator
# then replaces the lines from `#@operand_a` to `#@end` with statements that make the tile
# `a` (BLOCK_M x BLOCK_K, rows `rows`, depth `k * BLOCK_K + offs_k`) from its own operands,
# and fills `#@before_loop` (accumulators of its own, such as sums of A's rows).
# One program computes one BLOCK_M x BLOCK_N tile; tiles are visited in groups of GROUP_M
# rows of tiles, for L2 reuse. Rows and columns past the edge of A and B read
# row and column 0 again (in bounds; their products are never stored), so the loads of the
# main loop are masked along K only, and not at all when BLOCK_K divides K (EVEN_K).

@triton.jit
def KERNEL_NAME(a_ptr, b_ptr, c_ptr, M, N, K,
                stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                #@params
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                GROUP_M: tl.constexpr, EVEN_K: tl.constexpr, DOT_F32: tl.constexpr):
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_pid_n
    first_m = (pid // group) * GROUP_M
    size_m = min(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + ((pid % group) % size_m)
    pid_n = (pid % group) // size_m
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    rows = offs_m % M
    cols = offs_n % N
    a_ptrs = a_ptr + (rows[:, None] * stride_am + offs_k[None, :] * stride_ak)
    b_ptrs = b_ptr + (offs_k[:, None] * stride_bk + cols[None, :] * stride_bn)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    #@before_loop
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            b = tl.load(b_ptrs)
        else:
            b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_K, other=0.0)
        #@operand_a
        if EVEN_K:
            a = tl.load(a_ptrs)
        else:
            a = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_K, other=0.0)
        #@end
        if DOT_F32:
            acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
        else:
            acc = tl.dot(a, b, acc)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    v = acc
    #@epilogue
    c_ptrs = c_ptr + (offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn)
    tl.store(c_ptrs, v.to(c_ptr.dtype.element_ty), mask=mask)
