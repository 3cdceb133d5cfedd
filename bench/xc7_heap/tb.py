#!/usr/bin/env python3
"""write tb_N.v + vec_N.hex: specials (all-0, all-1, popcount T-1/T/T+1 x200 each) + NRAND random"""
import sys, random
from gen import weights, wconst
N = int(sys.argv[1]); NRAND = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
import os
w = weights(N); T = int(os.environ.get('POP_T', N // 2))
rng = random.Random(12345)
vecs = [0, (1 << N) - 1]
for p in sorted({min(max(q, 0), N) for q in (T - 1, T, T + 1)}):
    for _ in range(200):
        pos = set(rng.sample(range(N), p))
        eff = [1 if i in pos else 0 for i in range(N)]
        x = sum(((eff[i] ^ 1 ^ w[i]) & 1) << i for i in range(N))   # x ~^ w == eff
        vecs.append(x)
for _ in range(NRAND):
    vecs.append(rng.getrandbits(N))
hd = (N + 3) // 4
open(f"vec_{N}.hex", "w").write("".join(f"{v:0{hd}x}\n" for v in vecs))
mask = (1 << N) - 1
wv = sum(w[i] << i for i in range(N))
pops = [bin(~(v ^ wv) & mask).count("1") for v in vecs]
open(f"exp_{N}.hex", "w").write("".join(f"{p:04x}\n" for p in pops))
open(f"tb_{N}.v", "w").write(f"""
module tb;
  localparam N = {N}, T = {T}, NV = {len(vecs)};
  localparam [N-1:0] W = {wconst(N, w)};
  reg [N-1:0] mem [0:NV-1];
  reg [15:0] pm [0:NV-1];
  reg [N-1:0] x; wire y; integer i, j, c, bad, nat;
  pop_top dut(.x(x), .y(y));
  initial begin
    $readmemh("vec_{N}.hex", mem);
    $readmemh("exp_{N}.hex", pm);
    bad = 0; nat = 0;
    for (i = 0; i < NV; i = i + 1) begin
      x = mem[i]; #1;
      c = pm[i];
      if (i < 3) begin j = 0; for (c = 0; j < N; j = j + 1) c = c + (x[j] == W[j]); if (c != pm[i]) begin $display("EXPFILE BAD"); bad = bad + 1; end end
      if (c >= T-1 && c <= T+1) nat = nat + 1;
      if (y !== (c >= T)) begin bad = bad + 1; if (bad < 5) $display("MISMATCH i=%0d pop=%0d y=%b", i, c, y); end
    end
    $display("RESULT N=%0d vectors=%0d near_T=%0d mismatches=%0d", N, NV, nat, bad);
    $finish;
  end
endmodule
""")
