// hwgen batch harness: streams N test vectors through one design under test
// at full rate (one per clock when nothing stalls) and records every output
// word, so the simulator runs without a Python callback per cycle.
// hwgen.tools.sim writes IN_FILE (N_IN input words, one per line: one per
// vector, or a CNN's pixels), compares the N words it writes to OUT_FILE with
// the golden reference afterwards, and drives only clk.
//
// The design under test sits beside this module, in the top that
// hwgen.tools.sim generates (hwgen_tb: one hwgen_batch and one DUT per
// design, all on one clock, so the network and each layer's own module
// simulate in one build and one run). Its ports are Amaranth's stream ports:
// i__payload/i__valid/i__ready and o__payload/o__valid/o__ready, which this
// module drives as i_payload/i_valid, and o_ready. STALL_PER_256 > 0 makes
// the sink refuse an output on about STALL_PER_256/256 of the cycles (a
// 16-bit LFSR seeded with SEED), so valid/ready backpressure is exercised too.
`timescale 1ns/1ps
module hwgen_batch #(
    parameter integer N = 1,
    parameter integer N_IN = 1,
    parameter integer IN_W = 1,
    parameter integer OUT_W = 1,
    parameter integer STALL_PER_256 = 0,
    parameter integer SEED = 1,
    parameter integer MAX_CYCLES = 1000,
    parameter IN_FILE = "inputs.hex",
    parameter OUT_FILE = "outputs.hex"
) (
    input  wire clk,
    output reg  rst = 1'b1,
    output wire [IN_W-1:0] i_payload,
    output wire i_valid,
    input  wire i_ready,
    input  wire [OUT_W-1:0] o_payload,
    input  wire o_valid,
    output wire o_ready,
    output reg  done = 1'b0,
    output reg  timed_out = 1'b0,
    output reg  [31:0] cycles = 32'd0,
    output reg  [31:0] received = 32'd0
);
    reg [IN_W-1:0]  inputs  [0:N_IN-1];
    reg [OUT_W-1:0] outputs [0:N-1];
    initial $readmemh(IN_FILE, inputs);

    reg [31:0] sent = 32'd0;
    reg [15:0] lfsr = SEED[15:0] | 16'h1;
    assign o_ready = !rst && received < N && lfsr[7:0] >= STALL_PER_256;
    assign i_payload = inputs[sent < N_IN ? sent : 0];
    assign i_valid = !rst && sent < N_IN;

    always @(posedge clk) begin
        lfsr <= {lfsr[14:0], lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]};
        if (rst) begin
            rst <= cycles >= 2 ? 1'b0 : 1'b1;
        end else if (!done) begin
            if (sent < N_IN && i_ready)
                sent <= sent + 1;
            if (o_valid && o_ready) begin
                outputs[received] <= o_payload;
                received <= received + 1;
            end
        end
        cycles <= cycles + 1;
        if (!done && (received == N || cycles >= MAX_CYCLES)) begin
            timed_out <= received != N;
            $writememh(OUT_FILE, outputs);
            done <= 1'b1;
        end
    end
endmodule
