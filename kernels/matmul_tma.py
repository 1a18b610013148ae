# gtdsl kernel template: matrix product with a fused elementwise epilogue, for Hopper (sm_90).
#
# The same product and epilogue as `matmul.py` (the generator fills `#@params` and
# `#@epilogue` the same way), for f16 and bf16 operands whose tiles the Tensor Memory
# Accelerator can copy: each operand has unit stride along one dim, its other stride and its
# base 16-byte aligned. The tiles of A and B are read through tensor descriptors
# (`tl.make_tensor_descriptor`, which zero-fills reads past the edge, so the main loop needs
# no masks) and multiplied by warpgroup MMAs; A_ROWS says A is stored [M, K] (unit stride
# along K; else [K, M], unit stride along M), B_ROWS that B is stored [K, N] (else [N, K]).
# WARP_SPECIALIZE asks Triton to give the loads and the MMAs of the main loop their own warps.
# DOT_F32 multiplies in f32 (Triton's interpreter, which has no bf16 dot).
# The epilogue reads and writes through pointers, masked at the edge. The descriptors are
# made on the device: a launch needs Triton's allocator set (`triton.set_allocator`).

@triton.jit
def KERNEL_NAME(a_ptr, b_ptr, c_ptr, M, N, K,
                stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                #@params
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                GROUP_M: tl.constexpr, A_ROWS: tl.constexpr, B_ROWS: tl.constexpr,
                WARP_SPECIALIZE: tl.constexpr, DOT_F32: tl.constexpr):
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_pid_n
    first_m = (pid // group) * GROUP_M
    size_m = min(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + ((pid % group) % size_m)
    pid_n = (pid % group) // size_m
    if A_ROWS:
        a_desc = tl.make_tensor_descriptor(a_ptr, shape=[M, K], strides=[stride_am, 1],
                                           block_shape=[BLOCK_M, BLOCK_K])
    else:
        a_desc = tl.make_tensor_descriptor(a_ptr, shape=[K, M], strides=[stride_ak, 1],
                                           block_shape=[BLOCK_K, BLOCK_M])
    if B_ROWS:
        b_desc = tl.make_tensor_descriptor(b_ptr, shape=[K, N], strides=[stride_bk, 1],
                                           block_shape=[BLOCK_K, BLOCK_N])
    else:
        b_desc = tl.make_tensor_descriptor(b_ptr, shape=[N, K], strides=[stride_bn, 1],
                                           block_shape=[BLOCK_N, BLOCK_K])
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in tl.range(0, tl.cdiv(K, BLOCK_K), warp_specialize=WARP_SPECIALIZE):
        if A_ROWS:
            a = a_desc.load([pid_m * BLOCK_M, k * BLOCK_K])
        else:
            a = a_desc.load([k * BLOCK_K, pid_m * BLOCK_M]).T
        if B_ROWS:
            b = b_desc.load([k * BLOCK_K, pid_n * BLOCK_N])
        else:
            b = b_desc.load([pid_n * BLOCK_N, k * BLOCK_K]).T
        if DOT_F32:
            acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
        else:
            acc = tl.dot(a, b, acc)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    v = acc
    #@epilogue
    c_ptrs = c_ptr + (offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn)
    tl.store(c_ptrs, v.to(c_ptr.dtype.element_ty), mask=mask)
