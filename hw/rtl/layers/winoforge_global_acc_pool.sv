// winoforge_global_acc_pool: FINN's GlobalAccPool (sum over all pixels of each
// channel) as plain synthesizable SystemVerilog.
//
// Stream in : PIXELS x FOLDS beats of PE lanes (IN_W bits, lane p at [p*IN_W +: IN_W]).
// Stream out: FOLDS beats of PE sums (OUT_W bits each) after the last input pixel.
// The sums live in a FOLDS-deep memory per lane (read-modify-write, one beat per
// cycle); the first pixel overwrites it, so frames follow each other without a
// clear.  Cycles per frame: PIXELS*FOLDS (input) + FOLDS (output), FINN's
// GlobalAccPool.get_exp_cycles.  Sums are modulo 2^OUT_W: exact, since the final
// sum fits the output datatype.
module winoforge_global_acc_pool #(
    parameter int PE = 1,
    parameter int FOLDS = 1,
    parameter int PIXELS = 4,
    parameter int IN_W = 4,
    parameter int IN_SIGNED = 0,
    parameter int OUT_W = 8
) (
    input  logic                  ap_clk,
    input  logic                  ap_rst_n,
    input  logic [PE*IN_W-1:0]    in_data,
    input  logic                  in_valid,
    output logic                  in_ready,
    output logic [PE*OUT_W-1:0]   out_data,
    output logic                  out_valid,
    input  logic                  out_ready
);
    localparam int FW = FOLDS > 1 ? $clog2(FOLDS) : 1;
    localparam int PW = PIXELS > 1 ? $clog2(PIXELS) : 1;

    logic [PE*OUT_W-1:0] sums [FOLDS];
    logic [FW-1:0] fold;
    logic [PW-1:0] pixel;
    logic emitting;                       // output phase: FOLDS beats
    logic [PE*OUT_W-1:0] updated;

    wire out_free = !out_valid || out_ready;
    assign in_ready = !emitting;
    wire in_fire = in_valid && in_ready;
    wire last_fold = (fold == FW'(FOLDS - 1));
    wire last_pixel = (pixel == PW'(PIXELS - 1));

    function automatic logic [OUT_W-1:0] extend(input logic [IN_W-1:0] v);
        if (IN_SIGNED != 0) extend = OUT_W'($signed(v));
        else extend = OUT_W'({1'b0, v});
    endfunction

    always_comb begin
        for (int p = 0; p < PE; p++) begin
            logic [OUT_W-1:0] base;
            base = (pixel == '0) ? '0 : sums[fold][p*OUT_W +: OUT_W];
            updated[p*OUT_W +: OUT_W] = base + extend(in_data[p*IN_W +: IN_W]);
        end
    end

    always_ff @(posedge ap_clk) begin
        if (in_fire) sums[fold] <= updated;
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            fold <= '0;
            pixel <= '0;
            emitting <= 1'b0;
            out_valid <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (in_fire) begin
                fold <= last_fold ? '0 : fold + 1'b1;
                if (last_fold) begin
                    pixel <= last_pixel ? '0 : pixel + 1'b1;
                    if (last_pixel) emitting <= 1'b1;
                end
            end else if (emitting && out_free) begin
                out_data <= sums[fold];
                out_valid <= 1'b1;
                fold <= last_fold ? '0 : fold + 1'b1;
                if (last_fold) emitting <= 1'b0;
            end
        end
    end
endmodule
