// hwgen batch harness: streams N test vectors through the network at full
// rate (one per clock when nothing stalls) and records every output word, so
// the simulator runs without a Python callback per cycle. hwgen.tools.sim writes
// inputs.hex (N_IN input words, one per line: one per vector, or a CNN's
// pixels) next to the simulation, compares the N words of outputs.hex with
// the golden reference afterwards, and drives only clk.
//
// The DUT is the module named by DUT (hwgen_top, or a synthesized netlist of
// it), with Amaranth's stream ports: i__payload/i__valid/i__ready and
// o__payload/o__valid/o__ready. STALL_PER_256 > 0 makes the sink refuse an
// output on about STALL_PER_256/256 of the cycles (a 16-bit LFSR seeded with
// SEED), so valid/ready backpressure is exercised too.
`timescale 1ns/1ps
module hwgen_tb #(
    parameter integer N = 1,
    parameter integer N_IN = 1,
    parameter integer IN_W = 1,
    parameter integer OUT_W = 1,
    parameter integer STALL_PER_256 = 0,
    parameter integer SEED = 1,
    parameter integer MAX_CYCLES = 1000
) (
    input  wire clk,
    output reg  done = 1'b0,
    output reg  timed_out = 1'b0,
    output reg  [31:0] cycles = 32'd0
);
    reg [IN_W-1:0]  inputs  [0:N_IN-1];
    reg [OUT_W-1:0] outputs [0:N-1];
    initial $readmemh("inputs.hex", inputs);

    reg rst = 1'b1;
    reg [31:0] sent = 32'd0, received = 32'd0;
    reg [15:0] lfsr = SEED[15:0] | 16'h1;
    wire i_ready, o_valid;
    wire [OUT_W-1:0] o_payload;
    wire o_ready = !rst && received < N && lfsr[7:0] >= STALL_PER_256;

    `DUT dut (
        .clk(clk), .rst(rst),
        .i__payload(inputs[sent < N_IN ? sent : 0]), .i__valid(!rst && sent < N_IN), .i__ready(i_ready),
        .o__payload(o_payload), .o__valid(o_valid), .o__ready(o_ready)
    );

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
            $writememh("outputs.hex", outputs);
            done <= 1'b1;
        end
    end
endmodule
