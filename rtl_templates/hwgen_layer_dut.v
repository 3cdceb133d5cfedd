// hwgen per-layer adapter: one layer module of the RTL under test, taken out
// of the network and given the network's stream ports, so that a batch
// harness (hwgen_batch.v, in the top hwgen.tools.sim generates) streams
// boundary vectors straight into it. hwgen.tools.sim fills in the
// placeholders: the adapter's own name, the layer's module name, the port
// widths and the instance's connections.
//
// STREAM = 1: the layer module has stream ports of its own (a folded layer)
// and they are wired straight through. STREAM = 0: a combinational layer
// (LATENCY = 0), or one pipelined LATENCY clocks whose registers advance
// with `advance`; this adapter then carries the valid bit alongside, the
// way the network does, and stalls the layer with the harness's sink.
`timescale 1ns/1ps
module ${name} #(
    parameter integer STREAM = ${stream},
    parameter integer LATENCY = ${latency}
) (
    input  wire clk,
    input  wire rst,
    input  wire [${in_width}-1:0] i__payload,
    input  wire i__valid,
    output wire i__ready,
    output wire [${out_width}-1:0] o__payload,
    output wire o__valid,
    input  wire o__ready
);
    wire advance;
    generate
        if (STREAM) begin : direct
            assign advance = 1'b1;
        end else if (LATENCY == 0) begin : combinational
            assign advance = o__ready;
            assign i__ready = o__ready;
            assign o__valid = i__valid;
        end else begin : pipelined
            reg [LATENCY-1:0] valid = {LATENCY{1'b0}};
            assign o__valid = valid[LATENCY-1];
            assign advance = !o__valid || o__ready;
            assign i__ready = advance;
            always @(posedge clk)
                if (rst)
                    valid <= {LATENCY{1'b0}};
                else if (advance)
                    valid <= {valid, i__valid};   // the top bit falls off
        end
    endgenerate

    ${module} layer (${connections});
endmodule
