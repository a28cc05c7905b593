// winoforge_thresholds: FINN's multi-thresholding of an accumulator stream as plain
// SystemVerilog (the activation of an MVAU with noActivation = 0).  Beat b of a vector
// carries channels (b mod NF)*PE + p, p < PE; output p of that beat is
// ACT_BIAS + #{k : x[p] >= T[(b mod NF)*PE + p][k]} in OUT_W bits (two's complement),
// FINN's MultiThreshold with out_bias = ActVal.  Thresholds: a ROM of NF words,
// $readmemh(THRESH_FILE); word f holds T[f*PE + p][k] at bits [(p*N_THRES + k)*IN_W +: IN_W].
// One output register; everything stalls while it is held.
module winoforge_thresholds #(
    parameter int PE = 1,
    parameter int NF = 1,        // channel folds: channels / PE
    parameter int IN_W = 16,     // signed input (and threshold) width
    parameter int N_THRES = 1,
    parameter int OUT_W = 4,
    parameter int ACT_BIAS = 0,
    parameter THRESH_FILE = ""
) (
    input  logic                 ap_clk,
    input  logic                 ap_rst_n,
    input  logic [PE*IN_W-1:0]   in_data,
    input  logic                 in_valid,
    output logic                 in_ready,
    output logic [PE*OUT_W-1:0]  out_data,
    output logic                 out_valid,
    input  logic                 out_ready
);
    localparam int NW = NF > 1 ? $clog2(NF) : 1;
    logic [PE*N_THRES*IN_W-1:0] rom [NF];
    initial if (THRESH_FILE != "") $readmemh(THRESH_FILE, rom);

    logic [NW-1:0] fold;
    assign in_ready = !out_valid || out_ready;
    wire take = in_valid && in_ready;

    logic [OUT_W-1:0] act [PE];
    always_comb begin
        logic [PE*N_THRES*IN_W-1:0] t;
        t = rom[fold];
        for (int p = 0; p < PE; p++) begin
            logic [OUT_W-1:0] count;
            count = OUT_W'(ACT_BIAS);
            for (int k = 0; k < N_THRES; k++)
                if ($signed(in_data[p*IN_W +: IN_W]) >= $signed(t[(p*N_THRES + k)*IN_W +: IN_W]))
                    count = count + 1'b1;
            act[p] = count;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            fold <= '0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (take) begin
                fold <= (fold == NW'(NF - 1)) ? '0 : fold + 1'b1;
                out_valid <= 1'b1;
                for (int p = 0; p < PE; p++) out_data[p*OUT_W +: OUT_W] <= act[p];
            end
        end
    end
endmodule
