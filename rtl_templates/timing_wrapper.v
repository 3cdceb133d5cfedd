// hwgen timing harness: the network out of context, with a handful of pins,
// so that place and route measures the network rather than the package's
// I/O count. A shift register fills the input vector one bit per clock
// (`din`), the output stream is always accepted, and the label plus the XOR
// of all score bits are registered to pins, so no logic is optimized away.
// Every path from the input register to the output registers goes through
// the network's own pipeline registers, which is what Fmax is about.
module hwgen_timing #(
    parameter integer IN_W = 1,
    parameter integer OUT_W = 1
) (
    input  wire clk,
    input  wire din,
    output reg  valid = 1'b0,
    output reg  parity = 1'b0
);
    reg [IN_W-1:0] vector = {IN_W{1'b0}};
    wire [OUT_W-1:0] payload;
    wire o_valid, i_ready;
    always @(posedge clk) begin
        vector <= {vector, din};
        valid <= o_valid;
        parity <= ^payload;
    end
    hwgen_top dut (
        .clk(clk), .rst(1'b0),
        .i__payload(vector), .i__valid(1'b1), .i__ready(i_ready),
        .o__payload(payload), .o__valid(o_valid), .o__ready(1'b1)
    );
endmodule
