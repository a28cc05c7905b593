// winoforge_add_streams: FINN's ElementwiseAdd of two integer streams (both inputs streamed,
// same shape, no broadcast) as plain SystemVerilog: out[p] = a[p] + b[p] for PE lanes per
// beat, each operand sign- or zero-extended to OUT_W (exact: the generator checks that the
// output datatype holds every sum).  A beat is taken from both inputs in the same cycle
// (join) into the output register; everything stalls while that register is held.
module winoforge_add_streams #(
    parameter int PE = 1,
    parameter int A_W = 4,
    parameter int A_SIGNED = 1,
    parameter int B_W = 4,
    parameter int B_SIGNED = 1,
    parameter int OUT_W = 5
) (
    input  logic               ap_clk,
    input  logic               ap_rst_n,
    input  logic [PE*A_W-1:0]  in0_data,
    input  logic               in0_valid,
    output logic               in0_ready,
    input  logic [PE*B_W-1:0]  in1_data,
    input  logic               in1_valid,
    output logic               in1_ready,
    output logic [PE*OUT_W-1:0] out_data,
    output logic               out_valid,
    input  logic               out_ready
);
    wire en = !out_valid || out_ready;
    wire take = en && in0_valid && in1_valid;
    assign in0_ready = en && in1_valid;
    assign in1_ready = en && in0_valid;

    function automatic logic signed [OUT_W-1:0] ext_a(input logic [A_W-1:0] v);
        if (A_SIGNED != 0) ext_a = OUT_W'($signed(v));
        else ext_a = OUT_W'(v);
    endfunction
    function automatic logic signed [OUT_W-1:0] ext_b(input logic [B_W-1:0] v);
        if (B_SIGNED != 0) ext_b = OUT_W'($signed(v));
        else ext_b = OUT_W'(v);
    endfunction

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (take) begin
                out_valid <= 1'b1;
                for (int p = 0; p < PE; p++)
                    out_data[p*OUT_W +: OUT_W] <= ext_a(in0_data[p*A_W +: A_W]) + ext_b(in1_data[p*B_W +: B_W]);
            end
        end
    end
endmodule
